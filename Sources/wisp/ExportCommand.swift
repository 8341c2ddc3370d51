import ArgumentParser
import Foundation
import WispCore
import WispKit

/// `wisp export ENGINE NAME`: an instance handed to another engine.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Describe an instance for another engine (libvirt domain XML).",
        discussion: """
        Prints what another engine needs to run the same machine: the same boot plan (the \
        extracted kernel, initrd and command line, or UEFI firmware), the overlay on its \
        checked backing chain, the NoCloud seed and the SSH forward. To run an instance \
        under libvirt directly, use wisp run --engine libvirt.

        Examples:
          wisp export libvirt web > web.xml && virsh define web.xml
        """,
        subcommands: [ExportLibvirtCommand.self])
}

struct ExportLibvirtCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "libvirt", abstract: "Print an instance's libvirt domain XML.",
        discussion: """
        For an instance run with --engine libvirt, the definition Wisp gave the daemon (its \
        files are volumes of the daemon's wisp pool). For one Wisp runs itself, a domain over \
        the instance's own files on this host; stop the instance before starting the domain, \
        both would write the same overlay. The XML passes virt-xml-validate.

        Examples:
          wisp export libvirt web
          wisp export libvirt web | virt-xml-validate - domain
        """)

    @Argument(help: "Instance name.") var name: String

    func run() async throws {
        let store = InstanceStore()
        let record = try store.load(name)
        let xml = try LibvirtEngine.domainXML(record, files: store.files(name))
        FileHandle.standardOutput.write(Data(xml.utf8))
    }
}
