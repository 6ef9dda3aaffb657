import Foundation

/// The one place where kernels fan work out over threads.
///
/// Every parallel kernel calls `KernelParallelism.forEachChunk`, which runs on the shared
/// `ComputePool` (dedicated worker threads, never Swift's cooperative pool or GCD). Work is
/// split into contiguous, disjoint chunks of an index range, one per worker.
public enum KernelParallelism {
    /// Worker count the chunking aims at (the shared pool's threads).
    public static var threads: Int { ComputePool.shared.threadCount }

    /// Runs `body` over disjoint contiguous chunks covering `0..<count`, each at least
    /// `minChunk` long (except possibly the last), in parallel when there is enough work.
    @inline(__always)
    public static func forEachChunk(_ count: Int, minChunk: Int, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let pool = ComputePool.shared
        if pool.threadCount == 1 || count < 2 * max(1, minChunk) {
            body(0..<count)
            return
        }
        pool.forEachChunk(count, body)
    }
}
