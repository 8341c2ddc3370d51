import Foundation
import Testing
import WispCore
@testable import WispKit

/// `--engine` parsing and what the libvirt engine refuses before any work is done.
@Suite struct LibvirtEngineTests {
    @Test func engineArgument() throws {
        #expect(try LibvirtEngine.parseEngine("qemu") == nil)
        #expect(try LibvirtEngine.parseEngine("libvirt") == (getuid() == 0 ? "qemu:///system" : "qemu:///session"))
        #expect(try LibvirtEngine.parseEngine("libvirt:qemu+ssh://admin@host/system") == "qemu+ssh://admin@host/system")
        for bad in ["libvirt:", "kvm", "", "Libvirt"] {
            #expect(throws: WispError.self) { try LibvirtEngine.parseEngine(bad) }
            do { _ = try LibvirtEngine.parseEngine(bad) } catch let error as WispError { #expect(error.kind == .usage) }
        }
    }

    @Test func localAndRemoteURIs() {
        #expect(LibvirtEngine.isLocal("qemu:///system"))
        #expect(LibvirtEngine.isLocal("qemu:///session"))
        #expect(!LibvirtEngine.isLocal("qemu+ssh://host/system"))
        #expect(!LibvirtEngine.isLocal("qemu+tcp://10.0.0.2/system"))
    }

    @Test func refusesWhatOnlyWispsQEMUDoes() throws {
        var options = RunOptions(image: "x.qcow2")
        try LibvirtEngine.checkSupported(options)
        options.ephemeral = true
        options.extraDisks = [("d.qcow2", false)]
        do {
            try LibvirtEngine.checkSupported(options)
            Issue.record("--ephemeral and --disk were accepted")
        } catch let error as WispError {
            #expect(error.kind == .usage)
            #expect(error.message.contains("--disk") && error.message.contains("--ephemeral"))
        }
    }

    @Test func domainNamesDifferPerStore() {
        let a = LibvirtEngine.domainName("web", files: InstanceFiles(directory: "/home/a/.local/share/wisp/instances/web"))
        let b = LibvirtEngine.domainName("web", files: InstanceFiles(directory: "/tmp/t/wisp/instances/web"))
        #expect(a != b && a.hasPrefix("wisp-web-") && a.count == "wisp-web-".count + 8)
    }
}
