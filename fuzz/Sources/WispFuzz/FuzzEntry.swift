#if canImport(Glibc)
import Glibc
#endif
import WispCore

/// The libFuzzer entry points. libFuzzer's own `main` calls `LLVMFuzzerInitialize` once
/// with its arguments, then `LLVMFuzzerTestOneInput` for every input.
enum FuzzEntry {
    nonisolated(unsafe) static var target: FuzzTarget?

    /// A parser may refuse input, but only with a `WispError`: anything else (a Foundation
    /// or decoding error) would reach the user as raw runtime text, so it stops the fuzzer
    /// like a crash does, with the error printed.
    static func expectTyped(_ error: any Error, target: String) {
        if error is WispError { return }
        let text = "wisp-fuzz \(target): untyped error escaped a parser: \(type(of: error)): \(error)\n"
        reportToStderr(text)
        abort()
    }
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    let wanted = getenv("WISP_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    if wanted == "list" {
        // Padded to the longest name, never cut: scripts/fuzz takes the first word of each
        // line as the target's name (a 14-column pad once cut "directory-listing").
        let width = FuzzTargets.all.map(\.name.count).max() ?? 0
        for target in FuzzTargets.all {
            print(target.name + String(repeating: " ", count: width - target.name.count + 1) + target.summary)
        }
        exit(0)
    }
    guard let target = FuzzTargets.named(wanted) else {
        reportToStderr("wisp-fuzz: set WISP_FUZZ_TARGET to one of: \(FuzzTargets.all.map(\.name).joined(separator: " ")) (or list)\n")
        exit(2)
    }
    FuzzEntry.target = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let target = FuzzEntry.target else { return 0 }
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    do {
        try target.run(bytes)
    } catch {
        FuzzEntry.expectTyped(error, target: target.name)
    }
    return 0
}

/// Writes `text` to standard error (Glibc's `stderr` is a global var Swift 6 rejects).
func reportToStderr(_ text: String) {
    var bytes = Array(text.utf8)
    bytes.withUnsafeMutableBytes { raw in
        var done = 0
        while done < raw.count {
            let n = write(2, raw.baseAddress! + done, raw.count - done)
            if n <= 0 { return }
            done += n
        }
    }
}
