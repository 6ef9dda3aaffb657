import Foundation
import Testing
@testable import EffDiffusion

@Suite struct NoiseScheduleTests {
    let s = NoiseSchedule(cosineWithTimesteps: 1000)

    @Test func cosineAlphaBarIsMonotoneAndSpansNearlyOneToNearlyZero() {
        #expect(s.alphaBar[0] > 0.9999 && s.alphaBar[0] < 1)
        #expect(s.alphaBar[999] < 1e-4)
        #expect(zip(s.alphaBar, s.alphaBar.dropFirst()).allSatisfy { $0 > $1 })
        // Midpoint of the cosine schedule: ᾱ(T/2) ≈ cos²((0.5 + s)/(1 + s)·π/2) / cos²(s/(1+s)·π/2).
        let f = { (t: Double) in pow(cos((t + 0.008) / 1.008 * Double.pi / 2), 2) }
        #expect(abs(s.alphaBar[499] - f(0.5) / f(0)) < 1e-6)
    }

    @Test func lambdaInversionRoundTrips() {
        for tau in stride(from: 0.0, through: 999.0, by: 37.25) {
            #expect(abs(s.tau(atLambda: s.lambda(at: tau)) - tau) < 1e-6, "tau \(tau)")
        }
    }

    @Test func spacingsStartAtTheTopAndEndAtZero() {
        for spacing in [TimeSpacing.uniformTime, .uniformLogSNR] {
            let t = s.taus(steps: 20, spacing: spacing)
            #expect(t.count == 21 && t.first == 999 && t.last == 0)
            #expect(zip(t, t.dropFirst()).allSatisfy { $0 > $1 })
        }
        let l = s.taus(steps: 10, spacing: .uniformLogSNR).map { s.lambda(at: $0) }
        let gaps = zip(l.dropFirst(), l).map { $0 - $1 }
        #expect(gaps.allSatisfy { abs($0 - gaps[0]) < 1e-6 })
    }

    @Test func gaussianNoiseIsReproducibleAndStandard() {
        var a = GaussianNoise(seed: 42), b = GaussianNoise(seed: 42), c = GaussianNoise(seed: 43)
        let xa = a.fill(100_000), xb = b.fill(100_000), xc = c.fill(10)
        #expect(xa == xb)
        #expect(Array(xa.prefix(10)) != xc)
        let mean = xa.reduce(0, +) / Float(xa.count)
        let variance = xa.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(xa.count)
        #expect(abs(mean) < 0.02 && abs(variance - 1) < 0.02)
    }
}
