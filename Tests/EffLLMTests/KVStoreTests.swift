import EffCore
import Foundation
import Testing
@testable import EffLLM

/// The KV store in every format: conversions, the attention kernels against a plain Swift
/// reference, fork / copy / convert, byte counts and the re-rotation of moved keys.
@Suite struct KVStoreTests {
    static let formats: [KVFormat] = [.f32, .f16, .q8(group: 32), .q8(group: 64)]
    static let nLayers = 2, nHeads = 6, nKVHeads = 2, hs = 64
    static var kvDim: Int { nKVHeads * hs }

    /// Deterministic values in [-scale, scale].
    static func values(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] { LlamaTestModel.values(n, seed: seed, scale: scale) }

    /// A store of `n` positions with random rows (keys scaled 2, values 1), written in chunks.
    static func filled(_ format: KVFormat, n: Int, capacity: Int? = nil, seed: UInt64 = 1) -> KVCache {
        let cache = KVCache(nLayers: nLayers, kvDim: kvDim, capacity: capacity ?? n, format: format)
        for l in 0..<nLayers {
            let k = values(n * kvDim, seed: seed + UInt64(l) * 7, scale: 2), v = values(n * kvDim, seed: seed + UInt64(l) * 7 + 3)
            cache.write(layer: l, position: 0, rows: n, k: k, v: v)
        }
        cache.commit(upTo: n)
        return cache
    }

    /// Worst element error of a round trip, per format: f32 exact; f16 half an ulp of
    /// binary16 (2^-11 relative); q8 half a code step (scale / 2 = max|group| / 254).
    @Test(arguments: formats)
    func writeThenReadIsWithinTheFormatsRounding(_ format: KVFormat) {
        let n = 5
        let cache = Self.filled(format, n: n)
        let k = Self.values(n * Self.kvDim, seed: 1, scale: 2), v = Self.values(n * Self.kvDim, seed: 4)
        var kr = [Float](repeating: 0, count: Self.kvDim), vr = kr
        for p in 0..<n {
            cache.readRow(layer: 0, position: p, key: &kr, value: &vr)
            for i in 0..<Self.kvDim {
                let x = k[p * Self.kvDim + i], y = v[p * Self.kvDim + i]
                switch format {
                case .f32:
                    #expect(kr[i] == x && vr[i] == y)
                case .f16:
                    #expect(abs(kr[i] - x) <= abs(x) * 0x1p-11 + 1e-7)
                    #expect(abs(vr[i] - y) <= abs(y) * 0x1p-11 + 1e-7)
                case .q8(let g):
                    let g0 = p * Self.kvDim + (i / g) * g
                    let kMax = k[g0..<(g0 + g)].map(abs).max()!, vMax = v[g0..<(g0 + g)].map(abs).max()!
                    #expect(abs(kr[i] - x) <= kMax / 254 * 1.0001)
                    #expect(abs(vr[i] - y) <= vMax / 254 * 1.0001)
                }
            }
        }
    }

    @Test func bytesComeFromTheFormat() {
        let f32 = Self.filled(.f32, n: 3), f16 = Self.filled(.f16, n: 3), q8 = Self.filled(.q8, n: 3)
        #expect(f32.bytesPerPosition == 2 * Self.nLayers * Self.kvDim * 4)
        #expect(f16.bytesPerPosition * 2 == f32.bytesPerPosition)
        // 128 codes + 4 scales of 4 bytes per row: 144 / 512 of f32.
        #expect(q8.bytesPerPosition == 2 * Self.nLayers * (Self.kvDim + 4 * Self.kvDim / 32))
        #expect(q8.ownBytesInUse == 3 * q8.bytesPerPosition)
    }

    /// Attention as plain Swift in Double over the rows the store serves (`readRow`), with
    /// positions outside `allowed(kvHead, query)` masked.
    static func reference(_ cache: KVCache, layer: Int, q: [Float], nQueries: Int, pos0: Int,
                          allowed: (Int, Int, Int) -> Bool = { _, _, _ in true }) -> [Float] {
        let dim = nHeads * hs, group = nHeads / nKVHeads
        var out = [Float](repeating: 0, count: nQueries * dim)
        var kr = [Float](repeating: 0, count: kvDim), vr = kr
        let end = pos0 + nQueries
        var keys = [[Float]](), vals = [[Float]]()
        for p in 0..<end {
            cache.readRow(layer: layer, position: p, key: &kr, value: &vr)
            keys.append(kr); vals.append(vr)
        }
        for t in 0..<nQueries {
            let qp = pos0 + t
            for h in 0..<nHeads {
                let kv = h / group
                var s = [Double](repeating: -.infinity, count: qp + 1)
                for p in 0...qp where allowed(kv, qp, p) {
                    var d = 0.0
                    for i in 0..<hs { d += Double(q[t * dim + h * hs + i]) * Double(keys[p][kv * hs + i]) }
                    s[p] = d / Double(hs).squareRoot()
                }
                let m = s.max()!
                let e = s.map { $0 == -.infinity ? 0 : exp($0 - m) }
                let z = e.reduce(0, +)
                for i in 0..<hs {
                    var acc = 0.0
                    for p in 0...qp { acc += e[p] * Double(vals[p][kv * hs + i]) }
                    out[t * dim + h * hs + i] = Float(acc / z)
                }
            }
        }
        return out
    }

    /// The fast kernels over a store (all its segments) for queries at `pos0 ..< pos0 + n`.
    static func fast(_ cache: KVCache, layer: Int, q: [Float], nQueries: Int, pos0: Int,
                     policy: AttentionPolicy? = nil, threads: Int = 2) -> [Float] {
        var out = [Float](repeating: .nan, count: nQueries * nHeads * hs)
        var segs: [KVSegment] = []
        cache.forEachSegment(layer: layer, end: pos0 + nQueries) { segs.append($0) }
        q.withUnsafeBufferPointer { qb in
            out.withUnsafeMutableBufferPointer { ob in
                segs.withUnsafeBufferPointer { sb in
                    let seq = AttentionSequence(q: qb.baseAddress!, nQueries: nQueries, pos0: pos0, segments: sb,
                                                out: ob.baseAddress!, layout: cache.layout, policy: policy)
                    withUnsafePointer(to: seq) {
                        FastAttention.run(UnsafeBufferPointer(start: $0, count: 1), nHeads: nHeads, nKVHeads: nKVHeads,
                                          headSize: hs, layer: layer, pool: ComputePool(threads: threads))
                    }
                }
            }
        }
        return out
    }

    /// Outputs are convex combinations of values in [-1, 1]; the reference reads the same
    /// decoded rows, so only summation order differs: the same tolerance for every format.
    static let kernelTolerance: Float = 2e-5

    /// The query as the kernel scores it: f32 and f16 as given; q8 rounds each group of a
    /// head to int8 codes with scale max|q| / 127 (ties to even) and scores in integers, as
    /// llama.cpp does for q8_0 keys, so the reference reads those rounded values.
    static func asKernelReadsQuery(_ q: [Float], _ format: KVFormat) -> [Float] {
        guard case .q8(let group) = format else { return q }
        var out = q
        for g0 in stride(from: 0, to: q.count, by: group) {
            let x = q[g0..<min(g0 + group, q.count)]
            let d = x.map(abs).max()! / 127
            let id: Float = d != 0 ? 1 / d : 0
            for i in x.indices { out[i] = min(max((q[i] * id).rounded(.toNearestOrEven), -127), 127) * d }
        }
        return out
    }

    @Test(arguments: formats)
    func kernelsReadEveryFormatLikeTheReference(_ format: KVFormat) {
        guard FastKernels.isAvailable else { return }
        // One query at depth (split over positions with 2 threads), and a prefill chunk.
        for (nQueries, pos0) in [(1, 700), (5, 40), (1, 0)] {
            let cache = Self.filled(format, n: pos0 + nQueries)
            let q = Self.values(nQueries * Self.nHeads * Self.hs, seed: 99, scale: 2)
            let ref = Self.reference(cache, layer: 1, q: Self.asKernelReadsQuery(q, format), nQueries: nQueries, pos0: pos0)
            let out = Self.fast(cache, layer: 1, q: q, nQueries: nQueries, pos0: pos0)
            let d = zip(out, ref).map { abs($0 - $1) }.max()!
            #expect(d <= Self.kernelTolerance, "\(format) n\(nQueries) pos0 \(pos0): \(d)")
        }
    }

    /// How far each format's attention output is from f32's on the same inputs (the
    /// quantization error itself): f16 2e-3, q8 group 32 2e-2, group 64 3e-2.
    @Test func formatsStayCloseToF32() {
        guard FastKernels.isAvailable else { return }
        let q = Self.values(Self.nHeads * Self.hs, seed: 5, scale: 2)
        let f32 = Self.fast(Self.filled(.f32, n: 300), layer: 0, q: q, nQueries: 1, pos0: 299)
        for (format, tol) in [(KVFormat.f16, Float(2e-3)), (.q8(group: 32), 2e-2), (.q8(group: 64), 3e-2)] {
            let out = Self.fast(Self.filled(format, n: 300), layer: 0, q: q, nQueries: 1, pos0: 299)
            let d = zip(out, f32).map { abs($0 - $1) }.max()!
            #expect(d <= tol, "\(format): \(d)")
        }
    }

    /// A fork chain, the positions copied out of it, and the store converted to its own
    /// format all give the bits of one contiguous store; copying into another format equals
    /// writing that format directly.
    @Test(arguments: formats)
    func forkCopyAndConvertKeepEveryFormat(_ format: KVFormat) {
        guard FastKernels.isAvailable else { return }
        let n = 260
        let whole = Self.filled(format, n: n)
        // Same rows through a chain: base holds 0..<100, a fork 100..<200, its fork the rest.
        let base = KVCache(nLayers: Self.nLayers, kvDim: Self.kvDim, capacity: 100, format: format)
        var kr = [Float](repeating: 0, count: Self.kvDim), vr = kr
        func copyRows(_ into: KVCache, _ range: Range<Int>) {
            for l in 0..<Self.nLayers {
                for p in range {
                    // Re-encode what `whole` decodes: f32/f16 exact, q8 re-quantizes its own grid.
                    whole.readRow(layer: l, position: p, key: &kr, value: &vr)
                    into.write(layer: l, position: p, rows: 1, k: kr, v: vr)
                }
            }
            into.commit(upTo: range.upperBound)
        }
        copyRows(base, 0..<100)
        let mid = base.fork(capacity: 100)
        copyRows(mid, 100..<200)
        let leaf = mid.fork(capacity: n - 200)
        #expect(leaf.format == format)
        copyRows(leaf, 200..<n)
        let copied = KVCache(nLayers: Self.nLayers, kvDim: Self.kvDim, capacity: n, format: format)
        #expect(copied.copyPositions(from: leaf, length: n))
        let converted = leaf.converted(to: format)
        #expect(converted.prefix == nil && converted.length == n && converted.maxLength == leaf.maxLength)
        let q = Self.values(3 * Self.nHeads * Self.hs, seed: 7, scale: 2)
        let want = Self.fast(whole, layer: 1, q: q, nQueries: 3, pos0: n - 3)
        if format == .f32 || format == .f16 {  // q8 re-quantized its decoded rows: not the same codes
            #expect(Self.fast(leaf, layer: 1, q: q, nQueries: 3, pos0: n - 3) == want)
        }
        let chain = Self.fast(leaf, layer: 1, q: q, nQueries: 3, pos0: n - 3)
        #expect(Self.fast(copied, layer: 1, q: q, nQueries: 3, pos0: n - 3) == chain)
        #expect(Self.fast(converted, layer: 1, q: q, nQueries: 3, pos0: n - 3) == chain)

        // f32 -> format by copy equals the format written directly.
        let f32 = Self.filled(.f32, n: 50, seed: 11)
        let direct = Self.filled(format, n: 50, seed: 11)
        let viaCopy = KVCache(nLayers: Self.nLayers, kvDim: Self.kvDim, capacity: 50, format: format)
        #expect(viaCopy.copyPositions(from: f32, length: 50))
        var a = kr, b = vr, c = kr, d = vr
        for l in 0..<Self.nLayers {
            for p in 0..<50 {
                direct.readRow(layer: l, position: p, key: &a, value: &b)
                viaCopy.readRow(layer: l, position: p, key: &c, value: &d)
                #expect(a == c && b == d)
            }
        }
    }

    /// Dropping a middle range re-rotates the moved keys: they equal keys rotated fresh at
    /// the new positions within `rotationTolerance` (f32: a few ulps of two rotations; f16
    /// and q8 add one more rounding to their grid), and values move unchanged (up to f16/q8
    /// re-encoding, which is exact for values that were already on the grid).
    @Test(arguments: formats)
    func removingPositionsReRotatesMovedKeys(_ format: KVFormat) {
        let n = 40, drop = 10..<17, base: Float = 10000
        let half = Self.hs / 2
        let raw = Self.values(n * Self.kvDim, seed: 21, scale: 2), vals = Self.values(n * Self.kvDim, seed: 22)
        func rotated(_ p: Int, _ row: Int) -> [Float] {
            var k = Array(raw[row * Self.kvDim ..< (row + 1) * Self.kvDim])
            var c = [Float](repeating: 0, count: half), s = c
            RoPETable.fill(position: p, headSize: Self.hs, base: base, cos: &c, sin: &s)
            Kernels.ropeNormal(&k, nHeads: Self.nKVHeads, headSize: Self.hs, cos: c, sin: s)
            return k
        }
        let cache = KVCache(nLayers: 1, kvDim: Self.kvDim, capacity: n, format: format)
        for p in 0..<n {
            cache.write(layer: 0, position: p, rows: 1, k: rotated(p, p), v: Array(vals[p * Self.kvDim ..< (p + 1) * Self.kvDim]))
        }
        cache.commit(upTo: n)
        #expect(!cache.removePositions(30..<45, headSize: Self.hs, ropeBase: base), "past the end is refused")
        #expect(cache.removePositions(drop, headSize: Self.hs, ropeBase: base))
        #expect(cache.length == n - drop.count)
        let tol: Float
        switch format {
        case .f32: tol = 2e-5
        case .f16: tol = 4e-3   // two binary16 roundings of |k| <= 2.9
        case .q8: tol = 4e-2    // two q8 roundings of groups with max |k| <= 2.9 (step 0.023), one rotated
        }
        var kr = [Float](repeating: 0, count: Self.kvDim), vr = kr
        var fresh = kr, fv = kr
        let reference = KVCache(nLayers: 1, kvDim: Self.kvDim, capacity: n, format: format)
        for newPos in 0..<cache.length {
            let old = newPos < drop.lowerBound ? newPos : newPos + drop.count
            cache.readRow(layer: 0, position: newPos, key: &kr, value: &vr)
            // Fresh: the original pre-RoPE key rotated at the new position, stored in the format.
            reference.write(layer: 0, position: newPos, rows: 1, k: rotated(newPos, old),
                            v: Array(vals[old * Self.kvDim ..< (old + 1) * Self.kvDim]))
            reference.commit(upTo: newPos + 1)
            reference.readRow(layer: 0, position: newPos, key: &fresh, value: &fv)
            let dk = zip(kr, fresh).map { abs($0 - $1) }.max()!
            #expect(dk <= tol, "\(format) position \(newPos) (was \(old)): \(dk)")
            #expect(vr == fv, "values move unchanged")
        }
    }
}
