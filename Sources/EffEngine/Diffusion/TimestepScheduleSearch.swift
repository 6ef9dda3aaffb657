import EffCore
import EffDiffusion
import Foundation

/// A searched DPM-Solver++ schedule for a fixed number of steps (USF-style): where the steps
/// fall and which order each one uses.
public struct TimestepSchedule: Codable, Sendable, Equatable {
    public var steps: Int
    /// Visited time indices, tauMax down to 0 (steps + 1 values).
    public var taus: [Double]
    /// DPM-Solver++ order per step (1 or 2).
    public var orders: [Int]
    /// Mean squared image error against the reference sampler on the calibration inputs,
    /// for this schedule and for the default uniform-logSNR one with the same steps.
    public var error: Double
    public var defaultError: Double
}

/// USF-style search (Liu et al., "A Unified Sampling Framework for Solver Searching of
/// Diffusion Probabilistic Models", 2023), reduced to the two choices that matter most at
/// few steps: the timestep placement and the solver order per step. The score is paired: the
/// mean squared error of images sampled from the same noise and class against a long
/// reference run (250-step DDIM by default) on calibration inputs disjoint from the measured
/// ones. The search is a seeded local search in logSNR space: move one interior step between
/// its neighbours or flip one step's order, keep the change when the error drops, shrink the
/// moves as it goes. USF itself searches more components (solver type, derivative
/// estimates, ...) with an evolutionary search; that is not reproduced here.
public enum TimestepScheduleSearch {
    /// Reference images: `referenceSteps` of DDIM on every input.
    public static func reference(model: DiT, guidance: Float, inputs: [(classID: Int, seed: UInt64)],
                                 referenceSteps: Int = 250) -> [[Float]] {
        let g = ImageGenerator(model: model)
        return inputs.map {
            g.generate(GenerationRequest(classID: $0.classID, sampler: .ddim, steps: referenceSteps, guidance: guidance,
                                         seed: $0.seed)).planar
        }
    }

    /// Mean squared error of `taus`/`orders` (nil: the default schedule for `steps`) against
    /// `reference`.
    public static func error(model: DiT, steps: Int, taus: [Double]?, orders: [Int]?, guidance: Float,
                             inputs: [(classID: Int, seed: UInt64)], reference: [[Float]]) -> Double {
        let g = ImageGenerator(model: model)
        var total = 0.0
        for (input, ref) in zip(inputs, reference) {
            var r = GenerationRequest(classID: input.classID, sampler: .dpmpp2m, steps: steps, guidance: guidance, seed: input.seed)
            r.taus = taus; r.orders = orders
            total += ImageMetrics.meanSquaredError(g.generate(r).planar, ref)
        }
        return total / Double(max(1, inputs.count))
    }

    /// Searches a schedule of `steps` steps with `iterations` proposals; `progress(done, total)`.
    public static func search(model: DiT, steps: Int, guidance: Float, inputs: [(classID: Int, seed: UInt64)],
                              reference: [[Float]], iterations: Int = 60, seed: UInt64 = 1,
                              progress: (Int, Int) -> Void = { _, _ in }) -> TimestepSchedule {
        let schedule = NoiseSchedule(cosineWithTimesteps: model.config.timesteps)
        let l0 = schedule.lambda(at: schedule.tauMax), l1 = schedule.lambda(at: 0)
        func taus(_ u: [Double]) -> [Double] {
            var t = u.map { schedule.tau(atLambda: l0 + $0 * (l1 - l0)) }
            t[0] = schedule.tauMax
            t[t.count - 1] = 0
            return t
        }
        // Start from DPM-Solver++'s defaults: uniform logSNR, first order at the first step
        // and (under 15 steps) at the last.
        var u = (0...steps).map { Double($0) / Double(steps) }
        var orders = (0..<steps).map { i in i == 0 || (i == steps - 1 && steps < 15) ? 1 : 2 }
        func score(_ u: [Double], _ o: [Int]) -> Double {
            error(model: model, steps: steps, taus: taus(u), orders: o, guidance: guidance, inputs: inputs, reference: reference)
        }
        let defaultError = error(model: model, steps: steps, taus: nil, orders: nil, guidance: guidance,
                                 inputs: inputs, reference: reference)
        var best = score(u, orders)
        var rng = SplitMix64(seed: seed)
        var scale = 0.5
        for it in 0..<iterations {
            progress(it, iterations)
            var cu = u, co = orders
            if steps >= 2 && rng.nextUnit() < 0.75 {
                // Move one interior knot toward a neighbour, by up to `scale` of the gap.
                let i = 1 + Int(rng.next() % UInt64(steps - 1))
                let lo = u[i - 1], hi = u[i + 1]
                let move = (rng.nextUnit() * 2 - 1) * scale
                cu[i] = move >= 0 ? u[i] + move * (hi - u[i]) : u[i] + move * (u[i] - lo)
                cu[i] = min(hi - 1e-4, max(lo + 1e-4, cu[i]))
            } else if steps >= 2 {
                // Flip one step's order (the first step has no history: always first order).
                let i = 1 + Int(rng.next() % UInt64(steps - 1))
                co[i] = co[i] == 2 ? 1 : 2
            }
            let e = score(cu, co)
            if e < best { best = e; u = cu; orders = co } else { scale = max(0.05, scale * 0.97) }
        }
        progress(iterations, iterations)
        return TimestepSchedule(steps: steps, taus: taus(u), orders: orders, error: best, defaultError: defaultError)
    }
}
