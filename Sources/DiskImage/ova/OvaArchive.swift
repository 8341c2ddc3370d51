import WispCore

/// An OVA: a tar holding an OVF descriptor, its disks and optionally a manifest. Opened
/// without extracting: the disk is read through a slice of the archive. Every file the
/// manifest lists is checked against its SHA-1/SHA-256 digest before the disk is used.
public struct OvaArchive: Sendable {
    public let path: String
    public let index: TarIndex
    public let descriptorName: String
    public let descriptor: OvfDescriptor

    /// Whether the file at `path` looks like a tar whose first member is an OVF descriptor
    /// (as the OVF standard requires).
    public static func isOva(_ device: any BlockDevice) -> Bool {
        guard device.size >= 1024, let h = try? device.read(at: 0, count: 512) else { return false }
        guard TarIndex.checksumMatches(h) else { return false }
        return TarIndex.string(h[0..<100]).lowercased().hasSuffix(".ovf")
    }

    public init(path: String, verifyManifest: Bool = true) throws {
        let archive = try FileBlockDevice(path: path)
        self.path = path
        index = try TarIndex(archive)
        guard let ovf = index.members.first(where: { $0.name.lowercased().hasSuffix(".ovf") }) else {
            throw WispError.corrupt(path, "OVA", "holds no .ovf descriptor")
        }
        guard ovf.size <= UInt64(OvfDescriptor.maxSize) else {
            throw WispError.corrupt(path, "OVF descriptor", "\(ovf.size) bytes")
        }
        descriptorName = ovf.name
        descriptor = try OvfDescriptor.parse(try archive.read(at: ovf.offset, count: Int(ovf.size)), name: "\(path): \(ovf.name)")
        if verifyManifest { try checkManifest(archive) }
    }

    /// Checks each `SHA256(name)= hex` / `SHA1(name)= hex` line of the .mf member.
    func checkManifest(_ archive: any BlockDevice) throws {
        guard let mf = index.members.first(where: { $0.name.lowercased().hasSuffix(".mf") }) else { return }
        guard mf.size <= 1 << 20 else { throw WispError.corrupt(path, "OVA manifest", "\(mf.size) bytes") }
        let text = String(decoding: try archive.read(at: mf.offset, count: Int(mf.size)), as: UTF8.self)
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }) where !line.isEmpty {
            guard let open = line.firstIndex(of: "("), let close = line.lastIndex(of: ")"), open < close,
                  let eq = line[close...].firstIndex(of: "=") else {
                throw WispError.corrupt(path, "OVA manifest", "line \"\(line.prefix(80))\" is not ALGO(file)= digest")
            }
            let algorithm = line[..<open].uppercased()
            let file = String(line[line.index(after: open)..<close])
            let expected = line[line.index(after: eq)...].trimmingWhitespace().lowercased()
            guard let member = index.member(file) else {
                throw WispError.corrupt(path, "OVA manifest", "lists \(file), which the archive does not hold")
            }
            let actual: String
            switch algorithm {
            case "SHA256": actual = SHA256.hex(try digest(member, archive, sha256: true))
            case "SHA1": actual = SHA256.hex(try digest(member, archive, sha256: false))
            default: throw WispError.unsupported(path, "OVA manifest digest \(algorithm) (Wisp checks SHA1 and SHA256)")
            }
            guard actual == expected else {
                throw WispError(.digestMismatch, "\(path): \(file) has \(algorithm) \(actual), the manifest says \(expected)")
            }
        }
    }

    func digest(_ member: TarIndex.Member, _ archive: any BlockDevice, sha256: Bool) throws -> [UInt8] {
        var s256 = SHA256()
        var s1 = SHA1()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var done: UInt64 = 0
        while done < member.size {
            let n = Int(min(UInt64(buffer.count), member.size - done))
            try buffer.withUnsafeMutableBytes { try archive.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), at: member.offset + done) }
            buffer.withUnsafeBytes { b in
                let part = UnsafeRawBufferPointer(rebasing: b[0..<n])
                if sha256 { s256.update(part) } else { s1.update(part) }
            }
            done += UInt64(n)
        }
        return sha256 ? s256.finalize() : s1.finalize()
    }

    /// The first disk, read from inside the archive: a stream-optimized (or any single-file
    /// sparse) VMDK, refusing anything that would name another file.
    public func openDisk(_ number: Int = 0) throws -> any BlockDevice {
        guard number < descriptor.disks.count else {
            throw WispError.notFound("\(path): the OVF descriptor has no disk \(number + 1)")
        }
        let disk = descriptor.disks[number]
        guard let member = index.member(disk.href) else {
            throw WispError.corrupt(path, "OVF File", "\(disk.href) is not in the archive")
        }
        let archive = try FileBlockDevice(path: path)
        let slice = try SliceBlockDevice(base: archive, start: member.offset, size: member.size, name: "\(path): \(disk.href)")
        switch try ImageFormat.probe(slice) {
        case .vmdk: return try VmdkImage(device: slice, name: slice.name)
        case .raw: return slice
        case let other: throw WispError.unsupported(path, "\(disk.href): \(other.rawValue) disks in an OVA are not supported")
        }
    }
}

extension OvaArchive {
    /// The first disk of the OVA at `path`, or nil when `path` is not an OVA (a tar whose
    /// first member is a .ovf). The disk may refer to no other file, whatever the policy.
    public static func openDiskIfOva(_ path: String) throws -> (any BlockDevice)? {
        guard let device = try? FileBlockDevice(path: path), isOva(device) else { return nil }
        return try OvaArchive(path: path).openDisk()
    }
}
