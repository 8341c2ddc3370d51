import Foundation
@testable import Machine
import Testing
import WispCore
import WispTestSupport

/// The domain XML `wisp run --engine libvirt` defines, judged by libvirt's own schema
/// (`virt-xml-validate`, from libvirt-clients) and read for the facts Wisp relies on.
@Suite struct LibvirtDomainXMLTests {
    static func spec(_ accelerator: Accelerator = .tcg) -> MachineSpec {
        MachineSpec(cpus: 2, memoryBytes: 1536 << 20, forwards: [PortForward(hostPort: 2222, guestPort: 22), PortForward(hostPort: 8080, guestPort: 80, transport: .udp)],
                    accelerator: accelerator, macAddress: "52:54:00:ab:cd:ef")
    }

    static func validate(_ xml: String) throws {
        let dir = try TemporaryDirectory("wisp-libvirt-xml")
        let path = dir.file("domain.xml")
        try xml.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try ToolRunner.run("virt-xml-validate", [path, "domain"])
        #expect(result.status == 0, "virt-xml-validate: \(result.stderrText)\(result.stdoutText)\n\(xml)")
    }

    @Test func directBootWithExplicitBackingChainValidates() throws {
        // A hostile-looking path and command line must come out escaped, not as markup.
        let definition = LibvirtDomainXML(
            name: "wisp-web-0011aabb", spec: Self.spec(),
            disks: [.init(path: "/pool/wisp-web-overlay", format: .qcow2,
                          backing: [DiskLayer(path: "/pool/it's <base>&0", format: .qcow2), DiskLayer(path: "/pool/base1", format: .raw)]),
                    .init(path: "/pool/wisp-web-seed.iso", format: .raw, readOnly: true)],
            boot: .direct(kernel: "/pool/vmlinuz", initrd: "/pool/initrd.img", commandLine: "root=UUID=x console=ttyS0,115200 ds=nocloud;dsmode=net a=\"<b>\""),
            serialLog: "/var/lib/wisp/serial.log")
        let xml = try definition.xml()
        try Self.validate(xml)
        #expect(xml.hasPrefix("<domain type='qemu'"))
        #expect(xml.contains("<source file='/pool/it&apos;s &lt;base&gt;&amp;0'/>"))
        #expect(xml.contains("a=&quot;&lt;b&gt;&quot;</cmdline>"))
        // The chain is stated to its end: libvirt follows no name written inside an image.
        #expect(xml.components(separatedBy: "<backingStore type='file'>").count == 3)
        #expect(xml.contains("<backingStore/>"))
        #expect(xml.contains("<cpu mode='maximum'/>"))
        #expect(xml.contains("<target dev='vdb' bus='virtio'/>\n      <readonly/>"))
        // The SSH forward and the MAC, as QEMUCommandLine gives them to Wisp's own QEMU.
        #expect(xml.contains("<qemu:arg value='user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp:127.0.0.1:8080-:80'/>"))
        #expect(xml.contains("mac=52:54:00:ab:cd:ef,bus=pcie.0,addr=0x18"))
        #expect(xml.contains("<log file='/var/lib/wisp/serial.log' append='on'/>"))
    }

    @Test func uefiBootUnderKVMValidates() throws {
        var spec = Self.spec(.kvm)
        spec.smbiosSerial = "ds=nocloud;s=http://10.0.2.2:9/"
        let definition = LibvirtDomainXML(name: "wisp-u", spec: spec,
                                          disks: [.init(path: "/pool/o", format: .qcow2, backing: [DiskLayer(path: "/pool/b", format: .qcow2)])],
                                          boot: .firmware(loader: "/usr/share/OVMF/OVMF_CODE_4M.fd", varsTemplate: "/usr/share/OVMF/OVMF_VARS_4M.fd"),
                                          serialLog: nil)
        let xml = try definition.xml()
        try Self.validate(xml)
        #expect(xml.hasPrefix("<domain type='kvm'"))
        #expect(xml.contains("<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>"))
        #expect(xml.contains("<boot order='1'/>"))
        #expect(xml.contains("<entry name='serial'>ds=nocloud;s=http://10.0.2.2:9/</entry>"))
        #expect(!xml.contains("<log "))
    }

    @Test func diskTargetNames() {
        #expect((0..<3).map(LibvirtDomainXML.targetName) == ["vda", "vdb", "vdc"])
        #expect(LibvirtDomainXML.targetName(25) == "vdz")
        #expect(LibvirtDomainXML.targetName(26) == "vdaa")
    }
}
