import CEffKernels
import Foundation
import Testing
@testable import EffCore

/// The fast kernels (CEffKernels on ComputePool) against the reference loops and exact
/// float products, with named tolerances. Serialized: some tests switch the process-wide ISA
/// choice (eff_set_use_vnni / eff_set_use_avx512) to cover every path.
/// Skipped, and reported as skipped, on a CPU without AVX2 + FMA (there the surface runs the
/// reference loops, which KernelReferenceTests cover).
@Suite(.serialized, .enabled(if: FastKernels.isAvailable, "this CPU has no AVX2 + FMA: no fast kernels to test"))
struct KernelFastTests {
    /// Float reassociation only (F32/F16 weights, attention): relative to sum |w_j x_j|.
    static let floatRelativeTolerance: Float = 2e-5
    /// Slack on the activation-quantization bound for float rounding of scales and sums.
    static let q8BoundSlack: Float = 1.02

    /// Quantized weights as the fast kernels see them, plus their exact float values.
    struct TestMatrix {
        let type: GGMLType
        let rows: Int, cols: Int
        let stored: [UInt8]
        let dequantized: [Float]

        init(_ type: GGMLType, rows: Int, cols: Int, seed: UInt64) throws {
            self.type = type
            self.rows = rows
            self.cols = cols
            let values = testValues(rows * cols, seed: seed, scale: 0.5)
            var stored: [UInt8] = []
            for r in 0..<rows { stored += try type.quantize(Array(values[(r * cols)..<((r + 1) * cols)])) }
            self.stored = stored
            dequantized = try type.dequantize(stored, count: rows * cols)
        }

        /// The fast product; `packed: false` reads the ggml layout instead of the x8 copy.
        func matmul(_ x: [Float], nTokens: Int, pool: ComputePool, packed: Bool = true) throws -> [Float] {
            var y = [Float](repeating: .nan, count: nTokens * rows)
            try stored.withUnsafeBytes { sb in
                let w = try WeightMatrix(type: type, data: sb.baseAddress!, rows: rows, cols: cols)
                x.withUnsafeBufferPointer { xb in
                    y.withUnsafeMutableBufferPointer { yb in
                        FastKernels.matmul(w, x: xb.baseAddress!, nTokens: nTokens, y: yb.baseAddress!, pool: pool,
                                           packedWeights: packed)
                    }
                }
            }
            return y
        }
    }

    /// Worst-case error of quantizing token `t`'s activations to 8 bits: each x_j moves by at
    /// most d/2 with d = max|x_block| / 127, so |err| <= sum_blocks d/2 * sum_j |w_rj|.
    static func activationBound(_ m: TestMatrix, _ x: [Float], t: Int, r: Int) -> Float {
        var bound: Float = 0
        for b in 0..<(m.cols / 32) {
            var amax: Float = 0, wsum: Float = 0
            for j in 0..<32 {
                amax = max(amax, abs(x[t * m.cols + b * 32 + j]))
                wsum += abs(m.dequantized[r * m.cols + b * 32 + j])
            }
            bound += amax / 127 / 2 * wsum
        }
        return bound
    }

    @Test(arguments: [GGMLType.q4_1, .q4_0, .q8_0, .f16, .f32])
    func matmulMatchesExactProductWithinNamedTolerance(_ type: GGMLType) throws {
        let pool = ComputePool(threads: 2)
        // Row counts off the 8-row tiles, token counts around the 8-token groups.
        for (rows, cols, nTokens) in [(1, 32, 1), (17, 96, 3), (70, 576, 5), (133, 160, 9), (40, 64, 4),
                                      (9, 64, 8), (23, 128, 6), (5, 32, 7), (8, 32, 2), (31, 96, 17)] {
            let m = try TestMatrix(type, rows: rows, cols: cols, seed: UInt64(rows * 7 + cols))
            let x = testValues(nTokens * cols, seed: UInt64(cols), scale: 1.5)
            let y = try m.matmul(x, nTokens: nTokens, pool: pool)
            for t in 0..<nTokens {
                for r in 0..<rows {
                    var ref: Float = 0, mag: Float = 0
                    for c in 0..<cols {
                        ref += m.dequantized[r * cols + c] * x[t * cols + c]
                        mag += abs(m.dequantized[r * cols + c] * x[t * cols + c])
                    }
                    var tol = Self.floatRelativeTolerance * mag
                    if type == .q4_1 || type == .q4_0 || type == .q8_0 {
                        tol += Self.q8BoundSlack * Self.activationBound(m, x, t: t, r: r)
                    }
                    #expect(abs(y[t * rows + r] - ref) <= tol, "\(type) \(rows)x\(cols) t\(t) r\(r)")
                }
            }
        }
    }

    @Test(arguments: [GGMLType.q4_1, .q4_0, .q8_0, .f16, .f32])
    func tokensAndThreadSplitsGiveIdenticalResults(_ type: GGMLType) throws {
        // Each output is computed by the same instruction sequence whatever the batch or split.
        let m = try TestMatrix(type, rows: 77, cols: 192, seed: 11)
        let nTokens = 11
        let x = testValues(nTokens * m.cols, seed: 12)
        let batched = try m.matmul(x, nTokens: nTokens, pool: ComputePool(threads: 2))
        for threads in [1, 3] {
            #expect(try m.matmul(x, nTokens: nTokens, pool: ComputePool(threads: threads)) == batched)
        }
        // Every batch size 1...9 (one token, partial and full 8-token groups) gives the
        // same bits for each (row, token) as the 11-token batch.
        let pool = ComputePool(threads: 1)
        for n in 1...9 {
            let part = try m.matmul(Array(x[0..<(n * m.cols)]), nTokens: n, pool: pool)
            #expect(part == Array(batched[0..<(n * m.rows)]), "\(type) batch of \(n)")
        }
        for t in 0..<nTokens {
            let one = try m.matmul(Array(x[(t * m.cols)..<((t + 1) * m.cols)]), nTokens: 1, pool: pool)
            #expect(one == Array(batched[(t * m.rows)..<((t + 1) * m.rows)]))
        }
    }

    @Test(arguments: [GGMLType.q4_1, .q4_0, .q8_0])
    func prefillSizedBatchesGiveEachTokensSingleTokenBits(_ type: GGMLType) throws {
        // Products over the packed copy go in slices of 64 tokens (matmul_body.h) and, on
        // plain AVX2, tiles of 4 tokens; the ggml-layout path does neither. 150 tokens (two
        // whole slices and a partial one, a partial tile) give the same bits both ways and
        // the same bits as each token alone, on every ISA path this CPU has.
        let m = try TestMatrix(type, rows: 37, cols: 96, seed: 71)
        let nTokens = 150
        let x = testValues(nTokens * m.cols, seed: 72, scale: 2)
        let pool = ComputePool(threads: 2)
        defer { eff_set_use_vnni(1); eff_set_use_avx512(1) }
        for (vnni, avx512): (Int32, Int32) in [(0, 0), (1, 0), (1, 1)] {
            eff_set_use_vnni(vnni)
            eff_set_use_avx512(avx512)
            let packed = try m.matmul(x, nTokens: nTokens, pool: pool)
            #expect(packed == (try m.matmul(x, nTokens: nTokens, pool: pool, packed: false)), "\(type) vnni \(vnni)")
            for t in [0, 3, 63, 64, 65, 127, 128, 149] {
                let one = try m.matmul(Array(x[(t * m.cols)..<((t + 1) * m.cols)]), nTokens: 1, pool: pool)
                #expect(one == Array(packed[(t * m.rows)..<((t + 1) * m.rows)]), "\(type) token \(t)")
            }
        }
    }

    @Test(arguments: [GGMLType.q4_1, .q4_0, .q8_0])
    func packedAndGGMLLayoutsGiveIdenticalResults(_ type: GGMLType) throws {
        // The x8 copy (256-bit tiles, or 512-bit tiles of two groups) and packing 8 rows into
        // scratch per product give the same bits on every ISA path; 37 rows leave a partial
        // last group, and 5 groups an unpaired one for the 512-bit tiles. Paths the CPU
        // lacks fall back to plain AVX2 (then this checks determinism only).
        let m = try TestMatrix(type, rows: 37, cols: 160, seed: 61)
        let pool = ComputePool(threads: 2)
        defer { eff_set_use_vnni(1); eff_set_use_avx512(1) }
        let reference = try (1...9).map { n in
            try m.matmul(testValues(n * m.cols, seed: UInt64(62 + n), scale: 2), nTokens: n, pool: pool, packed: false)
        }
        for (vnni, avx512): (Int32, Int32) in [(0, 0), (1, 0), (1, 1), (0, 1)] {
            eff_set_use_vnni(vnni)
            eff_set_use_avx512(avx512)
            for nTokens in 1...9 {
                let x = testValues(nTokens * m.cols, seed: UInt64(62 + nTokens), scale: 2)
                let packed = try m.matmul(x, nTokens: nTokens, pool: pool)
                let direct = try m.matmul(x, nTokens: nTokens, pool: pool, packed: false)
                #expect(packed == direct, "\(type) vnni \(vnni) avx512 \(avx512) \(nTokens) tokens")
                #expect(packed == reference[nTokens - 1])
                #expect(!packed.contains { $0.isNaN })
            }
        }
        try m.stored.withUnsafeBytes { sb in
            let w = try WeightMatrix(type: type, data: sb.baseAddress!, rows: m.rows, cols: m.cols)
            #expect(w.packed?.isPacked == false)
            #expect(PackedWeights.byteCount(w) == 40 * 5 * (type == .q4_1 ? 20 : type == .q4_0 ? 18 : 36))
            var y = [Float](repeating: 0, count: m.rows)
            let x = testValues(m.cols, seed: 1)
            FastKernels.matmul(w, x: x, nTokens: 1, y: &y, pool: pool)
            #expect(w.packed?.isPacked == true)  // built on first use, kept by the view
        }
    }

    @Test(arguments: [GGMLType.q4_1, .q8_0, .f16])
    func sharedInputMatmulEqualsSeparateCalls(_ type: GGMLType) throws {
        // Q, K, V-like shapes, row counts off the 16-row chunks so chunks straddle matrices.
        let a = try TestMatrix(type, rows: 40, cols: 96, seed: 41)
        let b = try TestMatrix(type, rows: 17, cols: 96, seed: 42)
        let c = try TestMatrix(type, rows: 9, cols: 96, seed: 43)
        let pool = ComputePool(threads: 2)
        for nTokens in [1, 5, 9] {
            let x = testValues(nTokens * 96, seed: UInt64(44 + nTokens))
            let separate = try [a, b, c].map { try $0.matmul(x, nTokens: nTokens, pool: pool) }
            var ya = [Float](repeating: .nan, count: nTokens * a.rows)
            var yb = [Float](repeating: .nan, count: nTokens * b.rows)
            var yc = [Float](repeating: .nan, count: nTokens * c.rows)
            try a.stored.withUnsafeBytes { sa in
                try b.stored.withUnsafeBytes { sb in
                    try c.stored.withUnsafeBytes { sc in
                        let wa = try WeightMatrix(type: type, data: sa.baseAddress!, rows: a.rows, cols: 96)
                        let wb = try WeightMatrix(type: type, data: sb.baseAddress!, rows: b.rows, cols: 96)
                        let wc = try WeightMatrix(type: type, data: sc.baseAddress!, rows: c.rows, cols: 96)
                        ya.withUnsafeMutableBufferPointer { pa in
                            yb.withUnsafeMutableBufferPointer { pb in
                                yc.withUnsafeMutableBufferPointer { pc in
                                    FastKernels.matmul(x: x, nTokens: nTokens, (wa, pa.baseAddress!), (wb, pb.baseAddress!),
                                                       (wc, pc.baseAddress!), pool: pool)
                                }
                            }
                        }
                    }
                }
            }
            #expect(ya == separate[0] && yb == separate[1] && yc == separate[2], "\(type) \(nTokens) tokens")
        }
    }

    @Test func fastMatmulAgreesWithReferenceLoopsOnQ4_1() throws {
        let m = try TestMatrix(.q4_1, rows: 96, cols: 576, seed: 5)
        let x = testValues(3 * m.cols, seed: 6)
        let fast = try m.matmul(x, nTokens: 3, pool: ComputePool(threads: 2))
        var ref = [Float](repeating: .nan, count: 3 * m.rows)
        try m.stored.withUnsafeBytes { sb in
            let w = try WeightMatrix(type: .q4_1, data: sb.baseAddress!, rows: m.rows, cols: m.cols)
            KernelsReference.matmul(w, x: x, nTokens: 3, y: &ref)
        }
        for t in 0..<3 {
            for r in 0..<m.rows {
                let tol = Self.q8BoundSlack * Self.activationBound(m, x, t: t, r: r) + 1e-4
                #expect(abs(fast[t * m.rows + r] - ref[t * m.rows + r]) <= tol)
            }
        }
    }

    @Test func activationQuantizationMatchesScalarDefinition() {
        var x = testValues(96, seed: 9, scale: 3)
        for j in 64..<96 { x[j] = 0 }  // an all-zero block: d = 0, all q = 0
        x[5] = 127.5 / 127 * 3          // ties and extremes survive
        var blocks = [eff_q8a_block](repeating: eff_q8a_block(), count: 3)
        eff_quantize_q8a(x, 96, &blocks)
        for b in 0..<3 {
            let xs = x[(b * 32)..<((b + 1) * 32)]
            let amax = xs.map { abs($0) }.max()!
            let d = amax / 127, id: Float = amax > 0 ? 127 / amax : 0
            let q = xs.map { Int8(($0 * id).rounded(.toNearestOrEven)) }
            let got = withUnsafeBytes(of: blocks[b].qs) { Array($0.bindMemory(to: Int8.self)) }
            #expect(got == q)
            #expect(blocks[b].d == d)
            #expect(abs(blocks[b].s - d * Float(q.reduce(0) { $0 + Int($1) })) <= 1e-6 * max(1, abs(blocks[b].s)))
        }
    }

    @Test(arguments: [GGMLType.q4_1, .q4_0, .q8_0])
    func vnniAndPlainAVX2AgreeExactly(_ type: GGMLType) throws {
        // Both paths compute exact int32 dot products per block (VNNI's Q8_0 through a +128
        // offset on the activations), so the float results are bit-identical. On a CPU
        // without AVX-VNNI both runs take the plain path and this checks determinism only.
        let m = try TestMatrix(type, rows: 33, cols: 128, seed: 21)
        let pool = ComputePool(threads: 1)
        eff_set_use_avx512(0)  // the 256-bit tiles, packed and unpacked
        defer { eff_set_use_avx512(1); eff_set_use_vnni(1) }
        for nTokens in 1...9 {
            let x = testValues(nTokens * m.cols, seed: UInt64(22 + nTokens), scale: 2)
            eff_set_use_vnni(0)
            let plain = try m.matmul(x, nTokens: nTokens, pool: pool)
            eff_set_use_vnni(1)
            let vnni = try m.matmul(x, nTokens: nTokens, pool: pool)
            #expect(plain == vnni, "\(type) \(nTokens) tokens")
        }
    }

    @Test func attentionScoresAndMixMatchReference() {
        for headSize in [64, 40] {
            let n = 37, stride = 3 * headSize
            let q = testValues(headSize, seed: 1)
            let kv = testValues(n * stride, seed: 2)
            var fast = [Float](repeating: 0, count: n), ref = fast
            FastKernels.attentionScores(q: q, keys: kv, stride: stride, n: n, headSize: headSize, scale: 0.125, scores: &fast)
            KernelsReference.attentionScores(q: q, keys: kv, stride: stride, n: n, headSize: headSize, scale: 0.125, scores: &ref)
            for p in 0..<n { #expect(abs(fast[p] - ref[p]) <= Self.floatRelativeTolerance * Float(headSize)) }
            let probs = testValues(n, seed: 3).map { abs($0) }
            var outF = testValues(headSize, seed: 4), outR = outF
            FastKernels.attentionMix(probs: probs, values: kv, stride: stride, n: n, headSize: headSize, out: &outF)
            KernelsReference.attentionMix(probs: probs, values: kv, stride: stride, n: n, headSize: headSize, out: &outR)
            for i in 0..<headSize { #expect(abs(outF[i] - outR[i]) <= Self.floatRelativeTolerance * Float(n)) }
        }
    }

    /// Vectorized exp: relative error of the polynomial plus f32 rounding.
    static let expRelativeTolerance: Float = 1e-6

    @Test func softmaxAndSwigluMatchReference() {
        for n in [1, 7, 8, 100, 1037] {
            var a = testValues(n, seed: UInt64(n), scale: 30), b = a
            FastKernels.softmax(&a, n)
            KernelsReference.softmax(&b, n)
            for i in 0..<n { #expect(abs(a[i] - b[i]) <= Self.expRelativeTolerance * max(b[i], 1e-30) + 1e-12) }
            var g = testValues(n, seed: 5, scale: 12), g2 = g
            let up = testValues(n, seed: 6, scale: 2)
            FastKernels.swiglu(gate: &g, up: up, n: n, pool: ComputePool(threads: 1))
            KernelsReference.swiglu(gate: &g2, up: up, n: n)
            for i in 0..<n { #expect(abs(g[i] - g2[i]) <= 4 * Self.expRelativeTolerance * max(abs(g2[i]), 1e-6)) }
        }
        var under: [Float] = [-100, 0, -90, -87]
        eff_exp_f32(under, &under, 4)
        #expect(under[0] == 0 && under[1] == 1 && under[2] == 0 && under[3] > 0)
    }

    /// Reference causal GQA attention: scores, softmax, mix, one head at a time.
    static func referenceAttention(q: [Float], nQueries: Int, pos0: Int, nHeads: Int, nKVHeads: Int, hs: Int,
                                   keys: [Float], values: [Float]) -> [Float] {
        let kvDim = nKVHeads * hs, dim = nHeads * hs, group = nHeads / nKVHeads
        var out = [Float](repeating: 0, count: nQueries * dim)
        for t in 0..<nQueries {
            let end = pos0 + t + 1
            for h in 0..<nHeads {
                var sc = [Float](repeating: 0, count: end)
                let kvo = (h / group) * hs
                q.withUnsafeBufferPointer { qb in
                    keys.withUnsafeBufferPointer { kb in
                        KernelsReference.attentionScores(q: qb.baseAddress! + t * dim + h * hs, keys: kb.baseAddress! + kvo,
                                                         stride: kvDim, n: end, headSize: hs,
                                                         scale: 1 / Float(hs).squareRoot(), scores: &sc)
                    }
                }
                KernelsReference.softmax(&sc, end)
                var o = [Float](repeating: 0, count: hs)
                values.withUnsafeBufferPointer { vb in
                    KernelsReference.attentionMix(probs: sc, values: vb.baseAddress! + kvo, stride: kvDim, n: end,
                                                  headSize: hs, out: &o)
                }
                for i in 0..<hs { out[t * dim + h * hs + i] = o[i] }
            }
        }
        return out
    }

    @Test func batchedQueriesEqualSingleQueryAttention() {
        // Three sequences at different depths, each with its own cache in two segments.
        let nHeads = 6, nKVHeads = 2, hs = 64, kvDim = nKVHeads * hs, dim = nHeads * hs
        let depths = [1, 37, 200]
        let q = testValues(depths.count * dim, seed: 51, scale: 2)
        let caches = depths.map { (testValues($0 * kvDim, seed: UInt64(52 + $0), scale: 2),
                                   testValues($0 * kvDim, seed: UInt64(53 + $0))) }
        var batched = [Float](repeating: .nan, count: depths.count * dim)
        var single = batched
        let pool = ComputePool(threads: 2)
        func withSegments(_ i: Int, _ body: (UnsafeBufferPointer<KVSegment>) -> Void) {
            caches[i].0.withUnsafeBufferPointer { kb in
                caches[i].1.withUnsafeBufferPointer { vb in
                    let n = depths[i], cut = n / 2
                    var segs = [KVSegment(first: 0, count: n - cut, keys: kb.baseAddress!, values: vb.baseAddress!)]
                    if cut > 0 {
                        segs.append(KVSegment(first: n - cut, count: cut, keys: kb.baseAddress! + (n - cut) * kvDim,
                                              values: vb.baseAddress! + (n - cut) * kvDim))
                    }
                    segs.withUnsafeBufferPointer(body)
                }
            }
        }
        q.withUnsafeBufferPointer { qb in
            batched.withUnsafeMutableBufferPointer { ob in
                withSegments(0) { s0 in
                    withSegments(1) { s1 in
                        withSegments(2) { s2 in
                            let queries = [s0, s1, s2].enumerated().map { i, segs in
                                AttentionQuery(q: qb.baseAddress! + i * dim, position: depths[i] - 1, segments: segs,
                                               out: ob.baseAddress! + i * dim)
                            }
                            queries.withUnsafeBufferPointer {
                                FastAttention.causalBatch($0, nHeads: nHeads, nKVHeads: nKVHeads, headSize: hs,
                                                          kvDim: kvDim, pool: pool)
                            }
                        }
                    }
                }
            }
            single.withUnsafeMutableBufferPointer { ob in
                for i in 0..<depths.count {
                    withSegments(i) { segs in
                        FastAttention.causal(q: qb.baseAddress! + i * dim, nQueries: 1, pos0: depths[i] - 1, nHeads: nHeads,
                                             nKVHeads: nKVHeads, headSize: hs, kvDim: kvDim, segments: segs,
                                             out: ob.baseAddress! + i * dim, pool: pool)
                    }
                }
            }
        }
        // Below the position-split threshold both run the same arithmetic per head.
        #expect(batched == single)
    }

    @Test(arguments: [(1, 0), (1, 700), (5, 300), (3, 0)])
    func onlineSoftmaxAttentionMatchesReference(_ nQueries: Int, _ pos0: Int) {
        let nHeads = 6, nKVHeads = 2, hs = 64, kvDim = nKVHeads * hs
        let total = pos0 + nQueries
        let q = testValues(nQueries * nHeads * hs, seed: 31, scale: 2)
        let keys = testValues(total * kvDim, seed: 32, scale: 2)
        let values = testValues(total * kvDim, seed: 33)
        let ref = Self.referenceAttention(q: q, nQueries: nQueries, pos0: pos0, nHeads: nHeads, nKVHeads: nKVHeads,
                                          hs: hs, keys: keys, values: values)
        // Split the positions into three segments, as a chain of forks would.
        let cuts = [0, total / 3, 2 * total / 3, total]
        for threads in [1, 2] {
            var out = [Float](repeating: .nan, count: nQueries * nHeads * hs)
            keys.withUnsafeBufferPointer { kb in
                values.withUnsafeBufferPointer { vb in
                    let segs = (0..<3).compactMap { i -> KVSegment? in
                        cuts[i + 1] > cuts[i] ? KVSegment(first: cuts[i], count: cuts[i + 1] - cuts[i],
                                                          keys: kb.baseAddress! + cuts[i] * kvDim,
                                                          values: vb.baseAddress! + cuts[i] * kvDim) : nil
                    }
                    segs.withUnsafeBufferPointer { sb in
                        FastAttention.causal(q: q, nQueries: nQueries, pos0: pos0, nHeads: nHeads, nKVHeads: nKVHeads,
                                             headSize: hs, kvDim: kvDim, segments: sb, out: &out,
                                             pool: ComputePool(threads: threads))
                    }
                }
            }
            // Outputs are convex combinations of values in [-1, 1]: absolute tolerance.
            for i in 0..<out.count { #expect(abs(out[i] - ref[i]) <= 1e-5, "q\(nQueries) pos0 \(pos0) i\(i)") }
        }
    }
}
