#if canImport(Glibc)
import Glibc
#endif
import Foundation
import WispCore

/// The one progress reporter of downloads, pulls, converts and exports. On a terminal: a bar
/// with percent, bytes, rate and ETA, redrawn at most ten times a second, that ends at 100%.
/// Elsewhere (a CI log, `2>file`): a line at each tenth of the work or every 10 s, whichever
/// comes first, so a log shows that work goes on without a flood.
final class ProgressMeter: @unchecked Sendable {
    enum Style { case bar, lines, silent }

    /// On a terminal always a bar; elsewhere lines when `lines` (a long transfer, or `-p`
    /// asked for), else nothing (as qemu-img convert without -p).
    static func style(lines: Bool) -> Style {
        isatty(STDERR_FILENO) == 1 ? .bar : lines ? .lines : .silent
    }

    private let label: String
    private let style: Style
    /// `run` keeps its one status line: the bar is replaced by the next phase, not ended
    /// with a newline.
    private let keepsLine: Bool
    private let lock = NSLock()
    private let started = Date()
    private var lastDraw = Date.distantPast
    private var lastLine = Date()
    private var lastTenth = -1
    private var last: (done: UInt64, total: UInt64?) = (0, nil)
    private var finished = false
    /// Nothing to show when no work was reported (a cached pull).
    private var updated = false

    init(_ label: String, style: Style, keepsLine: Bool = true) {
        self.label = label
        self.style = style
        self.keepsLine = keepsLine
    }

    func update(_ done: UInt64, _ total: UInt64?) {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        updated = true
        last = (done, total)
        let now = Date()
        switch style {
        case .silent:
            return
        case .bar:
            guard now.timeIntervalSince(lastDraw) >= 0.1 else { return }
            lastDraw = now
            FileOutput.standardError("\r\u{1B}[K" + text(done, total, now: now))
        case .lines:
            let tenth = total.flatMap { $0 > 0 ? Int(min(done, $0) * 10 / $0) : nil }
            let due = now.timeIntervalSince(lastLine) >= 10
            if let tenth, tenth > lastTenth || due {
                lastTenth = max(lastTenth, tenth)
            } else if !due {
                return
            }
            lastLine = now
            FileOutput.standardError(text(done, total, now: now) + "\n")
        }
    }

    /// A line of its own while the work goes on (the bar is redrawn on the next update).
    func interject(_ line: String) {
        lock.lock()
        defer { lock.unlock() }
        FileOutput.standardError((style == .bar && updated && !finished ? "\r\u{1B}[K" : "") + line + "\n")
        lastDraw = .distantPast
    }

    /// Runs the work the meter follows: finished on success, cleared on failure.
    func track<T>(_ body: () async throws -> T) async rethrows -> T {
        do {
            let result = try await body()
            finish()
            return result
        } catch {
            abandon()
            throw error
        }
    }

    /// Ends a failed transfer: the bar is cleared for the error that follows.
    func abandon() {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        finished = true
        if style == .bar && updated { FileOutput.standardError("\r\u{1B}[K") }
    }

    /// Draws the final state (100% when the total was known and reached) once.
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        finished = true
        guard updated else { return }
        let line = text(last.done, last.total, now: Date(), final: true)
        switch style {
        case .silent: return
        case .bar: FileOutput.standardError("\r\u{1B}[K" + (keepsLine ? line : line + "\n"))
        case .lines: if lastTenth < 10 { FileOutput.standardError(line + "\n") }
        }
    }

    /// `label: 45% 1.2 GiB of 2.6 GiB, 85 MiB/s, 17 s left`.
    func text(_ done: UInt64, _ total: UInt64?, now: Date, final: Bool = false) -> String {
        let elapsed = max(now.timeIntervalSince(started), 0.001)
        let rate = Double(done) / elapsed
        var parts: [String] = []
        if let total, total > 0 {
            let percent = min(100, Int(Double(done) * 100 / Double(total)))
            parts.append("\(label): \(percent)% \(ByteSize.format(done)) of \(ByteSize.format(total))")
        } else {
            parts.append("\(label): \(ByteSize.format(done))")
        }
        if elapsed >= 0.5 { parts.append("\(ByteSize.format(UInt64(rate)))/s") }
        if final {
            parts.append(String(format: "%.1f s", elapsed))
        } else if let total, total > done, rate > 0, elapsed >= 1 {
            parts.append(Self.duration(Double(total - done) / rate) + " left")
        }
        return parts.joined(separator: ", ")
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s) s" }
        if s < 3600 { return "\(s / 60) min \(s % 60) s" }
        return "\(s / 3600) h \((s % 3600) / 60) min"
    }
}
