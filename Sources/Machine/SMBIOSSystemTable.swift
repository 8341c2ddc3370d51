import WispCore

/// An SMBIOS type 1 ("System Information") structure, as QEMU's `-smbios file=` loads it.
///
/// The serial number of this table is how NoCloud learns `ds=nocloud;s=URL` when the guest's
/// kernel command line is not Wisp's to write (UEFI boot), and how it learns the seed URL
/// at all for NoCloud-net: that URL carries the metadata listener's token, so it must not
/// appear in QEMU's argv, which every local user can read in /proc. QEMU reads the table
/// from an owner-only file in the instance directory instead, and builds no type 1 table
/// of its own when one is supplied.
public struct SMBIOSSystemTable: Sendable, Equatable {
    public var manufacturer: String
    public var productName: String
    public var serialNumber: String
    /// The system UUID (SMBIOS byte order is handled here): systemd may derive the
    /// machine id from it in a VM, so it is stable per instance and never all zeros.
    public var uuid: [UInt8]

    public init(manufacturer: String = "QEMU", productName: String = "Wisp VM", serialNumber: String, uuid: [UInt8]) {
        self.manufacturer = manufacturer
        self.productName = productName
        self.serialNumber = serialNumber
        self.uuid = uuid
    }

    /// SMBIOS strings are NUL-terminated and at most 64 bytes in many readers; a longer
    /// serial (a seed URL with a token is about 70 bytes) is still valid per the standard
    /// and is read whole by Linux's dmi code, which has no length limit on strings.
    public func encoded() throws -> [UInt8] {
        guard uuid.count == 16 else { throw WispError.invalidArgument("SMBIOS system UUID must be 16 bytes, not \(uuid.count)") }
        // String numbers are 1-based in the order the strings follow the formatted area; 0
        // means "no string" (an empty one is not stored).
        var stored: [String] = []
        func number(_ s: String) throws -> UInt8 {
            guard !s.utf8.contains(0) else { throw WispError.invalidArgument("SMBIOS string \"\(s)\" contains a NUL byte") }
            guard !s.isEmpty else { return 0 }
            stored.append(s)
            return UInt8(stored.count)
        }
        // Formatted area: 27 bytes (SMBIOS 2.4+ type 1). Version is left empty.
        var table: [UInt8] = [1, 27, 0x00, 0x01]   // type, length, handle 0x0100
        table += [try number(manufacturer), try number(productName), 0, try number(serialNumber)]
        // The UUID's first three fields are little-endian in SMBIOS 2.6+ (as Linux reads them).
        table += [uuid[3], uuid[2], uuid[1], uuid[0], uuid[5], uuid[4], uuid[7], uuid[6]] + uuid[8..<16]
        table += [6, 0, 0]                          // wake-up: power switch; no SKU, no family
        for s in stored { table += Array(s.utf8) + [0] }
        // The string set ends with a second NUL (two when there are no strings at all).
        if stored.isEmpty { table.append(0) }
        table.append(0)
        return table
    }
}
