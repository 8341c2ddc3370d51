import WispCore

/// A host port forwarded to a guest port through user-mode networking, as in docker's
/// `-p [HOST_IP:]HOST_PORT:GUEST_PORT`. Binds 127.0.0.1 unless told otherwise.
public struct PortForward: Sendable, Codable, Equatable, CustomStringConvertible {
    public var hostAddress: String
    public var hostPort: UInt16
    public var guestPort: UInt16

    public init(hostAddress: String = "127.0.0.1", hostPort: UInt16, guestPort: UInt16) {
        self.hostAddress = hostAddress
        self.hostPort = hostPort
        self.guestPort = guestPort
    }

    /// Parses `HOST_PORT:GUEST_PORT` or `HOST_IP:HOST_PORT:GUEST_PORT` (IPv4 only: QEMU's
    /// user-mode hostfwd takes IPv4 addresses).
    public static func parse(_ text: String) throws -> PortForward {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        func port(_ s: String, _ role: String) throws -> UInt16 {
            guard let value = UInt16(s), value > 0 else {
                throw WispError.usage("-p \(text): \(role) port '\(s)' is not a number from 1 to 65535")
            }
            return value
        }
        switch parts.count {
        case 2:
            return PortForward(hostPort: try port(parts[0], "host"), guestPort: try port(parts[1], "guest"))
        case 3:
            let address = parts[0]
            let octets = address.split(separator: ".", omittingEmptySubsequences: false)
            guard octets.count == 4, octets.allSatisfy({ UInt8($0) != nil }) else {
                throw WispError.usage("-p \(text): host address '\(address)' is not an IPv4 address")
            }
            return PortForward(hostAddress: address, hostPort: try port(parts[1], "host"),
                               guestPort: try port(parts[2], "guest"))
        default:
            throw WispError.usage("-p \(text): expected [HOST_IP:]HOST_PORT:GUEST_PORT, e.g. 8080:80")
        }
    }

    /// QEMU's `hostfwd=` value.
    public var hostfwd: String { "tcp:\(hostAddress):\(hostPort)-:\(guestPort)" }

    public var description: String { "\(hostAddress):\(hostPort)->\(guestPort)/tcp" }
}
