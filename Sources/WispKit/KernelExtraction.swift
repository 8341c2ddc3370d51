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
    /// Copies run in chunks of this size spread over all cores: decompressing qcow2
    /// clusters is the cost, and it parallelises.
    static let chunkSize: UInt64 = 4 << 20

    /// `unwrapZboot`: an EFI zboot kernel (arm64, riscv) is written as the Image inside it,
    /// which QEMU's -kernel loads directly whatever its compression.
    public static func extract(imagePath: String, to directory: String, entry: String? = nil,
                               unwrapZboot: Bool = false) throws -> ExtractedKernel {
        let inspector = try GuestInspector(disk: try DiskImageFile.open(imagePath))
        return try extract(from: inspector, to: directory, entry: entry, unwrapZboot: unwrapZboot)
    }

    /// The same from an image already open for inspection (`wisp run` reads more from it).
    public static func extract(from inspector: GuestInspector, to directory: String, entry: String? = nil,
                               unwrapZboot: Bool = false) throws -> ExtractedKernel {
        let plan = try inspector.bootPlan(entry: entry)
        let report = try inspector.inspect()
        let result = try write(plan: plan, from: inspector, to: directory, osRelease: report.osRelease)
        if unwrapZboot { try unwrapIfZboot(result.kernelPath) }
        return result
    }

    /// Replaces an EFI zboot file, or a gzip-compressed arm64 Image (Debian's vmlinuz),
    /// with the bare kernel image it wraps (atomically). Other kernels are left as they are.
    static func unwrapIfZboot(_ path: String) throws {
        let file = try FileBlockDevice(path: path)
        guard file.size >= 8, file.size <= fileLimit else { return }
        let head = try file.read(at: 0, count: 8)
        if head == [0x4d, 0x5a, 0, 0] + Array("zimg".utf8) {
            let bytes = try file.read(at: 0, count: Int(file.size))
            let (_, kernel) = try KernelImage.unwrapZboot(bytes, source: path)
            try writeAtomically(kernel, to: path)
        } else if head[0] == 0x1f && head[1] == 0x8b {
            let bytes = try file.read(at: 0, count: Int(file.size))
            let kernel = try KernelImage.gunzipArm64Image(bytes, source: path)
            if let kernel { try writeAtomically(kernel, to: path) }
        }
    }

    /// A run of bytes of a guest file that lands at `destination` in an output file.
    struct Segment {
        var guestPath: String
        var sourceOffset: UInt64
        var length: UInt64
        var destination: UInt64
    }

    struct OutputFile {
        var path: String
        var segments: [Segment]
        var size: UInt64
    }

    /// Writes the plan's files into `directory` (created if missing), each atomically.
    public static func write(plan: BootPlan, from inspector: GuestInspector, to directory: String,
                             osRelease: OSRelease?) throws -> ExtractedKernel {
        try DirectoryCreation.createDirectories(directory)
        var commandLine = plan.commandLine
        var kernelName = baseName(plan.kernelPath)
        var kernelSegments: [Segment] = []
        var initrdSources: [(name: String, segment: Segment)] = []
        if plan.unifiedKernelImage == true {
            let uki = try UnifiedKernelImage.open(inspector: inspector, path: plan.kernelPath)
            let uname = uki.sectionText(".uname", inspector: inspector)
            let stem = kernelName.lowercased().hasSuffix(".efi") ? String(kernelName.dropLast(4)) : kernelName
            kernelName = uname.map { "vmlinuz-\($0)" } ?? "\(stem).vmlinuz"
            guard let linux = uki.pe.section(named: ".linux") else {
                throw WispError.corrupt(plan.kernelPath, "unified kernel image", "has no .linux section")
            }
            kernelSegments = [Segment(guestPath: plan.kernelPath, sourceOffset: UInt64(linux.fileOffset),
                                      length: UInt64(linux.size), destination: 0)]
            if let initrd = uki.pe.section(named: ".initrd") {
                initrdSources.append((uname.map { "initrd-\($0).img" } ?? "\(stem).initrd",
                                      Segment(guestPath: plan.kernelPath, sourceOffset: UInt64(initrd.fileOffset),
                                              length: UInt64(initrd.size), destination: 0)))
            }
            if commandLine.isEmpty, let c = uki.sectionText(".cmdline", inspector: inspector) { commandLine = c }
        } else {
            kernelSegments = [Segment(guestPath: plan.kernelPath, sourceOffset: 0,
                                      length: try checkedSize(plan.kernelPath, inspector), destination: 0)]
            for path in plan.initrdPaths {
                initrdSources.append((baseName(path), Segment(guestPath: path, sourceOffset: 0,
                                                              length: try checkedSize(path, inspector), destination: 0)))
            }
        }
        var outputs = [OutputFile(path: directory + "/" + kernelName, segments: kernelSegments,
                                  size: kernelSegments[0].length)]
        var initrdPath: String?
        if initrdSources.count == 1 {
            initrdPath = directory + "/" + initrdSources[0].name
            outputs.append(OutputFile(path: directory + "/" + initrdSources[0].name, segments: [initrdSources[0].segment],
                                      size: initrdSources[0].segment.length))
        } else if initrdSources.count > 1 {
            // QEMU takes one -initrd; Linux unpacks concatenated (4-byte aligned) archives in
            // order, exactly as a boot loader loading several initrds lays them out.
            var segments: [Segment] = []
            var offset: UInt64 = 0
            for var source in initrdSources.map(\.segment) {
                source.destination = offset
                segments.append(source)
                offset = (offset + source.length + 3) & ~3
            }
            let path = directory + "/initrd-combined" + (plan.version.map { "-\($0)" } ?? "") + ".img"
            initrdPath = path
            outputs.append(OutputFile(path: path, segments: segments, size: offset))
        }
        try copy(outputs, from: inspector)
        let cmdlinePath = directory + "/cmdline"
        try writeAtomically(Array((commandLine + "\n").utf8), to: cmdlinePath)
        var finalPlan = plan
        finalPlan.commandLine = commandLine
        return ExtractedKernel(kernelPath: outputs[0].path, initrdPath: initrdPath, commandLine: commandLine,
                               commandLinePath: cmdlinePath, plan: finalPlan, osID: osRelease?.id,
                               osVersionID: osRelease?.versionID)
    }

    static func checkedSize(_ path: String, _ inspector: GuestInspector) throws -> UInt64 {
        let size = try inspector.guestFileSize(path)
        guard size <= fileLimit else {
            throw WispError.invalidArgument("\(path): \(size) bytes is more than the \(fileLimit)-byte limit for a kernel or initrd")
        }
        return size
    }

    /// Copies every output's segments in parallel chunks, then commits each output.
    static func copy(_ outputs: [OutputFile], from inspector: GuestInspector) throws {
        let files = try outputs.map { try AtomicOutput(path: $0.path) }
        var jobs: [(file: Int, guestPath: String, source: UInt64, destination: UInt64, length: Int)] = []
        for (i, output) in outputs.enumerated() {
            try files[i].file.truncate(to: output.size)
            for segment in output.segments {
                var done: UInt64 = 0
                while done < segment.length {
                    let n = min(chunkSize, segment.length - done)
                    jobs.append((i, segment.guestPath, segment.sourceOffset + done, segment.destination + done, Int(n)))
                    done += n
                }
            }
        }
        let failure = LockedValue<(any Error)?>(nil)
        let work = jobs
        DispatchQueue.concurrentPerform(iterations: work.count) { index in
            if failure.withLock({ $0 != nil }) { return }
            let job = work[index]
            do {
                let bytes = try inspector.readGuestFile(job.guestPath, offset: job.source, count: job.length)
                guard bytes.count == job.length else {
                    throw WispError.corrupt(job.guestPath, "guest file", at: job.source,
                                            "read \(bytes.count) bytes where \(job.length) were expected")
                }
                try bytes.withUnsafeBytes { try files[job.file].file.write($0, at: job.destination) }
            } catch {
                failure.withLock { if $0 == nil { $0 = error } }
            }
        }
        if let error = failure.withLock({ $0 }) {
            files.forEach { $0.discard() }
            throw error
        }
        for file in files { try file.commit() }
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
