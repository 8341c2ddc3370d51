#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's resident-set high-water mark, for tests that prove a hostile input stays
/// small. The mark only grows, so `peakGrowthKiB` bounds what `body` allocated at its peak
/// (from above: other tests running at the same time count too, so bounds must be loose).
public enum ResourceUsage {
    public static func maxResidentKiB() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #if canImport(Darwin)
        return usage.ru_maxrss / 1024  // bytes on Darwin
        #else
        return usage.ru_maxrss  // KiB on Linux
        #endif
    }

    /// Runs `body` and returns its result with the growth of the high-water mark, in KiB.
    public static func peakGrowthKiB<T>(_ body: () throws -> T) rethrows -> (T, Int) {
        let before = maxResidentKiB()
        let result = try body()
        return (result, maxResidentKiB() - before)
    }
}
