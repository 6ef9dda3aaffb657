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
                                                   inputs: [(classID: 2, seed: 1)], timeFractions: [1.0, 0.75])
        #expect(found[0].perStep == [0, 0, 0, 0, 0, 0] && found[0].predictedError == 0 && found[0].map == "bbbbbb")
        #expect(found[1].predictedTimeFraction <= 0.75 && found[1].perStep.contains(1) && found[1].perStep.contains(0),
                "\(found[1].map)")
        #expect(found[0].msPerEvaluation[1] < found[0].msPerEvaluation[0], "dit-small is the faster model")
        #expect(throws: (any Error).self, "below dit-small everywhere nothing fits") {
            try ModelScheduleSearch.search(models: [("dit-base", base), ("dit-small", small)], steps: 2, guidance: 3,
                                           inputs: [(classID: 2, seed: 1)], timeFractions: [0.01])
        }
    }
}
