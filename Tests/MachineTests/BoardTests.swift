import Foundation
import Testing
import Machine
import WispCore
import WispTestSupport

@Suite struct BoardTests {
    @Test func boardsForX86_64AndAArch64Only() throws {
        #expect(try Boards.for(.x86_64) is X86_64Board)
        #expect(try Boards.for(.aarch64) is AArch64Board)
        for architecture in [GuestArchitecture.x86_64, .aarch64] {
            #expect(try Boards.for(architecture).architecture == architecture)
        }
        for architecture in [GuestArchitecture.riscv64, .loongarch64] {
            #expect {
                try Boards.for(architecture)
            } throws: { error in
                guard let error = error as? WispError else { return false }
                return error.kind == .unsupported && error.message.hasPrefix("no board for \(architecture.rawValue) yet")
            }
        }
    }

    @Test func aarch64BoardDescribesVirt() {
        let board = AArch64Board()
        #expect(board.qemuBinary == "qemu-system-aarch64")
        #expect(board.qemuPackage == "qemu-system-arm")
        #expect(board.machineArgument == "virt,gic-version=max")
        #expect(board.cpuModel(for: .kvm) == "host")
        #expect(board.cpuModel(for: .tcg) == "max,pauth-impdef=on")
        #expect(board.serialConsole == "ttyAMA0")
        #expect(board.capabilities == BoardCapabilities(supportsSMBIOS: true, smbiosWithDirectKernelBoot: false, panicDevice: "pvpanic-pci"))
        #expect(board.firmware.candidates == [
            UEFIFirmwareFiles(code: "/usr/share/AAVMF/AAVMF_CODE.fd", varsTemplate: "/usr/share/AAVMF/AAVMF_VARS.fd"),
            UEFIFirmwareFiles(code: "/usr/share/edk2/aarch64/QEMU_EFI-pflash.raw", varsTemplate: "/usr/share/edk2/aarch64/vars-template-pflash.raw"),
        ])
    }

    /// Judge: the host's AAVMF (qemu-efi-aarch64) is found and is what virt's pflash banks
    /// take: exactly 64 MiB each.
    @Test func hostAAVMFIsFoundAndPadded() throws {
        let firmware = try HostQEMU.firmware(for: AArch64Board())
        for file in [firmware.code, firmware.varsTemplate] {
            let size = try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int
            #expect(size == 64 << 20, "\(file)")
        }
    }

    @Test func x86BoardDescribesAPC() {
        let board = X86_64Board()
        #expect(board.qemuBinary == "qemu-system-x86_64")
        #expect(board.machineArgument == "q35,vmport=off,hpet=off")
        #expect(board.cpuModel(for: .kvm) == "host")
        #expect(board.cpuModel(for: .tcg) == "max")
        #expect(board.serialConsole == "ttyS0")
        #expect(board.capabilities == BoardCapabilities(supportsSMBIOS: true, smbiosWithDirectKernelBoot: true, panicDevice: "pvpanic", hasLegacyBIOS: true))
        // Debian's 4M build first, then Debian's 2M one, then Fedora's and Arch's trees.
        #expect(board.firmware.candidates.map(\.code) == [
            "/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_CODE.fd",
            "/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/x64/OVMF_CODE.fd",
        ])
    }

    /// Judge: the host's QEMU knows every name the board uses (machine type and options, CPU
    /// models, devices and the NIC property), so a typo cannot wait for a boot to show.
    @Test(arguments: [X86_64Board() as any Board, AArch64Board() as any Board])
    func hostQEMUKnowsEveryNameTheBoardUses(board: any Board) throws {
        let qemu = try HostQEMU.executable(for: board)
        let machines = try ToolRunner.check(qemu, ["-machine", "help"]).stdoutText
        #expect(machines.split(separator: "\n").contains { $0.hasPrefix(board.machineType + " ") })
        let machineOptions = try ToolRunner.run(qemu, ["-machine", "\(board.machineType),help"])
        for option in board.machineOptions {
            let name = option.split(separator: "=")[0]
            #expect((machineOptions.stdoutText + machineOptions.stderrText).contains("\(name)="), "\(option)")
        }
        // x86 lists "x86 max   ...", arm "  max": the model is a whole word of some line.
        let cpus = try ToolRunner.check(qemu, ["-cpu", "help"]).stdoutText.split(separator: "\n")
            .map { $0.split(separator: " ").map(String.init) }
        for accelerator in Accelerator.allCases {
            let model = board.cpuModel(for: accelerator)
            // qemu-system-aarch64 lists "host" only where KVM for arm64 exists (an arm64
            // host); elsewhere it is still the name KVM's CPU has.
            if accelerator == .kvm && model == "host" && board.architecture != GuestArchitecture.host { continue }
            let name = String(model.split(separator: ",")[0])
            #expect(cpus.contains { $0.contains(name) }, "\(accelerator)")
            // Properties after the model's name (pauth-impdef=on): QEMU starts with them and
            // quits when QMP on stdin says so (an unknown property exits 1 before that).
            if accelerator == .tcg && model != name {
                let quit = Data(#"{"execute":"qmp_capabilities"}\#n{"execute":"quit"}\#n"#.utf8)
                let started = try ToolRunner.run(qemu, ["-machine", board.machineArgument, "-accel", "tcg", "-cpu", model,
                                                        "-display", "none", "-nodefaults", "-S", "-qmp", "stdio"], input: quit)
                #expect(started.status == 0, "\(model): \(started.stderrText)")
            }
        }
        let devices = try ToolRunner.check(qemu, ["-machine", board.machineType, "-device", "help"]).stdoutText
        let used = [board.devices.block, board.devices.network, board.devices.rng] + [board.capabilities.panicDevice].compactMap { $0 }
        for device in used {
            #expect(devices.contains("name \"\(device)\""), "\(device)")
        }
        let nicProperties = try ToolRunner.check(qemu, ["-machine", board.machineType, "-device", "\(board.devices.network),help"]).stdoutText
        for property in board.devices.networkProperties {
            #expect(nicProperties.contains("  \(property.split(separator: "=")[0])="), "\(property)")
        }
    }

    @Test func firmwareIsFoundOnDebianAndFedoraTrees() throws {
        let board = X86_64Board()
        func lay(_ root: String, _ files: [String]) throws {
            for file in files {
                let path = root + file
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try Data([0]).write(to: URL(fileURLWithPath: path))
            }
        }
        let dir = try TemporaryDirectory("wisp-firmware")

        let fedora = dir.file("fedora")
        try lay(fedora, ["/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd"])
        #expect(try HostQEMU.firmware(for: board, root: fedora)
                == UEFIFirmwareFiles(code: fedora + "/usr/share/edk2/ovmf/OVMF_CODE.fd", varsTemplate: fedora + "/usr/share/edk2/ovmf/OVMF_VARS.fd"))

        let debian = dir.file("debian")
        try lay(debian, ["/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd",
                         "/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"])
        #expect(try HostQEMU.firmware(for: board, root: debian).code == debian + "/usr/share/OVMF/OVMF_CODE_4M.fd")

        // A code file without its vars template is no firmware.
        let half = dir.file("half")
        try lay(half, ["/usr/share/OVMF/OVMF_CODE_4M.fd"])
        #expect {
            try HostQEMU.firmware(for: board, root: half)
        } throws: { error in
            guard let error = error as? WispError else { return false }
            return error.kind == .notFound && error.message.contains("apt-get install ovmf")
        }
    }

    @Test func qemuIsFoundThroughWISP_QEMUOrPATH() throws {
        let board = X86_64Board()
        let dir = try TemporaryDirectory("wisp-qemu-path")
        let fake = dir.file(board.qemuBinary)
        try Data("#!/bin/sh\n".utf8).write(to: URL(fileURLWithPath: fake))
        chmod(fake, 0o755)
        #expect(try HostQEMU.executable(for: board, environment: ["PATH": "/nonexistent:\(dir.path)"]) == fake)
        #expect(try HostQEMU.executable(for: board, environment: ["WISP_QEMU": fake, "PATH": ""]) == fake)
        let notExecutable = dir.file("data")
        try Data([0]).write(to: URL(fileURLWithPath: notExecutable))
        #expect {
            try HostQEMU.executable(for: board, environment: ["WISP_QEMU": notExecutable])
        } throws: { error in
            (error as? WispError)?.kind == .notFound
        }
    }

    @Test func userModeNetworkURLs() {
        #expect(UserModeNetwork.hostURL(port: 8000) == "http://10.0.2.2:8000")
        #expect(UserModeNetwork.guestAddress.hasPrefix("10.0.2.15/"))
    }
}
