import Foundation
import WispCore

/// How Wisp reaches a guest of a remote libvirt host (`qemu+ssh://USER@HOST:PORT/system`):
/// the guest's SSH forward listens on that host's loopback, so the connection to
/// `127.0.0.1:PORT` is tunnelled through an SSH login to the libvirt host itself, the one
/// libvirt's own transport makes (same user, host, port, `?keyfile=`, `?no_verify=1`; the
/// user's ssh config applies to it as to libvirt's `ssh`).
///
/// It is written as `ProxyCommand=ssh -W [%h]:%p ... HOST`, which is what OpenSSH's
/// `-J USER@HOST:PORT` expands to, because `-J` carries no `-i` or `-o` to the jump login and
/// the URI's keyfile and no_verify must apply there. The guest's own host key is still
/// checked strictly against the key Wisp generated (under its `HostKeyAlias`, so the entry
/// holds whatever address the guest is reached by, through a jump or not).
public struct LibvirtSSHJump: Sendable, Equatable {
    public var user: String?
    public var host: String
    public var port: Int?
    public var keyFile: String?
    public var verifyHostKey: Bool

    /// The jump for a libvirt URI, nil when the URI names no remote host reached over SSH
    /// (a local daemon). Other remote transports (tcp, tls, libssh2 keys in the agent) name a
    /// host too but have no SSH login to tunnel through: refused.
    public static func forURI(_ uri: String) throws -> LibvirtSSHJump? {
        if LibvirtEngine.isLocal(uri) { return nil }
        guard let components = URLComponents(string: uri), let scheme = components.scheme,
              var host = components.host, !host.isEmpty else {
            throw WispError.usage("libvirt URI \(uri): no host could be read from it")
        }
        guard scheme.hasSuffix("+ssh") || scheme.hasSuffix("+libssh") || scheme.hasSuffix("+libssh2") else {
            throw WispError(.unsupported, "libvirt URI \(uri): Wisp reaches guests of a remote host through an SSH login to it (qemu+ssh://USER@HOST/system); the \(scheme) transport has none")
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        // A host or user beginning with '-' would be read by ssh as an option.
        let user = components.user.flatMap { $0.isEmpty ? nil : $0 }
        guard !host.hasPrefix("-"), !(user?.hasPrefix("-") ?? false) else {
            throw WispError.usage("libvirt URI \(uri): a host or user may not begin with '-'")
        }
        let query = components.queryItems ?? []
        func value(_ name: String) -> String? { query.last(where: { $0.name == name })?.value }
        let noVerify = value("no_verify").map { $0 != "0" } ?? false
        return LibvirtSSHJump(user: user, host: host, port: components.port, keyFile: value("keyfile"), verifyHostKey: !noVerify)
    }

    /// `user@host:port` as people write it.
    public var destination: String {
        (user.map { "\($0)@" } ?? "") + (host.contains(":") ? "[\(host)]" : host) + (port.map { ":\($0)" } ?? "")
    }

    /// The jump login that forwards stdin/stdout to the guest's forward on the host's loopback
    /// (`%h`/`%p` are the guest address ssh was asked for: 127.0.0.1 and its port).
    public func jumpCommand(ssh: String) -> [String] {
        var words = [ssh, "-W", "[%h]:%p",
                     // Never a password or passphrase prompt in the middle of a readiness probe.
                     "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]
        if let port { words += ["-p", String(port)] }
        if let user { words += ["-l", user] }
        if let keyFile { words += ["-i", keyFile] }
        // libvirt's no_verify=1: the libvirt host's key is not checked (libvirt's ssh does the same).
        if !verifyHostKey { words += ["-o", "StrictHostKeyChecking=no"] }
        words.append(host)
        return words
    }

    /// `ProxyCommand=...`: ssh runs it through the shell after expanding `%` tokens, so each
    /// word is shell-quoted and a '%' of the URI's own text doubled.
    public func proxyCommandOption(ssh: String) -> String {
        let words = jumpCommand(ssh: ssh).map { word in
            word == "[%h]:%p" ? InstanceSSH.shellQuote(word) : InstanceSSH.shellQuote(word).replacingOccurrences(of: "%", with: "%%")
        }
        return "ProxyCommand=" + words.joined(separator: " ")
    }
}
