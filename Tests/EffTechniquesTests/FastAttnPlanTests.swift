import Foundation
import Testing
@testable import EffTechniques

@Suite struct FastAttnPlanTests {
    func plan() -> FastAttnPlan {
        FastAttnPlan(model: "dit-base", sampler: "dpmpp2m", guidance: 3, window: 8, delta: 0.05,
                     strategies: [[.full, .asc], [.ast, .warsASC], [.wars, .full]], notes: ["k": "v"])
    }

    @Test func roundTripsThroughJSON() throws {
        let p = plan()
        let back = try FastAttnPlan.load(from: try p.encoded())
        #expect(back == p)
        #expect(back.steps == 3 && back.layers == 2)
        #expect(back.map == ["FSW", "CwF"])
        #expect(back.histogram[.full] == 2 && back.histogram[.warsASC] == 1)
        let text = String(decoding: try p.encoded(), as: UTF8.self)
        #expect(text.contains("\"wars+asc\"") && text.contains("\"effterm-ditfastattn-plan\""))
    }

    func reject(_ json: String) -> String {
        do { _ = try FastAttnPlan.load(from: Data(json.utf8)); return "accepted" } catch { return "\(error)" }
    }

    @Test func badFilesGetClearErrors() throws {
        #expect(reject("[1, 2]") == "not a DiTFastAttn plan: not a JSON object")
        #expect(reject(#"{"format": "gguf", "version": 1}"#)
                == "not a DiTFastAttn plan: \"format\" is 'gguf', expected 'effterm-ditfastattn-plan'")
        #expect(reject(#"{"format": "effterm-ditfastattn-plan", "version": 7}"#)
                == "not a DiTFastAttn plan: version 7 (this effterm reads version 1)")
        var good = String(decoding: try plan().encoded(), as: UTF8.self)
        let badStrategy = good.replacingOccurrences(of: "\"wars+asc\"", with: "\"sparse\"")
        #expect(reject(badStrategy).contains("strategies[1][1]"), "\(reject(badStrategy))")
        #expect(reject(badStrategy).contains("sparse"))
        let missing = good.replacingOccurrences(of: "\"window\"", with: "\"windw\"")
        #expect(reject(missing) == "invalid DiTFastAttn plan: missing \"window\"")
        var p = plan()
        p.strategies[0][1] = .ast
        good = String(decoding: try p.encoded(), as: UTF8.self)
        #expect(reject(good) == "invalid DiTFastAttn plan: step 0 block 1 is 'ast': the first step has no earlier attention to reuse")
        p = plan()
        p.strategies[2] = [.full]
        #expect(reject(String(decoding: try p.encoded(), as: UTF8.self)) == "invalid DiTFastAttn plan: step 2 has 1 strategies, step 0 has 2")
        p = plan()
        p.window = 0
        #expect(reject(String(decoding: try p.encoded(), as: UTF8.self)) == "invalid DiTFastAttn plan: window 0 must be at least 1")
        #expect(throws: FastAttnPlan.LoadError.invalid("plan covers 3 steps, the run has 20 (pass --steps 3)")) {
            try plan().check(layers: 2, steps: 20)
        }
        #expect(throws: FastAttnPlan.LoadError.self) { try FastAttnPlan.load(path: "/nonexistent/plan.json") }
    }

    @Test func relativeErrorFollowsTheAuthorsFormula() {
        #expect(FastAttnSearch.relativeError([1, 2], [1, 2]) == 0)
        // |1 − 0.5| / 1 = 0.5 and |−2 − 2| / 2 = 2: mean 1.25.
        #expect(abs(FastAttnSearch.relativeError([1, -2], [0.5, 2]) - 1.25) < 1e-6)
        // A sign flip is the worst case (2); ε keeps exact zeros finite.
        #expect(abs(FastAttnSearch.relativeError([1e-3], [-1e-3]) - 2) < 1e-2)
        #expect(FastAttnSearch.relativeError([0], [0]) == 0)
    }
}

/// A scripted model: the output is a sum of per-(block, strategy) perturbations, so the
/// greedy search's decisions can be predicted exactly.
private struct ScriptedTarget: FastAttnCalibrationTarget {
    let layers = 3
    let steps = 3
    /// Error each strategy adds to the output, per block.
    let cost: [FastAttnStrategy: [Float]] = [.full: [0, 0, 0], .ast: [0.5, 0.01, 0.5], .warsASC: [0.04, 0.5, 0.5],
                                             .wars: [0.5, 0.5, 0.02], .asc: [0.01, 0.5, 0.5]]
    var commits: [[FastAttnStrategy]] = []

    mutating func output(step: Int, strategies: [FastAttnStrategy], commit: Bool) -> [Float] {
        if commit { commits.append(strategies) }
        let e = strategies.enumerated().reduce(Float(0)) { $0 + cost[$1.element]![$1.offset] }
        return [1 + e]
    }
}

@Suite struct FastAttnSearchTests {
    /// The output is 1 + e against a reference of 1, so the error is e / (1 + e). δ = 0.09
    /// over 3 blocks gives bounds 0.03, 0.06, 0.09: block 0 rejects AST (e 0.5), WA-RS+ASC
    /// (0.04 → 0.038) and WA-RS, then takes ASC (0.01); block 1 takes AST (e 0.02 → 0.0196);
    /// block 2 rejects AST and WA-RS+ASC and takes WA-RS (e 0.04 → 0.0385).
    @Test func greedyPicksTheFirstCandidateUnderEachBlocksBound() {
        var t = ScriptedTarget()
        let r = FastAttnSearch(delta: 0.09).run(&t)
        #expect(r.strategies[0] == [.full, .full, .full])
        #expect(r.strategies[1] == [.asc, .ast, .wars])
        #expect(r.strategies[2] == [.asc, .ast, .wars])
        #expect(t.commits == r.strategies)
        #expect(abs(r.errors[1][2] - 0.04 / 1.04) < 1e-6)
        // reference + (4 + 1 + 3) trials per step after the first
        #expect(r.trials == 2 * (1 + 4 + 1 + 3))
    }

    @Test func zeroThresholdKeepsFullAttention() {
        var t = ScriptedTarget()
        let r = FastAttnSearch(delta: 0).run(&t)
        #expect(r.strategies.allSatisfy { $0 == [.full, .full, .full] })
    }
}
