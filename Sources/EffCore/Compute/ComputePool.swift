import CEffKernels
import Foundation

/// A small fixed set of worker threads that kernels split their rows and heads over.
///
/// Work is cut into chunks that threads claim one at a time from a shared counter, so on a
/// shared machine a descheduled worker delays only the chunk it holds.
///
/// Compute never runs on Swift's cooperative pool (on 2 cores it has 2 threads, and a matmul
/// there starves the UI) nor on GCD per call. The workers are plain pthreads (CEffKernels'
/// `eff_pool`): after a task they spin for a short while, because the next kernel of a
/// forward pass arrives microseconds later, and then park so an idle model costs no CPU.
/// The calling thread is worker 0 and takes its share of every task.
///
/// One task at a time: a lock serializes callers from different threads, and a `run` from
/// inside a task runs all its chunks inline on that thread.
public final class ComputePool: @unchecked Sendable {
    private let raw: OpaquePointer?
    private let lock = NSRecursiveLock()
    let scratchStore = ScratchStore()
    /// Threads that run each task, the caller included.
    public let threadCount: Int

    /// Starts `threads - 1` workers (at least one thread: the caller).
    public init(threads: Int) {
        let n = max(1, threads)
        raw = n > 1 ? eff_pool_create(Int32(n)) : nil
        threadCount = raw == nil ? 1 : n
    }

    deinit { if let raw { eff_pool_destroy(raw) } }

    /// The machine's active cores: the default size of the shared pool.
    public static var defaultThreadCount: Int {
        max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    nonisolated(unsafe) private static var sharedPool: ComputePool?
    private static let sharedLock = NSLock()

    /// The process-wide pool the kernel surface uses (`--threads N` replaces it).
    public static var shared: ComputePool {
        sharedLock.lock()
        defer { sharedLock.unlock() }
        if let p = sharedPool { return p }
        let p = ComputePool(threads: defaultThreadCount)
        sharedPool = p
        return p
    }

    /// Replaces the shared pool with one of `threads` threads (call before heavy work starts).
    public static func configureShared(threads: Int) {
        sharedLock.lock()
        defer { sharedLock.unlock() }
        if sharedPool?.threadCount == max(1, threads) { return }
        sharedPool = ComputePool(threads: threads)
    }

    /// How long idle workers spin before parking, in microseconds.
    public func setSpin(microseconds: Int) {
        if let raw { eff_pool_set_spin(raw, Int32(clamping: microseconds)) }
    }

    /// Runs `body` while holding this pool: other threads' `run` calls wait, and the pool's
    /// `scratch` stays this caller's until `body` returns. Nests.
    public func exclusive<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Runs `body(chunk, nChunks)` once for every chunk in `0..<nChunks` (at most 65535),
    /// chunks claimed dynamically by the caller and the workers; returns when all are done.
    public func run(chunks nChunks: Int, _ body: (_ chunk: Int, _ nChunks: Int) -> Void) {
        guard nChunks > 0 else { return }
        guard let raw, nChunks > 1, eff_pool_in_task() == 0 else {
            for c in 0..<nChunks { body(c, nChunks) }
            return
        }
        lock.lock()
        defer { lock.unlock() }
        withoutActuallyEscaping(body) { escapable in
            var task = escapable
            withUnsafeMutablePointer(to: &task) { taskPtr in
                eff_pool_run(raw, { ctx, c, n in
                    let t = ctx!.assumingMemoryBound(to: ((Int, Int) -> Void).self)
                    t.pointee(Int(c), Int(n))
                }, UnsafeMutableRawPointer(taskPtr), Int32(min(nChunks, 0xFFFF)))
            }
        }
    }

    /// Splits `0..<count` into about `chunksPerThread` contiguous chunks per thread, edges on
    /// multiples of `align`, and runs `body` on each (dynamically balanced between threads).
    public func forEachChunk(_ count: Int, align: Int = 1, chunksPerThread: Int = 4,
                             _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let units = (count + align - 1) / align
        let nChunks = min(units, threadCount * max(1, chunksPerThread), 0xFFFF)
        if threadCount == 1 || nChunks <= 1 {
            body(0..<count)
            return
        }
        run(chunks: nChunks) { c, n in
            let r = Self.chunk(c, of: n, count: count, align: align)
            if !r.isEmpty { body(r) }
        }
    }

    /// The `ith` of `nth` contiguous chunks of `0..<count`, chunk edges on multiples of `align`.
    @inline(__always)
    public static func chunk(_ ith: Int, of nth: Int, count: Int, align: Int = 1) -> Range<Int> {
        let units = (count + align - 1) / align
        let lo = min(count, (units * ith / nth) * align)
        let hi = min(count, (units * (ith + 1) / nth) * align)
        return lo..<hi
    }
}

extension ComputePool {
    /// Caller-owned scratch memory of at least `bytes` bytes, 64-byte aligned, reused across
    /// calls (it only grows, so a warm forward pass allocates nothing). Only valid inside
    /// `exclusive`, until the next `scratch` call.
    public func scratch(bytes: Int) -> UnsafeMutableRawPointer {
        scratchStore.reserve(bytes)
    }
}

/// A growable, aligned byte buffer owned by one pool.
final class ScratchStore {
    private var base: UnsafeMutableRawPointer?
    private var capacity = 0

    func reserve(_ bytes: Int) -> UnsafeMutableRawPointer {
        if bytes > capacity || base == nil {
            base?.deallocate()
            capacity = max(bytes, capacity * 2, 4096)
            base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
        }
        return base!
    }

    deinit { base?.deallocate() }
}
