import EffCore
import EffDiffusion
import Foundation
import Testing
@testable import EffEngine

/// OMS-DPM-style model schedules over the two shipped DiTs.
@Suite struct ModelScheduleSearchTests {
    @Test func oneModelEverywhereIsThatModelAndBudgetsBound() throws {
        let base = try DiTBundle.bundled().model, small = try DiTBundle.bundled("dit-small").model
        let r = GenerationRequest(classID: 5, sampler: .dpmpp2m, steps: 6, guidance: 3, seed: 4)
        #expect(ImageGenerator.generate(r, models: [base, small], perStep: [0]).planar == ImageGenerator(model: base).generate(r).planar)
        #expect(ImageGenerator.generate(r, models: [base, small], perStep: [1]).planar == ImageGenerator(model: small).generate(r).planar)

        let found = try ModelScheduleSearch.search(models: [("dit-base", base), ("dit-small", small)], steps: 6, guidance: 3,
                                                   inputs: [(classID: 2, seed: 1)], timeFractions: [1.0, 0.75],
                                                   clampToFeasible: true)
        #expect(found[0].perStep == [0, 0, 0, 0, 0, 0] && found[0].predictedError == 0 && found[0].map == "bbbbbb")
        // Timings are measured: on a loaded machine dit-small may not fit 75% everywhere
        // but once, and then the clamp gives the cheapest schedule.
        let cheapest = found[1].msPerEvaluation.min()! / found[1].msPerEvaluation[0]
        #expect(found[1].predictedTimeFraction <= max(0.75, cheapest) + 1e-3, "\(found[1].map) \(found[1].msPerEvaluation)")
        #expect(found[1].predictedError >= 0 && found[1].perStep.count == 6)
        #expect(throws: (any Error).self, "below dit-small everywhere nothing fits") {
            try ModelScheduleSearch.search(models: [("dit-base", base), ("dit-small", small)], steps: 2, guidance: 3,
                                           inputs: [(classID: 2, seed: 1)], timeFractions: [0.01])
        }
    }
}
