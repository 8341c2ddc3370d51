import Foundation
import Testing
import WispCore
import WispTestSupport

/// The real `wisp` binary boots the real test image under TCG: run → ssh → stop → start → rm,
/// and `run --rm -- CMD` exits with CMD's code. State lives in a scratch XDG tree, and every
/// QEMU started is killed at the end whatever happened.
@Suite(.serialized) struct BootTests {
    static let accel = ProcessInfo.processInfo.environment["WISP_TEST_ACCEL"] ?? "tcg"

    struct Sandbox {
        let dir: TemporaryDirectory
        let wisp: String
        let image: String

        init() throws {
            image = try TestImage.path()
            let candidates = ["debug", "release"].map { "\(TestImage.repositoryRoot)/.build/\($0)/wisp" }
            guard let wisp = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
                throw WispError.notFound("the wisp binary is not built (looked for \(candidates)): run swift build first, or the tests through scripts/test")
            }
            self.wisp = wisp
            dir = try TemporaryDirectory("wisp-e2e")
        }

        /// Runs boot cold (WISP_COLD=1, as the test runner's default); false lets `wisp run`
        /// make and restore warm clones.
        var coldRuns = true

        var environment: [String: String] {
            ["XDG_DATA_HOME": dir.file("data"), "XDG_CACHE_HOME": dir.file("cache"), "WISP_COLD": coldRuns ? "1" : "0"]
        }

        @discardableResult
        func run(_ arguments: [String]) throws -> ToolResult {
            try ToolRunner.run(wisp, arguments, environment: environment)
        }

        func check(_ arguments: [String]) throws -> ToolResult {
            let result = try run(arguments)
            guard result.status == 0 else {
                throw WispError(.failed, "wisp \(arguments.joined(separator: " ")) exited \(result.status):\n\(result.stderrText)\(result.stdoutText)")
            }
            return result
        }

        /// Kills every QEMU this sandbox started, through wisp and then by pid file.
        func cleanUp() {
            let instances = dir.file("data") + "/wisp/instances"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: instances)) ?? [] {
                _ = try? run(["rm", "--force", name])
                if let text = try? String(contentsOfFile: "\(instances)/\(name)/qemu.pid", encoding: .utf8),
                   let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                    kill(pid, SIGKILL)
                }
            }
        }
    }

    @Test(.timeLimit(.minutes(30))) func runSSHStopStartRemove() throws {
        let box = try Sandbox()
        defer { box.cleanUp() }
        let run = try box.check(["run", "--name", "e2e", "--accel", Self.accel, "--memory", "1536M", "--timeout", "900", box.image])
        #expect(run.stdoutText == "e2e\n")

        // The seed's hostname, user and key (wisp ssh uses only the instance key, with
        // strict host key checking against the host key handed in through the seed).
        #expect(try box.check(["ssh", "e2e", "--", "cat", "/etc/hostname"]).stdoutText == "e2e\n")
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: box.dir.file("data") + "/wisp/instances/e2e/instance.json"))) as? [String: Any]
        let user = try #require(record?["user"] as? String)
        #expect(try box.check(["ssh", "e2e", "--", "id", "-un"]).stdoutText == "\(user)\n")
        #expect(try box.check(["ssh", "e2e", "--", "sudo", "-n", "true"]).status == 0)
        let hostKey = try box.check(["ssh", "e2e", "--", "sudo", "-n", "cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).stdoutText
        let ourHostKey = try String(contentsOfFile: box.dir.file("data") + "/wisp/instances/e2e/ssh_host_ed25519_key.pub", encoding: .utf8)
        #expect(hostKey.split(separator: " ").prefix(2) == ourHostKey.split(separator: " ").prefix(2))
        #expect(try box.run(["ssh", "e2e", "--", "sh", "-c", "exit 7"]).status == 7)

        // Ready came from the init stage (phone_home appended to the image's own init
        // modules); the image's later stages then finish cleanly on their own.
        // set_passwords ran there too, before sshd started: sshd is not restarted after
        // ready (that would drop logins), and password logins are off.
        for module in ["phone_home", "set_passwords"] {
            #expect(try box.check(["ssh", "e2e", "--", "sudo", "-n", "grep", "-c", "init-network/config-\(module)", "/var/log/cloud-init.log"]).stdoutText != "0\n")
        }
        #expect(try box.check(["ssh", "e2e", "--", "sudo -n sshd -T | grep -i ^passwordauthentication"]).stdoutText == "passwordauthentication no\n")
        // Wisp's phone_home posts only what Wisp reads, so cloud-init logs no warning about
        // host keys the guest does not have (RSA, ECDSA).
        #expect(try box.run(["ssh", "e2e", "--", "sudo -n grep -c 'can not phone home' /var/log/cloud-init.log"]).stdoutText == "0\n")
        let status = try box.run(["ssh", "e2e", "--", "cloud-init", "status", "--wait", "--long"])
        #expect(status.status == 0 && status.stdoutText.contains("status: done"), "\(status.stdoutText)\(status.stderrText)")
        // The hostname resolves (manage_etc_hosts), so sudo does not complain.
        #expect(!(try box.check(["ssh", "e2e", "--", "sudo", "-n", "true"]).stderrText.contains("unable to resolve host")))

        // What another local user could reach: nothing in the instance directory, no
        // secret on QEMU's command line (world-readable in /proc), a sandboxed QEMU.
        let instanceDir = box.dir.file("data") + "/wisp/instances/e2e"
        for leaf in ["", "/qmp.sock", "/console.sock", "/serial.log", "/qemu.log", "/instance.json", "/ssh_host_ed25519_key", "/seed.iso"] {
            let mode = (try FileManager.default.attributesOfItem(atPath: instanceDir + leaf)[.posixPermissions] as? Int) ?? 0o777
            #expect(mode & 0o077 == 0, "\(leaf.isEmpty ? "instance directory" : leaf) is mode \(String(mode, radix: 8))")
        }
        let pid = try String(contentsOfFile: instanceDir + "/qemu.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let argv = try #require(FileManager.default.contents(atPath: "/proc/\(pid)/cmdline")).split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        #expect(argv.contains("-sandbox"), "\(argv)")
        #expect(!argv.contains { $0.contains("PRIVATE KEY") || $0.contains("ds=nocloud;s=") }, "\(argv)")
        #expect(argv.contains { $0.hasPrefix("{") && $0.contains(#""backing":"#) }, "disks are -blockdev graphs: \(argv)")

        let list = try box.check(["list", "--json"]).stdoutText
        let entries = try JSONSerialization.jsonObject(with: Data(list.utf8)) as? [[String: Any]]
        #expect(entries?.first?["state"] as? String == "running")
        #expect(entries?.first?["accelerator"] as? String == Self.accel)
        #expect(entries?.first?["memory"] as? Int == 1536 << 20, "sizes are bytes")

        // info: the SSH endpoint as an object, the disks read from their headers, uptime.
        let info = try #require(try JSONSerialization.jsonObject(with: Data(try box.check(["info", "e2e", "--json"]).stdoutText.utf8)) as? [String: Any])
        let ssh = try #require(info["ssh"] as? [String: Any])
        #expect(ssh["user"] as? String == user && ssh["command"] as? String == "wisp ssh e2e")
        #expect(((info["uptime-seconds"] as? Double) ?? -1) >= 0)
        let disks = try #require(info["disks"] as? [[String: Any]])
        #expect(disks.first?["path"] as? String == instanceDir + "/overlay.qcow2" && ((disks.first?["virtual-size"] as? Int) ?? 0) > 0, "\(disks)")
        #expect(try box.check(["info", "e2e"]).stdoutText.contains("Uptime:"))
        for (command, definition) in [(["info", "e2e", "--json"], "instance"), (["list", "--json"], "list")] {
            let problems = try JSONSchemaJudge.problems(try box.check(command).stdoutText, definition: definition)
            #expect(problems.isEmpty, "\(command): \(problems)")
        }
        #expect(entries?.first?["engine"] as? String == "qemu")
        // The same machine as a libvirt domain over the instance's own files, by libvirt's schema.
        let exported = try box.check(["export", "libvirt", "e2e"]).stdoutText
        let xmlFile = box.dir.file("e2e-domain.xml")
        try exported.write(toFile: xmlFile, atomically: true, encoding: .utf8)
        let validation = try ToolRunner.run("virt-xml-validate", [xmlFile, "domain"])
        #expect(validation.status == 0, "\(validation.stderrText)\n\(exported)")
        #expect(exported.contains("<source file='\(instanceDir)/overlay.qcow2'/>") && exported.contains("<source file='\(URL(fileURLWithPath: box.image).resolvingSymlinksInPath().path)'/>"))
        #expect(exported.contains("<kernel>\(instanceDir)/vmlinuz</kernel>"))
        // exec needs no --, shell quoting is Wisp's; logs --tail gives exactly the last lines.
        #expect(try box.check(["exec", "e2e", "printf", "%s|", "a b", "c"]).stdoutText == "a b|c|")
        #expect(try box.run(["exec", "e2e", "sh", "-c", "exit 5"]).status == 5)
        let tail = try box.check(["logs", "--tail", "2", "e2e"]).stdoutText
        #expect(tail.split(separator: "\n", omittingEmptySubsequences: false).count <= 3, "\(tail)")

        // Starting a running instance changes nothing and says so; rm refuses a running
        // instance without --force.
        let again = try box.run(["start", "e2e"])
        #expect(again.status == 0 && again.stderrText.contains("e2e is already running"), "\(again.stderrText)")
        #expect(try box.run(["rm", "e2e"]).status != 0)

        _ = try box.check(["stop", "e2e"])
        let stoppedAgain = try box.run(["stop", "e2e"])
        #expect(stoppedAgain.status == 0 && stoppedAgain.stderrText == "wisp: e2e is already stopped\n", "\(stoppedAgain.stderrText)")
        let stopped = try JSONSerialization.jsonObject(with: Data(try box.check(["list", "--json"]).stdoutText.utf8)) as? [[String: Any]]
        #expect(stopped?.first?["state"] as? String == "stopped")
        #expect(try box.run(["ssh", "e2e", "--", "true"]).status != 0)

        _ = try box.check(["start", "e2e", "--accel", Self.accel, "--timeout", "900"])
        #expect(try box.check(["ssh", "e2e", "--", "cat", "/etc/hostname"]).stdoutText == "e2e\n")
        let log = try box.check(["logs", "e2e"]).stdoutText
        #expect(log.contains("Linux version"))

        _ = try box.check(["rm", "--force", "e2e"])
        #expect(!FileManager.default.fileExists(atPath: box.dir.file("data") + "/wisp/instances/e2e"))
    }

    /// Also a legitimate local chain: an overlay made by `qemu-img create -b` beside its base
    /// boots, and `wisp run` names the files it will read on its first line.
    @Test(.timeLimit(.minutes(20))) func runRemoveExitsWithTheCommandsCode() throws {
        let box = try Sandbox()
        defer { box.cleanUp() }
        let base = box.dir.file("debian-base.qcow2")
        try FileManager.default.copyItem(atPath: box.image, toPath: base)
        let overlay = box.dir.file("debian-overlay.qcow2")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "debian-base.qcow2", "-F", "qcow2", overlay],
                             currentDirectory: box.dir.path)
        let result = try box.run(["run", "--rm", "--accel", Self.accel, "--memory", "1536M", "--timeout", "900", overlay, "--", "sh", "-c", "exit 3"])
        #expect(result.status == 3, "\(result.stderrText)")
        #expect(result.stderrText.contains("image: \(overlay) (qcow2) -> \(base) (qcow2)"), "\(result.stderrText)")
        let left = ((try? FileManager.default.contentsOfDirectory(atPath: box.dir.file("data") + "/wisp/instances")) ?? []).filter { !$0.hasPrefix(".") }  // .claim.lock stays
        #expect(left.isEmpty, "\(left)")
    }

    /// A Hyper-V style image: the test image as a dynamic VHDX (made by qemu-img) boots;
    /// Wisp converts it once to a qcow2 in its cache and QEMU reads only that.
    @Test(.timeLimit(.minutes(20))) func vhdxImageBoots() throws {
        let box = try Sandbox()
        defer { box.cleanUp() }
        let vhdx = box.dir.file("debian.vhdx")
        try ToolRunner.check("qemu-img", ["convert", "-O", "vhdx", "-o", "subformat=dynamic", box.image, vhdx])
        // Without --rm, -- CMD leaves the VM running and says so.
        let result = try box.run(["run", "--name", "hyperv", "--accel", Self.accel, "--memory", "1536M", "--timeout", "900",
                                  vhdx, "--", "cat", "/etc/hostname"])
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(result.stdoutText == "hyperv\n")
        #expect(result.stderrText.contains("converting \(vhdx) (vhdx) to qcow2"), "\(result.stderrText)")
        #expect(result.stderrText.hasSuffix("wisp: hyperv is still running (wisp ssh hyperv; wisp rm -f hyperv removes it; --rm does that after CMD)\n"), "\(result.stderrText)")
        _ = try box.check(["rm", "-f", "hyperv"])
    }

    /// `--cloud-init http`: no seed disk; the guest fetches the seed from Wisp's listener as
    /// NoCloud-net (dsmode "net" on the kernel command line, which cloud-init 22.4 needs).
    @Test(.timeLimit(.minutes(20))) func seedOverHTTP() throws {
        let box = try Sandbox()
        defer { box.cleanUp() }
        let result = try box.run(["run", "--rm", "--name", "overhttp", "--cloud-init", "http", "--accel", Self.accel, "--memory", "1536M",
                                  "--timeout", "900", box.image, "--",
                                  "sh", "-c", "cat /etc/hostname; cat /var/lib/cloud/instance/datasource; lsblk -dn -o NAME | wc -l"])
        #expect(result.status == 0, "\(result.stderrText)")
        let lines = result.stdoutText.split(separator: "\n").map(String.init)
        #expect(lines.first == "overhttp", "\(result.stdoutText)")
        #expect(lines.count == 3 && lines[1].contains("DataSourceNoCloudNet") && lines[1].contains("10.0.2.2"), "\(result.stdoutText)")
        #expect(lines.last == "1", "only the overlay disk, no seed disk: \(result.stdoutText)")
    }

    /// Ctrl-C (or a CI runner's SIGTERM) while the guest boots: QEMU is stopped and, with
    /// --rm, the instance is gone; without --rm it stays, stopped, for `wisp start`.
    @Test(.timeLimit(.minutes(5))) func interruptedRunLeavesNothingBooting() throws {
        let box = try Sandbox()
        defer { box.cleanUp() }
        let instances = box.dir.file("data") + "/wisp/instances"
        for (name, signal, removes) in [("intrm", SIGINT, true), ("intkeep", SIGTERM, false)] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: box.wisp)
            process.arguments = ["run", "--name", name, "--accel", Self.accel, "--memory", "1536M"] + (removes ? ["--rm"] : []) + [box.image]
            process.environment = ProcessInfo.processInfo.environment.merging(box.environment) { $1 }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Wait for QEMU to run (its pid file appears), then interrupt.
            let pidFile = "\(instances)/\(name)/qemu.pid"
            let deadline = Date().addingTimeInterval(120)
            var qemu: Int32?
            while Date() < deadline, qemu == nil {
                qemu = (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
                usleep(200_000)
            }
            let pid = try #require(qemu, "QEMU never started for \(name)")
            kill(process.processIdentifier, signal)
            // Bounded wait: a wisp that does not exit is a failure here, not a hung suite.
            let exitDeadline = Date().addingTimeInterval(60)
            while process.isRunning, Date() < exitDeadline { usleep(100_000) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                Issue.record("wisp run did not exit within 60 s of signal \(signal)")
            }
            process.waitUntilExit()
            #expect(process.terminationStatus == 128 + signal, "\(name)")
            // A daemonized QEMU's parent is init, which on some hosts never reaps it: a
            // zombie has exited.
            let state = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.split(separator: ")").last?.split(separator: " ").first
            #expect(kill(pid, 0) != 0 || state == "Z", "QEMU \(pid) still runs after the interrupt")
            #expect(FileManager.default.fileExists(atPath: "\(instances)/\(name)") == !removes, "\(name)")
        }
        // --rm and a boot that does not get ready in time: the error, and nothing left.
        let late = try box.run(["run", "--rm", "--name", "toolate", "--accel", Self.accel, "--memory", "1536M", "--timeout", "3", box.image, "--", "true"])
        #expect(late.status != 0 && late.stderrText.contains("not ready after 3 s"), "\(late.stderrText)")
        #expect(!FileManager.default.fileExists(atPath: "\(instances)/toolate"))
        let list = try JSONSerialization.jsonObject(with: Data(try box.check(["list", "--json"]).stdoutText.utf8)) as? [[String: Any]]
        #expect(list?.map { $0["name"] as? String } == ["intkeep"])
        #expect(list?.first?["state"] as? String == "stopped")
    }

    @Test func clearErrorsAndNothingLeftBehind() throws {
        let box = try Sandbox()
        defer { box.cleanUp() }
        let missing = try box.run(["run", box.dir.file("no-such.qcow2")])
        #expect(missing.status != 0)
        #expect(missing.stderrText.contains("no-such.qcow2: no such image file"))
        // A format Wisp does not read: one sentence with the way out, before any work.
        let qed = box.dir.file("disk.qed")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qed", qed, "64M"])
        let unread = try box.run(["run", qed])
        #expect(unread.status != 0)
        #expect(unread.stderrText.contains("which Wisp does not read") && unread.stderrText.contains("qemu-img convert"), "\(unread.stderrText)")
        // A blank disk (here a VMDK, read by Wisp): nothing to boot, said at once.
        let vmdk = box.dir.file("blank.vmdk")
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "vmdk", vmdk, "64M"])
        let blank = try box.run(["run", "--timeout", "60", vmdk])
        #expect(blank.status != 0 && blank.stderrText.contains("nothing on it to boot"), "\(blank.stderrText)")
        let badPort = try box.run(["run", "-p", "80", box.image])
        #expect(badPort.stderrText.contains("HOST_PORT:GUEST_PORT"))
        // QEMU missing: one sentence, and no instance directory left.
        let noQEMU = try ToolRunner.run(box.wisp, ["run", "--name", "x", box.image],
                                        environment: box.environment.merging(["WISP_QEMU": box.dir.file("no-qemu")]) { $1 })
        #expect(noQEMU.status != 0)
        let left = ((try? FileManager.default.contentsOfDirectory(atPath: box.dir.file("data") + "/wisp/instances")) ?? []).filter { !$0.hasPrefix(".") }  // .claim.lock stays
        #expect(left.filter { !$0.hasPrefix(".") }.isEmpty, "\(left)")
        #expect(try box.run(["ssh", "nope", "--", "true"]).stderrText.contains("no instance named nope"))
    }
}
