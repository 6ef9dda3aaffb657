import EffCore
import Foundation
import Testing
@testable import EffTechniques

/// The attention mass a MoA plan keeps (`AttentionStatsCollector.keepPlan`), on synthetic
/// probability rows: hand-computed values, a mask oracle built from the rules alone, the
/// trivial case under the plan's own mask, and no change to the other statistics.
@Suite struct AttentionKeptMassTests {
    /// 2 layers x 2 KV heads, 2 sinks, spans of at least 2. With 4 query heads, heads 0-1
    /// read through KV head 0 and heads 2-3 through KV head 1.
    static let plan = MoAPlan(name: "kept", modelFingerprint: "abc", layers: 2, kvHeads: 2, sinkTokens: 2, minSpan: 2,
                              rules: [MoARule(alpha: 4, beta: 0), MoARule(alpha: 0, beta: 1),
                                      MoARule(alpha: 1, beta: 0.25), MoARule(alpha: -3, beta: 0.5)],
                              budget: 0.5, constrainedLengths: [16])

    /// p[i] proportional to i + 1 over n keys (normalized).
    static func ramp(_ n: Int) -> [Float] {
        let total = Float(n * (n + 1) / 2)
        return (0..<n).map { Float($0 + 1) / total }
    }

    static func observe(_ c: AttentionStatsCollector, layer: Int, head: Int, _ probs: [Float]) {
        probs.withUnsafeBufferPointer { c.observe(layer: layer, head: head, probs: $0) }
    }

    /// The oracle: key i is read iff it is a sink or among the last `span(N)` positions.
    static func expectedKept(_ plan: MoAPlan, layer: Int, kvHead: Int, _ probs: [Float]) -> Double {
        let n = probs.count
        let span = plan.rule(layer: layer, kvHead: kvHead).span(at: n, minimum: plan.minSpan)
        var kept = 0.0, total = 0.0
        for (i, p) in probs.enumerated() {
            total += Double(p)
            if i < plan.sinkTokens || i >= n - span { kept += Double(p) }
        }
        return kept / total
    }

    @Test func keptMassIsTheShareInsideSinksAndSpanAveragedOverRows() throws {
        let c = AttentionStatsCollector(nLayers: 2, nHeads: 4, patternBins: 4, sinkTokens: 2)
        c.keepPlan = Self.plan
        // Layer 0, head 1 (KV head 0: 2 sinks + the last 4). At 16 keys: (1 + 2 + 13 + 14 + 15 + 16) / 136.
        // At 8 keys: (1 + 2 + 5 + 6 + 7 + 8) / 36.
        Self.observe(c, layer: 0, head: 1, Self.ramp(16))
        Self.observe(c, layer: 0, head: 1, Self.ramp(8))
        // Layer 0, head 2 (KV head 1 reads everything).
        Self.observe(c, layer: 0, head: 2, Self.ramp(16))
        // Layer 1, head 3 (KV head 1: -3 + N/2 = 5 recent at 16): (1 + 2 + 12 + ... + 16) / 136.
        Self.observe(c, layer: 1, head: 3, Self.ramp(16))
        let s = c.summary()
        let kept = try #require(s.keptMass)
        #expect(kept.count == 2 * 4)
        #expect(s.keptPlan == "kept" && s.measuredPlan == Self.plan)
        let want01 = (61.0 / 136 + 29.0 / 36) / 2
        #expect(abs(Double(try #require(s.keptMass(layer: 0, head: 1))) - want01) < 1e-6)
        #expect(s.keptMass(layer: 0, head: 2) == 1)
        #expect(abs(Double(kept[1 * 4 + 3]) - 73.0 / 136) < 1e-6)
        #expect(s.keptMass(layer: 0, head: 0) == 0)   // never observed
    }

    @Test func matchesTheMaskOracleOnRandomRows() {
        var rng = SystemRandomNumberGenerator()
        let c = AttentionStatsCollector(nLayers: 2, nHeads: 4, patternBins: 8, sinkTokens: 4)
        for _ in 0..<200 {
            let n = Int.random(in: 1...80, using: &rng)
            // Unnormalized, peaked rows: the kept share is taken over the row's total.
            let probs = (0..<n).map { _ in powf(Float.random(in: 0.001...1, using: &rng), 4) }
            for l in 0..<2 {
                for h in 0..<4 {
                    c.keepPlan = Self.plan   // clears the sums: one row each
                    Self.observe(c, layer: l, head: h, probs)
                    let got = Double(c.summary().keptMass(layer: l, head: h) ?? -1)
                    let want = Self.expectedKept(Self.plan, layer: l, kvHead: h / 2, probs)
                    #expect(abs(got - want) < 1e-5, "n \(n) L\(l) H\(h): \(got) vs \(want)")
                }
            }
        }
    }

    @Test func underThePlansOwnMaskEverythingIsKept() {
        let c = AttentionStatsCollector(nLayers: 2, nHeads: 4)
        c.keepPlan = Self.plan
        let policy = MoAAttentionPolicy(plan: Self.plan)
        var ranges = [Range<Int>](repeating: 0..<0, count: AttentionPolicyLimits.maxRanges)
        for n in [1, 3, 9, 40] {
            for l in 0..<2 {
                for h in 0..<4 {
                    // Softmax restricted to the plan's reads: 0 elsewhere.
                    let nr = ranges.withUnsafeMutableBufferPointer {
                        policy.keyRanges(layer: l, kvHead: h / 2, queryPosition: n - 1, into: $0)
                    }
                    var probs = [Float](repeating: 0, count: n)
                    for r in ranges[0..<nr] { for i in r { probs[i] = 1 } }
                    let total = probs.reduce(0, +)
                    Self.observe(c, layer: l, head: h, probs.map { $0 / total })
                }
            }
        }
        for v in c.summary().keptMass ?? [] { #expect(abs(v - 1) < 1e-6) }
        #expect(c.summary().keptMass != nil)
    }

    @Test func withoutAPlanNothingElseChanges() {
        let plain = AttentionStatsCollector(nLayers: 2, nHeads: 4, patternBins: 4, sinkTokens: 2)
        let measured = AttentionStatsCollector(nLayers: 2, nHeads: 4, patternBins: 4, sinkTokens: 2)
        measured.keepPlan = Self.plan
        for c in [plain, measured] {
            Self.observe(c, layer: 1, head: 2, Self.ramp(16))
            Self.observe(c, layer: 0, head: 0, Self.ramp(7))
        }
        let a = plain.summary(), b = measured.summary()
        #expect(a.keptMass == nil && a.keptPlan == nil && a.measuredPlan == nil)
        #expect(b.keptMass != nil)
        #expect(a.k95 == b.k95 && a.sinkMass == b.sinkMass && a.pattern == b.pattern)
        #expect(a.steps == b.steps && a.keys == b.keys)
        var c = b
        c.keptMass = nil; c.measuredPlan = nil
        #expect(a == c)
    }

    @Test func resetClearsSumsButKeepsThePlanAndOtherShapesAreIgnored() {
        let c = AttentionStatsCollector(nLayers: 2, nHeads: 4)
        c.keepPlan = Self.plan
        Self.observe(c, layer: 0, head: 0, Self.ramp(16))
        c.reset()
        #expect(c.summary().keptMass == nil)   // nothing observed since
        Self.observe(c, layer: 0, head: 0, Self.ramp(16))
        #expect(c.summary().keptPlan == "kept")
        // A plan for another layer count, or for KV heads that do not divide the query heads, is not measured.
        var other = Self.plan
        other.layers = 1; other.rules = Array(other.rules.prefix(2))
        c.keepPlan = other
        Self.observe(c, layer: 0, head: 0, Self.ramp(16))
        #expect(c.summary().keptMass == nil)
        let odd = AttentionStatsCollector(nLayers: 2, nHeads: 3)
        odd.keepPlan = Self.plan
        Self.observe(odd, layer: 0, head: 0, Self.ramp(16))
        #expect(odd.summary().keptMass == nil)
        c.keepPlan = nil
        Self.observe(c, layer: 0, head: 0, Self.ramp(16))
        #expect(c.summary().keptMass == nil)
    }
}
