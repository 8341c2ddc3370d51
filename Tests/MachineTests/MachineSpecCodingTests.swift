import Foundation
import Testing
import Machine

/// instance.json files written by earlier Wisp releases must keep loading.
@Suite struct MachineSpecCodingTests {
    /// Exactly what Wisp wrote before `architecture` existed (JSONEncoder, pretty, sorted).
    static let directBootJSON = #"""
        {
          "accelerator" : "kvm",
          "boot" : {
            "direct" : {
              "_0" : {
                "commandLine" : "root=UUID=x ro console=ttyS0,115200 ds=nocloud",
                "initrd" : "\/i\/initrd.img",
                "kernel" : "\/i\/vmlinuz"
              }
            }
          },
          "cpus" : 2,
          "disks" : [
            {
              "format" : "qcow2",
              "path" : "\/i\/overlay.qcow2",
              "readOnly" : false
            },
            {
              "format" : "raw",
              "path" : "\/i\/seed.iso",
              "readOnly" : true
            }
          ],
          "forwards" : [
            {
              "guestPort" : 22,
              "hostAddress" : "127.0.0.1",
              "hostPort" : 2222
            }
          ],
          "macAddress" : "52:54:00:aa:bb:cc",
          "memoryBytes" : 2147483648
        }
        """#

    static let firmwareBootJSON = #"""
        {
          "accelerator" : "tcg",
          "boot" : {
            "firmware" : {
              "_0" : {
                "code" : "\/usr\/share\/OVMF\/OVMF_CODE_4M.fd",
                "vars" : "\/i\/OVMF_VARS.fd"
              }
            }
          },
          "cpus" : 1,
          "disks" : [
            {
              "format" : "qcow2",
              "path" : "\/i\/overlay.qcow2",
              "readOnly" : false
            }
          ],
          "forwards" : [

          ],
          "macAddress" : "52:54:00:12:34:56",
          "memoryBytes" : 536870912,
          "smbiosSerial" : "ds=nocloud;dsmode=net;s=http:\/\/10.0.2.2:8000\/"
        }
        """#

    @Test func specWithoutArchitectureIsX86_64() throws {
        let direct = try JSONDecoder().decode(MachineSpec.self, from: Data(Self.directBootJSON.utf8))
        #expect(direct == MachineSpec(
            architecture: .x86_64, cpus: 2, memoryBytes: 2 << 30,
            disks: [DiskAttachment(path: "/i/overlay.qcow2", format: .qcow2), DiskAttachment(path: "/i/seed.iso", format: .raw, readOnly: true)],
            forwards: [PortForward(hostPort: 2222, guestPort: 22)],
            boot: .direct(DirectBoot(kernel: "/i/vmlinuz", initrd: "/i/initrd.img", commandLine: "root=UUID=x ro console=ttyS0,115200 ds=nocloud")),
            accelerator: .kvm, macAddress: "52:54:00:aa:bb:cc"))

        let firmware = try JSONDecoder().decode(MachineSpec.self, from: Data(Self.firmwareBootJSON.utf8))
        #expect(firmware == MachineSpec(
            architecture: .x86_64, cpus: 1, memoryBytes: 512 << 20, disks: [DiskAttachment(path: "/i/overlay.qcow2", format: .qcow2)],
            boot: .firmware(UEFIFirmware(code: "/usr/share/OVMF/OVMF_CODE_4M.fd", vars: "/i/OVMF_VARS.fd")),
            accelerator: .tcg, smbiosSerial: "ds=nocloud;dsmode=net;s=http://10.0.2.2:8000/"))
    }

    @Test func architectureIsWrittenAndReadBack() throws {
        var spec = try JSONDecoder().decode(MachineSpec.self, from: Data(Self.directBootJSON.utf8))
        spec.architecture = .aarch64
        let encoded = try JSONEncoder().encode(spec)
        let object = try #require(try JSONSerialization.jsonObject(with: encoded) as? [String: Any])
        #expect(object["architecture"] as? String == "aarch64")
        #expect(try JSONDecoder().decode(MachineSpec.self, from: encoded) == spec)
    }

    @Test func unknownNamesAreRefused() {
        let badFormat = Self.directBootJSON.replacingOccurrences(of: "\"raw\"", with: "\"qed\"")
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(MachineSpec.self, from: Data(badFormat.utf8)) }
        let badArchitecture = Self.directBootJSON.replacingOccurrences(of: "\"cpus\" : 2,", with: "\"architecture\" : \"sparc\", \"cpus\" : 2,")
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(MachineSpec.self, from: Data(badArchitecture.utf8)) }
        let noCPUs = Self.directBootJSON.replacingOccurrences(of: "\"cpus\" : 2,", with: "")
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(MachineSpec.self, from: Data(noCPUs.utf8)) }
    }
}
