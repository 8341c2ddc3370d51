import Foundation
import Testing
import Machine
import WispCore
import WispTestSupport

@Suite struct QMPParsingTests {
    @Test func parsesEveryMessageShape() throws {
        #expect(try QMPMessage.parse(#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}"#) == .greeting(version: "7.2.22"))
        #expect(try QMPMessage.parse(#"{"return": {"status": "running", "singlestep": false, "running": true}, "id": "wisp-2"}"#)
                == .success(id: "wisp-2", result: .object(["status": .string("running"), "singlestep": .bool(false), "running": .bool(true)])))
        #expect(try QMPMessage.parse(#"{"id": "x", "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}"#)
                == .error(id: "x", errorClass: "CommandNotFound", description: "The command nope has not been found"))
        #expect(try QMPMessage.parse(#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "GUEST_PANICKED", "data": {"action": "pause"}}"#)
                == .event(name: "GUEST_PANICKED", data: .object(["action": .string("pause")])))
    }

    @Test func rejectsHostileLines() {
        for bad in ["", "not json", "[1,2]", "{\"foo\": 1}", "{\"return\"", String(repeating: "{", count: 10_000)] {
            #expect(throws: WispError.self) { try QMPMessage.parse(bad) }
        }
    }
}

/// Talks to a real QEMU: no machine at all (`-machine none`) so it starts instantly.
@Suite(.serialized) struct QMPClientTests {
    @Test func negotiatesQueriesAndQuits() throws {
        let dir = try TemporaryDirectory("wisp-qmp")
        let socket = dir.file("qmp.sock")
        let qemu = Process()
        qemu.executableURL = URL(fileURLWithPath: try HostQEMU.executable(for: X86_64Board()))
        qemu.arguments = ["-machine", "none", "-nodefaults", "-display", "none", "-S",
                          "-qmp", "unix:\(socket),server=on,wait=off"]
        qemu.standardError = FileHandle.nullDevice
        try qemu.run()
        defer { if qemu.isRunning { qemu.terminate() } }
        var client: QMPClient? = nil
        for _ in 0..<100 where client == nil {
            client = try? QMPClient(socketPath: socket, timeout: 5)
            if client == nil { usleep(50_000) }
        }
        let qmp = try #require(client)
        #expect(qmp.qemuVersion.hasPrefix("7.") || qmp.qemuVersion.hasPrefix("8.") || qmp.qemuVersion.hasPrefix("9."))
        // -S: created but not started.
        #expect(try qmp.status() == "prelaunch")
        #expect(throws: WispError.self) { try qmp.execute("no-such-command") }
        let name = try qmp.execute("query-name")
        #expect(name["name"] == nil)
        try qmp.execute("quit")
        let event = try qmp.waitForEvent(["SHUTDOWN"], timeout: 10)
        if case .event(let n, _) = event { #expect(n == "SHUTDOWN") } else { Issue.record("no SHUTDOWN event") }
        qemu.waitUntilExit()
        #expect(!qemu.isRunning)
    }

    /// QEMU's QMP serves one client at a time. While one holds it, more clients must fail
    /// within their timeout (a queued connection waits for a greeting that never comes; once
    /// the listener's backlog is full, connect() itself would block), never hang.
    @Test(.timeLimit(.minutes(20))) func aHeldMonitorTimesOutOtherClients() throws {
        let dir = try TemporaryDirectory("wisp-qmp-held")
        let socket = dir.file("qmp.sock")
        let qemu = Process()
        qemu.executableURL = URL(fileURLWithPath: try HostQEMU.executable(for: X86_64Board()))
        qemu.arguments = ["-machine", "none", "-nodefaults", "-display", "none", "-S",
                          "-qmp", "unix:\(socket),server=on,wait=off"]
        qemu.standardError = FileHandle.nullDevice
        try qemu.run()
        // SIGKILL: a child started by Foundation's Process from a test thread inherits a signal
        // mask that blocks SIGTERM, so terminate() would leave it running.
        defer { if qemu.isRunning { kill(qemu.processIdentifier, SIGKILL); qemu.waitUntilExit() } }
        var holder: QMPClient? = nil
        for _ in 0..<100 where holder == nil {
            holder = try? QMPClient(socketPath: socket, timeout: 5)
            if holder == nil { usleep(50_000) }
        }
        let held = try #require(holder)
        // Enough clients to fill any backlog QEMU's listener has; each gives up in about 1 s.
        let started = Date()
        var kinds: [WispError.Kind] = []
        for _ in 0..<4 {
            do {
                _ = try QMPClient(socketPath: socket, timeout: 1)
                Issue.record("a second QMP client was served while the first held the monitor")
            } catch let error as WispError {
                kinds.append(error.kind)
            }
        }
        #expect(kinds == [.timedOut, .timedOut, .timedOut, .timedOut], "\(kinds)")
        #expect(Date().timeIntervalSince(started) < 100)
        // The holder still works.
        #expect(try held.status() == "prelaunch")
    }

    @Test func launcherReportsQEMUStderrOnEarlyFailure() throws {
        let dir = try TemporaryDirectory("wisp-launch")
        let spec = MachineSpec(cpus: 1, memoryBytes: 128 << 20,
                               disks: [DiskAttachment(path: dir.file("missing.qcow2"), format: .qcow2)],
                               boot: .direct(DirectBoot(kernel: dir.file("vmlinuz"), initrd: nil, commandLine: "")), accelerator: .tcg)
        let paths = QEMUCommandLine.RuntimePaths(qmpSocket: dir.file("q"), consoleSocket: dir.file("c"), serialLog: dir.file("s"), pidFile: dir.file("p"),
                                                 smbiosTable: dir.file("smbios"), qemuLog: dir.file("log"))
        let line = try QEMUCommandLine(executable: try HostQEMU.executable(for: X86_64Board()), spec: spec, paths: paths, name: "t")
        do {
            _ = try QEMULauncher.launch(line)
            Issue.record("QEMU started without its disk")
        } catch let error as WispError {
            #expect(error.message.contains("QEMU failed to start"))
            #expect(error.message.contains("missing.qcow2"))
        }
    }

    @Test func launcherReportsPortInUse() throws {
        let dir = try TemporaryDirectory("wisp-port")
        // Hold a port, then ask QEMU to forward it.
        let holder = try TCPHolder()
        try FileManager.default.createFile(atPath: dir.file("k"), contents: Data([0]))
        let spec = MachineSpec(cpus: 1, memoryBytes: 128 << 20, forwards: [PortForward(hostPort: holder.port, guestPort: 22)],
                               boot: .direct(DirectBoot(kernel: dir.file("k"), initrd: nil, commandLine: "")), accelerator: .tcg)
        let paths = QEMUCommandLine.RuntimePaths(qmpSocket: dir.file("q"), consoleSocket: dir.file("c"), serialLog: dir.file("s"), pidFile: dir.file("p"),
                                                 smbiosTable: dir.file("smbios"), qemuLog: dir.file("log"))
        do {
            let pid = try QEMULauncher.launch(try QEMUCommandLine(executable: try HostQEMU.executable(for: X86_64Board()), spec: spec, paths: paths, name: "t"))
            QEMULauncher.terminate(pid: pid)
            Issue.record("QEMU started although port \(holder.port) is taken")
        } catch let error as WispError {
            #expect(error.message.contains("already in use"), "\(error.message)")
        }
    }
}

/// Listens on a free 127.0.0.1 port for as long as it lives.
final class TCPHolder {
    let fd: Int32
    let port: UInt16
    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(fd, 1)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.fd = fd
        port = UInt16(bigEndian: sin.sin_port)
    }
    deinit { close(fd) }
}
