import Foundation
import Testing
import WispCore
import WispTestSupport
@testable import Machine

/// An ISO attached as the CD-ROM (`wisp run x.iso`). Judge: QEMU itself. The whole command
/// line of each board is started paused, and QEMU's own account of its block devices
/// (`query-block`) must show the ISO on a removable drive, read-only, raw; the firmware boots
/// it first, the blank disk second.
@Suite struct CDROMCommandLineTests {
    func value(after option: String, in args: [String]) -> [String] {
        args.indices.filter { args[$0] == option && $0 + 1 < args.count }.map { args[$0 + 1] }
    }

    func spec(_ architecture: GuestArchitecture, boot: BootMethod, in dir: TemporaryDirectory) throws -> MachineSpec {
        try ToolRunner.check("qemu-img", ["create", "-q", "-f", "qcow2", dir.file("disk.qcow2"), "64M"])
        try Data(repeating: 0x43, count: 1 << 20).write(to: URL(fileURLWithPath: dir.file("live.iso")))
        var spec = MachineSpec(architecture: architecture, cpus: 1, memoryBytes: 256 << 20,
                               disks: [DiskAttachment(path: dir.file("disk.qcow2"), format: .qcow2)], boot: boot)
        spec.cdrom = dir.file("live.iso")
        return spec
    }

    /// Starts the machine paused (`-S`) and returns `query-block`'s entries.
    func blockDevices(_ commandLine: QEMUCommandLine, in dir: TemporaryDirectory) throws -> [QMPValue] {
        let qemu = Process()
        qemu.executableURL = URL(fileURLWithPath: try HostQEMU.executable(for: commandLine.board))
        qemu.arguments = commandLine.arguments + ["-S"]
        let errors = Pipe()
        qemu.standardError = errors
        try qemu.run()
        defer { kill(qemu.processIdentifier, SIGKILL); qemu.waitUntilExit() }
        var client: QMPClient?
        for _ in 0..<250 where client == nil {
            client = try? QMPClient(socketPath: commandLine.paths.qmpSocket, timeout: 2)
            if client == nil {
                guard qemu.isRunning else {
                    throw WispError(.engineFailed, String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
                }
                usleep(20_000)
            }
        }
        let qmp = try #require(client)
        guard case .array(let devices) = try qmp.execute("query-block") else { return [] }
        return devices
    }

    func paths(_ dir: TemporaryDirectory) -> QEMUCommandLine.RuntimePaths {
        .init(qmpSocket: dir.file("qmp.sock"), consoleSocket: dir.file("console.sock"), serialLog: dir.file("serial.log"),
              pidFile: dir.file("qemu.pid"), smbiosTable: dir.file("smbios.bin"), qemuLog: dir.file("qemu.log"))
    }

    func expectCDROM(_ devices: [QMPValue], iso: String) {
        let cd = devices.first { $0["inserted"]?["node-name"]?.string == "cd0" }
        #expect(cd?["removable"]?.bool == true, "the ISO is on a CD-ROM drive: \(devices)")
        #expect(cd?["inserted"]?["ro"]?.bool == true)
        #expect(cd?["inserted"]?["drv"]?.string == "raw")
        #expect(cd?["inserted"]?["file"]?.string == iso)
        let disk = devices.first { $0["inserted"]?["node-name"]?.string == "disk0" }
        #expect(disk?["inserted"]?["ro"]?.bool == false)
        #expect(disk?["removable"]?.bool == false)
    }

    @Test func x86CDROMOnAHCIBootsFirstUnderSeaBIOS() throws {
        let dir = try TemporaryDirectory("wisp-cdrom-x86")
        let spec = try spec(.x86_64, boot: .bios, in: dir)
        let commandLine = try QEMUCommandLine(spec: spec, paths: paths(dir), name: "wisp-cd", sandbox: false)
        let args = commandLine.arguments
        #expect(value(after: "-drive", in: args).isEmpty, "SeaBIOS: no pflash")
        #expect(value(after: "-device", in: args).contains("ide-cd,bus=ide.0,drive=cd0,bootindex=0"))
        #expect(value(after: "-device", in: args).contains("virtio-blk-pci,drive=disk0,bootindex=1"))
        expectCDROM(try blockDevices(commandLine, in: dir), iso: dir.file("live.iso"))
    }

    @Test func aarch64CDROMOnVirtioSCSIBootsFirstUnderUEFI() throws {
        let dir = try TemporaryDirectory("wisp-cdrom-arm64")
        let firmware = try HostQEMU.firmware(for: AArch64Board())
        try FileManager.default.copyItem(atPath: firmware.varsTemplate, toPath: dir.file("vars.fd"))
        let spec = try spec(.aarch64, boot: .firmware(UEFIFirmware(code: firmware.code, vars: dir.file("vars.fd"))), in: dir)
        let commandLine = try QEMUCommandLine(spec: spec, paths: paths(dir), name: "wisp-cd", sandbox: false)
        let devices = value(after: "-device", in: commandLine.arguments)
        #expect(devices.contains("virtio-scsi-pci,id=scsi0"))
        #expect(devices.contains("scsi-cd,bus=scsi0.0,drive=cd0,bootindex=0"))
        #expect(devices.contains("virtio-blk-pci,drive=disk0,bootindex=1"))
        expectCDROM(try blockDevices(commandLine, in: dir), iso: dir.file("live.iso"))
    }

    @Test func directBootGivesTheCDROMNoBootIndex() throws {
        let dir = try TemporaryDirectory("wisp-cdrom-direct")
        let spec = try spec(.x86_64, boot: .direct(DirectBoot(kernel: "/k", initrd: nil, commandLine: "console=ttyS0")), in: dir)
        let devices = value(after: "-device", in: try QEMUCommandLine(spec: spec, paths: paths(dir), name: "t").arguments)
        #expect(devices.contains("ide-cd,bus=ide.0,drive=cd0"))
        #expect(devices.contains("virtio-blk-pci,drive=disk0"))
    }

    @Test func cdromSurvivesInstanceJSON() throws {
        let dir = try TemporaryDirectory("wisp-cdrom-json")
        let spec = try spec(.x86_64, boot: .bios, in: dir)
        let decoded = try JSONDecoder().decode(MachineSpec.self, from: try JSONEncoder().encode(spec))
        #expect(decoded.cdrom == dir.file("live.iso"))
        #expect(decoded.boot == .bios)
    }
}
