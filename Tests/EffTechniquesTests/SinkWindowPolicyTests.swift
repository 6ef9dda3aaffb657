import EffCore
import Foundation
import Testing
@testable import EffTechniques

/// The attention policy seam: StreamingLLM's sinks + window read mask, and a per-KV-head
/// policy, through the fast kernels against a reference attention that masks the same keys.
@Suite struct SinkWindowPolicyTests {
    static func values(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var s = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return (Float((s >> 40) & 0xFFFFFF) / Float(1 << 24) * 2 - 1) * scale
        }
    }

    static func ranges(_ p: AttentionPolicy, kvHead: Int = 0, query: Int) -> [Range<Int>] {
        var buf = [Range<Int>](repeating: 0..<0, count: AttentionPolicyLimits.maxRanges)
        let n = buf.withUnsafeMutableBufferPointer { p.keyRanges(layer: 0, kvHead: kvHead, queryPosition: query, into: $0) }
        return Array(buf[0..<n])
    }

    @Test func sinksAndWindowRanges() {
        let p = SinkWindowAttentionPolicy(sinks: 4, window: 16)
        #expect(p.name == "sinks4+window16")
        #expect(Self.ranges(p, query: 0) == [0..<1])
        #expect(Self.ranges(p, query: 19) == [0..<20])          // 4 sinks + 16 recent cover everything
        #expect(Self.ranges(p, query: 20) == [0..<4, 5..<21])   // one gap position
        #expect(Self.ranges(p, query: 999) == [0..<4, 984..<1000])
        #expect(Self.ranges(SinkWindowAttentionPolicy(sinks: 0, window: 8), query: 100) == [93..<101])
    }

    /// Different spans per KV head: head 0 reads positions whose index is even in blocks of
    /// 3 (many gaps), head 1 a window of 50.
    final class PerHeadPolicy: AttentionPolicy {
        var name: String { "test-per-head" }
        func keyRanges(layer: Int, kvHead: Int, queryPosition: Int, into ranges: UnsafeMutableBufferPointer<Range<Int>>) -> Int {
            if kvHead == 1 { ranges[0] = max(0, queryPosition - 49)..<(queryPosition + 1); return 1 }
            var n = 0
            var a = 0
            while a <= queryPosition && n < ranges.count - 1 { ranges[n] = a..<min(a + 3, queryPosition); n += 1; a += 100 }
            ranges[n] = queryPosition..<(queryPosition + 1)
            return n + 1
        }
    }

    static let nHeads = 6, nKVHeads = 2, hs = 64

    /// Reference attention in Double that reads only the positions the policy returns.
    static func reference(q: [Float], nQueries: Int, pos0: Int, keys: [Float], values: [Float],
                          policy: AttentionPolicy) -> [Float] {
        let dim = nHeads * hs, kvDim = nKVHeads * hs, group = nHeads / nKVHeads
        var out = [Float](repeating: 0, count: nQueries * dim)
        for t in 0..<nQueries {
            let qp = pos0 + t
            for h in 0..<nHeads {
                let kv = h / group
                var allowed = Set<Int>()
                for r in ranges(policy, kvHead: kv, query: qp) { allowed.formUnion(r.clamped(to: 0..<(qp + 1))) }
                var s = [Double](repeating: -.infinity, count: qp + 1)
                for p in allowed {
                    var d = 0.0
                    for i in 0..<hs { d += Double(q[t * dim + h * hs + i]) * Double(keys[p * kvDim + kv * hs + i]) }
                    s[p] = d / Double(hs).squareRoot()
                }
                let m = s.max()!
                let e = s.map { $0 == -.infinity ? 0 : exp($0 - m) }
                let z = e.reduce(0, +)
                for i in 0..<hs {
                    var acc = 0.0
                    for p in allowed { acc += e[p] * Double(values[p * kvDim + kv * hs + i]) }
                    out[t * dim + h * hs + i] = Float(acc / z)
                }
            }
        }
        return out
    }

    /// Convex combinations of values in [-1, 1], summed in another order: absolute tolerance.
    static let tolerance: Float = 1e-5

    @Test(arguments: [(1, 900, 2), (1, 900, 1), (4, 300, 2), (1, 10, 2)])
    func kernelsReadOnlyThePolicysKeys(_ nQueries: Int, _ pos0: Int, _ threads: Int) {
        guard FastAttention.isAvailable(nHeads: Self.nHeads, nKVHeads: Self.nKVHeads) else { return }
        let kvDim = Self.nKVHeads * Self.hs, total = pos0 + nQueries
        let q = Self.values(nQueries * Self.nHeads * Self.hs, seed: 1, scale: 2)
        let keys = Self.values(total * kvDim, seed: 2, scale: 2), vals = Self.values(total * kvDim, seed: 3)
        let cut = total / 3  // two segments, as a fork would give
        for policy in [SinkWindowAttentionPolicy(sinks: 4, window: 64) as AttentionPolicy, PerHeadPolicy()] {
            var out = [Float](repeating: .nan, count: q.count)
            keys.withUnsafeBufferPointer { kb in
                vals.withUnsafeBufferPointer { vb in
                    let segs = [KVSegment(first: 0, count: cut, keys: kb.baseAddress!, values: vb.baseAddress!),
                                KVSegment(first: cut, count: total - cut, keys: kb.baseAddress! + cut * kvDim,
                                          values: vb.baseAddress! + cut * kvDim)]
                    segs.withUnsafeBufferPointer { sb in
                        q.withUnsafeBufferPointer { qb in
                            out.withUnsafeMutableBufferPointer { ob in
                                let seq = AttentionSequence(q: qb.baseAddress!, nQueries: nQueries, pos0: pos0, segments: sb,
                                                            out: ob.baseAddress!, layout: KVRowLayout(format: .f32, kvDim: kvDim),
                                                            policy: policy)
                                withUnsafePointer(to: seq) {
                                    FastAttention.run(UnsafeBufferPointer(start: $0, count: 1), nHeads: Self.nHeads,
                                                      nKVHeads: Self.nKVHeads, headSize: Self.hs, pool: ComputePool(threads: threads))
                                }
                            }
                        }
                    }
                }
            }
            let ref = Self.reference(q: q, nQueries: nQueries, pos0: pos0, keys: keys, values: vals, policy: policy)
            let d = zip(out, ref).map { abs($0 - $1) }.max()!
            #expect(d <= Self.tolerance, "\(policy.name) n\(nQueries) pos0 \(pos0) threads \(threads): \(d)")
            // And it is not dense attention (the mask changed the output), except when it covers everything.
            let dense = Self.reference(q: q, nQueries: nQueries, pos0: pos0, keys: keys, values: vals,
                                       policy: DenseAttentionPolicy())
            if pos0 > 100 { #expect(zip(out, dense).map { abs($0 - $1) }.max()! > 1e-3) }
        }
    }
}
