import Foundation

/// The variance-preserving cosine noise schedule in continuous time (Nichol & Dhariwal 2021).
///
/// Discrete `alphaBar[k]`, k = 0..<T, come from betas `1 - f(k+1)/f(k)` clipped at 0.999 with
/// `f(t) = cos²((t/T + s)/(1 + s) · π/2)`, s = 0.008. A continuous index `tau` in [0, T-1]
/// interpolates `log α` piecewise-linearly between them (DPM-Solver's discrete convention),
/// so samplers may visit fractional timesteps; the DiT takes `tau` as its time input.
/// Notation (TECHNIQUES.md §10): α = √ᾱ, σ = √(1-ᾱ), λ = log(α/σ).
public struct NoiseSchedule: Sendable {
    public let timesteps: Int
    /// ᾱ_k for k in 0..<timesteps, computed in Double.
    public let alphaBar: [Double]
    /// 0.5·log ᾱ_k, the interpolation table.
    public let logAlpha: [Double]

    public init(cosineWithTimesteps T: Int = 1000, s: Double = 0.008, maxBeta: Double = 0.999) {
        precondition(T >= 2, "NoiseSchedule needs at least 2 timesteps")
        func f(_ t: Double) -> Double { let c = cos((t / Double(T) + s) / (1 + s) * Double.pi / 2); return c * c }
        var acc = 1.0
        var ab = [Double]()
        ab.reserveCapacity(T)
        for i in 0..<T {
            acc *= 1 - min(1 - f(Double(i + 1)) / f(Double(i)), maxBeta)
            ab.append(acc)
        }
        timesteps = T
        alphaBar = ab
        logAlpha = ab.map { 0.5 * log($0) }
    }

    /// The largest time index, where sampling starts.
    public var tauMax: Double { Double(timesteps - 1) }

    /// log α at a continuous index, linear between table entries (clamped to the table).
    public func logAlpha(at tau: Double) -> Double {
        let t = min(max(tau, 0), tauMax)
        let k = min(Int(t), timesteps - 2)
        let w = t - Double(k)
        return logAlpha[k] * (1 - w) + logAlpha[k + 1] * w
    }

    /// (α, σ) at a continuous index.
    public func alphaSigma(at tau: Double) -> (alpha: Double, sigma: Double) {
        let la = logAlpha(at: tau)
        return (exp(la), (max(0, -expm1(2 * la))).squareRoot())
    }

    /// λ = log α − log σ (half the log-SNR); decreasing in tau.
    public func lambda(at tau: Double) -> Double {
        let la = logAlpha(at: tau)
        return la - 0.5 * log(-expm1(2 * la))
    }

    /// The index whose λ equals `lambda`: log α = −½·log(1 + e^{−2λ}), then invert the table.
    public func tau(atLambda lambda: Double) -> Double {
        let la = -0.5 * log1p(exp(-2 * lambda))
        // logAlpha is decreasing: find k with logAlpha[k] >= la >= logAlpha[k+1].
        if la >= logAlpha[0] { return 0 }
        if la <= logAlpha[timesteps - 1] { return tauMax }
        var lo = 0, hi = timesteps - 1
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if logAlpha[mid] >= la { lo = mid } else { hi = mid }
        }
        let w = (logAlpha[lo] - la) / (logAlpha[lo] - logAlpha[hi])
        return Double(lo) + w
    }

    /// `steps + 1` indices from tauMax down to 0: uniform in time, or uniform in λ.
    public func taus(steps: Int, spacing: TimeSpacing) -> [Double] {
        precondition(steps >= 1, "at least one step")
        switch spacing {
        case .uniformTime:
            return (0...steps).map { tauMax - Double($0) * tauMax / Double(steps) }
        case .uniformLogSNR:
            let l0 = lambda(at: tauMax), l1 = lambda(at: 0)
            var out = (0...steps).map { tau(atLambda: l0 + Double($0) * (l1 - l0) / Double(steps)) }
            out[0] = tauMax
            out[steps] = 0
            return out
        case .everyTimestep:
            return (0..<timesteps).reversed().map(Double.init)
        }
    }
}

/// How a sampler places its timesteps between tauMax and 0.
public enum TimeSpacing: String, Sendable {
    case uniformTime, uniformLogSNR, everyTimestep
}
