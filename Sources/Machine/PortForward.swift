import WispCore

/// A host port forwarded to a guest port through user-mode networking, as in docker's
/// `-p [HOST_IP:]HOST_PORT:GUEST_PORT[/udp]`. Binds 127.0.0.1 unless told otherwise.
public struct PortForward: Sendable, Codable, Equatable, CustomStringConvertible {
    /// The transport QEMU's user-mode network forwards: `hostfwd=tcp:...` or `udp:...`.
    public enum Transport: String, Sendable, Codable, Equatable, CaseIterable { case tcp, udp }

    public var hostAddress: String
    public var hostPort: UInt16
    public var guestPort: UInt16
    public var transport: Transport

    public init(hostAddress: String = "127.0.0.1", hostPort: UInt16, guestPort: UInt16, transport: Transport = .tcp) {
        self.hostAddress = hostAddress
        self.hostPort = hostPort
        self.guestPort = guestPort
        self.transport = transport
    }

    enum CodingKeys: String, CodingKey { case hostAddress, hostPort, guestPort, transport }

    /// Records written before UDP forwards existed have no `transport`: they were all TCP.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hostAddress = try c.decode(String.self, forKey: .hostAddress)
        hostPort = try c.decode(UInt16.self, forKey: .hostPort)
        guestPort = try c.decode(UInt16.self, forKey: .guestPort)
        transport = try c.decodeIfPresent(Transport.self, forKey: .transport) ?? .tcp
    }

    /// Parses `HOST_PORT:GUEST_PORT` or `HOST_IP:HOST_PORT:GUEST_PORT`, each with an optional
    /// `/tcp` or `/udp` (IPv4 only: QEMU's user-mode hostfwd takes IPv4 addresses). `option`
    /// names the flag or verb in the error sentence ("-p", "wisp port add").
    public static func parse(_ text: String, option: String = "-p") throws -> PortForward {
        let (body, transport) = try splitTransport(text, option: option)
        let parts = body.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        func port(_ s: String, _ role: String) throws -> UInt16 {
            guard let value = UInt16(s), value > 0 else {
                throw WispError.usage("\(option) \(text): \(role) port '\(s)' is not a number from 1 to 65535")
            }
            return value
        }
        switch parts.count {
        case 2:
            return PortForward(hostPort: try port(parts[0], "host"), guestPort: try port(parts[1], "guest"), transport: transport)
        case 3:
            let address = parts[0]
            let octets = address.split(separator: ".", omittingEmptySubsequences: false)
            guard octets.count == 4, octets.allSatisfy({ UInt8($0) != nil }) else {
                throw WispError.usage("\(option) \(text): host address '\(address)' is not an IPv4 address")
            }
            return PortForward(hostAddress: address, hostPort: try port(parts[1], "host"),
                               guestPort: try port(parts[2], "guest"), transport: transport)
        default:
            throw WispError.usage("\(option) \(text): expected [HOST_IP:]HOST_PORT:GUEST_PORT[/udp], e.g. 8080:80")
        }
    }

    /// `HOST_PORT[/tcp|/udp]`: the key `wisp port rm` removes a forward by.
    public static func parseHostPort(_ text: String, option: String) throws -> (port: UInt16, transport: Transport) {
        let (body, transport) = try splitTransport(text, option: option)
        guard let port = UInt16(body), port > 0 else {
            throw WispError.usage("\(option) \(text): expected HOST_PORT[/udp], a number from 1 to 65535, e.g. 8080")
        }
        return (port, transport)
    }

    private static func splitTransport(_ text: String, option: String) throws -> (String, Transport) {
        guard let slash = text.lastIndex(of: "/") else { return (text, .tcp) }
        let name = String(text[text.index(after: slash)...])
        guard let transport = Transport(rawValue: name.lowercased()) else {
            throw WispError.usage("\(option) \(text): '/\(name)' is not a transport (use /tcp or /udp)")
        }
        return (String(text[..<slash]), transport)
    }

    /// QEMU's `hostfwd=` value (and `hostfwd_add`'s argument).
    public var hostfwd: String { "\(transport.rawValue):\(hostAddress):\(hostPort)-:\(guestPort)" }

    /// `hostfwd_remove`'s argument: the host side names the rule.
    public var hostfwdKey: String { "\(transport.rawValue):\(hostAddress):\(hostPort)" }

    public var description: String { "\(hostAddress):\(hostPort)->\(guestPort)/\(transport.rawValue)" }
}
