#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WispCore

/// Chooses KVM or TCG. KVM is used when /dev/kvm opens read-write, unless this host is
/// remembered as one whose KVM cannot run stock kernels (paravirtual or nested hosts where
/// the guest shows no sign of life): that verdict is kept per host in the cache directory.
public struct AcceleratorProbe: Sendable {
    public var cacheDirectory: String
    public var devicePath: String

    public init(cacheDirectory: String, devicePath: String = "/dev/kvm") {
        self.cacheDirectory = cacheDirectory
        self.devicePath = devicePath
    }

    /// The host identity the verdict is remembered for: machine id and kernel release (a
    /// host reboot into another kernel, or another machine sharing $HOME, asks again).
    public static var hostKey: String {
        let machineID = (try? String(contentsOfFile: "/etc/machine-id", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
        var info = utsname()
        uname(&info)
        let release = withUnsafeBytes(of: &info.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        return "\(machineID)-\(release)".replacingOccurrences(of: "/", with: "_")
    }

    private var verdictFile: String { "\(cacheDirectory)/accel-\(Self.hostKey)" }

    public var kvmDeviceUsable: Bool {
        let fd = open(devicePath, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }

    /// The remembered verdict for this host, if any.
    public var remembered: Accelerator? {
        guard let text = try? String(contentsOfFile: verdictFile, encoding: .utf8) else { return nil }
        return Accelerator(rawValue: text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    public func remember(_ accelerator: Accelerator) {
        try? FileManager.default.createDirectory(atPath: cacheDirectory, withIntermediateDirectories: true)
        try? AtomicOutput.write(Array("\(accelerator.rawValue)\n".utf8), to: verdictFile)
    }

    /// What `--accel auto` starts with.
    public func choose() -> Accelerator {
        if let remembered { return remembered }
        return kvmDeviceUsable ? .kvm : .tcg
    }
}
