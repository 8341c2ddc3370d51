import Foundation
import Testing
import Machine
import WispCore
import WispTestSupport

/// systemd credentials for guests without cloud-init: the SMBIOS type 11 table (judged by
/// dmidecode reading it from a dump, as it reads a real machine's tables) and the QEMU
/// options that carry it or, without SMBIOS, fw_cfg entries.
@Suite struct SystemdCredentialTests {
    let paths = QEMUCommandLine.RuntimePaths(qmpSocket: "/i/qmp.sock", consoleSocket: "/i/console.sock",
                                             serialLog: "/i/serial.log", pidFile: "/i/qemu.pid",
                                             smbiosTable: "/i/smbios-type1.bin", qemuLog: "/i/qemu.log",
                                             smbiosOEMTable: "/i/smbios-type11.bin")

    func value(after option: String, in args: [String]) -> [String] {
        args.indices.filter { args[$0] == option && $0 + 1 < args.count }.map { args[$0 + 1] }
    }

    /// A dmidecode dump: an SMBIOS 3.0 entry point at 0 whose table address is the file
    /// offset 32 (as `dmidecode --dump-bin` writes), then the tables and an end-of-table.
    static func dump(tables: [[UInt8]]) -> [UInt8] {
        var table = tables.joined().map { $0 }
        table += [127, 4, 0xFF, 0xFE, 0, 0]
        var entry: [UInt8] = Array("_SM3_".utf8) + [0, 0x18, 3, 0, 0, 1, 0]
        withUnsafeBytes(of: UInt32(table.count).littleEndian) { entry += $0 }
        withUnsafeBytes(of: UInt64(32).littleEndian) { entry += $0 }
        entry[5] = UInt8(truncatingIfNeeded: 0 &- entry.reduce(0, { $0 &+ Int($1) }))
        return entry + [UInt8](repeating: 0, count: 32 - entry.count) + table
    }

    @Test func oemStringsReadByDmidecode() throws {
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0Oq2k2j1Eo8cKx8m1W6o8tQp6dY3v6sYmQbJ1r2bTt wisp-test"
        let strings = [try SMBIOSOEMStringsTable.credentialString(name: "ssh.authorized_keys.root", value: Array((key + "\n").utf8)),
                       try SMBIOSOEMStringsTable.credentialString(name: "tmpfiles.extra", value: Array("d /run/x 0755 root root -\nf /run/y\n".utf8))]
        let table = try SMBIOSOEMStringsTable(strings: strings).encoded()
        let dir = try TemporaryDirectory()
        let file = dir.file("dump.bin")
        try Data(Self.dump(tables: [table])).write(to: URL(fileURLWithPath: file))
        let out = try ToolRunner.check("dmidecode", ["--from-dump", file, "-t", "11"]).stdoutText
        #expect(out.contains("OEM Strings"))
        #expect(out.contains("String 1: \(strings[0])"))
        #expect(out.contains("String 2: \(strings[1])"))
        // The value round-trips through base64.
        let encoded = strings[0].split(separator: "=", maxSplits: 1)[1]
        #expect(Data(base64Encoded: String(encoded)).map { String(decoding: $0, as: UTF8.self) } == key + "\n")
    }

    @Test func tableLimits() throws {
        #expect(throws: WispError.self) { try SMBIOSOEMStringsTable(strings: []).encoded() }
        #expect(throws: WispError.self) { try SMBIOSOEMStringsTable(strings: Array(repeating: "x", count: 256)).encoded() }
        #expect(throws: WispError.self) { try SMBIOSOEMStringsTable(strings: ["a\u{0}b"]).encoded() }
        #expect(try SMBIOSOEMStringsTable(strings: Array(repeating: "x", count: 255)).encoded().count == 5 + 255 * 2 + 1)
        for bad in ["", "a b", "../x", "a/b", "a,b", "..", String(repeating: "a", count: 256)] {
            #expect(throws: WispError.self) { try SystemdCredential.validate(name: bad) }
        }
        try SystemdCredential.validate(name: "ssh.authorized_keys.root")
    }

    @Test func smbiosOnX86AndWithFirmware() throws {
        let credentials = [try SystemdCredential(name: "ssh.authorized_keys.root", file: "/i/credentials/ssh.authorized_keys.root")]
        var spec = MachineSpec(cpus: 1, memoryBytes: 512 << 20, boot: .direct(DirectBoot(kernel: "/i/vmlinuz", initrd: nil, commandLine: "root=/dev/vda1")))
        spec.credentials = credentials
        let args = try QEMUCommandLine(spec: spec, paths: paths, name: "n").arguments
        #expect(value(after: "-smbios", in: args) == ["file=/i/smbios-type11.bin"])
        #expect(value(after: "-fw_cfg", in: args).isEmpty)
        // The value itself is never in argv.
        #expect(!args.joined(separator: " ").contains("ssh-ed25519"))

        var arm = MachineSpec(architecture: .aarch64, cpus: 1, memoryBytes: 512 << 20,
                              boot: .firmware(UEFIFirmware(code: "/c.fd", vars: "/i/v.fd")))
        arm.credentials = credentials
        #expect(value(after: "-smbios", in: try QEMUCommandLine(spec: arm, paths: paths, name: "n").arguments) == ["file=/i/smbios-type11.bin"])
    }

    @Test func firmwareConfigWhenTheKernelSeesNoSMBIOS() throws {
        var spec = MachineSpec(architecture: .aarch64, cpus: 1, memoryBytes: 512 << 20,
                               boot: .direct(DirectBoot(kernel: "/i/Image", initrd: nil, commandLine: "root=/dev/vda2")))
        spec.credentials = [try SystemdCredential(name: "ssh.authorized_keys.root", file: "/i/credentials/ssh.authorized_keys.root"),
                            try SystemdCredential(name: "tmpfiles.extra", file: "/i,odd/tmpfiles.extra")]
        let args = try QEMUCommandLine(spec: spec, paths: paths, name: "n").arguments
        #expect(value(after: "-smbios", in: args).isEmpty)
        #expect(value(after: "-fw_cfg", in: args) == [
            "name=opt/io.systemd.credentials/ssh.authorized_keys.root,file=/i/credentials/ssh.authorized_keys.root",
            "name=opt/io.systemd.credentials/tmpfiles.extra,file=/i,,odd/tmpfiles.extra",
        ])
    }

    @Test func launcherWritesTheTableOwnerOnly() throws {
        let dir = try TemporaryDirectory()
        let valueFile = dir.file("ssh.authorized_keys.root")
        try Data("ssh-ed25519 AAAA k\n".utf8).write(to: URL(fileURLWithPath: valueFile))
        var spec = MachineSpec(cpus: 1, memoryBytes: 512 << 20, boot: .direct(DirectBoot(kernel: "/k", initrd: nil, commandLine: "")))
        spec.credentials = [try SystemdCredential(name: "ssh.authorized_keys.root", file: valueFile)]
        var p = paths
        p.smbiosOEMTable = dir.file("smbios-type11.bin")
        let commandLine = try QEMUCommandLine(spec: spec, paths: p, name: "n")
        try QEMULauncher.writeCredentialTable(commandLine)
        let attributes = try FileManager.default.attributesOfItem(atPath: dir.file("smbios-type11.bin"))
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir.file("smbios-type11.bin"))))
        #expect(bytes == (try SMBIOSOEMStringsTable(strings: [
            try SMBIOSOEMStringsTable.credentialString(name: "ssh.authorized_keys.root", value: Array("ssh-ed25519 AAAA k\n".utf8))]).encoded()))
    }
}
