import Foundation
import CEffKernels

/// A contiguous run of cached positions `first ..< first + count`: key and value rows of
/// `kvDim` floats, row `p - first` at `keys/values + (p - first) * kvDim`.
public struct KVSegment {
    public var first: Int
    public var count: Int
    public var keys: UnsafePointer<Float>
    public var values: UnsafePointer<Float>

    public init(first: Int, count: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>) {
        self.first = first
        self.count = count
        self.keys = keys
        self.values = values
    }
}

/// One query of `FastAttention.causalBatch`: the row `q` (`nHeads * headSize` floats) at
/// absolute position `position` attends to positions `0 ... position` found in `segments`
/// (ascending), and writes its `nHeads * headSize` outputs to `out`.
public struct AttentionQuery {
    public var q: UnsafePointer<Float>
    public var position: Int
    public var segments: UnsafeBufferPointer<KVSegment>
    public var out: UnsafeMutablePointer<Float>

    public init(q: UnsafePointer<Float>, position: Int, segments: UnsafeBufferPointer<KVSegment>,
                out: UnsafeMutablePointer<Float>) {
        self.q = q
        self.position = position
        self.segments = segments
        self.out = out
    }
}

/// Causal grouped-query attention with an online softmax (FlashAttention's recurrence,
/// Dao et al. 2022; split over positions for one query as in "Flash-Decoding").
///
/// Query head `h` reads KV head `h / group`; the `group` query heads of one KV head are
/// processed together so each key and value row is read once per group. Scores exist only
/// one block of 128 positions at a time, so a long prompt never materializes its
/// (n, n) score matrix. Work items are (KV head, query) pairs for several queries; for a
/// single query at depth they are (KV head, position range) pairs whose partial results
/// (running max, sum, unnormalized output) are merged at the end.
public enum FastAttention {
    /// Positions per thread below which one query is not split over positions.
    static let splitThreshold = 256

    /// True when this CPU and head grouping can take the fast path (at most 8 query heads
    /// per KV head).
    public static func isAvailable(nHeads: Int, nKVHeads: Int) -> Bool {
        FastKernels.isAvailable && !Kernels.forceReference && nKVHeads > 0
            && nHeads % nKVHeads == 0 && nHeads / nKVHeads <= 8
    }

    /// `out(nQueries, nHeads * headSize)`: query `t` (row `t` of `q`) at absolute position
    /// `pos0 + t` attends to positions `0 ... pos0 + t`, found in `segments` (ascending,
    /// covering `0 ..< pos0 + nQueries`).
    public static func causal(q: UnsafePointer<Float>, nQueries: Int, pos0: Int, nHeads: Int, nKVHeads: Int,
                              headSize hs: Int, kvDim: Int, segments: UnsafeBufferPointer<KVSegment>,
                              out: UnsafeMutablePointer<Float>, pool: ComputePool = .shared) {
        let group = nHeads / nKVHeads
        let dim = nHeads * hs
        let scale = 1 / Float(hs).squareRoot()
        let end1 = pos0 + nQueries
        let split = nQueries == 1 && pool.threadCount > 1 && end1 >= splitThreshold * 2 ? 2 * pool.threadCount : 1
        let items = nKVHeads * nQueries * split
        let partialStride = group * (hs + 2)

        /// Runs KV head `kv` for query `t` over positions `lo ..< hi` into (m, l, o).
        @inline(__always)
        func visit(kv: Int, t: Int, lo: Int, hi: Int, m: UnsafeMutablePointer<Float>,
                   l: UnsafeMutablePointer<Float>, o: UnsafeMutablePointer<Float>) {
            for g in 0..<group { m[g] = -.infinity; l[g] = 0 }
            o.update(repeating: 0, count: group * hs)
            attend(q + t * dim + kv * group * hs, group: group, hs: hs, kv: kv, kvDim: kvDim,
                   segments: segments, lo: lo, hi: hi, scale: scale, m: m, l: l, o: o)
        }

        withUnsafeTemporaryAllocation(of: Float.self, capacity: items * partialStride) { partials in
            let part = partials.baseAddress!
            pool.run(chunks: items) { item, _ in
                let p = part + item * partialStride
                let m = p, l = p + group, o = p + 2 * group
                if split == 1 {
                    let t = item / nKVHeads, kv = item % nKVHeads
                    visit(kv: kv, t: t, lo: 0, hi: pos0 + t + 1, m: m, l: l, o: o)
                    for g in 0..<group {
                        let dst = out + t * dim + (kv * group + g) * hs
                        let inv = l[g] > 0 ? 1 / l[g] : 0
                        for i in 0..<hs { dst[i] = o[g * hs + i] * inv }
                    }
                } else {
                    let kv = item / split, s = item % split
                    visit(kv: kv, t: 0, lo: end1 * s / split, hi: end1 * (s + 1) / split, m: m, l: l, o: o)
                }
            }
            guard split > 1 else { return }
            // Merge the position ranges: out = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s.
            for kv in 0..<nKVHeads {
                for g in 0..<group {
                    var mMax = -Float.infinity
                    for s in 0..<split { mMax = max(mMax, part[(kv * split + s) * partialStride + g]) }
                    let dst = out + (kv * group + g) * hs
                    dst.update(repeating: 0, count: hs)
                    var lSum: Float = 0
                    for s in 0..<split {
                        let p = part + (kv * split + s) * partialStride
                        guard p[group + g] > 0 else { continue }
                        let w = expf(p[g] - mMax)
                        lSum += w * p[group + g]
                        let o = p + 2 * group + g * hs
                        for i in 0..<hs { dst[i] += w * o[i] }
                    }
                    let inv = lSum > 0 ? 1 / lSum : 0
                    for i in 0..<hs { dst[i] *= inv }
                }
            }
        }
    }

    /// Online-softmax attention of KV head `kv`'s query group `qg` over positions `lo ..< hi`
    /// of `segments` into (m, l, o). Blocks follow absolute positions, not segment
    /// boundaries, so a forked cache (prefix segments + own) gives exactly the bits of a
    /// contiguous one: prompt reuse and batching change no token.
    @inline(__always)
    static func attend(_ qg: UnsafePointer<Float>, group: Int, hs: Int, kv: Int, kvDim: Int,
                       segments: UnsafeBufferPointer<KVSegment>, lo: Int, hi: Int, scale: Float,
                       m: UnsafeMutablePointer<Float>, l: UnsafeMutablePointer<Float>, o: UnsafeMutablePointer<Float>) {
        guard lo < hi, !segments.isEmpty else { return }
        withUnsafeTemporaryAllocation(of: eff_kv_span.self, capacity: segments.count) { spans in
            for (i, seg) in segments.enumerated() {
                spans.initializeElement(at: i, to: eff_kv_span(first: seg.first, count: seg.count,
                                                               keys: seg.keys + kv * hs, values: seg.values + kv * hs))
            }
            eff_attn_spans(qg, Int32(group), Int32(hs), spans.baseAddress, Int32(segments.count), kvDim,
                           lo, hi, scale, m, l, o)
        }
    }

    /// Attention of several independent queries, each over its own cache (batched decoding:
    /// one query per sequence), in ONE pass over the pool: work items are (query, KV head)
    /// pairs, so B sequences share one fork-join instead of B. Same arithmetic per head as
    /// `causal` with one query and no position split.
    public static func causalBatch(_ queries: UnsafeBufferPointer<AttentionQuery>, nHeads: Int, nKVHeads: Int,
                                   headSize hs: Int, kvDim: Int, pool: ComputePool = .shared) {
        let group = nHeads / nKVHeads
        let scale = 1 / Float(hs).squareRoot()
        let items = queries.count * nKVHeads
        pool.run(chunks: items) { item, _ in
            let query = queries[item / nKVHeads], kv = item % nKVHeads
            // Running max, sum and unnormalized output of the group's heads: (m, l, o).
            withUnsafeTemporaryAllocation(of: Float.self, capacity: group * (hs + 2)) { buf in
                let m = buf.baseAddress!, l = m + group, o = m + 2 * group
                for g in 0..<group { m[g] = -.infinity; l[g] = 0 }
                o.update(repeating: 0, count: group * hs)
                attend(query.q + kv * group * hs, group: group, hs: hs, kv: kv, kvDim: kvDim,
                       segments: query.segments, lo: 0, hi: query.position + 1, scale: scale, m: m, l: l, o: o)
                for g in 0..<group {
                    let dst = query.out + (kv * group + g) * hs
                    let inv = l[g] > 0 ? 1 / l[g] : 0
                    for i in 0..<hs { dst[i] = o[g * hs + i] * inv }
                }
            }
        }
    }
}
