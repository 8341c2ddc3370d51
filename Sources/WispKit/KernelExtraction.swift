import DiskImage
import Foundation
import GuestInspect
import WispCore

/// What `wisp kernel extract` wrote: host paths of the kernel, initrd and command line.
public struct ExtractedKernel: Codable, Sendable {
    public var kernelPath: String
    public var initrdPath: String?
    public var commandLine: String
    public var commandLinePath: String
    public var plan: BootPlan
    public var osID: String?
    public var osVersionID: String?
}

/// Copies the kernel, initrd and command line the guest's boot loader would use out of a
/// disk image (virt-get-kernel, but with the command line and the boot loader's own choice).
public enum KernelExtraction {
    /// Kernels and initrds larger than this are refused (real ones are < 200 MiB).
    public static let fileLimit: UInt64 = 512 << 20

    public static func extract(imagePath: String, to directory: String, entry: String? = nil) throws -> ExtractedKernel {
        let disk = try DiskImageFile.open(imagePath)
        let inspector = try GuestInspector(disk: disk)
        let plan = try inspector.bootPlan(entry: entry)
        let report = try inspector.inspect()
        return try write(plan: plan, from: inspector, to: directory, osRelease: report.osRelease)
    }

    /// Writes the plan's files into `directory` (created if missing), each atomically.
    public static func write(plan: BootPlan, from inspector: GuestInspector, to directory: String,
                             osRelease: OSRelease?) throws -> ExtractedKernel {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var kernelBytes: [UInt8]
        var initrdParts: [(name: String, bytes: [UInt8])] = []
        var commandLine = plan.commandLine
        var kernelName = baseName(plan.kernelPath)
        if plan.unifiedKernelImage == true {
            let uki = try UnifiedKernelImage.open(inspector: inspector, path: plan.kernelPath)
            let uname = uki.sectionText(".uname", inspector: inspector)
            let stem = kernelName.lowercased().hasSuffix(".efi") ? String(kernelName.dropLast(4)) : kernelName
            kernelName = uname.map { "vmlinuz-\($0)" } ?? "\(stem).vmlinuz"
            kernelBytes = try uki.sectionBytes(".linux", inspector: inspector, limit: Int(fileLimit))
            if uki.pe.section(named: ".initrd") != nil {
                initrdParts.append((uname.map { "initrd-\($0).img" } ?? "\(stem).initrd",
                                    try uki.sectionBytes(".initrd", inspector: inspector, limit: Int(fileLimit))))
            }
            if commandLine.isEmpty, let c = uki.sectionText(".cmdline", inspector: inspector) { commandLine = c }
        } else {
            kernelBytes = try inspector.readGuestFile(plan.kernelPath, limit: fileLimit)
            for path in plan.initrdPaths {
                initrdParts.append((baseName(path), try inspector.readGuestFile(path, limit: fileLimit)))
            }
        }
        let kernelPath = directory + "/" + kernelName
        try writeAtomically(kernelBytes, to: kernelPath)
        kernelBytes = []
        var initrdPath: String?
        if initrdParts.count == 1 {
            let path = directory + "/" + initrdParts[0].name
            try writeAtomically(initrdParts[0].bytes, to: path)
            initrdPath = path
        } else if initrdParts.count > 1 {
            // QEMU takes one -initrd; Linux unpacks concatenated (4-byte aligned) archives in
            // order, exactly as a boot loader loading several initrds lays them out.
            var combined: [UInt8] = []
            for part in initrdParts {
                combined += part.bytes
                while combined.count % 4 != 0 { combined.append(0) }
            }
            let path = directory + "/initrd-combined" + (plan.version.map { "-\($0)" } ?? "") + ".img"
            try writeAtomically(combined, to: path)
            initrdPath = path
        }
        let cmdlinePath = directory + "/cmdline"
        try writeAtomically(Array((commandLine + "\n").utf8), to: cmdlinePath)
        var finalPlan = plan
        finalPlan.commandLine = commandLine
        return ExtractedKernel(kernelPath: kernelPath, initrdPath: initrdPath, commandLine: commandLine,
                               commandLinePath: cmdlinePath, plan: finalPlan, osID: osRelease?.id,
                               osVersionID: osRelease?.versionID)
    }

    static func baseName(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }

    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let output = try AtomicOutput(path: path)
        do {
            try bytes.withUnsafeBytes { try output.file.write($0, at: 0) }
            try output.commit()
        } catch {
            output.discard()
            throw error
        }
    }
}
