import Foundation

/// The one place where kernels fan work out over threads.
///
/// Every parallel kernel calls `KernelParallelism.forEachChunk`, so swapping the executor
/// (a dedicated worker pool instead of Dispatch's global queue) is a change to this file
/// alone. Work is split into contiguous, disjoint chunks of an index range.
public enum KernelParallelism {
    /// Worker count the chunking aims at (the machine's active cores).
    public static let threads: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Runs `body` over disjoint contiguous chunks covering `0..<count`, each at least
    /// `minChunk` long (except possibly the last), in parallel when there is enough work.
    @inline(__always)
    public static func forEachChunk(_ count: Int, minChunk: Int, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        // A few chunks per thread smooths over cores shared with other work.
        let maxChunks = max(1, count / max(1, minChunk))
        let nChunks = min(maxChunks, threads * 4)
        if nChunks <= 1 || threads == 1 {
            body(0..<count)
            return
        }
        let per = (count + nChunks - 1) / nChunks
        DispatchQueue.concurrentPerform(iterations: nChunks) { c in
            let lo = c * per
            let hi = min(count, lo + per)
            if lo < hi { body(lo..<hi) }
        }
    }
}
