/// How Wisp gives a guest its user, keys and hostname.
public enum GuestProvisioning: String, Sendable, Codable, CaseIterable {
    /// A NoCloud seed (disk or NoCloud-net) read by the image's cloud-init.
    case cloudInit = "cloud-init"
    /// systemd credentials (SMBIOS type 11 or fw_cfg) read by the image's systemd 252+:
    /// root's authorized keys, the SSH host key, the hostname. For images without
    /// cloud-init, such as bootc and other container images.
    case systemd
}

/// What `wisp run --provision` asks for.
public enum ProvisioningChoice: String, Sendable, CaseIterable {
    /// cloud-init when the image has it, systemd credentials otherwise.
    case auto
    case cloudInit = "cloud-init"
    case systemd

    /// The provisioning for an image that does (or does not) carry cloud-init.
    public func resolve(imageHasCloudInit: Bool) -> GuestProvisioning {
        switch self {
        case .auto: return imageHasCloudInit ? .cloudInit : .systemd
        case .cloudInit: return .cloudInit
        case .systemd: return .systemd
        }
    }
}
