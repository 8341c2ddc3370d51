import Foundation
import WispCore

/// An SMBIOS type 11 ("OEM Strings") structure, as QEMU's `-smbios file=` loads it. systemd
/// reads `io.systemd.credential:` and `io.systemd.credential.binary:` strings from it
/// (smbios-type-11(7)), which is how Wisp hands credentials to a guest booted with its
/// firmware's SMBIOS visible.
public struct SMBIOSOEMStringsTable: Sendable, Equatable {
    public var strings: [String]
    /// The structure handle; distinct from the type 1 table's 0x0100.
    public var handle: UInt16

    public init(strings: [String], handle: UInt16 = 0x0B00) {
        self.strings = strings
        self.handle = handle
    }

    /// The string for one credential: binary form, so any value (keys, tmpfiles lines with
    /// newlines) survives SMBIOS's NUL-terminated strings.
    public static func credentialString(name: String, value: [UInt8]) throws -> String {
        try SystemdCredential.validate(name: name)
        return "io.systemd.credential.binary:\(name)=\(Data(value).base64EncodedString())"
    }

    public func encoded() throws -> [UInt8] {
        // The count is one byte and every string needs a number: at most 255 strings.
        guard !strings.isEmpty, strings.count <= 255 else {
            throw WispError.invalidArgument("an SMBIOS OEM strings table holds 1 to 255 strings, not \(strings.count)")
        }
        var table: [UInt8] = [11, 5, UInt8(handle & 0xFF), UInt8(handle >> 8), UInt8(strings.count)]
        for s in strings {
            guard !s.isEmpty, !s.utf8.contains(0) else {
                throw WispError.invalidArgument("an SMBIOS OEM string may be neither empty nor contain a NUL byte")
            }
            table += Array(s.utf8) + [0]
        }
        table.append(0)
        return table
    }
}
