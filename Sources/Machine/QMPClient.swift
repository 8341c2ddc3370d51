import Foundation
import WispCore

/// One message QEMU sent on its QMP socket, parsed from a JSON line.
public enum QMPMessage: Sendable, Equatable {
    case greeting(version: String)
    case success(id: String?, result: QMPValue)
    case error(id: String?, errorClass: String, description: String)
    case event(name: String, data: QMPValue)

    /// Parses one line of QMP (`docs/interop/qmp-spec`). The line is hostile: anything that
    /// is not a JSON object of a known shape is an error naming what was expected.
    public static func parse(_ line: String, source: String = "QMP") throws -> QMPMessage {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)),
              let dict = object as? [String: Any] else {
            throw WispError.corrupt(source, "QMP message", "not a JSON object: \(line.prefix(200))")
        }
        let id = (dict["id"] as? String) ?? (dict["id"] as? NSNumber).map { "\($0)" }
        if let qmp = dict["QMP"] as? [String: Any] {
            let version = (qmp["version"] as? [String: Any])?["qemu"] as? [String: Any]
            let text = ["major", "minor", "micro"].compactMap { (version?[$0] as? NSNumber)?.stringValue }.joined(separator: ".")
            return .greeting(version: text)
        }
        if let name = dict["event"] as? String {
            return .event(name: name, data: QMPValue(dict["data"] ?? [String: Any]()))
        }
        if dict.keys.contains("return") {
            return .success(id: id, result: QMPValue(dict["return"] ?? NSNull()))
        }
        if let error = dict["error"] as? [String: Any] {
            return .error(id: id, errorClass: error["class"] as? String ?? "GenericError",
                          description: error["desc"] as? String ?? "")
        }
        throw WispError.corrupt(source, "QMP message", "neither greeting, return, error nor event: \(line.prefix(200))")
    }
}

/// A JSON value from QMP, kept Sendable and comparable.
public indirect enum QMPValue: Sendable, Equatable {
    case null, bool(Bool), number(Double), string(String), array([QMPValue]), object([String: QMPValue])

    init(_ any: Any) {
        switch any {
        case let n as NSNumber:
            // JSONSerialization gives booleans as NSNumber too; tell them apart by type.
            if String(cString: n.objCType) == "c" { self = .bool(n.boolValue) } else { self = .number(n.doubleValue) }
        case let s as String: self = .string(s)
        case let a as [Any]: self = .array(a.map(QMPValue.init))
        case let d as [String: Any]: self = .object(d.mapValues(QMPValue.init))
        default: self = .null
        }
    }

    public subscript(key: String) -> QMPValue? {
        if case .object(let d) = self { return d[key] }
        return nil
    }

    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
}

/// A QMP connection: greeting, capabilities negotiation, then commands. Events that arrive
/// while waiting for a command's answer are kept in `events`.
public final class QMPClient: @unchecked Sendable {
    private let socket: UnixSocket
    public let qemuVersion: String
    public private(set) var events: [QMPMessage] = []
    private var nextID = 1

    public init(socketPath: String, timeout: Double = 10) throws {
        socket = try UnixSocket(connectingTo: socketPath, timeout: timeout)
        let greeting = try QMPMessage.parse(try socket.readLine(timeout: timeout), source: socketPath)
        guard case .greeting(let version) = greeting else {
            throw WispError.corrupt(socketPath, "QMP greeting", "expected the QMP banner first")
        }
        qemuVersion = version
        _ = try execute("qmp_capabilities", timeout: timeout)
    }

    /// Runs `command` and returns its `return` value; a QMP error becomes a `WispError`.
    @discardableResult
    public func execute(_ command: String, arguments: [String: Any]? = nil, timeout: Double = 10,
                        passing descriptor: Int32? = nil) throws -> QMPValue {
        let id = "wisp-\(nextID)"
        nextID += 1
        var request: [String: Any] = ["execute": command, "id": id]
        if let arguments { request["arguments"] = arguments }
        var data = try JSONSerialization.data(withJSONObject: request)
        data.append(0x0A)
        if let descriptor { try socket.write(Array(data), passing: descriptor) } else { try socket.write(Array(data)) }
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let message = try QMPMessage.parse(try socket.readLine(timeout: max(0.1, deadline.timeIntervalSinceNow)), source: socket.path)
            switch message {
            case .success(let rid, let result) where rid == id:
                return result
            case .error(let rid, let errorClass, let description) where rid == id:
                throw WispError(.engineFailed, "QEMU refused \(command): \(errorClass): \(description)")
            case .event:
                events.append(message)
            default:
                continue
            }
        }
    }

    /// `query-status`'s `status` field: "running", "paused", "shutdown", "guest-panicked", ...
    public func status() throws -> String {
        try execute("query-status")["status"]?.string ?? "unknown"
    }

    /// Waits for an event named one of `names`, returning it, or nil after `timeout`.
    public func waitForEvent(_ names: Set<String>, timeout: Double) throws -> QMPMessage? {
        if let index = events.firstIndex(where: { if case .event(let n, _) = $0 { return names.contains(n) }; return false }) {
            return events.remove(at: index)
        }
        let deadline = Date().addingTimeInterval(timeout)
        while deadline.timeIntervalSinceNow > 0 {
            let line: String
            do { line = try socket.readLine(timeout: deadline.timeIntervalSinceNow) } catch let e as WispError where e.kind == .connectionClosed {
                // QEMU exiting closes the socket: that is the end of every event stream.
                return .event(name: "SHUTDOWN", data: .null)
            } catch {
                return nil
            }
            let message = try QMPMessage.parse(line, source: socket.path)
            if case .event(let n, _) = message, names.contains(n) { return message }
            events.append(message)
        }
        return nil
    }
}
