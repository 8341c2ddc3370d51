import WispCore

/// What a VHD, VHDX or VDI image's headers say about it, read without opening it: what
/// `wisp image info` shows and what the chain resolver needs to find a differencing
/// image's parent.
public struct BlockMappedHeader: Sendable, Equatable {
    public var format: ImageFormat
    /// VHD: fixed, dynamic, differencing. VHDX: fixed, dynamic, differencing. VDI: static,
    /// dynamic, differencing.
    public var subformat: String
    public var virtualSize: UInt64
    public var blockSize: UInt64
    /// Blocks stored in the file (fully or partly present).
    public var allocatedBlocks: Int
    /// VHDX only.
    public var logicalSectorSize: UInt32?
    public var physicalSectorSize: UInt32?
    /// VHD: the footer's unique id. VHDX: the header's DataWriteGuid (what a child's
    /// parent_linkage must equal). VDI: the image's UUID.
    public var uuid: String?
    /// VHD: the dynamic header's parent unique id. VHDX: parent_linkage. VDI: the parent's
    /// UUID (VDI records no parent file name). Nil unless the image is differencing.
    public var parentUUID: String?
    /// Where a differencing image's parent may be, in the order the format says to try.
    public var parentLocators: [ParentLocator] = []

    public var isDifferencing: Bool { subformat == "differencing" }

    /// One recorded parent name: VHD platform code (W2ru, W2ku, MacX, or "parent name" for
    /// the header's Unicode name) or VHDX key (relative_path, absolute_win32_path, ...).
    public struct ParentLocator: Sendable, Equatable {
        public var key: String
        public var path: String

        /// The name as a path on this machine, or nil when it cannot be one (a Windows
        /// drive letter or volume path): backslashes become slashes, ".\" is dropped, a
        /// MacX "file://host" URL becomes its path.
        public var localPath: String? {
            var p = path.replacingAll("\\", with: "/")
            if p.hasPrefix("file://") {
                p.removeFirst(7)
                guard let slash = p.firstIndex(of: "/") else { return nil }
                p = String(p[slash...])
            }
            if p.hasPrefix("//") || p.hasPrefix("/?/") { return nil }  // UNC, \\?\Volume{...}
            let chars = Array(p)
            if chars.count >= 2, chars[0].isLetter, chars[1] == ":" { return nil }
            while p.hasPrefix("./") { p.removeFirst(2) }
            return p.isEmpty ? nil : p
        }
    }

    /// The field name messages use for a locator ("VHD parent locator W2ru").
    func field(of locator: ParentLocator) -> String {
        format == .vhdx ? "VHDX parent locator \(locator.key)" : "VHD parent locator \(locator.key)"
    }
}

extension String {
    /// Every `target` replaced (Foundation-free, so the module keeps its imports small).
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
