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

    /// A here-document body that cannot end early: its delimiter is not one of its lines.
    private static func heredoc(_ text: String, to path: String, delimiter: String) -> String {
        "cat > \(path) <<'\(delimiter)'\n\(text.hasSuffix("\n") ? text : text + "\n")\(delimiter)\n"
    }

    /// The script (POSIX sh, run as root by `sh -s`).
    var script: String {
        let q = InstanceSSH.shellQuote
        var s = "set -eu\numask 022\n"
        s += "new_host=\(q(hostname))\nnew_iid=\(q(instanceID))\nold_host=$(hostname)\n"
        // Hostname: the file and the kernel's, as hostnamectl would set them (without
        // starting systemd-hostnamed over D-Bus: most of a second under emulation).
        s += """
        printf '%s\\n' "$new_host" > /etc/hostname
        hostname "$new_host"
        if [ -n "$old_host" ] && [ "$old_host" != "$new_host" ]; then
          for f in /etc/hosts /var/lib/cloud/data/set-hostname; do
            if [ -f "$f" ]; then awk -v o="$old_host" -v n="$new_host" '{ line = $0; out = ""; while (match(line, o)) { before = substr(line, RSTART - 1, 1); after = substr(line, RSTART + RLENGTH, 1); if ((RSTART == 1 || before ~ /[^A-Za-z0-9.-]/) && (after == "" || after ~ /[^A-Za-z0-9-]/)) out = out substr(line, 1, RSTART - 1) n; else out = out substr(line, 1, RSTART + RLENGTH - 1); line = substr(line, RSTART + RLENGTH) } print out line }' "$f" > "$f.wisp-new" && cat "$f.wisp-new" > "$f" && rm -f "$f.wisp-new"; fi
          done
        fi

        """
        s += "printf '%s\\n' \(q(machineID)) > /etc/machine-id\n"
        s += "if [ -f /var/lib/dbus/machine-id ] && [ ! -L /var/lib/dbus/machine-id ]; then printf '%s\\n' \(q(machineID)) > /var/lib/dbus/machine-id; fi\n"
        // Host keys: every one the template had goes; the instance's (made by Wisp) come in.
        s += "rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub\n(umask 077\n"
        for key in hostKeys {
            s += Self.heredoc(key.privateKey, to: "/etc/ssh/ssh_host_\(key.type.rawValue)_key", delimiter: "WISP_KEY_END")
        }
        s += ")\n"
        for key in hostKeys {
            s += Self.heredoc(key.publicKey, to: "/etc/ssh/ssh_host_\(key.type.rawValue)_key.pub", delimiter: "WISP_KEY_END")
        }
        // The user's keys are the instance's; the template's key leaves every other file too.
        s += "home=$(getent passwd \(q(user)) | cut -d: -f6)\n[ -n \"$home\" ]\nmkdir -p \"$home/.ssh\"\n"
        s += Self.heredoc(authorizedKeys.joined(separator: "\n"), to: "\"$home/.ssh/authorized_keys\"", delimiter: "WISP_KEYS_END")
        s += "chown \(q(user)): \"$home/.ssh\" \"$home/.ssh/authorized_keys\"\nchmod 700 \"$home/.ssh\"\nchmod 600 \"$home/.ssh/authorized_keys\"\n"
        s += """
        for f in /root/.ssh/authorized_keys /home/*/.ssh/authorized_keys; do
          [ -f "$f" ] || continue
          if grep -qF \(q(templateKeyBlob)) "$f"; then grep -vF \(q(templateKeyBlob)) "$f" > "$f.wisp-new" || true; cat "$f.wisp-new" > "$f"; rm -f "$f.wisp-new"; fi
        done

        """
        // cloud-init: the instance-id is the clone's, its per-instance state moved with it.
        s += """
        if [ -f /var/lib/cloud/data/instance-id ]; then
          old_iid=$(cat /var/lib/cloud/data/instance-id)
          if [ -n "$old_iid" ] && [ "$old_iid" != "$new_iid" ] && [ -d "/var/lib/cloud/instances/$old_iid" ]; then
            rm -rf "/var/lib/cloud/instances/$new_iid"
            mv "/var/lib/cloud/instances/$old_iid" "/var/lib/cloud/instances/$new_iid"
          fi
          rm -f "/var/lib/cloud/instances/$new_iid/obj.pkl"
          ln -sfn "/var/lib/cloud/instances/$new_iid" /var/lib/cloud/instance
          printf '%s\\n' "$new_iid" > /var/lib/cloud/data/instance-id
          printf '%s\\n' "$new_iid" > /var/lib/cloud/data/previous-instance-id
          if [ -n "$old_iid" ]; then
            for f in /run/cloud-init/instance-data.json /run/cloud-init/instance-data-sensitive.json "/var/lib/cloud/instances/$new_iid/datasource"; do
              if [ -f "$f" ]; then sed -i "s/$old_iid/$new_iid/g" "$f"; fi
            done
          fi
        fi

        """
        s += "printf '%s' \(q(entropy)) > /dev/urandom\n"
        // sshd reads its host keys when it starts: SIGHUP re-executes it, which keeps this
        // session and serves the new keys to the next (straight to its pid: systemctl's
        // reload goes through D-Bus and PID 1 and costs most of a second under emulation).
        s += """
        if [ -s /run/sshd.pid ] && kill -HUP "$(cat /run/sshd.pid)" 2>/dev/null; then :; else
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
            text += String(decoding: chunk, as: UTF8.self)
            if !sent, text.contains("wisp-clock\n") {
                answered = Date()
                let now = Date().timeIntervalSince1970
                input.fileHandleForWriting.write(Data((String(format: "%.3f\n", now) + script).utf8))
                try? input.fileHandleForWriting.close()
                sent = true
            }
            if text.utf8.count > 65536 { break }
        }
        if !sent { try? input.fileHandleForWriting.close() }
        process.waitUntilExit()
        if process.terminationStatus == 0 && text.contains(Self.doneMarker) { return .done(answered: answered) }
        // 255: ssh itself failed (no answer yet, or the key or host key refused).
        if !sent || process.terminationStatus == 255 { return .noAnswer }
        return .scriptFailed(text)
    }
}
