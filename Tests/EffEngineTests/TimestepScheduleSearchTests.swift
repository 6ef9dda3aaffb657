import EffCore
import EffDiffusion
import Foundation
import Testing
@testable import EffEngine

/// USF-style schedule search: the explicit-schedule plumbing reproduces the default sampler,
/// and a search never ends worse than where it started.
@Suite struct TimestepScheduleSearchTests {
    @Test func explicitDefaultScheduleReproducesTheSampler() throws {
        let b = try DiTBundle.bundled()
        let g = ImageGenerator(model: b.model)
        for steps in [5, 8, 20] {
            let plain = GenerationRequest(classID: 3, sampler: .dpmpp2m, steps: steps, guidance: 3, seed: 9)
            var explicit = plain
            let sampler = Sampler(kind: .dpmpp2m, steps: steps, schedule: NoiseSchedule(cosineWithTimesteps: b.config.timesteps))
            explicit.taus = sampler.taus
            explicit.orders = (0..<steps).map { i in i == 0 || (i == steps - 1 && steps < 15) ? 1 : 2 }
            #expect(g.generate(explicit).planar == g.generate(plain).planar, "\(steps) steps")
            var firstOrder = explicit
            firstOrder.orders = Array(repeating: 1, count: steps)
            var ddim = plain
            ddim.sampler = .ddim; ddim.taus = sampler.taus
            #expect(g.generate(firstOrder).planar == g.generate(ddim).planar, "order 1 everywhere is DDIM on the same steps")
        }
    }

    @Test func searchNeverEndsWorseAndKeepsAValidSchedule() throws {
        let b = try DiTBundle.bundled()
        let inputs: [(classID: Int, seed: UInt64)] = [(classID: 0, seed: 11), (classID: 7, seed: 12)]
        let reference = TimestepScheduleSearch.reference(model: b.model, guidance: 3, inputs: inputs, referenceSteps: 40)
        var seen = 0
        let found = TimestepScheduleSearch.search(model: b.model, steps: 4, guidance: 3, inputs: inputs,
                                                  reference: reference, iterations: 12) { done, total in
            seen = max(seen, done); #expect(total == 12)
        }
        #expect(seen == 12)
        #expect(found.error <= found.defaultError && found.error > 0)
        #expect(found.taus.count == 5 && found.orders.count == 4 && found.orders[0] == 1)
        #expect(found.taus.first == Double(b.config.timesteps - 1) && found.taus.last == 0)
        #expect(zip(found.taus, found.taus.dropFirst()).allSatisfy { $0 > $1 }, "\(found.taus)")
        // The reported error is the schedule's own.
        let again = TimestepScheduleSearch.error(model: b.model, steps: 4, taus: found.taus, orders: found.orders,
                                                 guidance: 3, inputs: inputs, reference: reference)
        #expect(again == found.error)
    }
}
