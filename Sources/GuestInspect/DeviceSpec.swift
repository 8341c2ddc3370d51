import WispCore

/// How a filesystem on the guest disk is named: by the guest (an /etc/fstab device field, a
/// GRUB `search`), or by the user (`wisp fs --partition`). Every spelling Wisp accepts is
/// parsed here and matched against a `GuestVolume` by `matches(_:)`, so the guest's
/// mounts, GRUB's `$root` and the command line all agree on what a name means.
public enum DeviceSpec: Sendable, Hashable, CustomStringConvertible {
    /// `UUID=`, `/dev/disk/by-uuid/`: the filesystem UUID (case-insensitive, as blkid).
    case fileSystemUUID(String)
    /// `LABEL=`, `/dev/disk/by-label/`: the filesystem label (exact).
    case fileSystemLabel(String)
    /// `PARTUUID=`, `/dev/disk/by-partuuid/`: the GPT unique partition GUID (case-insensitive).
    case partitionUUID(String)
    /// `PARTLABEL=`, `/dev/disk/by-partlabel/`: the GPT partition name (exact).
    case partitionLabel(String)
    /// `/dev/vda3`, `/dev/sda3`, `/dev/xvda3`, `/dev/nvme0n1p3`, `/dev/mmcblk0p3`, or a bare
    /// number: the partition with that Linux number (0: the whole disk, when it has no table).
    case partitionNumber(Int)
    /// A bare word given to `--partition`: a filesystem label or UUID, a PARTUUID or a
    /// PARTLABEL, whichever matches.
    case anyIdentifier(String)

    /// The four kinds of identifier, with the key fstab writes and the udev directory.
    enum Tag: CaseIterable {
        case uuid, label, partUUID, partLabel

        var key: String {
            switch self {
            case .uuid: return "UUID"
            case .label: return "LABEL"
            case .partUUID: return "PARTUUID"
            case .partLabel: return "PARTLABEL"
            }
        }

        var byPath: String { "/dev/disk/by-\(key.lowercased())/" }

        func spec(_ value: String) -> DeviceSpec {
            switch self {
            case .uuid: return .fileSystemUUID(value)
            case .label: return .fileSystemLabel(value)
            case .partUUID: return .partitionUUID(value)
            case .partLabel: return .partitionLabel(value)
            }
        }
    }

    /// The device an fstab device field names, or nil for sources that are no partition of
    /// this disk (`tmpfs`, `server:/export`, `/dev/mapper/...`, a second disk's `/dev/vdb1`).
    /// Octal escapes were undone by `FstabEntry.parse`; values may be double-quoted.
    public init?(fstab field: String) {
        guard let spec = Self.parseNamed(field) else { return nil }
        self = spec
    }

    /// A `--partition` value: every form fstab uses, a bare partition number, or a bare
    /// label, UUID, PARTUUID or PARTLABEL. `KEY=` prefixes are case-insensitive here.
    public init(selector text: String) throws {
        let usage = "--partition takes a partition number, a filesystem label or UUID, a PARTUUID or a PARTLABEL (optionally as LABEL=, UUID=, PARTUUID=, PARTLABEL=), /dev/disk/by-{uuid,label,partuuid,partlabel}/NAME or /dev/vdaN (sdaN, xvdaN, nvme0n1pN, mmcblk0pN)"
        guard !text.isEmpty else { throw WispError.usage("an empty name selects nothing; \(usage)") }
        if let equals = text.firstIndex(of: "="), let tag = Tag.allCases.first(where: { $0.key == text[..<equals].uppercased() }) {
            let value = Self.unquote(String(text[text.index(after: equals)...]))
            guard !value.isEmpty else { throw WispError.usage("\"\(text)\" names nothing; \(usage)") }
            self = tag.spec(value)
            return
        }
        if text.hasPrefix("/dev/") {
            guard let spec = Self.parseNamed(text) else {
                throw WispError.usage("\"\(text)\" is not a partition of the first disk; \(usage)")
            }
            self = spec
            return
        }
        if let number = Int(text), number >= 0 {
            self = .partitionNumber(number)
            return
        }
        self = .anyIdentifier(text)
    }

    /// The filesystem GRUB's `$root` names (`search --fs-uuid`, `--label`, `(hd0,gptN)`);
    /// nil for `search --file`, which names a file rather than a device.
    public init?(grub device: GrubDevice) {
        switch device {
        case .fsUUID(let uuid): self = .fileSystemUUID(uuid)
        case .fsLabel(let label): self = .fileSystemLabel(label)
        case .partition(let number): self = .partitionNumber(number)
        case .file, .unknown: return nil
        }
    }

    /// Whether `volume` is the one this names.
    public func matches(_ volume: GuestVolume) -> Bool {
        func same(_ a: String?, _ b: String) -> Bool { a?.lowercased() == b.lowercased() }
        switch self {
        case .fileSystemUUID(let uuid): return same(volume.fileSystem?.uuid, uuid)
        case .fileSystemLabel(let label): return volume.fileSystem?.label == label
        case .partitionUUID(let uuid): return same(volume.partition.uniqueGUID, uuid)
        case .partitionLabel(let label): return volume.partition.name == label
        case .partitionNumber(let number): return volume.partition.number == number
        case .anyIdentifier(let text):
            return volume.fileSystem?.label == text || same(volume.fileSystem?.uuid, text)
                || same(volume.partition.uniqueGUID, text) || volume.partition.name == text
        }
    }

    /// The spelling fstab would use.
    public var description: String {
        switch self {
        case .fileSystemUUID(let v): return "UUID=\(v)"
        case .fileSystemLabel(let v): return "LABEL=\(v)"
        case .partitionUUID(let v): return "PARTUUID=\(v)"
        case .partitionLabel(let v): return "PARTLABEL=\(v)"
        case .partitionNumber(let n): return String(n)
        case .anyIdentifier(let v): return v
        }
    }

    // MARK: parsing

    /// `KEY=value` (keys as fstab writes them), `/dev/disk/by-*/value` or a device name.
    static func parseNamed(_ field: String) -> DeviceSpec? {
        for tag in Tag.allCases where field.hasPrefix(tag.key + "=") {
            let value = unquote(String(field.dropFirst(tag.key.count + 1)))
            return value.isEmpty ? nil : tag.spec(value)
        }
        for tag in Tag.allCases where field.hasPrefix(tag.byPath) {
            let value = udevUnescape(String(field.dropFirst(tag.byPath.count)))
            return value.isEmpty || value.contains("/") ? nil : tag.spec(value)
        }
        guard field.hasPrefix("/dev/") else { return nil }
        return partitionOfFirstDisk(String(field.dropFirst("/dev/".count))).map(DeviceSpec.partitionNumber)
    }

    /// The partition number a kernel name gives on the first disk (vda, sda, xvda, hda,
    /// nvme0n1, mmcblk0): "vda3" → 3, "nvme0n1p2" → 2, "vda" → 0 (the whole disk). Another
    /// disk (vdb1, nvme1n1p1) is not this one.
    static func partitionOfFirstDisk(_ name: String) -> Int? {
        func number(_ digits: Substring) -> Int? {
            guard !digits.isEmpty, digits.count <= 6, digits.allSatisfy(\.isASCIIDigit) else { return nil }
            return Int(digits)
        }
        for disk in ["vda", "sda", "xvda", "hda"] where name.hasPrefix(disk) {
            let rest = name.dropFirst(disk.count)
            return rest.isEmpty ? 0 : number(rest)
        }
        // Names ending in a digit put "p" before the partition number.
        for disk in ["nvme0n1", "mmcblk0"] where name.hasPrefix(disk) {
            let rest = name.dropFirst(disk.count)
            if rest.isEmpty { return 0 }
            return rest.first == "p" ? number(rest.dropFirst()) : nil
        }
        return nil
    }

    static func unquote(_ value: String) -> String {
        guard value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") else { return value }
        return String(value.dropFirst().dropLast())
    }

    /// udev writes unsafe bytes of labels in /dev/disk/by-label names as `\xHH`.
    static func udevUnescape(_ s: String) -> String {
        guard s.contains("\\x") else { return s }
        let bytes = Array(s.utf8)
        var out: [UInt8] = []
        var i = 0
        func hex(_ b: UInt8) -> UInt8? {
            switch b {
            case 48...57: return b - 48
            case 65...70: return b - 55
            case 97...102: return b - 87
            default: return nil
            }
        }
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\"), i + 3 < bytes.count, bytes[i + 1] == UInt8(ascii: "x"),
               let high = hex(bytes[i + 2]), let low = hex(bytes[i + 3]) {
                out.append(high << 4 | low)
                i += 4
                continue
            }
            out.append(bytes[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
