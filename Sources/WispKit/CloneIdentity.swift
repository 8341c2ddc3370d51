#if canImport(Glibc)
import Glibc
#endif
import CloudInit
import Foundation
import WispCore

/// What makes a warm clone its own machine rather than a copy of its template, handed in by
/// one root shell script over the template's SSH login: the hostname (and /etc/hosts,
/// cloud-init's record of the hostname it set), a new /etc/machine-id, the instance's SSH
/// host keys (every template host key removed) with sshd reloaded, the user's
/// authorized_keys (the template's key removed everywhere), cloud-init's instance-id moved
/// to the clone's own (its per-instance modules' semaphores with it, so a later cold boot
/// with the clone's seed is the same instance and runs nothing twice), fresh bytes mixed
/// into the kernel's random pool (every clone resumes with the template's), and the clock.
struct CloneIdentity: Sendable {
    var hostname: String
    var machineID: String
    var instanceID: String
    var user: String
    var authorizedKeys: [String]
    var hostKeys: [SSHHostKey]
    /// The base64 field of the template's public key.
    var templateKeyBlob: String
    var entropy: String

    enum Outcome: Equatable {
        /// The script ran; `answered`: when the guest's shell first spoke (the SSH login's end).
        case done(answered: Date)
        /// SSH did not answer (yet), or refused the template's key or host key.
        case noAnswer
        /// The script ran and failed: its output.
        case scriptFailed(String)
    }

    static let doneMarker = "wisp-identity-done"

    /// Lowercase hex of `bytes` random bytes.
    static func randomHex(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// `printf` writing `lines` to `path` (a shell builtin: no process started).
    private static func write(_ lines: [String], to path: String) -> String {
        "printf '%s\\n' " + lines.map(InstanceSSH.shellQuote).joined(separator: " ") + " > \(path)\n"
    }

    /// The script (POSIX sh, run as root by `sh -s`). Builtins wherever they do the job:
    /// under emulation every program the script starts costs 50-150 ms (its code is
    /// translated afresh in a restored guest), so it starts eight instead of some forty.
    var script: String {
        let q = InstanceSSH.shellQuote
        var s = "set -eu\numask 022\n"
        s += "new_host=\(q(hostname))\nnew_iid=\(q(instanceID))\nold_host=\nold_iid=\n"
        s += "if [ -f /etc/hostname ]; then read -r old_host < /etc/hostname || true; fi\n"
        // Hostname: the file and the kernel's, as hostnamectl would set them (without
        // starting systemd-hostnamed over D-Bus: most of a second under emulation).
        s += Self.write([hostname], to: "/etc/hostname")
        s += "printf '%s' \"$new_host\" > /proc/sys/kernel/hostname\n"
        s += Self.write([machineID], to: "/etc/machine-id")
        s += "if [ -f /var/lib/dbus/machine-id ] && [ ! -L /var/lib/dbus/machine-id ]; then \(Self.write([machineID], to: "/var/lib/dbus/machine-id"))fi\n"
        // Host keys: every one the template had goes; the instance's (made by Wisp) come in.
        s += "rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub\numask 077\n"
        for key in hostKeys {
            s += Self.write([key.privateKey.trimmingCharacters(in: .newlines)], to: "/etc/ssh/ssh_host_\(key.type.rawValue)_key")
        }
        s += "umask 022\n"
        for key in hostKeys {
            s += Self.write([key.publicKey], to: "/etc/ssh/ssh_host_\(key.type.rawValue)_key.pub")
        }
        // The user's keys are the instance's (the file keeps its owner and mode when it
        // exists, as cloud-init made it); the template's key leaves every other file too.
        s += """
        home=
        while IFS=: read -r n _ _ _ _ h _; do if [ "$n" = \(q(user)) ]; then home=$h; fi; done < /etc/passwd
        [ -n "$home" ]
        if [ ! -d "$home/.ssh" ]; then mkdir -p "$home/.ssh"; chown \(q(user)): "$home/.ssh"; chmod 700 "$home/.ssh"; fi
        if [ ! -f "$home/.ssh/authorized_keys" ]; then (umask 077; : > "$home/.ssh/authorized_keys"); chown \(q(user)): "$home/.ssh/authorized_keys"; fi

        """
        s += Self.write(authorizedKeys, to: "\"$home/.ssh/authorized_keys\"")
        s += """
        set --
        for f in /root/.ssh/authorized_keys /home/*/.ssh/authorized_keys; do
          if [ -f "$f" ] && [ "$f" != "$home/.ssh/authorized_keys" ]; then set -- "$@" "$f"; fi
        done
        if [ $# -gt 0 ]; then sed -i '\\#\(templateKeyBlob)#d' "$@"; fi

        """
        // cloud-init: the instance-id is the clone's, its per-instance state (semaphores
        // included) moved with it, less the template's user-data as cloud-init kept it (it
        // holds the template's host private key, which must not live on in every clone's
        // disk): the files are emptied, not removed (`cloud-init query` fails without them),
        // and a later boot writes the clone's own from its seed; its records of the hostname and instance-id, and
        // /etc/hosts, rewritten in one sed (the instance-id first: the template's contains
        // its hostname).
        s += """
        if [ -f /var/lib/cloud/data/instance-id ]; then read -r old_iid < /var/lib/cloud/data/instance-id || true; fi
        if [ -n "$old_iid" ] && [ "$old_iid" != "$new_iid" ]; then
          if [ -d "/var/lib/cloud/instances/$old_iid" ]; then
            if [ -e "/var/lib/cloud/instances/$new_iid" ]; then rm -rf "/var/lib/cloud/instances/$new_iid"; fi
            mv "/var/lib/cloud/instances/$old_iid" "/var/lib/cloud/instances/$new_iid"
          fi
          if [ -e "/var/lib/cloud/instances/$new_iid/obj.pkl" ]; then rm -f "/var/lib/cloud/instances/$new_iid/obj.pkl"; fi
          ln -sfn "/var/lib/cloud/instances/$new_iid" /var/lib/cloud/instance
          printf '%s\\n' "$new_iid" > /var/lib/cloud/data/instance-id
          printf '%s\\n' "$new_iid" > /var/lib/cloud/data/previous-instance-id
        fi
        for f in /var/lib/cloud/instances/"$new_iid"/user-data.txt* /var/lib/cloud/instances/"$new_iid"/cloud-config.txt \\
          /var/lib/cloud/instances/"$new_iid"/vendor-data*.txt* /var/lib/cloud/instances/"$new_iid"/vendor-cloud-config.txt; do
          if [ -f "$f" ]; then : > "$f"; fi
        done
        set --
        for f in /etc/hosts /var/lib/cloud/data/set-hostname /run/cloud-init/instance-data.json /run/cloud-init/instance-data-sensitive.json "/var/lib/cloud/instances/$new_iid/datasource"; do
          if [ -f "$f" ]; then set -- "$@" "$f"; fi
        done
        host_pattern=${old_host:-wisp-no-such-host-}
        iid_pattern=${old_iid:-wisp-no-such-instance-}
        if [ $# -gt 0 ]; then sed -i -e "s/$iid_pattern/$new_iid/g" -e "s/\\b$host_pattern\\b/$new_host/g" "$@"; fi

        """
        s += "printf '%s' \(q(entropy)) > /dev/urandom\n"
        // sshd reads its host keys when it starts: SIGHUP re-executes it, which keeps this
        // session and serves the new keys to the next (straight to its pid: systemctl's
        // reload goes through D-Bus and PID 1 and costs most of a second under emulation).
        s += """
        sshd_pid=
        if [ -s /run/sshd.pid ]; then read -r sshd_pid < /run/sshd.pid || true; fi
        if [ -n "$sshd_pid" ] && kill -HUP "$sshd_pid" 2>/dev/null; then :; else
          systemctl reload ssh >/dev/null 2>&1 || systemctl reload sshd >/dev/null 2>&1 || true; fi
        echo \(Self.doneMarker)

        """
        return s
    }

    /// One login over `ssh` (the template's key and host key): the guest asks for the time
    /// once its shell runs (as the clock fix of a resume does), then reads the script.
    func run(over ssh: InstanceSSH) -> Outcome {
        guard let executable = try? HostCommands.ssh() else { return .noAnswer }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        var arguments = ssh.arguments(connectTimeout: 5)
        arguments.insert(contentsOf: ["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"], at: arguments.count - 1)
        let remote = "sudo -n sh -c 'echo wisp-clock; read t; date -u -s \"@$t\" >/dev/null; exec sh -s'"
        process.arguments = arguments + ["--", remote]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        do { try process.run() } catch { return .noAnswer }
        let watchdog = ProcessWatchdog(process, seconds: 120)
        defer { watchdog.cancel() }
        var text = ""
        var sent = false
        var answered = Date()
        while true {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            // Read to the end whatever the guest prints (ssh must never block on a full
            // pipe), but keep only the first 64 KiB.
            guard text.utf8.count <= 65536 else { continue }
            text += String(decoding: chunk, as: UTF8.self)
            if !sent, text.contains("wisp-clock\n") {
                answered = Date()
                let now = Date().timeIntervalSince1970
                input.fileHandleForWriting.write(Data((String(format: "%.3f\n", now) + script).utf8))
                try? input.fileHandleForWriting.close()
                sent = true
            }
        }
        if !sent { try? input.fileHandleForWriting.close() }
        process.waitUntilExit()
        if process.terminationStatus == 0 && text.contains(Self.doneMarker) { return .done(answered: answered) }
        // 255: ssh itself failed (no answer yet, or the key or host key refused); a signal:
        // the watchdog ended a login that hung. Any other status came from the guest (sudo
        // refused, no sudo, the script failed), and trying again would only fail again until
        // the timeout: the clone fails and the run boots cold at once.
        if process.terminationStatus == 255 || process.terminationReason == .uncaughtSignal { return .noAnswer }
        return .scriptFailed(text)
    }
}
