import Foundation
import CEffKernels

/// How a KV store lays out its rows: the format and the row width (`kvDim` elements, all KV
/// heads of one position). The attention kernels read every format directly.
public struct KVRowLayout: Equatable {
    public var format: KVFormat
    public var kvDim: Int

    public init(format: KVFormat, kvDim: Int) {
        self.format = format
        self.kvDim = kvDim
    }

    /// Bytes of one element in the main plane (f32 4, f16 2, q8 1).
    public var elementBytes: Int {
        switch format {
        case .f32: return 4
        case .f16: return 2
        case .q8: return 1
        }
    }

    /// Scales per row (q8: one per group; 0 otherwise).
    public var scalesPerRow: Int {
        if case .q8(let g) = format { return (kvDim + g - 1) / g }
        return 0
    }

    /// Bytes of one row (keys or values), scales included.
    public var rowBytes: Int { format.rowBytes(width: kvDim) }

    func c(headSize: Int, kvHead: Int) -> eff_kv_layout {
        let code: Int32, group: Int32
        switch format {
        case .f32: code = Int32(EFF_KV_F32); group = 0
        case .f16: code = Int32(EFF_KV_F16); group = 0
        case .q8(let g): code = Int32(EFF_KV_Q8); group = Int32(g)
        }
        return eff_kv_layout(format: code, group: group, hs: Int32(headSize), hoff: Int32(kvHead * headSize),
                             stride: kvDim, sstride: scalesPerRow)
    }
}

/// A contiguous run of cached positions `first ..< first + count`: rows `p - first` of the
/// key and value planes (row bases; `kvDim` elements of the store's format per row), with
/// the q8 scale rows when the format has them.
public struct KVSegment {
    public var first: Int
    public var count: Int
    public var keys: UnsafeRawPointer
    public var values: UnsafeRawPointer
    public var keyScales: UnsafePointer<Float>?
    public var valueScales: UnsafePointer<Float>?

    public init(first: Int, count: Int, keys: UnsafeRawPointer, values: UnsafeRawPointer,
                keyScales: UnsafePointer<Float>?, valueScales: UnsafePointer<Float>?) {
        self.first = first
        self.count = count
        self.keys = keys
        self.values = values
        self.keyScales = keyScales
        self.valueScales = valueScales
    }

    /// An f32 segment.
    public init(first: Int, count: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>) {
        self.init(first: first, count: count, keys: UnsafeRawPointer(keys), values: UnsafeRawPointer(values),
                  keyScales: nil, valueScales: nil)
    }

    /// The same rows starting `rows` later (positions `first + rows ...`).
    func advanced(by rows: Int, count: Int, layout: KVRowLayout) -> eff_kv_fspan {
        let b = rows * layout.kvDim * layout.elementBytes, s = rows * layout.scalesPerRow
        return eff_kv_fspan(first: first + rows, count: count, keys: keys + b, values: values + b,
                            key_scales: keyScales.map { $0 + s }, value_scales: valueScales.map { $0 + s })
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

/// One sequence of a forward batch as attention sees it: `nQueries` query rows (`q`, rows
/// `nHeads * headSize` apart) at positions `pos0 ..< pos0 + nQueries`, its cache segments
/// in their row layout (format), its output rows and its read policy (nil: dense).
public struct AttentionSequence {
    public var q: UnsafePointer<Float>
    public var nQueries: Int
    public var pos0: Int
    public var segments: UnsafeBufferPointer<KVSegment>
    public var out: UnsafeMutablePointer<Float>
    public var layout: KVRowLayout
    public var policy: AttentionPolicy?

    public init(q: UnsafePointer<Float>, nQueries: Int, pos0: Int, segments: UnsafeBufferPointer<KVSegment>,
                out: UnsafeMutablePointer<Float>, layout: KVRowLayout, policy: AttentionPolicy? = nil) {
        self.q = q
        self.nQueries = nQueries
        self.pos0 = pos0
        self.segments = segments
        self.out = out
        self.layout = layout
        self.policy = policy
    }
}

/// Causal grouped-query attention with an online softmax (FlashAttention's recurrence,
/// Dao et al. 2022; split over positions for one query as in "Flash-Decoding"), over a KV
/// store of any `KVFormat` and any read policy.
///
/// Query head `h` reads KV head `h / group`; the `group` query heads of one KV head are
/// processed together so each key and value row is read (and converted, for f16 / q8)
/// once per group. Scores exist only one block of 128 positions at a time, so a long prompt
/// never materializes its (n, n) score matrix. Work items are (sequence, query, KV head)
/// triples; a lone query at depth is split into (KV head, position range) items whose
/// partial results (running max, sum, unnormalized output) are merged at the end.
public enum FastAttention {
    /// Positions per thread below which one query is not split over positions.
    static let splitThreshold = 256
    /// Most spans one work item hands the kernel (policy ranges x cache segments).
    static let maxSpans = 128

    /// True when this CPU and head grouping can take the fast path (at most 8 query heads
    /// per KV head).
    public static func isAvailable(nHeads: Int, nKVHeads: Int) -> Bool {
        FastKernels.isAvailable && !Kernels.forceReference && nKVHeads > 0
            && nHeads % nKVHeads == 0 && nHeads / nKVHeads <= 8
    }

    /// Calls `body` with the spans KV head `kv` of `layer` reads for the query at `position`,
    /// inside `lo ..< hi`: the segments themselves (dense), or their intersection with the
    /// policy's ranges. Allocates nothing (stack storage).
    @inline(__always)
    static func withSpans<R>(_ segments: UnsafeBufferPointer<KVSegment>, layout: KVRowLayout,
                             policy: AttentionPolicy?, layer: Int, kv: Int, position: Int,
                             _ body: (UnsafePointer<eff_kv_fspan>, Int) -> R) -> R {
        withUnsafeTemporaryAllocation(of: eff_kv_fspan.self, capacity: maxSpans) { spans in
            var n = 0
            if let policy {
                withUnsafeTemporaryAllocation(of: Range<Int>.self, capacity: AttentionPolicyLimits.maxRanges) { ranges in
                    let nr = min(policy.keyRanges(layer: layer, kvHead: kv, queryPosition: position, into: ranges),
                                 ranges.count)
                    for r in 0..<nr {
                        let range = ranges[r].clamped(to: 0..<(position + 1))
                        for seg in segments {
                            let a = max(range.lowerBound, seg.first), b = min(range.upperBound, seg.first + seg.count)
                            if a < b, n < maxSpans {
                                spans[n] = seg.advanced(by: a - seg.first, count: b - a, layout: layout)
                                n += 1
                            }
                        }
                    }
                }
            } else {
                for seg in segments where n < maxSpans {
                    spans[n] = seg.advanced(by: 0, count: seg.count, layout: layout)
                    n += 1
                }
            }
            return body(spans.baseAddress!, n)
        }
    }

    /// Attention of every sequence of a forward batch (prefill: one sequence with many
    /// queries; batched decode: many sequences with one each), in one pass over the pool.
    public static func run(_ sequences: UnsafeBufferPointer<AttentionSequence>, nHeads: Int, nKVHeads: Int,
                           headSize hs: Int, layer: Int = 0, pool: ComputePool = .shared) {
        let group = nHeads / nKVHeads
        let dim = nHeads * hs
        let scale = 1 / Float(hs).squareRoot()
        var totalQueries = 0
        for s in sequences { totalQueries += s.nQueries }
        guard totalQueries > 0 else { return }
        let lone = sequences.first { $0.nQueries > 0 }!
        let end1 = lone.pos0 + 1
        let split = totalQueries == 1 && pool.threadCount > 1 && end1 >= splitThreshold * 2 ? 2 * pool.threadCount : 1
        let items = split > 1 ? nKVHeads * split : totalQueries * nKVHeads
        let partialStride = group * (hs + 2)

        @inline(__always)
        func visit(_ seq: AttentionSequence, kv: Int, t: Int, lo: Int, hi: Int, m: UnsafeMutablePointer<Float>,
                   l: UnsafeMutablePointer<Float>, o: UnsafeMutablePointer<Float>) {
            for g in 0..<group { m[g] = -.infinity; l[g] = 0 }
            o.update(repeating: 0, count: group * hs)
            guard lo < hi else { return }
            var lay = seq.layout.c(headSize: hs, kvHead: kv)
            withSpans(seq.segments, layout: seq.layout, policy: seq.policy, layer: layer, kv: kv, position: seq.pos0 + t) {
                spans, n in
                eff_attn_kv(&lay, seq.q + t * dim + kv * group * hs, Int32(group), spans, Int32(n), lo, hi, scale, m, l, o)
            }
        }

        withUnsafeTemporaryAllocation(of: Float.self, capacity: items * partialStride) { partials in
            let part = partials.baseAddress!
            pool.run(chunks: items) { item, _ in
                let p = part + item * partialStride
                let m = p, l = p + group, o = p + 2 * group
                if split == 1 {
                    var rest = item / nKVHeads
                    let kv = item % nKVHeads
                    var i = 0
                    while rest >= sequences[i].nQueries { rest -= sequences[i].nQueries; i += 1 }
                    let seq = sequences[i], t = rest
                    visit(seq, kv: kv, t: t, lo: 0, hi: seq.pos0 + t + 1, m: m, l: l, o: o)
                    for g in 0..<group {
                        let dst = seq.out + t * dim + (kv * group + g) * hs
                        let inv = l[g] > 0 ? 1 / l[g] : 0
                        for i in 0..<hs { dst[i] = o[g * hs + i] * inv }
                    }
                } else {
                    let kv = item / split, s = item % split
                    visit(lone, kv: kv, t: 0, lo: end1 * s / split, hi: end1 * (s + 1) / split, m: m, l: l, o: o)
                }
            }
            guard split > 1 else { return }
            // Merge the position ranges: out = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s.
            for kv in 0..<nKVHeads {
                for g in 0..<group {
                    var mMax = -Float.infinity
                    for s in 0..<split { mMax = max(mMax, part[(kv * split + s) * partialStride + g]) }
                    let dst = lone.out + (kv * group + g) * hs
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

    /// Softmax probabilities of query head `head` (row `q`, `headSize` floats) at `position`
    /// over positions `0 ... position` into `probabilities` (`position + 1` floats; positions
    /// the policy skips get 0), for attention observers. Reads the format like `run`.
    public static func probabilities(q: UnsafePointer<Float>, head: Int, nHeads: Int, nKVHeads: Int, headSize hs: Int,
                                     position: Int, segments: UnsafeBufferPointer<KVSegment>, layout: KVRowLayout,
                                     policy: AttentionPolicy?, layer: Int, probabilities: UnsafeMutablePointer<Float>) {
        let kv = head / (nHeads / nKVHeads)
        let n = position + 1
        probabilities.update(repeating: -.infinity, count: n)
        var lay = layout.c(headSize: hs, kvHead: kv)
        withSpans(segments, layout: layout, policy: policy, layer: layer, kv: kv, position: position) { spans, ns in
            eff_attn_kv_scores(&lay, q, spans, Int32(ns), 0, n, 1 / Float(hs).squareRoot(), probabilities)
        }
        Kernels.softmax(probabilities, n)
    }

    /// `out(nQueries, nHeads * headSize)`: query `t` (row `t` of `q`) at absolute position
    /// `pos0 + t` attends to positions `0 ... pos0 + t`, found in f32 `segments` (ascending,
    /// covering `0 ..< pos0 + nQueries`).
    public static func causal(q: UnsafePointer<Float>, nQueries: Int, pos0: Int, nHeads: Int, nKVHeads: Int,
                              headSize hs: Int, kvDim: Int, segments: UnsafeBufferPointer<KVSegment>,
                              out: UnsafeMutablePointer<Float>, pool: ComputePool = .shared) {
        let seq = AttentionSequence(q: q, nQueries: nQueries, pos0: pos0, segments: segments, out: out,
                                    layout: KVRowLayout(format: .f32, kvDim: kvDim))
        withUnsafePointer(to: seq) {
            run(UnsafeBufferPointer(start: $0, count: 1), nHeads: nHeads, nKVHeads: nKVHeads, headSize: hs, pool: pool)
        }
    }

    /// Several independent single queries, each over its own f32 cache (batched decoding).
    public static func causalBatch(_ queries: UnsafeBufferPointer<AttentionQuery>, nHeads: Int, nKVHeads: Int,
                                   headSize hs: Int, kvDim: Int, pool: ComputePool = .shared) {
        withUnsafeTemporaryAllocation(of: AttentionSequence.self, capacity: queries.count) { seqs in
            for (i, q) in queries.enumerated() {
                seqs.initializeElement(at: i, to: AttentionSequence(q: q.q, nQueries: 1, pos0: q.position,
                                                                    segments: q.segments, out: q.out,
                                                                    layout: KVRowLayout(format: .f32, kvDim: kvDim)))
            }
            // Several sequences with one query each are never split over positions.
            run(UnsafeBufferPointer(seqs), nHeads: nHeads, nKVHeads: nKVHeads, headSize: hs, pool: pool)
            seqs.deinitialize()
        }
    }
}
