import CEffKernels

/// Fast paths behind the `Kernels` surface: CEffKernels' AVX2 intrinsics on `ComputePool`.
///
/// Quantized weights (Q4_1, Q4_0, Q8_0) multiply activations quantized on the fly to 8 bits
/// in blocks of 32 with a scale and a sum (Q8_1-style, as llama.cpp's `vec_dot_q4_1_q8_1`),
/// so the inner loop is an int8 dot product; F16 and F32 weights multiply floats directly.
/// Rows are split over the pool's threads in chunks of 16.
///
/// Quantized tiles are 8 rows x up to 8 tokens over weights repacked once into a
/// row-interleaved block layout (`PackedWeights`, see matmul.c): one broadcast group of 4
/// activations times one 32-byte chunk yields the 8 rows' partial dots in 8 lanes, so the
/// per-block float work (convert, scale, FMA, the Q4 offset term) is shared by 8 rows and
/// each block is unpacked once for all tokens. Measured against the earlier 1-row x 4-token
/// tile on the ggml layout (one thread, this VM's AMD EPYC, AVX-VNNI, time ratio new/old):
/// 1536x576 Q4_1 0.20 at 1 token, 0.35 at 8, 0.35 at 64; the 49152x576 Q8_0 head (DRAM
/// resident) 0.57 at 1 token, 0.34 at 8. Without the packed copy (packing 8 rows into
/// scratch on every product, same results) the ratios were 0.59-0.86 at 1 token and 0.45 at
/// 8, and the Q8_0 head was 1.4x slower at 1 token. Where the CPU has AVX-512 VNNI, one
/// 512-bit register holds two groups (16 rows) with the same per-lane arithmetic: 1536x576
/// Q4_1 at 8 and 64 tokens took half the time of the 256-bit tiles on this Zen 5.
///
/// Plain AVX2 (no VNNI) runs 4 tokens per pass (8 spilled registers) and every path takes
/// many tokens in slices of 64 (matmul_body.h). On the AVX2-only AMD EPYC these kernels were
/// tuned on (family 23 model 1, Zen 1: each 256-bit op is two 128-bit halves, and
/// vpmaddubsw / vpmaddwd issue on one pipe) a 1536x576 Q4_1 product ran at ~27 GMAC/s per
/// thread from 4 tokens on, before and after: one 8-row x 32-column block per token every
/// ~18.6 cycles at the reported 2.0 GHz, the issue limit of 8 vpmaddubsw + 1 vpmaddwd there.
/// The Q8_0 head needs a vpmaddwd per group (its pairs reach 32512) and ran at ~16 GMAC/s.
/// Batched decode and prefill on that CPU are bound by this int8 multiply throughput as long
/// as results stay bit-identical (per block: convert, scale, FMA, in order).
///
/// Why C and not Swift (measured, CPU time per 1536x576 Q4_1 matrix-vector product, one
/// thread): the best Swift form (plain loops over `UnsafePointer`, the nibble/int8 dot as an
/// `Int32` loop that LLVM vectorizes, STYLE.md) took 66 us; C intrinsics took 29 us. So the
/// inner loops live in CEffKernels/matmul.c; the Swift reference loops stay as the oracle.
public enum FastKernels {
    /// True when this CPU can run the fast paths (AVX2 + FMA + F16C).
    public static let isAvailable: Bool = CPUFeatures.hasAVX2FMA

    /// Below this many weight-block x token products a matmul runs on the calling thread
    /// alone: waking a worker costs about a microsecond.
    static let parallelThreshold = 1024

    /// `Y(nTokens, out) = X(nTokens, in) · W^T` (see `Kernels.matmul`), on `pool`.
    /// `packedWeights: false` multiplies straight from the ggml layout (same results; tests).
    public static func matmul(_ w: WeightMatrix, x: UnsafePointer<Float>, nTokens: Int,
                              y: UnsafeMutablePointer<Float>, pool: ComputePool = .shared,
                              packedWeights: Bool = true) {
        guard nTokens > 0, w.rows > 0 else { return }
        pool.exclusive { matmulHoldingPool(w, x: x, nTokens: nTokens, y: y, pool: pool, packedWeights: packedWeights) }
    }

    private static func matmulHoldingPool(_ w: WeightMatrix, x: UnsafePointer<Float>, nTokens: Int,
                                          y: UnsafeMutablePointer<Float>, pool: ComputePool,
                                          packedWeights: Bool) {
        let rows = w.rows, cols = w.cols, rowBytes = w.rowBytes
        let ldy = Int32(rows)
        switch w.format.fast {
        case .int8Tiles:
            let nBlocks = cols / 32
            let pw = packedWeights ? w.packed?.pointer(for: w, pool: pool) : nil
            let xq = quantizeActivations(x, cols: cols, nTokens: nTokens, pool: pool)
            split(rows, work: rows * nBlocks * nTokens, pool: pool) { r in
                runQuantized(w, packed: pw, rows: r, xq: xq, nTokens: nTokens, y: y)
            }
        case .lowBit, .superBlock:
            let (bits, group) = w.format.fast!.lowBitKernel!
            // Without the packed copy (out of memory) the reference loop runs: same values
            // up to the activations' 8-bit rounding.
            guard let pw = w.packed?.pointer(for: w, pool: pool) else {
                KernelsReference.matmul(w, x: x, nTokens: nTokens, y: y)
                return
            }
            let xq = quantizeActivations(x, cols: cols, nTokens: nTokens, pool: pool)
            let p8 = pw.assumingMemoryBound(to: UInt8.self)
            split(rows, work: rows * (cols / 32) * nTokens, pool: pool) { r in
                eff_qg_matmul_x8(bits, group, p8, Int32(r.lowerBound), Int32(r.upperBound), Int32(cols),
                                 xq, Int32(nTokens), y, ldy)
            }
        case .f16:
            let wp = w.data.assumingMemoryBound(to: UInt16.self)
            split(rows, work: rows * cols * nTokens / 32, pool: pool) { r in
                eff_matmul_f16(wp, rowBytes, Int32(r.lowerBound), Int32(r.upperBound), Int32(cols),
                               x, Int32(cols), Int32(nTokens), y, ldy)
            }
        case .f32:
            let wp = w.data.assumingMemoryBound(to: Float.self)
            split(rows, work: rows * cols * nTokens / 32, pool: pool) { r in
                eff_matmul_f32(wp, rowBytes, Int32(r.lowerBound), Int32(r.upperBound), Int32(cols),
                               x, Int32(cols), Int32(nTokens), y, ldy)
            }
        case nil:
            KernelsReference.matmul(w, x: x, nTokens: nTokens, y: y)
        }
    }

    /// `matmul` with static activation quantization: every block of `x` is rounded at the
    /// one step `activationStep` (values beyond ±127 steps clip) instead of at its own
    /// max |x| / 127. Weights with 8-bit-activation tiles only (Q4_1, Q4_0, Q8_0 and the
    /// low-bit formats); others multiply unquantized activations as `matmul` does.
    public static func matmul(_ w: WeightMatrix, x: UnsafePointer<Float>, nTokens: Int,
                              y: UnsafeMutablePointer<Float>, activationStep: Float,
                              pool: ComputePool = .shared) {
        guard nTokens > 0, w.rows > 0 else { return }
        let tiles = w.format.fast?.packing != nil || w.format.fast?.lowBitKernel != nil
        pool.exclusive {
            let pw = tiles ? w.packed?.pointer(for: w, pool: pool) : nil
            // No 8-bit tiles, or a low-bit format without its packed copy (out of memory).
            guard tiles, pw != nil || w.format.fast?.lowBitKernel == nil else {
                matmulHoldingPool(w, x: x, nTokens: nTokens, y: y, pool: pool, packedWeights: true)
                return
            }
            let cols = w.cols, nBlocks = cols / 32
            let bytes = nTokens * nBlocks * MemoryLayout<eff_q8a_block>.stride
            let xq = pool.scratch(bytes: bytes).bindMemory(to: eff_q8a_block.self, capacity: nTokens * nBlocks)
            eff_quantize_q8a_fixed(x, Int32(nTokens * cols), activationStep, xq)
            split(w.rows, work: w.rows * nBlocks * nTokens, pool: pool) { r in
                runQuantized(w, packed: pw, rows: r, xq: xq, nTokens: nTokens, y: y)
            }
        }
    }

    /// `y_i = X · W_i^T` for two or three matrices that read the same `x` (a layer's Q, K and
    /// V, or gate and up projections), on `pool`: for quantized weights of one width (tile
    /// formats, mixed or not), `x` is quantized once and one pass over the pool covers all their rows instead
    /// of one fork-join per matrix. Every output is bit-identical to separate `matmul` calls
    /// (the kernels compute each (row, token) the same way whatever the row range).
    public static func matmul(x: UnsafePointer<Float>, nTokens: Int,
                              _ a: (WeightMatrix, UnsafeMutablePointer<Float>),
                              _ b: (WeightMatrix, UnsafeMutablePointer<Float>),
                              _ c: (WeightMatrix, UnsafeMutablePointer<Float>)? = nil,
                              pool: ComputePool = .shared) {
        let wa = a.0, wb = b.0
        // Matrices with a tile kernel over 8-bit activations fuse (the int8-tile and low-bit
        // formats, mixed too: the activations' quantization does not depend on the format).
        func tiled(_ w: WeightMatrix) -> Bool {
            w.cols == wa.cols && (w.format.fast?.packing != nil || w.format.fast?.lowBitKernel != nil)
        }
        let fusable = tiled(wa) && tiled(wb) && (c.map { tiled($0.0) } ?? true)
        guard fusable, nTokens > 0 else {
            matmul(wa, x: x, nTokens: nTokens, y: a.1, pool: pool)
            matmul(wb, x: x, nTokens: nTokens, y: b.1, pool: pool)
            if let c { matmul(c.0, x: x, nTokens: nTokens, y: c.1, pool: pool) }
            return
        }
        pool.exclusive {
            let pa = wa.packed?.pointer(for: wa, pool: pool), pb = wb.packed?.pointer(for: wb, pool: pool)
            let pc = c.flatMap { $0.0.packed?.pointer(for: $0.0, pool: pool) }
            func missing(_ w: WeightMatrix, _ p: UnsafeRawPointer?) -> Bool { w.format.fast?.lowBitKernel != nil && p == nil }
            if missing(wa, pa) || missing(wb, pb) || c.map({ missing($0.0, pc) }) == true {
                // No packed copy (out of memory): each matrix alone, through its fallback.
                matmulHoldingPool(wa, x: x, nTokens: nTokens, y: a.1, pool: pool, packedWeights: true)
                matmulHoldingPool(wb, x: x, nTokens: nTokens, y: b.1, pool: pool, packedWeights: true)
                if let c { matmulHoldingPool(c.0, x: x, nTokens: nTokens, y: c.1, pool: pool, packedWeights: true) }
                return
            }
            let nBlocks = wa.cols / 32
            let xq = quantizeActivations(x, cols: wa.cols, nTokens: nTokens, pool: pool)
            let rowsC = c?.0.rows ?? 0
            let total = wa.rows + wb.rows + rowsC
            split(total, work: total * nBlocks * nTokens, pool: pool) { r in
                // The chunk's rows within each matrix (rows of a, then b, then c).
                runQuantized(wa, packed: pa, rows: r.clamped(to: 0..<wa.rows), xq: xq, nTokens: nTokens, y: a.1)
                let rb = r.clamped(to: wa.rows..<(wa.rows + wb.rows))
                runQuantized(wb, packed: pb, rows: (rb.lowerBound - wa.rows)..<(rb.upperBound - wa.rows), xq: xq, nTokens: nTokens, y: b.1)
                if let c {
                    let rc = r.clamped(to: (wa.rows + wb.rows)..<total)
                    let o = wa.rows + wb.rows
                    runQuantized(c.0, packed: pc, rows: (rc.lowerBound - o)..<(rc.upperBound - o), xq: xq, nTokens: nTokens, y: c.1)
                }
            }
        }
    }

    /// Rows `rows` of a quantized `w` times the quantized activations `xq`, on this thread,
    /// from the packed copy when there is one.
    @inline(__always)
    static func runQuantized(_ w: WeightMatrix, packed: UnsafeRawPointer?, rows: Range<Int>,
                             xq: UnsafePointer<eff_q8a_block>, nTokens: Int, y: UnsafeMutablePointer<Float>) {
        guard !rows.isEmpty else { return }
        let lo = Int32(rows.lowerBound), hi = Int32(rows.upperBound)
        let nb = Int32(w.cols / 32), nt = Int32(nTokens), ldy = Int32(w.rows)
        if let (bits, group) = w.format.fast?.lowBitKernel {
            guard let packed else { return }  // the fused caller checked every packed copy
            eff_qg_matmul_x8(bits, group, packed.assumingMemoryBound(to: UInt8.self), lo, hi, Int32(w.cols),
                             xq, nt, y, ldy)
            return
        }
        guard let kind = w.format.fast?.packing else { return }
        if let packed {
            eff_matmul_x8(kind, packed.assumingMemoryBound(to: UInt8.self), lo, hi, nb, xq, nt, y, ldy)
        } else {
            eff_matmul_q(kind, w.data.assumingMemoryBound(to: UInt8.self), w.rowBytes, lo, hi, nb, xq, nt, y, ldy)
        }
    }

    /// Runs `body` over 16-row-aligned chunks of `0..<rows`, one per thread when `work`
    /// is worth waking the workers for.
    @inline(__always)
    static func split(_ rows: Int, work: Int, pool: ComputePool, _ body: (Range<Int>) -> Void) {
        if work < parallelThreshold || pool.threadCount == 1 {
            body(0..<rows)
        } else {
            pool.forEachChunk(rows, align: 16, body)
        }
    }

    /// Quantizes `nTokens` rows of `cols` floats into the pool's scratch as Q8A blocks
    /// (`nTokens * cols / 32` blocks, token-major).
    static func quantizeActivations(_ x: UnsafePointer<Float>, cols: Int, nTokens: Int,
                                    pool: ComputePool) -> UnsafeMutablePointer<eff_q8a_block> {
        let nBlocks = cols / 32
        let bytes = nTokens * nBlocks * MemoryLayout<eff_q8a_block>.stride
        let xq = pool.scratch(bytes: bytes).bindMemory(to: eff_q8a_block.self, capacity: nTokens * nBlocks)
        if nTokens * cols >= 65536 && pool.threadCount > 1 {  // smaller: cheaper than a fork-join
            pool.forEachChunk(nTokens) { t in
                eff_quantize_q8a(x + t.lowerBound * cols, Int32(t.count * cols), xq + t.lowerBound * nBlocks)
            }
        } else {
            eff_quantize_q8a(x, Int32(nTokens * cols), xq)
        }
        return xq
    }

    /// `scores[p] = scale * (q · K[p])` (see `Kernels.attentionScores`).
    @inline(__always)
    public static func attentionScores(q: UnsafePointer<Float>, keys: UnsafePointer<Float>, stride: Int,
                                       n: Int, headSize: Int, scale: Float,
                                       scores: UnsafeMutablePointer<Float>) {
        eff_attn_scores_f32(q, keys, stride, Int32(n), Int32(headSize), scale, scores)
    }

    /// `out += sum_p probs[p] * V[p]` (see `Kernels.attentionMix`).
    @inline(__always)
    public static func attentionMix(probs: UnsafePointer<Float>, values: UnsafePointer<Float>, stride: Int,
                                    n: Int, headSize: Int, out: UnsafeMutablePointer<Float>) {
        eff_attn_mix_f32(probs, values, stride, Int32(n), Int32(headSize), out)
    }
}

extension FastKernels {
    /// In-place softmax with a vectorized exp (relative error ~2e-7 per term).
    @inline(__always)
    public static func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        eff_softmax_f32(x, Int32(n))
    }

    /// `gate[i] = silu(gate[i]) * up[i]`, vectorized; large inputs are split over the pool.
    public static func swiglu(gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, n: Int,
                              pool: ComputePool = .shared) {
        if n < 16384 || pool.threadCount == 1 {
            eff_swiglu_f32(gate, up, Int32(n))
        } else {
            pool.forEachChunk(n, align: 8) { r in eff_swiglu_f32(gate + r.lowerBound, up + r.lowerBound, Int32(r.count)) }
        }
    }

    /// True when the int8 dot products use AVX-VNNI (`vpdpbusd`, 256-bit) instead of
    /// `vpmaddubsw` + `vpmaddwd`; chosen by a CPUID check, results are identical.
    public static var usesVNNI: Bool { isAvailable && eff_cpu_has_avx_vnni() != 0 }

    /// The kernel paths in use, e.g. "avx2+avx-vnni+avx512-vnni (C)" (for bench output).
    public static var pathDescription: String {
        guard isAvailable else { return "reference (Swift)" }
        return "avx2" + (eff_using_vnni() != 0 ? "+avx-vnni" : "") + (eff_using_avx512() != 0 ? "+avx512-vnni" : "") + " (C)"
    }

    /// The widest instruction set the quantized kernels may use (results are bit-identical
    /// on every level; this exists to measure each path on one machine).
    public enum ISALimit: String, CaseIterable, Sendable {
        case avx2, avxVNNI = "avx-vnni", avx512 = "avx512"
    }

    /// Caps the kernels at `limit` (each path is still used only when the CPU has it).
    public static func limit(to limit: ISALimit) {
        eff_set_use_vnni(limit == .avx2 ? 0 : 1)
        eff_set_use_avx512(limit == .avx512 ? 1 : 0)
    }

    /// True when products over packed quantized weights use 512-bit tiles (AVX-512 F, BW,
    /// VNNI; two 8-row groups per register), chosen by a CPUID check; results are identical.
    public static var usesAVX512: Bool { isAvailable && eff_cpu_has_avx512_vnni() != 0 }
}
