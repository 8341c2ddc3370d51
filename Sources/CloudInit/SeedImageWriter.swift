import Foundation
import FileSystems
import WispCore
import Yams

/// The filesystem a seed disk carries: ISO 9660 (volume id `cidata`, as cloud-localds
/// makes) or FAT (label `CIDATA`). cloud-init's NoCloud finds either by its label.
public enum SeedImageFormat: String, Sendable, CaseIterable, Codable {
    case iso, vfat
}

/// Writes a `NoCloudSeed` as a seed disk image: validated first, written atomically, mode 0600
/// (a seed may hold password hashes and host private keys).
public enum SeedImageWriter {
    public static func write(_ seed: NoCloudSeed, format: SeedImageFormat, to path: String) throws {
        try write(seed, format: format, to: path, timestamp: defaultTimestamp())
    }

    /// `timestamp` fixes every date in the image, so equal inputs give equal bytes.
    /// `issues` are the result of `validate(seed)` when the caller already has them.
    public static func write(_ seed: NoCloudSeed, format: SeedImageFormat, to path: String, timestamp: Int64,
                             issues known: [ValidationIssue]? = nil) throws {
        let issues = known ?? validate(seed)
        if issues.hasErrors {
            throw WispError.invalidArgument("\(path): not writing a seed with invalid data: "
                + issues.filter { $0.severity == .error }.map(\.description).joined(separator: "; "))
        }
        let tree = Self.tree(seed)
        switch format {
        case .iso:
            try ISO9660Writer(volumeID: "cidata", timestamp: timestamp).write(tree, to: path, permissions: 0o600)
        case .vfat:
            try FATWriter(label: "CIDATA", timestamp: timestamp).write(tree, to: path, permissions: 0o600)
        }
    }

    /// Problems that would make cloud-init ignore or misread the seed; errors stop a write.
    public static func validate(_ seed: NoCloudSeed) -> [ValidationIssue] {
        var issues = UserDataValidator(fileName: "user-data").validate(seed.userData)
        if let vendor = seed.vendorData {
            issues += UserDataValidator(fileName: "vendor-data").validate(vendor).map { var i = $0; i.part = i.part ?? "vendor-data"; return i }
        }
        issues += mappingIssues(seed.metaData, name: "meta-data", allowEmpty: false)
        if let network = seed.networkConfig {
            issues += mappingIssues(network, name: "network-config", allowEmpty: false)
        }
        return issues
    }

    static func mappingIssues(_ bytes: [UInt8], name: String, allowEmpty: Bool) -> [ValidationIssue] {
        guard bytes.count <= UserDataValidator.maximumSize else {
            return [ValidationIssue(severity: .error, path: "", message: "\(name) is \(bytes.count) bytes; at most \(UserDataValidator.maximumSize) are accepted", part: name)]
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return [ValidationIssue(severity: .error, path: "", message: "\(name) is not valid UTF-8", part: name)]
        }
        if let excess = YAMLPreflight.excess(in: text) {
            return [ValidationIssue(severity: .error, path: "format-l\(excess.line).c\(excess.column)", message: "\(name) \(excess.sentence)",
                                    line: excess.line, column: excess.column, part: name)]
        }
        do {
            guard let node = try Yams.compose(yaml: text, Resolver.basic) else {
                return allowEmpty ? [] : [ValidationIssue(severity: .error, path: "", message: "\(name) is empty; it must be a YAML mapping", part: name)]
            }
            guard case .mapping = node else {
                return [ValidationIssue(severity: .error, path: "", message: "\(name) is not a YAML mapping", part: name)]
            }
            return []
        } catch let error as YamlError {
            let (line, column, problem) = UserDataValidator.describe(error)
            return [ValidationIssue(severity: .error, path: "format-l\(line).c\(column)", message: "\(name) is not valid yaml. \(problem)", line: line, column: column, part: name)]
        } catch {
            return [ValidationIssue(severity: .error, path: "", message: "\(name) is not valid yaml: \(error)", part: name)]
        }
    }

    /// The seed's files at the image root.
    public static func tree(_ seed: NoCloudSeed) -> WriterTree {
        WriterTree(seed.files.map { WriterTree.Entry.file($0.name, $0.contents, permissions: 0o600) })
    }

    /// SOURCE_DATE_EPOCH when set (reproducible builds), else now.
    public static func defaultTimestamp() -> Int64 {
        if let text = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"], let value = Int64(text) { return value }
        return Int64(Date().timeIntervalSince1970)
    }
}
