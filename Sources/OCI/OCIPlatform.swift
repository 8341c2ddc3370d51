#if canImport(Glibc)
import Glibc
#endif
import WispCore

/// `os/architecture[/variant]` as the image spec names platforms (GOOS/GOARCH spelling).
public struct OCIPlatform: Sendable, Hashable, Codable, CustomStringConvertible {
    public var os: String
    public var architecture: String
    public var variant: String?

    enum CodingKeys: String, CodingKey {
        case os, architecture, variant
    }

    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant?.isEmpty == true ? nil : variant
    }

    /// Parses `os/arch[/variant]` (a usage error otherwise).
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (2...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty }) else {
            throw WispError.invalidArgument("platform \(text): expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8")
        }
        self.init(os: parts[0], architecture: parts[1], variant: parts.count == 3 ? parts[2] : nil)
    }

    public var description: String {
        "\(os)/\(architecture)" + (variant.map { "/\($0)" } ?? "")
    }

    /// The machine Wisp runs on, in GOARCH spelling (uname's x86_64 is amd64, aarch64 arm64).
    public static var host: OCIPlatform {
        var name = utsname()
        _ = uname(&name)
        let machine = withUnsafeBytes(of: &name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        switch machine {
        case "x86_64": return OCIPlatform(os: "linux", architecture: "amd64")
        case "aarch64", "arm64": return OCIPlatform(os: "linux", architecture: "arm64")
        case "armv7l": return OCIPlatform(os: "linux", architecture: "arm", variant: "v7")
        case "armv6l": return OCIPlatform(os: "linux", architecture: "arm", variant: "v6")
        case "i386", "i686": return OCIPlatform(os: "linux", architecture: "386")
        case "ppc64le": return OCIPlatform(os: "linux", architecture: "ppc64le")
        case "s390x": return OCIPlatform(os: "linux", architecture: "s390x")
        case "riscv64": return OCIPlatform(os: "linux", architecture: "riscv64")
        default: return OCIPlatform(os: "linux", architecture: machine)
        }
    }

    /// True when an image built for `candidate` runs as `self` asks: os and architecture
    /// equal; the variant too when `self` names one (arm64's default variant is v8).
    public func accepts(_ candidate: OCIPlatform) -> Bool {
        guard os == candidate.os, architecture == candidate.architecture else { return false }
        guard let wanted = variant else { return true }
        let normalise = { (v: String?) -> String? in architecture == "arm64" && v == nil ? "v8" : v }
        return normalise(wanted) == normalise(candidate.variant)
    }
}
