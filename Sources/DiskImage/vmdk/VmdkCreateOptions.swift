import WispCore

/// What a written VMDK looks like, in qemu-img's option names (`-o subformat=...,adapter_type=...`).
public struct VmdkCreateOptions: Sendable, Equatable {
    public enum Subformat: String, Sendable, CaseIterable {
        case monolithicSparse, streamOptimized
    }

    public enum AdapterType: String, Sendable, CaseIterable {
        case ide, lsilogic, buslogic, legacyESX
    }

    public var subformat: Subformat = .monolithicSparse
    public var adapterType: AdapterType = .ide
    /// ddb.virtualHWVersion; qemu-img's default is 4, `compat6` means 6.
    public var hardwareVersion: Int = 4

    public init(subformat: Subformat = .monolithicSparse, adapterType: AdapterType = .ide, hardwareVersion: Int = 4) {
        self.subformat = subformat
        self.adapterType = adapterType
        self.hardwareVersion = hardwareVersion
    }

    /// Parses qemu-img style `-o` options: `subformat=`, `adapter_type=`, `hwversion=`, `compat6`.
    public init(qemuOptions: [String]) throws {
        for option in qemuOptions.flatMap({ $0.split(separator: ",") }) {
            let parts = option.split(separator: "=", maxSplits: 1).map(String.init)
            let key = parts[0], value = parts.count > 1 ? parts[1] : nil
            switch (key, value) {
            case ("subformat", let v?):
                guard let s = Subformat(rawValue: v) else {
                    throw WispError.usage("vmdk subformat \"\(v)\": Wisp writes \(Subformat.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                subformat = s
            case ("adapter_type", let v?):
                guard let a = AdapterType(rawValue: v) else {
                    throw WispError.usage("vmdk adapter_type \"\(v)\": one of \(AdapterType.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                adapterType = a
            case ("hwversion", let v?):
                guard let n = Int(v), (4...21).contains(n) else {
                    throw WispError.usage("vmdk hwversion \"\(v)\": a virtual hardware version from 4 to 21")
                }
                hardwareVersion = n
            case ("compat6", nil), ("compat6", "on"):
                hardwareVersion = 6
            case ("compat6", "off"):
                break
            default:
                throw WispError.usage("vmdk option \"\(option)\": Wisp knows subformat=, adapter_type=, hwversion=, compat6")
            }
        }
    }

    /// The descriptor text for a single sparse extent named `fileName` of `sectors` sectors.
    func descriptor(fileName: String, sectors: UInt64, cid: UInt32) -> String {
        let heads: UInt64 = adapterType == .ide ? 16 : 255
        let cylinders = min(sectors / (heads * 63), 16383)
        return """
        # Disk DescriptorFile
        version=1
        CID=\(Self.hex8(cid))
        parentCID=ffffffff
        createType="\(subformat.rawValue)"

        # Extent description
        RW \(sectors) SPARSE "\(fileName)"

        # The Disk Data Base
        #DDB

        ddb.virtualHWVersion = "\(hardwareVersion)"
        ddb.geometry.cylinders = "\(cylinders)"
        ddb.geometry.heads = "\(heads)"
        ddb.geometry.sectors = "63"
        ddb.adapterType = "\(adapterType.rawValue)"

        """
    }
}

extension VmdkCreateOptions {
    static func hex8(_ value: UInt32) -> String {
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 8 - hex.count)) + hex
    }
}
