import Foundation
import WispKit

/// The line `run` and `start` end with: how long it took, what is forwarded, how to log in.
enum ReadyLine {
    static func text(_ record: InstanceRecord, elapsed: Double?, detached: Bool = false) -> String {
        let detached = detached || record.consoleOnly
        var parts = ["\(record.name) is \(detached ? "starting" : "ready")"]
        if let elapsed { parts[0] += String(format: " in %.1f s", elapsed) }
        parts[0] += " (\(record.spec.accelerator.rawValue))"
        let ports = record.spec.forwards.dropFirst().map(\.description)
        if !ports.isEmpty { parts.append("ports " + ports.joined(separator: ", ")) }
        parts.append(record.consoleOnly ? "wisp console \(record.name)" : "wisp ssh \(record.name)")
        return parts.joined(separator: "; ") + "\n"
    }
}
