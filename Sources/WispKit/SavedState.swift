#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OCI
import WispCore

/// What Wisp records beside a suspended guest's state file (`suspend.json`): enough to
/// refuse a state that QEMU would misread or that is not what was written. QEMU's migration
/// stream is only loadable by the same QEMU version and machine type; the size and SHA-256
/// catch truncation and any other change.
public struct SavedState: Sendable, Codable, Equatable {
    public static let currentFormatVersion = 1
    public var formatVersion: Int
    /// QEMU's version as its QMP greeting gave it ("7.2.19").
    public var qemuVersion: String
    /// The board's `-machine` argument (its alias resolves to one versioned machine type
    /// per QEMU version).
    public var machine: String
    public var architecture: String
    public var accelerator: String
    public var cpus: Int
    public var memoryBytes: UInt64
    public var size: UInt64
    /// Lowercase hex SHA-256 of the state file.
    public var sha256: String
    public var savedAt: Date

    public init(qemuVersion: String, machine: String, architecture: String, accelerator: String, cpus: Int,
                memoryBytes: UInt64, size: UInt64, sha256: String, savedAt: Date = Date()) {
        self.formatVersion = Self.currentFormatVersion
        self.qemuVersion = qemuVersion
        self.machine = machine
        self.architecture = architecture
        self.accelerator = accelerator
        self.cpus = cpus
        self.memoryBytes = memoryBytes
        self.size = size
        self.sha256 = sha256
        self.savedAt = savedAt
    }

    /// Why a saved state is not used: each ends in a cold boot, and the disk is kept.
    public enum Unusable: Error, Sendable, Equatable, CustomStringConvertible {
        case missing(String)
        case unreadableDescription(String)
        case unknownFormat(Int)
        case truncated(expected: UInt64, actual: UInt64)
        case otherMachine(saved: String, now: String)
        case otherQEMU(saved: String, now: String)
        case checksumMismatch
        case notReadOnly
        case refusedByQEMU(String)

        public var description: String {
            switch self {
            case .missing(let path): "the state file \(path) is missing"
            case .unreadableDescription(let why): "its description is unreadable (\(why))"
            case .unknownFormat(let v): "its description has format version \(v), newer than this wisp reads"
            case .truncated(let expected, let actual): "the state file has \(actual) bytes, \(expected) were saved (truncated)"
            case .otherMachine(let saved, let now): "it was saved for \(saved), this instance is now \(now)"
            case .otherQEMU(let saved, let now): "it was saved by QEMU \(saved), this host runs QEMU \(now)"
            case .checksumMismatch: "the state file's SHA-256 is not the one recorded when it was saved (corrupted)"
            case .notReadOnly: "the state file is writable (it is made read-only when saved): it may have been changed"
            case .refusedByQEMU(let why): "QEMU could not load it (\(why))"
            }
        }
    }

    /// The machine facts a state must match, as one comparable line.
    var shape: String { "\(architecture) \(machine) \(accelerator) \(cpus) CPUs \(ByteSize.format(memoryBytes))" }

    static func shape(architecture: String, machine: String, accelerator: String, cpus: Int, memoryBytes: UInt64) -> String {
        "\(architecture) \(machine) \(accelerator) \(cpus) CPUs \(ByteSize.format(memoryBytes))"
    }

    /// Reads the description and checks everything that needs no QEMU and no full read:
    /// present, format, the file's size and mode, the machine shape.
    public static func check(statePath: String, descriptionPath: String, expectedShape: String) -> Result<SavedState, Unusable> {
        guard let data = FileManager.default.contents(atPath: descriptionPath) else {
            return .failure(.unreadableDescription("\(descriptionPath) cannot be read"))
        }
        let saved: SavedState
        do {
            saved = try decoder.decode(SavedState.self, from: data)
        } catch let error as WispError where error.kind == .unsupported {
            return .failure(.unknownFormat(formatVersion(in: data)))
        } catch {
            return .failure(.unreadableDescription("not a valid \(descriptionPath): \(InstanceStore.describe(error))"))
        }
        var info = stat()
        guard lstat(statePath, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return .failure(.missing(statePath)) }
        guard UInt64(info.st_size) == saved.size else { return .failure(.truncated(expected: saved.size, actual: UInt64(info.st_size))) }
        guard info.st_mode & 0o222 == 0 else { return .failure(.notReadOnly) }
        guard saved.shape == expectedShape else { return .failure(.otherMachine(saved: saved.shape, now: expectedShape)) }
        return .success(saved)
    }

    /// The check only a running QEMU can answer (its greeting's version).
    public func check(runningQEMU version: String) -> Unusable? {
        version == qemuVersion ? nil : .otherQEMU(saved: qemuVersion, now: version)
    }

    /// Reads the whole file and compares its SHA-256 with the recorded one.
    public func verifyChecksum(of statePath: String) -> Unusable? {
        guard let digest = try? Self.sha256(of: statePath) else { return .missing(statePath) }
        return digest == sha256 ? nil : .checksumMismatch
    }

    /// libcrypto's SHA-256 of a file, read in 4 MiB pieces (a state is hundreds of MB:
    /// WispCore's portable SHA256 would take seconds).
    public static func sha256(of path: String) throws -> String {
        let file = try PosixFile(path: path, mode: .readOnly)
        defer { file.close() }
        let digester = SHA256Digester()
        try file.forEachPiece(upTo: try file.size(), pieceSize: 4 << 20) { digester.update($0) }
        return digester.finalize().hex
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        formatVersion = try c.decode(Int.self, forKey: .formatVersion)
        guard formatVersion <= Self.currentFormatVersion else {
            throw WispError(.unsupported, "saved state description format version \(formatVersion)")
        }
        qemuVersion = try c.decode(String.self, forKey: .qemuVersion)
        machine = try c.decode(String.self, forKey: .machine)
        architecture = try c.decode(String.self, forKey: .architecture)
        accelerator = try c.decode(String.self, forKey: .accelerator)
        cpus = try c.decode(Int.self, forKey: .cpus)
        memoryBytes = try c.decode(UInt64.self, forKey: .memoryBytes)
        size = try c.decode(UInt64.self, forKey: .size)
        sha256 = try c.decode(String.self, forKey: .sha256)
        savedAt = try c.decode(Date.self, forKey: .savedAt)
    }

    static func formatVersion(in data: Data) -> Int {
        ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any])?["formatVersion"] as? Int ?? 0
    }

    public func encoded() throws -> [UInt8] { Array(try InstanceStore.encoder.encode(self)) }

    static var decoder: JSONDecoder { InstanceStore.decoder }
}
