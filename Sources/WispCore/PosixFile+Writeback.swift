import CLinux

extension PosixFile {
    /// Asks the kernel to start writing a range back to disk without waiting
    /// (sync_file_range WRITE). Long sequential writers call this as they go, so the final
    /// fsync that makes an output durable overlaps with the work instead of following it.
    /// Best effort: failures are ignored (fsync still guarantees durability).
    public func startWriteback(offset: UInt64, length: UInt64) {
        guard length > 0 else { return }
        _ = wisp_start_writeback(descriptor, off_t(offset), off_t(length))
    }
}
