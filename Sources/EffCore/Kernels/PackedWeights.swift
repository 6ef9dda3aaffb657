import CEffKernels
import Foundation

/// A quantized matrix repacked for the fast kernels: 8 rows interleaved per block of 32
/// columns (the "x8" layout of CEffKernels/matmul.c), built once on first use. Which layout
/// is the format's `WeightFormat.fast` entry (`.int8Tiles(kind)`, or `.lowBit` for effterm's
/// own Q<bits>G<group> formats, whose x8 copy takes exactly the tensor's bytes).
///
/// The 8-row tiles read weights in this layout; from ggml's row-major blocks they would
/// re-pack each group of 8 rows on every product (a transpose of 4-byte groups plus the
/// scales), which cost ~3x the arithmetic of a one-token product. Memory: Q4_1 and Q4_0 take
/// the same bytes as the tensor in the file (plus up to 7 padding rows), Q8_0 288/272 as many
/// (each row's block sums ride along), on top of the mapped file, which stays the source
/// for the reference kernels and embedding lookups. For SmolLM2-135M Q4_1 that is ~66 MB for
/// the layers plus ~32 MB for the tied Q8_0 output head.
public final class PackedWeights: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: UnsafeMutableRawPointer?
    private var failed = false

    init() {}

    deinit { free(storage) }

    /// Bytes the packed copy of `w` takes (0 for formats that are not packed).
    public static func byteCount(_ w: WeightMatrix) -> Int {
        w.format.fast?.packedBytes(rows: w.rows, cols: w.cols) ?? 0
    }

    /// True once the packed copy exists.
    public var isPacked: Bool {
        lock.lock()
        defer { lock.unlock() }
        return storage != nil
    }

    /// The packed copy of `w` (whose view this is), packing it on `pool` the first time;
    /// nil when the format is not packed or the memory could not be had (the kernels then
    /// pack 8 rows at a time into scratch instead, with identical results).
    func pointer(for w: WeightMatrix, pool: ComputePool) -> UnsafeRawPointer? {
        lock.lock()
        defer { lock.unlock() }
        if let storage { return UnsafeRawPointer(storage) }
        guard !failed, let path = w.format.fast, path.packs, w.rows > 0 else { return nil }
        let bytes = Self.byteCount(w)
        guard let p = malloc(bytes) else {
            failed = true
            return nil
        }
        let src = w.data.assumingMemoryBound(to: UInt8.self)
        let dst = p.assumingMemoryBound(to: UInt8.self)
        let rows = w.rows, rowBytes = w.rowBytes, cols = w.cols
        pool.forEachChunk(rows, align: 8) { r in
            path.pack(src, rowBytes: rowBytes, totalRows: rows, rows: r, cols: cols, into: dst)
        }
        storage = p
        return UnsafeRawPointer(p)
    }
}
