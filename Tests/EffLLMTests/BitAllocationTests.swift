import EffCore
import Foundation
import Testing
@testable import EffLLM

/// The knapsack, the rank correlation and the plan file (issue 11 items 3 and 4).
@Suite struct BitAllocationTests {
    /// Deterministic pseudo-random numbers for instances.
    struct LCG {
        var s: UInt64
        mutating func next() -> UInt64 { s = s &* 6364136223846793005 &+ 1442695040888963407; return s >> 33 }
        mutating func int(_ r: ClosedRange<Int>) -> Int { r.lowerBound + Int(next() % UInt64(r.count)) }
        mutating func unit() -> Double { Double(next() % 1_000_000) / 1_000_000 }
    }

    /// Least cost over every combination (the oracle), nil when nothing fits.
    static func bruteForce(_ items: [[BitAllocator.Choice]], budget: Int) -> Double? {
        var best: Double? = nil
        func go(_ i: Int, _ bytes: Int, _ cost: Double) {
            guard bytes <= budget else { return }
            if i == items.count { if best.map({ cost < $0 }) ?? true { best = cost }; return }
            for c in items[i] { go(i + 1, bytes + c.bytes, cost + c.cost) }
        }
        go(0, 0, 0)
        return best
    }

    @Test func knapsackMatchesBruteForceOnRandomInstances() throws {
        var rng = LCG(s: 42)
        var solved = 0, refused = 0
        for _ in 0..<300 {
            let n = rng.int(1...6)
            let items = (0..<n).map { _ in (0..<rng.int(1...4)).map { _ in BitAllocator.Choice(bytes: rng.int(1...40), cost: rng.unit()) } }
            let budget = rng.int(0...120)
            let oracle = Self.bruteForce(items, budget: budget)
            if let oracle {
                let s = try BitAllocator.solve(items, budget: budget, grid: 1)
                #expect(abs(s.cost - oracle) < 1e-9, "items \(items) budget \(budget)")
                #expect(s.bytes <= budget)
                #expect(s.exact)
                // The picks are what the totals say.
                #expect(s.bytes == zip(items, s.picks).reduce(0) { $0 + $1.0[$1.1].bytes })
                #expect(abs(s.cost - zip(items, s.picks).reduce(0.0) { $0 + $1.0[$1.1].cost }) < 1e-12)
                // The automatic grid (gcd) is exact too.
                #expect(abs(try BitAllocator.solve(items, budget: budget).cost - oracle) < 1e-9)
                solved += 1
            } else {
                #expect(throws: BitAllocator.AllocationError.self) { try BitAllocator.solve(items, budget: budget, grid: 1) }
                refused += 1
            }
        }
        #expect(solved > 100 && refused > 10)
    }

    /// A coarse grid rounds sizes up: its plans still fit the true budget and cost no less
    /// than the exact optimum.
    @Test func coarseGridPlansStillFit() throws {
        var rng = LCG(s: 9)
        for _ in 0..<100 {
            let items = (0..<5).map { _ in (0..<3).map { _ in BitAllocator.Choice(bytes: rng.int(100...400), cost: rng.unit()) } }
            let budget = rng.int(900...1800)
            guard let oracle = Self.bruteForce(items, budget: budget),
                  let s = try? BitAllocator.solve(items, budget: budget, maxCells: 50) else { continue }
            #expect(s.grid > 1)
            #expect(s.bytes <= budget)
            #expect(s.cost >= oracle - 1e-12)
        }
    }

    @Test func budgetBelowTheSmallestPlanIsNamed() {
        let items = [[BitAllocator.Choice(bytes: 10, cost: 1), .init(bytes: 5, cost: 2)], [.init(bytes: 7, cost: 0)]]
        #expect(throws: BitAllocator.AllocationError.budgetTooSmall(budget: 11, smallest: 12)) {
            try BitAllocator.solve(items, budget: 11)
        }
        #expect(throws: BitAllocator.AllocationError.noChoices(item: 1)) { try BitAllocator.solve([items[0], []], budget: 99) }
    }

    @Test func spearmanOnKnownInputs() throws {
        // Monotone but not linear: rho 1 (Pearson is not).
        let x: [Double] = [1, 2, 3, 4, 5], y: [Double] = [1, 4, 9, 16, 1000]
        #expect(try #require(RankCorrelation.spearman(x, y)) == 1)
        #expect(try #require(RankCorrelation.pearson(x, y)) < 0.99)
        #expect(try #require(RankCorrelation.spearman(x, y.reversed())) == -1)
        // Ties take their mean rank.
        #expect(RankCorrelation.ranks([10, 20, 20, 30]) == [1, 2.5, 2.5, 4])
        // Textbook example: d = (0, -1, 1, 0, 0) -> rho = 1 - 6 * 2 / (5 * 24) = 0.9.
        let rho = try #require(RankCorrelation.spearman([1, 2, 3, 4, 5], [1, 3, 2, 4, 5]))
        #expect(abs(rho - 0.9) < 1e-12)
        #expect(RankCorrelation.spearman([1, 1, 1], [1, 2, 3]) == nil)
        #expect(RankCorrelation.spearman([1], [1]) == nil)
    }

    static func samplePlan() -> WeightPlan {
        WeightPlan(name: "t", modelFingerprint: "abc123", scan: "/tmp/scan.json",
                   budget: .init(kind: "bits_per_weight", value: 3, linearBytes: 1000), predictedKLSum: 0.5,
                   linearBytes: 900, linearElements: 2400, totalBytes: 1900, grid: 4, exact: true,
                   tensors: [.init(tensor: "blk.0.attn_q.weight", spec: "Q3G64", bytes: 500, kl: 0.2),
                             .init(tensor: "blk.0.attn_k.weight", spec: "Q2G32+o0.5%", bytes: 400, kl: 0.3)])
    }

    @Test func planFileRoundTrips() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("plan-\(UUID().uuidString)/p.json")
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        var plan = Self.samplePlan()
        plan.measured = .init(text: "gpl-3.txt", chunks: 2, ctx: 512, ppl: 20.5, kld: 0.1, top1: 0.8, weightMiB: 50)
        try plan.save(to: url)
        let back = try WeightPlan.load(from: url, fingerprint: "abc123")
        #expect(back == plan)
        #expect(back.bitsPerWeight == 3)
        let specs = try back.specs()
        #expect(specs["blk.0.attn_k.weight"] == WeightSpec(format: WeightFormat.named("Q2G32"), outlierFraction: 0.005))
    }

    @Test func malformedPlansGiveSpecificErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("plan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(_ text: String) throws -> URL {
            let u = dir.appendingPathComponent(UUID().uuidString + ".json")
            try Data(text.utf8).write(to: u)
            return u
        }
        func error(_ url: URL, fingerprint: String? = nil) -> String {
            do { _ = try WeightPlan.load(from: url, fingerprint: fingerprint); return "no error" } catch { return "\(error)" }
        }
        #expect(error(dir.appendingPathComponent("none.json")).contains("cannot read"))
        #expect(error(try write("{ not json")).contains("not JSON"))
        #expect(error(try write("{\"format\": \"effterm-weight-plan\"}")).contains("missing key"))

        let good = try JSONEncoder().encode(Self.samplePlan())
        func mutate(_ f: (inout [String: Any]) -> Void) throws -> URL {
            var obj = try JSONSerialization.jsonObject(with: good) as! [String: Any]
            f(&obj)
            return try write(String(decoding: try JSONSerialization.data(withJSONObject: obj), as: UTF8.self))
        }
        #expect(error(try mutate { $0["format"] = "something-else" }).contains("format is 'something-else'"))
        #expect(error(try mutate { $0["version"] = 99 }).contains("version 99"))
        #expect(error(try mutate { $0["tensors"] = [["tensor": "blk.0.attn_q.weight", "spec": "Q9G7", "bytes": 1]] })
            .contains("spec for blk.0.attn_q.weight is invalid"))
        #expect(error(try mutate {
            $0["tensors"] = [["tensor": "blk.0.attn_q.weight", "spec": "Q4G32", "bytes": 1],
                             ["tensor": "blk.0.attn_q.weight", "spec": "Q3G32", "bytes": 1]]
        }).contains("names blk.0.attn_q.weight twice"))
        #expect(error(try mutate { $0["tensors"] = "Q4G32" }).contains("wrong type at 'tensors'"))
        #expect(error(try write(String(decoding: good, as: UTF8.self)), fingerprint: "fff999").contains("made for model abc123"))
    }
}
