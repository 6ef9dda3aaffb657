import EffCore
import Foundation
import Testing
@testable import EffTechniques

/// MoA's pieces without a model: the per-head read mask, plan files, the profile's block
/// accounting and loss, and the exact plan search against brute force.
@Suite struct MoATests {
    static func plan(_ rules: [MoARule], layers: Int = 1, kvHeads: Int = 2, sink: Int = 32, minSpan: Int = 64) -> MoAPlan {
        MoAPlan(name: "t", modelFingerprint: "abc", layers: layers, kvHeads: kvHeads, sinkTokens: sink, minSpan: minSpan,
                rules: rules, budget: 0.5, constrainedLengths: [1024])
    }

    @Test func policyReadsSinkBlockAndElasticSpan() {
        let p = MoAAttentionPolicy(plan: Self.plan([MoARule(alpha: 128, beta: 0), MoARule(alpha: -256, beta: 0.5)]))
        #expect(p.name == "moa:t")
        // Head 0: a local band of 128 + the 32 sinks.
        #expect(SinkWindowPolicyTests.ranges(p, kvHead: 0, query: 100) == [0..<101])
        #expect(SinkWindowPolicyTests.ranges(p, kvHead: 0, query: 999) == [0..<32, 872..<1000])
        // Head 1: -256 + N/2, at least the minimum span of 64.
        #expect(SinkWindowPolicyTests.ranges(p, kvHead: 1, query: 399) == [0..<32, 336..<400])    // 64 (minimum)
        #expect(SinkWindowPolicyTests.ranges(p, kvHead: 1, query: 1999) == [0..<32, 1256..<2000])  // -256 + 1000
        #expect(SinkWindowPolicyTests.ranges(p, kvHead: 1, query: 7) == [0..<8])
    }

    @Test func densityCountsSinksAndSpans() {
        let p = Self.plan([MoARule(alpha: 0, beta: 1), MoARule(alpha: 224, beta: 0)])
        // Head 0 reads everything; head 1 reads 32 + 224 = 256 of 1024.
        #expect(abs(p.density(at: 1024) - (1024.0 + 256) / 2048) < 1e-12)
        #expect(p.density(at: 100) == 1)
    }

    @Test func planFilesRoundTripAndRejectBadInput() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("moa-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("p.json")
        let p = Self.plan([MoARule(alpha: 0, beta: 0.5), MoARule(alpha: 128, beta: 0.25)])
        try p.save(to: url)
        #expect(try MoAPlan.load(from: url, fingerprint: "abc", layers: 1, kvHeads: 2) == p)
        #expect(throws: MoAPlanError.otherModel(plan: "abc", model: "def")) { try MoAPlan.load(from: url, fingerprint: "def") }
        #expect(throws: MoAPlanError.otherShape(plan: "1x2", model: "30x3")) {
            try MoAPlan.load(from: url, fingerprint: "abc", layers: 30, kvHeads: 3)
        }
        // Truncated, wrong rule count, out-of-range beta, missing file: clear errors.
        let data = try Data(contentsOf: url)
        try data.prefix(data.count / 2).write(to: url)
        #expect { try MoAPlan.load(from: url) } throws: { "\($0)".contains("not a usable attention plan") }
        var bad = p
        bad.rules.removeLast()
        try bad.save(to: url)
        #expect { try MoAPlan.load(from: url) } throws: { "\($0)".contains("1 rules for 1 layers x 2 KV heads") }
        bad = p
        bad.rules[0].beta = 3
        try bad.save(to: url)
        #expect { try MoAPlan.load(from: url) } throws: { "\($0)".contains("out of range") }
        #expect(throws: MoAPlanError.unreadable(dir.appendingPathComponent("none.json").path)) {
            try MoAPlan.load(from: dir.appendingPathComponent("none.json"))
        }
    }

    @Test func specParsesMoAThroughAResolver() throws {
        let p = Self.plan([MoARule(alpha: 0, beta: 0.5), MoARule(alpha: 0, beta: 0.5)])
        #expect(throws: AttentionPolicyCatalog.NoPlanResolver.self) { try AttentionPolicyCatalog.parse("moa:t") }
        let specs = try AttentionPolicyCatalog.parseList("dense,moa:t", resolve: { name in
            #expect(name == "t")
            return p
        })
        #expect(specs == [.dense, .moa(p)])
        #expect(specs[1].description == "moa:t")
        #expect(specs[1].makeReadPolicy() is MoAAttentionPolicy)
        #expect(specs[1].makeEvictionPolicy() == nil)
        #expect(AttentionSpec.moaName("moa:") == nil)
    }

    /// Uniform attention over 64 positions in blocks of 16: each query row spreads 1 over
    /// its keys, so the normalized map sums to 1 and the loss of a rule is the share of
    /// keys it masks, which a direct count gives.
    @Test func collectorMapsAndLossMatchADirectCount() {
        let n = 64, bs = 16
        let c = MoAProfileCollector(layers: 1, heads: 2, kvHeads: 1, length: n, blockSize: bs)
        c.beginSample()
        for q in 0..<n {
            let probs = [Float](repeating: 1 / Float(q + 1), count: q + 1)
            probs.withUnsafeBufferPointer { buf in
                c.attention(layer: 0, head: 0, queryPosition: q, probabilities: buf)
                c.attention(layer: 0, head: 1, queryPosition: q, probabilities: buf)
            }
        }
        c.endSample()
        let imp = c.importance()
        #expect(imp.samples == 1 && imp.blocks == 4)
        #expect(abs(imp.total(slot: 0) - 1) < 1e-5)
        let rule = MoARule(alpha: 16, beta: 0)
        // Direct: query q in block qb reads block 0 and blocks >= qb + 1 - ceil(16/16) = qb.
        var lost = 0.0
        for q in 0..<n {
            let qb = q / bs
            for j in 0...q where j / bs >= 1 && j / bs < qb { lost += 1.0 / Double(q + 1) }
        }
        lost /= Double(n)
        #expect(abs(imp.loss(slot: 0, rule: rule, minSpan: 16) - lost) < 1e-5)
        #expect(imp.loss(slot: 0, rule: MoARule(alpha: 0, beta: 1), minSpan: 16) == 0)
    }

    @Test func candidatesFollowTheFilters() {
        let cands = MoASearch.candidates(shortest: 512, longest: 8192)
        #expect(cands.contains(MoARule(alpha: 0, beta: 1)))
        #expect(cands.allSatisfy { $0.alpha + Int($0.beta * 512) >= 64 && $0.alpha + Int($0.beta * 8192) <= 8192 })
        #expect(!cands.contains(MoARule(alpha: 128, beta: 1)))
        #expect(cands.contains(MoARule(alpha: -256, beta: 0.75)))
    }

    /// The branch and bound returns the brute-force optimum on random small instances.
    @Test func searchIsExactAgainstBruteForce() {
        var s: UInt64 = 7
        func r() -> Double { s = s &* 6364136223846793005 &+ 1442695040888963407; return Double(s >> 11) / Double(1 << 53) }
        for _ in 0..<40 {
            let heads = 4, options = 5, k = 2
            var hs: [MoASearch.Options] = []
            for _ in 0..<heads {
                let dens = (0..<options).map { _ in (0..<k).map { _ in r() } }
                let loss = dens.map { d in max(0, 1 - d.reduce(0, +) / Double(k) + 0.3 * r()) }
                hs.append(.init(rules: (0..<options).map { MoARule(alpha: $0, beta: 0) }, loss: loss, densities: dens))
            }
            let cap = (0..<k).map { _ in 1.2 + r() }
            var best = Double.infinity
            for code in 0..<Int(pow(Double(options), Double(heads))) {
                var c = code, loss = 0.0, use = [Double](repeating: 0, count: k)
                for h in 0..<heads {
                    let o = c % options; c /= options
                    loss += hs[h].loss[o]
                    for j in 0..<k { use[j] += hs[h].densities[o][j] }
                }
                if (0..<k).allSatisfy({ use[$0] <= cap[$0] + 1e-9 }) { best = min(best, loss) }
            }
            let sol = MoASearch.solve(hs, capacity: cap)
            if best == .infinity { #expect(sol == nil); continue }
            guard let sol else { Issue.record("no solution where brute force found \(best)"); continue }
            #expect(sol.optimal)
            #expect(abs(sol.objective - best) < 1e-9)
            let use = (0..<k).map { j in (0..<heads).reduce(0.0) { $0 + hs[$1].densities[sol.choice[$1]][j] } }
            #expect((0..<k).allSatisfy { use[$0] <= cap[$0] + 1e-9 })
        }
    }
}
