/// The fixed layout of QEMU's user-mode network (slirp), the one network Wisp gives a
/// guest. QEMU chooses these addresses, not Wisp; they live here once so the seed's static
/// network, the metadata URLs and anything reading them back agree.
public enum UserModeNetwork {
    /// The guest's own address with its prefix, as a static network configuration wants it.
    public static let guestAddress = "10.0.2.15/24"
    /// The gateway; connections to it reach the host's 127.0.0.1 (the metadata listener).
    public static let host = "10.0.2.2"
    /// QEMU's built-in DNS forwarder.
    public static let dns = "10.0.2.3"

    /// `http://10.0.2.2:PORT`: a host listener on 127.0.0.1:PORT as the guest reaches it.
    public static func hostURL(port: UInt16) -> String { "http://\(host):\(port)" }
}
