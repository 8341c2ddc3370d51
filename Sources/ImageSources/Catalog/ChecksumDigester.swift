import CCrypto
import WispCore

/// Streaming SHA-256 or SHA-512 through libcrypto, for the algorithm a distribution
/// publishes (Debian and Alpine: SHA-512).
final class ChecksumDigester: @unchecked Sendable {
    private let context: OpaquePointer

    /// Throws only when libcrypto cannot allocate its context (out of memory): an error the
    /// download reports, not a trap.
    init(_ algorithm: ChecksumAlgorithm) throws {
        guard let context = EVP_MD_CTX_new() else {
            throw WispError(.io, "libcrypto could not allocate a \(algorithm.rawValue) context (out of memory)")
        }
        self.context = context
        EVP_DigestInit_ex(context, algorithm == .sha256 ? EVP_sha256() : EVP_sha512(), nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    func update(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty, let base = bytes.baseAddress else { return }
        EVP_DigestUpdate(context, base, bytes.count)
    }

    /// Lowercase hex; call once.
    func finalize() -> String {
        var out = [UInt8](repeating: 0, count: 64)
        var length: UInt32 = 0
        out.withUnsafeMutableBufferPointer { _ = EVP_DigestFinal_ex(context, $0.baseAddress, &length) }
        return SHA256.hex(Array(out.prefix(Int(length))))
    }
}
