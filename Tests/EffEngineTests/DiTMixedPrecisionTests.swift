import EffCore
import EffDiffusion
import Foundation
import Testing
@testable import EffEngine

/// MixDQ-style planning for the DiT's block linears: the scan on a short sampler, and the
/// knapsack's choices under budgets.
@Suite struct DiTMixedPrecisionTests {
    @Test func scanFindsFourBitsWorseThanEightAndPlansFitTheirBudget() throws {
        let b = try DiTBundle.bundled()
        var calls = 0
        let s = try DiTMixedPrecision.scan(weights: b.weights, sampler: .dpmpp2m, steps: 3, guidance: 3,
                                          inputs: [(classID: 1, seed: 5)]) { done, total in
            calls += 1
            #expect(done <= total)
        }
        let kinds = DiTBlockMatrix.allCases.count
        #expect(calls == b.config.nLayers * kinds * 2)
        let flat = s.mse.flatMap { $0 }
        #expect(flat.count == b.config.nLayers * kinds && flat.allSatisfy { $0.count == 2 && $0.allSatisfy { $0 >= 0 && $0.isFinite } })
        let sum8 = flat.reduce(0) { $0 + $1[0] }, sum4 = flat.reduce(0) { $0 + $1[1] }
        #expect(sum4 > 4 * sum8, "4-bit total \(sum4) vs 8-bit \(sum8)")

        let params = b.weights.blockLinearParameters
        var last = -1.0
        for bits in [8.5, 7.0, 6.0, 5.0] {
            let plan = try DiTMixedPrecision.plan(s, weights: b.weights, bitsPerWeight: bits)
            #expect(plan.bytes * 8 <= Int(bits * Double(params)) + 8, "\(bits) bpw: \(plan.bytes) bytes")
            #expect(plan.predictedMSE >= last, "a smaller budget cannot predict less damage")
            last = plan.predictedMSE
            let q = try DiTQuant(weights: b.weights, formats: plan.formats)
            #expect(q.blockBytes == plan.bytes)
        }
        // At 8.5 bits everything fits in Q8_0; at 5.0 only Q4_1 does.
        #expect(try DiTMixedPrecision.plan(s, weights: b.weights, bitsPerWeight: 8.5).histogram == ["Q8_0": b.config.nLayers * kinds])
        #expect(try DiTMixedPrecision.plan(s, weights: b.weights, bitsPerWeight: 5.0).histogram == ["Q4_1": b.config.nLayers * kinds])
        #expect(throws: (any Error).self) { try DiTMixedPrecision.plan(s, weights: b.weights, bitsPerWeight: 4.0) }
    }

    /// With made-up sensitivities the plan keeps exactly the sensitive matrices at 8 bits.
    @Test func theMostSensitiveMatricesKeepEightBits() throws {
        let b = try DiTBundle.bundled()
        let layers = b.config.nLayers, kinds = DiTBlockMatrix.allCases
        // fc1 of every block is very sensitive to 4 bits; everything else barely.
        let mse = (0..<layers).map { _ in kinds.map { m in [0.0, m == .fc1 ? 1.0 : 0.001] } }
        let s = DiTMixedPrecision.Sensitivity(choices: [.q8_0, .q4_1], mse: mse, seconds: 0)
        let fc1Extra = b.weights.blocks.reduce(0) { acc, blk in
            acc + blk.fc1.rows * (WeightFormat.q8_0.rowBytes(blk.fc1.cols)! - WeightFormat.q4_1.rowBytes(blk.fc1.cols)!)
        }
        let allQ4 = try DiTQuant(weights: b.weights, formats: DiTQuant.uniform(b.weights, .q4_1)).blockBytes
        let params = b.weights.blockLinearParameters
        let bits = Double((allQ4 + fc1Extra) * 8) / Double(params) + 1e-9
        let plan = try DiTMixedPrecision.plan(s, weights: b.weights, bitsPerWeight: bits)
        for l in 0..<layers {
            for m in kinds { #expect(plan.formats[l][m.rawValue] == (m == .fc1 ? .q8_0 : .q4_1), "block \(l) \(m)") }
        }
    }
}
