import Foundation
import WispCore

/// Writes an OVA: tar of an OVF 1.0 descriptor, one stream-optimized VMDK and a SHA-256
/// manifest, in that order (the OVF standard wants the descriptor first). The VMDK is
/// written beside the output first (its size goes in the tar header), then copied in.
public enum OvaWriter {
    public struct Machine: Sendable {
        public var name: String
        public var cpus: Int
        public var memoryMiB: UInt64
        public init(name: String, cpus: Int = 1, memoryMiB: UInt64 = 1024) {
            self.name = name
            self.cpus = cpus
            self.memoryMiB = memoryMiB
        }
    }

    public static func export(_ input: any BlockDevice, to path: String, machine: Machine,
                              progress: (@Sendable (UInt64, UInt64) -> Void)? = nil) throws {
        let base = String((path.split(separator: "/").last ?? "disk").split(separator: ".").first ?? "disk")
        let diskName = "\(base)-disk1.vmdk", ovfName = "\(base).ovf", mfName = "\(base).mf"
        let directory = ChainResolver.directory(of: path)
        let diskTemp = "\(directory)/.\(base)-\(UInt32.random(in: 0...UInt32.max)).vmdk.tmp"
        var options = ConvertOptions(format: .vmdk)
        options.vmdk.subformat = .streamOptimized
        options.progress = progress
        try ImageConverter.convert(input: input, to: diskTemp, options: options)
        defer { unlink(diskTemp) }
        let disk = try FileBlockDevice(path: diskTemp)
        let ovf = Array(descriptor(machine: machine, diskName: diskName, diskFileSize: disk.size, capacity: input.size).utf8)

        var diskDigest = SHA256()
        let output = try AtomicOutput(path: path)
        do {
            var position: UInt64 = 0
            func append(_ bytes: [UInt8]) throws {
                try output.file.write(bytes, at: position)
                position += UInt64(bytes.count)
            }
            func pad() throws {
                let rest = Int((512 - position % 512) % 512)
                if rest > 0 { try append([UInt8](repeating: 0, count: rest)) }
            }
            try append(try tarHeader(name: ovfName, size: UInt64(ovf.count)))
            try append(ovf); try pad()
            try append(try tarHeader(name: diskName, size: disk.size))
            var buffer = [UInt8](repeating: 0, count: 4 << 20)
            var done: UInt64 = 0
            while done < disk.size {
                let n = Int(min(UInt64(buffer.count), disk.size - done))
                try buffer.withUnsafeMutableBytes { try disk.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), at: done) }
                try buffer.withUnsafeBytes { b in
                    let part = UnsafeRawBufferPointer(rebasing: b[0..<n])
                    diskDigest.update(part)
                    try output.file.write(part, at: position)
                }
                position += UInt64(n)
                done += UInt64(n)
            }
            try pad()
            let ovfDigest = SHA256.hex({ var s = SHA256(); s.update(ovf); return s.finalize() }())
            let manifest = Array("SHA256(\(ovfName))= \(ovfDigest)\nSHA256(\(diskName))= \(SHA256.hex(diskDigest.finalize()))\n".utf8)
            try append(try tarHeader(name: mfName, size: UInt64(manifest.count)))
            try append(manifest); try pad()
            try append([UInt8](repeating: 0, count: 1024))
            try output.file.sync()
            try output.commit()
        } catch {
            output.discard()
            throw error
        }
    }

    static func tarHeader(name: String, size: UInt64) throws -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        let nameBytes = Array(name.utf8)
        guard nameBytes.count < 100 else { throw WispError.invalidArgument("\(name): file name too long for the OVA") }
        h.replaceSubrange(0..<nameBytes.count, with: nameBytes)
        func octal(_ v: UInt64, _ offset: Int, _ width: Int) {
            let text = Array(String(v, radix: 8).utf8)
            let digits = [UInt8](repeating: 0x30, count: max(0, width - 1 - text.count)) + text
            h.replaceSubrange(offset..<(offset + digits.count), with: digits)
        }
        octal(0o644, 100, 8); octal(0, 108, 8); octal(0, 116, 8)
        if size < 0o77777777777 {
            octal(size, 124, 12)
        } else {
            h[124] = 0x80
            for i in 0..<8 { h[135 - i] = UInt8(truncatingIfNeeded: size >> (8 * UInt64(i))) }
        }
        octal(UInt64(Date().timeIntervalSince1970), 136, 12)
        h[156] = UInt8(ascii: "0")
        h.replaceSubrange(257..<265, with: Array("ustar\u{0}00".utf8))
        for i in 148..<156 { h[i] = 0x20 }
        let sum = h.reduce(0) { $0 + UInt64($1) }
        octal(sum, 148, 7)
        h[154] = 0
        h[155] = 0x20
        return h
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func descriptor(machine: Machine, diskName: String, diskFileSize: UInt64, capacity: UInt64) -> String {
        let name = escape(machine.name)
        return """
        <?xml version="1.0" encoding="UTF-8"?>
        <Envelope ovf:version="1.0" xml:lang="en-US" xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
          <References>
            <File ovf:id="file1" ovf:href="\(escape(diskName))" ovf:size="\(diskFileSize)"/>
          </References>
          <DiskSection>
            <Info>Virtual disks</Info>
            <Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="\(capacity)" ovf:capacityAllocationUnits="byte" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
          </DiskSection>
          <NetworkSection>
            <Info>Logical networks</Info>
            <Network ovf:name="NAT"><Description>NAT network</Description></Network>
          </NetworkSection>
          <VirtualSystem ovf:id="\(name)">
            <Info>A virtual machine exported by Wisp</Info>
            <Name>\(name)</Name>
            <OperatingSystemSection ovf:id="96">
              <Info>The guest operating system</Info>
            </OperatingSystemSection>
            <VirtualHardwareSection>
              <Info>Virtual hardware requirements</Info>
              <System>
                <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
                <vssd:InstanceID>0</vssd:InstanceID>
                <vssd:VirtualSystemIdentifier>\(name)</vssd:VirtualSystemIdentifier>
                <vssd:VirtualSystemType>vmx-07</vssd:VirtualSystemType>
              </System>
              <Item>
                <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
                <rasd:Description>Number of virtual CPUs</rasd:Description>
                <rasd:ElementName>\(machine.cpus) virtual CPU(s)</rasd:ElementName>
                <rasd:InstanceID>1</rasd:InstanceID>
                <rasd:ResourceType>3</rasd:ResourceType>
                <rasd:VirtualQuantity>\(machine.cpus)</rasd:VirtualQuantity>
              </Item>
              <Item>
                <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
                <rasd:Description>Memory Size</rasd:Description>
                <rasd:ElementName>\(machine.memoryMiB) MB of memory</rasd:ElementName>
                <rasd:InstanceID>2</rasd:InstanceID>
                <rasd:ResourceType>4</rasd:ResourceType>
                <rasd:VirtualQuantity>\(machine.memoryMiB)</rasd:VirtualQuantity>
              </Item>
              <Item>
                <rasd:Address>0</rasd:Address>
                <rasd:ElementName>SCSI Controller 0</rasd:ElementName>
                <rasd:InstanceID>3</rasd:InstanceID>
                <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
                <rasd:ResourceType>6</rasd:ResourceType>
              </Item>
              <Item>
                <rasd:AddressOnParent>0</rasd:AddressOnParent>
                <rasd:ElementName>Hard Disk 1</rasd:ElementName>
                <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
                <rasd:InstanceID>4</rasd:InstanceID>
                <rasd:Parent>3</rasd:Parent>
                <rasd:ResourceType>17</rasd:ResourceType>
              </Item>
            </VirtualHardwareSection>
          </VirtualSystem>
        </Envelope>

        """
    }
}
