#if canImport(Glibc)
import Glibc
#endif
import CLibvirt
import Foundation
import WispCore

/// One connection to a libvirt daemon through its C API (libvirt0), local or remote
/// (`qemu+ssh://host/system`): the few calls `wisp run --engine libvirt` needs: define,
/// start, stop and undefine a domain, and keep its files as volumes of a storage pool.
///
/// The C API rather than driving `virsh`: one connection serves a whole run (virsh opens
/// one per command, and over `qemu+ssh://` each is an SSH login), errors come as codes
/// Wisp maps to `WispError` kinds instead of text to parse, and uploads stream from the
/// file Wisp already holds open.
public final class LibvirtConnection: @unchecked Sendable {
    // @unchecked: a virConnectPtr may be used from any thread (libvirt locks it), and the
    // pointer itself never changes.
    private let connection: OpaquePointer
    public let uri: String

    public init(uri: String) throws {
        Self.silenceDefaultErrorPrinter()
        guard let connection = virConnectOpen(uri) else { throw Self.lastError("cannot connect to libvirt at \(uri)") }
        self.connection = connection
        self.uri = uri
    }

    deinit { virConnectClose(connection) }

    /// libvirt prints every error to stderr unless told otherwise; Wisp reports them itself.
    private static let silenced: Void = {
        virSetErrorFunc(nil) { _, _ in }
    }()
    static func silenceDefaultErrorPrinter() { _ = silenced }

    /// The last libvirt error of this thread as a `WispError` whose kind code can branch on.
    static func lastError(_ context: String) -> WispError {
        let code = virGetLastErrorCode()
        let message = virGetLastErrorMessage().map { String(cString: $0) } ?? "unknown error"
        let kind: WispError.Kind
        switch Int(code) {
        case Int(VIR_ERR_NO_DOMAIN.rawValue), Int(VIR_ERR_NO_STORAGE_POOL.rawValue), Int(VIR_ERR_NO_STORAGE_VOL.rawValue):
            kind = .notFound
        case Int(VIR_ERR_AUTH_FAILED.rawValue), Int(VIR_ERR_AUTH_CANCELLED.rawValue), Int(VIR_ERR_ACCESS_DENIED.rawValue):
            kind = .permissionDenied
        case Int(VIR_ERR_OPERATION_INVALID.rawValue):
            kind = .busy
        case Int(VIR_ERR_NO_CONNECT.rawValue), Int(VIR_ERR_SYSTEM_ERROR.rawValue), Int(VIR_ERR_RPC.rawValue):
            kind = .connectionClosed
        default:
            kind = .engineFailed
        }
        return WispError(kind, "\(context): \(message)")
    }

    /// True when this daemon's host can run KVM guests (its capabilities list a kvm domain).
    public func supportsKVM(architecture: GuestArchitecture) -> Bool {
        guard let text = virConnectGetCapabilities(connection) else { return false }
        defer { free(text) }
        let capabilities = String(cString: text)
        // One <guest> per architecture; each lists the domain types it runs.
        for guest in capabilities.components(separatedBy: "<guest>").dropFirst()
        where guest.contains("<arch name='\(architecture.rawValue)'>") {
            return guest.contains("<domain type='kvm'")
        }
        return false
    }

    // MARK: domains

    public enum DomainState: Sendable, Equatable {
        case running, paused, shutdown, shutoff, crashed, other
    }

    /// Defines (or redefines) a persistent domain from its XML and returns its name.
    public func define(xml: String) throws {
        guard let domain = virDomainDefineXML(connection, xml) else { throw Self.lastError("libvirt refused the domain definition") }
        virDomainFree(domain)
    }

    private func withDomain<T>(_ name: String, _ body: (OpaquePointer) throws -> T) throws -> T {
        guard let domain = virDomainLookupByName(connection, name) else { throw Self.lastError("libvirt domain \(name)") }
        defer { virDomainFree(domain) }
        return try body(domain)
    }

    /// nil when no domain has that name.
    public func state(ofDomain name: String) throws -> DomainState? {
        do {
            return try withDomain(name) { domain in
                var state: Int32 = 0
                var reason: Int32 = 0
                guard virDomainGetState(domain, &state, &reason, 0) == 0 else { throw Self.lastError("state of libvirt domain \(name)") }
                switch UInt32(state) {
                case VIR_DOMAIN_RUNNING.rawValue, VIR_DOMAIN_BLOCKED.rawValue: return .running
                case VIR_DOMAIN_PAUSED.rawValue, VIR_DOMAIN_PMSUSPENDED.rawValue: return .paused
                case VIR_DOMAIN_SHUTDOWN.rawValue: return .shutdown
                case VIR_DOMAIN_SHUTOFF.rawValue: return .shutoff
                case VIR_DOMAIN_CRASHED.rawValue: return .crashed
                default: return .other
                }
            }
        } catch let error as WispError where error.kind == .notFound {
            return nil
        }
    }

    public func start(domain name: String) throws {
        try withDomain(name) { domain in
            guard virDomainCreate(domain) == 0 else { throw Self.lastError("libvirt could not start \(name)") }
        }
    }

    /// ACPI power button (the guest shuts itself down).
    public func shutdown(domain name: String) throws {
        try withDomain(name) { domain in
            guard virDomainShutdown(domain) == 0 else { throw Self.lastError("libvirt could not shut \(name) down") }
        }
    }

    /// Pulls the plug; a domain that is not running is left alone.
    public func destroy(domain name: String) throws {
        try withDomain(name) { domain in
            guard virDomainIsActive(domain) == 1 else { return }
            guard virDomainDestroy(domain) == 0 else { throw Self.lastError("libvirt could not stop \(name)") }
        }
    }

    /// Removes the definition and the domain's UEFI variable store; a missing domain is fine.
    public func undefine(domain name: String) throws {
        do {
            try withDomain(name) { domain in
                let flags = VIR_DOMAIN_UNDEFINE_NVRAM.rawValue | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE.rawValue
                guard virDomainUndefineFlags(domain, flags) == 0 else { throw Self.lastError("libvirt could not undefine \(name)") }
            }
        } catch let error as WispError where error.kind == .notFound {
            return
        }
    }

    // MARK: storage

    /// A directory pool named `name` at `path` on the daemon's host, defined, built and
    /// started if it is not already (and marked autostart, so it survives a daemon restart).
    public func ensureDirectoryPool(name: String, path: String) throws {
        var pool = virStoragePoolLookupByName(connection, name)
        if pool == nil {
            let xml = "<pool type='dir'><name>\(LibvirtDomainXML.escape(name))</name><target><path>\(LibvirtDomainXML.escape(path))</path>"
                + "<permissions><mode>0711</mode></permissions></target></pool>"
            guard let defined = virStoragePoolDefineXML(connection, xml, 0) else { throw Self.lastError("libvirt could not define the storage pool \(name)") }
            pool = defined
            guard virStoragePoolBuild(defined, 0) == 0 else {
                let error = Self.lastError("libvirt could not make the directory of storage pool \(name) (\(path))")
                virStoragePoolUndefine(defined)
                virStoragePoolFree(defined)
                throw error
            }
            _ = virStoragePoolSetAutostart(defined, 1)
        }
        guard let pool else { throw Self.lastError("storage pool \(name)") }
        defer { virStoragePoolFree(pool) }
        if virStoragePoolIsActive(pool) != 1 {
            guard virStoragePoolCreate(pool, 0) == 0 else { throw Self.lastError("libvirt could not start the storage pool \(name)") }
        }
    }

    private func withPool<T>(_ name: String, _ body: (OpaquePointer) throws -> T) throws -> T {
        guard let pool = virStoragePoolLookupByName(connection, name) else { throw Self.lastError("storage pool \(name)") }
        defer { virStoragePoolFree(pool) }
        return try body(pool)
    }

    /// Creates a volume from its XML (libvirt runs qemu-img for qcow2 ones) and returns its
    /// path on the daemon's host.
    public func createVolume(pool poolName: String, xml: String) throws -> String {
        try withPool(poolName) { pool in
            guard let volume = virStorageVolCreateXML(pool, xml, 0) else { throw Self.lastError("libvirt could not create a volume in pool \(poolName)") }
            defer { virStorageVolFree(volume) }
            return try Self.path(of: volume)
        }
    }

    private static func path(of volume: OpaquePointer) throws -> String {
        guard let text = virStorageVolGetPath(volume) else { throw lastError("path of a libvirt volume") }
        defer { free(text) }
        return String(cString: text)
    }

    /// Copies the local file `source` into a new raw volume `name` of the same size (its
    /// bytes, whatever format they are, are the volume's) and returns the volume's path.
    /// The volume is deleted again if the upload fails.
    public func upload(file source: String, pool poolName: String, volume name: String,
                       progress: ((UInt64, UInt64) -> Void)? = nil) throws -> String {
        let file = try PosixFile(path: source, mode: .readOnly)
        defer { file.close() }
        let size = try file.size()
        let xml = "<volume><name>\(LibvirtDomainXML.escape(name))</name><capacity unit='bytes'>\(size)</capacity>"
            + "<allocation unit='bytes'>0</allocation><target><format type='raw'/><permissions><mode>0600</mode></permissions></target></volume>"
        return try withPool(poolName) { pool in
            guard let volume = virStorageVolCreateXML(pool, xml, 0) else { throw Self.lastError("libvirt could not create the volume \(name) in pool \(poolName)") }
            defer { virStorageVolFree(volume) }
            do {
                try send(file, size: size, to: volume, name: name, progress: progress)
            } catch {
                _ = virStorageVolDelete(volume, 0)
                throw error
            }
            return try Self.path(of: volume)
        }
    }

    private func send(_ file: PosixFile, size: UInt64, to volume: OpaquePointer, name: String,
                      progress: ((UInt64, UInt64) -> Void)?) throws {
        guard let stream = virStreamNew(connection, 0) else { throw Self.lastError("libvirt stream for \(name)") }
        defer { virStreamFree(stream) }
        guard virStorageVolUpload(volume, stream, 0, size, 0) == 0 else { throw Self.lastError("libvirt refused the upload of \(name)") }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset: UInt64 = 0
        while offset < size {
            let want = Int(min(UInt64(buffer.count), size - offset))
            // The size was read once: a file that shrinks meanwhile uploads zeros, never more.
            let got = want
            try buffer.withUnsafeMutableBytes { try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want]), at: offset) }
            var sent = 0
            while sent < got {
                let n = buffer.withUnsafeBytes { raw in
                    virStreamSend(stream, raw.baseAddress!.advanced(by: sent).assumingMemoryBound(to: CChar.self), got - sent)
                }
                guard n > 0 else {
                    let error = Self.lastError("uploading \(name) to libvirt")
                    virStreamAbort(stream)
                    throw error
                }
                sent += Int(n)
            }
            offset += UInt64(got)
            progress?(offset, size)
        }
        guard virStreamFinish(stream) == 0 else { throw Self.lastError("finishing the upload of \(name) to libvirt") }
    }

    /// Deletes a volume; a missing one is fine.
    public func deleteVolume(pool poolName: String, volume name: String) throws {
        do {
            try withPool(poolName) { pool in
                _ = virStoragePoolRefresh(pool, 0)
                guard let volume = virStorageVolLookupByName(pool, name) else { throw Self.lastError("volume \(name) of pool \(poolName)") }
                defer { virStorageVolFree(volume) }
                guard virStorageVolDelete(volume, 0) == 0 else { throw Self.lastError("libvirt could not delete the volume \(name)") }
            }
        } catch let error as WispError where error.kind == .notFound {
            return
        }
    }

    /// The names of a pool's volumes (after a refresh, so files made behind libvirt's back
    /// show too).
    public func volumeNames(pool poolName: String) throws -> [String] {
        try withPool(poolName) { pool in
            _ = virStoragePoolRefresh(pool, 0)
            var volumes: UnsafeMutablePointer<OpaquePointer?>? = nil
            let count = virStoragePoolListAllVolumes(pool, &volumes, 0)
            guard count >= 0 else { throw Self.lastError("volumes of pool \(poolName)") }
            defer { free(volumes) }
            var names: [String] = []
            for index in 0..<Int(count) {
                guard let volume = volumes?[index] else { continue }
                if let name = virStorageVolGetName(volume) { names.append(String(cString: name)) }
                virStorageVolFree(volume)
            }
            return names.sorted()
        }
    }
}
