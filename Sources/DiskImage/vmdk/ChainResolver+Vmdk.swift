import WispCore

extension ChainResolver {
    /// Reads a VMDK member's descriptor (embedded or standalone) and checks every extent
    /// file it names against the policy, before any is opened. Returns the parent's
    /// recorded name too (parentFileNameHint), which the chain walk follows like a qcow2
    /// backing file.
    mutating func resolveVmdk(_ probe: ChainFileProbe, name: String) throws -> (layout: VmdkLayout, parent: String?) {
        let head = try probe.read(at: 0, count: Int(min(probe.size, 512)))
        if head.count >= 4, Array(head[0..<4]) == Array("COWD".utf8) {
            throw WispError.unsupported(name, "ESX vmfsSparse (COWD) extents are not supported; convert the disk with vmkfstools or qemu-img first")
        }
        var descriptor: VmdkDescriptor
        let monolithic: Bool
        if head.count >= 4, Array(head[0..<4]) == Array("KDMV".utf8) {
            let header = try VmdkSparseHeader.parse(head, name: name, fileSize: probe.size)
            if header.descriptorSectors > 0 {
                let start = header.descriptorOffset * 512
                let count = min(header.descriptorSectors * 512, probe.size - start)
                descriptor = try VmdkDescriptor.parse(try probe.read(at: start, count: Int(count)), name: name)
            } else {
                descriptor = VmdkDescriptor()
            }
            // The file is the one extent, whatever its embedded descriptor says (as QEMU).
            descriptor.extents = [.init(access: .rw, sectors: header.capacity, type: .sparse,
                                        fileName: nil, offsetSectors: 0)]
            monolithic = true
        } else {
            guard probe.size <= UInt64(VmdkDescriptor.maxSize) else {
                throw WispError.corrupt(name, "VMDK descriptor", "\(probe.size) bytes; a descriptor file is at most \(VmdkDescriptor.maxSize)")
            }
            descriptor = try VmdkDescriptor.parse(try probe.read(at: 0, count: Int(probe.size)), name: name)
            guard !descriptor.extents.isEmpty else {
                throw WispError.corrupt(name, "VMDK descriptor", "names no extents")
            }
            monolithic = false
        }
        var files: [VmdkLayout.ExtentFile?] = []
        var checkedNames: [String: VmdkLayout.ExtentFile] = [:]
        for (i, extent) in descriptor.extents.enumerated() {
            switch extent.type {
            case .vmfsRDM, .vmfsRaw, .seSparse:
                throw WispError.unsupported(name, "VMDK extent \(i + 1): \(extent.type.rawValue) extents are not supported")
            default: break
            }
            guard let recorded = extent.fileName, !monolithic else { files.append(nil); continue }
            if let again = checkedNames[recorded] { files.append(again); continue }
            let field = "VMDK extent file"
            guard policy.allowsReferences else {
                throw WispError(.permissionDenied, "\(name): \(field) \"\(recorded)\" refers to another file; images from outside Wisp must be self-contained")
            }
            let target = try check(recorded, field: field, referrer: name)
            if target.identity == probe.identity {
                throw WispError.corrupt(name, field, "\"\(recorded)\" is the descriptor itself")
            }
            if let member = seen[target.identity] {
                throw WispError.corrupt(name, field, "\"\(recorded)\" is \(member), an image of the chain")
            }
            _ = try Self.openProbe(target.path, name: target.name, expected: target.identity)
            let file = VmdkLayout.ExtentFile(recordedName: recorded, name: target.name, path: target.path, identity: target.identity)
            checkedNames[recorded] = file
            files.append(file)
        }
        let parent = descriptor.hasParent ? descriptor.parentFileNameHint : nil
        if let parent, !policy.allowsReferences {
            throw WispError(.permissionDenied, "\(name): VMDK parentFileNameHint \"\(parent)\" refers to another file; images from outside Wisp must be self-contained")
        }
        return (VmdkLayout(descriptor: descriptor, isMonolithicSparse: monolithic, extentFiles: files), parent)
    }
}
