#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WispCore

/// The progress line on stderr: rewritten in place on a terminal, one line per change
/// otherwise (so CI logs show the phases without a flood).
enum RunProgress {
    static let isTerminal = isatty(STDERR_FILENO) == 1

    static let report: @Sendable (String) -> Void = { line in
        endTransfers()
        if isTerminal {
            FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
        } else {
            // Counters (elapsed seconds, bytes pulled or downloaded) change constantly; a
            // line that differs from the last one only in its numbers is the same phase.
            let key = String(line.unicodeScalars.filter { !("0"..."9").contains($0) && $0 != "." })
            if lastKey.withLock({ old in defer { old = key }; return old != key }) {
                FileHandle.standardError.write(Data("\(line)\n".utf8))
            }
        }
    }

    /// Downloads and pulls: one meter per label (a bar on a terminal, else a line per tenth
    /// or 10 s), ended by the next phase's line.
    static let transfer: @Sendable (String, UInt64, UInt64?) -> Void = { label, done, total in
        let meter = meters.withLock { meters in
            if let meter = meters[label] { return meter }
            let meter = ProgressMeter(label, style: isTerminal ? .bar : .lines)
            meters[label] = meter
            return meter
        }
        meter.update(done, total)
    }

    static func endTransfers() {
        for meter in meters.withLock({ meters in defer { meters = [:] }; return Array(meters.values) }) {
            meter.finish()
            if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
        }
    }

    static let meters = LockedValue<[String: ProgressMeter]>([:])

    static func finish() {
        endTransfers()
        if isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    static let lastKey = LockedValue("")
}
