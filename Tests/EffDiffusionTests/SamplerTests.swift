import Foundation
import Testing
@testable import EffDiffusion

/// Data x₀ ~ N(μ, s²) per element: the exact x̂₀ and the exact probability-flow ODE solution
/// are closed form, so samplers can be checked against the truth, not against each other.
struct GaussianData: DataPredictor {
    let mean: [Float]
    let std: Double
    let schedule: NoiseSchedule

    /// E[x₀ | x_τ] = μ + α s² / (α² s² + σ²) · (x_τ − α μ).
    mutating func predictX0(_ x: [Float], tau: Double, into x0: inout [Float]) {
        let (a, s) = schedule.alphaSigma(at: tau)
        let k = Float(a * std * std / (a * a * std * std + s * s))
        for i in x.indices { x0[i] = mean[i] + k * (x[i] - Float(a) * mean[i]) }
    }

    /// The ODE maps x_T to x_t = α_t μ + √(α_t² s² + σ_t²)/√(α_T² s² + σ_T²) · (x_T − α_T μ).
    func exactODE(from xT: [Float], tauT: Double, to tau: Double) -> [Float] {
        let (aT, sT) = schedule.alphaSigma(at: tauT), (a, s) = schedule.alphaSigma(at: tau)
        let r = Float(((a * a * std * std + s * s) / (aT * aT * std * std + sT * sT)).squareRoot())
        return xT.indices.map { Float(a) * mean[$0] + r * (xT[$0] - Float(aT) * mean[$0]) }
    }
}

private func maxAbs(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? 0 }

@Suite struct SamplerTests {
    let schedule = NoiseSchedule(cosineWithTimesteps: 1000)
    let mean: [Float] = (0..<48).map { Float(sin(Double($0))) * 0.6 }

    func start(_ seed: UInt64) -> [Float] { var g = GaussianNoise(seed: seed); return g.fill(48) }

    func run(_ sampler: Sampler, _ x: [Float], noiseSeed: UInt64 = 99) -> [Float] {
        var x = x
        var model = GaussianData(mean: mean, std: 0.3, schedule: schedule)
        var noise = GaussianNoise(seed: noiseSeed)
        sampler.run(&x, model: &model, noise: &noise)
        return x
    }

    /// Tolerance for identities that differ only by float32 rounding of the same algebra.
    static let algebraTolerance: Float = 2e-5

    @Test func ddimEqualsFirstOrderDPMSolverPlusPlusAndTheTextbookUpdate() {
        let x = start(1)
        for steps in [1, 5, 20] {
            let ddim = Sampler(kind: .ddim, steps: steps, schedule: schedule)
            let dpm1 = Sampler(kind: .dpmpp2m, steps: steps, spacing: .uniformTime, maxOrder: 1, schedule: schedule)
            // Textbook DDIM (Song et al. eq. 12, η = 0): x_t = α_t x̂₀ + σ_t ε̂, ε̂ = (x_s − α_s x̂₀)/σ_s.
            var ref = x
            var model = GaussianData(mean: mean, std: 0.3, schedule: schedule)
            var x0 = [Float](repeating: 0, count: 48)
            let taus = ddim.taus
            for i in 0..<(taus.count - 1) {
                model.predictX0(ref, tau: taus[i], into: &x0)
                let (aS, sS) = schedule.alphaSigma(at: taus[i]), (aT, sT) = schedule.alphaSigma(at: taus[i + 1])
                for j in ref.indices {
                    let eps = (Double(ref[j]) - aS * Double(x0[j])) / sS
                    ref[j] = Float(aT * Double(x0[j]) + sT * eps)
                }
            }
            let a = run(ddim, x), b = run(dpm1, x)
            #expect(maxAbs(a, b) <= Self.algebraTolerance, "steps \(steps)")
            #expect(maxAbs(a, ref) <= 1e-4, "steps \(steps)")
        }
    }

    @Test func deterministicSamplersConvergeToTheExactODESolution() {
        let x = start(2)
        let exact = GaussianData(mean: mean, std: 0.3, schedule: schedule).exactODE(from: x, tauT: schedule.tauMax, to: 0)
        let ddim10 = maxAbs(run(Sampler(kind: .ddim, steps: 10, schedule: schedule), x), exact)
        let ddim250 = maxAbs(run(Sampler(kind: .ddim, steps: 250, schedule: schedule), x), exact)
        let dpm10 = maxAbs(run(Sampler(kind: .dpmpp2m, steps: 10, schedule: schedule), x), exact)
        let dpm20 = maxAbs(run(Sampler(kind: .dpmpp2m, steps: 20, schedule: schedule), x), exact)
        let dpm200 = maxAbs(run(Sampler(kind: .dpmpp2m, steps: 200, schedule: schedule), x), exact)
        #expect(ddim250 < ddim10)
        #expect(dpm20 < dpm10)
        #expect(dpm10 < ddim10, "second order beats first order at equal steps")
        #expect(dpm200 < 2e-3, "DPM-Solver++ 200 steps: \(dpm200)")
        #expect(ddim250 < 1e-2, "DDIM 250 steps (first order): \(ddim250)")
    }

    @Test func ddimWithEtaOneOverAllTimestepsIsDDPM() {
        // Same noise stream, same visited indices: DDIM(η=1) and DDPM's posterior step coincide.
        let x = start(3)
        let ddpm = run(Sampler(kind: .ddpm, steps: 1, schedule: schedule), x, noiseSeed: 5)
        let ddim = run(Sampler(kind: .ddim, steps: 1, eta: 1, spacing: .everyTimestep, schedule: schedule), x, noiseSeed: 5)
        #expect(maxAbs(ddpm, ddim) < 1e-3, "\(maxAbs(ddpm, ddim))")
        // And DDPM lands on the data distribution: per-element mean error shrinks with noise only.
        let err = zip(ddpm, mean).map { abs($0 - $1) }.max()!
        #expect(err < 1.5, "DDPM sample within the data spread: \(err)")
    }

    @Test func samplerStepCountsAndReports() {
        var seen: [Int] = []
        var x = start(4)
        var model = GaussianData(mean: mean, std: 0.3, schedule: schedule)
        var noise = GaussianNoise(seed: 1)
        let s = Sampler(kind: .dpmpp2m, steps: 7, schedule: schedule)
        s.run(&x, model: &model, noise: &noise) { seen.append($0.index); #expect($0.count == 7) }
        #expect(seen == Array(0..<7))
        #expect(Sampler(kind: .ddpm, steps: 3, schedule: schedule).evaluations == 999)
    }
}
