import Foundation

/// Which update rule walks from noise to image.
public enum SamplerKind: String, CaseIterable, Sendable {
    /// DDPM ancestral sampling over every one of the T timesteps (Ho et al. 2020); `steps` is ignored.
    case ddpm
    /// DDIM (Song et al. 2021), deterministic for η = 0; uniform time spacing.
    case ddim
    /// DPM-Solver++(2M) (Lu et al. 2022): multistep second order in λ, uniform-λ spacing,
    /// first order at the first step and, under 15 steps, at the last (`lower_order_final`).
    case dpmpp2m
}

/// A data-prediction model as the samplers see it: x̂₀(x_τ, τ) for a whole latent.
///
/// Implementations (the guided DiT, analytic test denoisers) write the prediction for
/// `x` at time index `tau` into `x0`, both of `count` floats.
public protocol DataPredictor {
    mutating func predictX0(_ x: [Float], tau: Double, into x0: inout [Float])
}

/// What a sampler reports after each model evaluation (for previews and timing).
public struct SamplerStep {
    /// 0-based step number and total number of model evaluations.
    public var index: Int
    public var count: Int
    /// The time index the model was evaluated at.
    public var tau: Double
    /// The model's predicted clean image at this step.
    public var x0: [Float]
}

/// Runs one sampler from an initial noise latent to τ = 0; see TECHNIQUES.md §10.
///
/// All rules are written in terms of α, σ, λ at consecutive visited indices s > t:
/// - DDIM(η): x_t = α_t·x̂₀ + √(σ_t² − c²)·ε̂ + c·z, ε̂ = (x_s − α_s·x̂₀)/σ_s,
///   c = η·(σ_t/σ_s)·√(1 − α_s²/α_t²) (η = 1 is DDPM's posterior variance). For η = 0 this is
///   x_t = (σ_t/σ_s)·x_s − α_t·(e^{−h} − 1)·x̂₀ with h = λ_t − λ_s (first-order DPM-Solver++).
/// - DPM-Solver++(2M): D = x̂₀,s + (x̂₀,s − x̂₀,prev)/(2r), r = h_prev/h, in place of x̂₀.
/// - DDPM: posterior mean of q(x_t | x_s, x̂₀) plus √β̃·z, over all T steps.
public struct Sampler {
    public var kind: SamplerKind
    public var steps: Int
    /// DDIM's η (0 = deterministic). Ignored by the other kinds.
    public var eta: Double
    /// Overrides the kind's default spacing (tests, schedule experiments).
    public var spacing: TimeSpacing?
    /// DPM-Solver++ order cap: 1 turns 2M into first order (= DDIM).
    public var maxOrder: Int
    /// Searched schedules (USF-style): the visited time indices themselves, tauMax down to 0
    /// (overrides `steps` and `spacing` for DDIM and DPM-Solver++), and DPM-Solver++'s order
    /// at each step (1 or 2; replaces the first/last-step defaults).
    public var explicitTaus: [Double]?
    public var orders: [Int]?
    public let schedule: NoiseSchedule

    public init(kind: SamplerKind, steps: Int, eta: Double = 0, spacing: TimeSpacing? = nil, maxOrder: Int = 2,
                schedule: NoiseSchedule) {
        self.kind = kind
        self.steps = max(1, steps)
        self.eta = eta
        self.spacing = spacing
        self.maxOrder = maxOrder
        self.schedule = schedule
    }

    /// The visited time indices, from tauMax down to 0 (model evaluations = count − 1).
    public var taus: [Double] {
        switch kind {
        case .ddpm: return schedule.taus(steps: schedule.timesteps - 1, spacing: .everyTimestep)
        case .ddim: return explicitTaus ?? schedule.taus(steps: steps, spacing: spacing ?? .uniformTime)
        case .dpmpp2m: return explicitTaus ?? schedule.taus(steps: steps, spacing: spacing ?? .uniformLogSNR)
        }
    }

    /// Number of model evaluations one image needs.
    public var evaluations: Int { taus.count - 1 }

    /// Denoises `x` (initial noise, modified in place) to τ = 0; `noise` feeds the
    /// stochastic rules; `onStep` sees every prediction. Returns false when `shouldStop`
    /// (checked before each model evaluation) ended the run early.
    @discardableResult
    public func run<P: DataPredictor>(_ x: inout [Float], model: inout P, noise: inout GaussianNoise,
                                      shouldStop: () -> Bool = { false },
                                      onStep: (SamplerStep) -> Void = { _ in }) -> Bool {
        var cursor = SamplerCursor(self, count: x.count)
        var x0 = [Float](repeating: 0, count: x.count)
        while !cursor.isFinished {
            if shouldStop() { return false }
            model.predictX0(x, tau: cursor.tau, into: &x0)
            onStep(SamplerStep(index: cursor.index, count: cursor.count, tau: cursor.tau, x0: x0))
            cursor.advance(&x, x0: &x0, noise: &noise)
        }
        return true
    }
}

/// A sampler run one model evaluation at a time: read `tau`, evaluate the model there, then
/// `advance` with its x̂₀. `Sampler.run` is this loop; calibration searches that try several
/// model variants at one step before committing to one drive it directly.
public struct SamplerCursor {
    public let sampler: Sampler
    public let taus: [Double]
    /// Evaluations done so far (the index of the next one).
    public private(set) var index = 0
    private var prevX0: [Float]
    private var prevH: Double? = nil

    public init(_ sampler: Sampler, count: Int) {
        self.sampler = sampler
        taus = sampler.taus
        prevX0 = [Float](repeating: 0, count: count)
    }

    /// Total model evaluations.
    public var count: Int { taus.count - 1 }
    public var isFinished: Bool { index >= count }
    /// Where the next evaluation happens.
    public var tau: Double { taus[index] }

    /// One update from τ_index to τ_index+1 given x̂₀(x, τ_index); `x0` may be swapped with
    /// the cursor's history buffer (its contents are unspecified afterwards).
    public mutating func advance(_ x: inout [Float], x0: inout [Float], noise: inout GaussianNoise) {
        let i = index, n = self.count, len = x.count, kind = sampler.kind, schedule = sampler.schedule
        let s = taus[i], t = taus[i + 1]
        let (aS, sS) = schedule.alphaSigma(at: s)
        let (aT, sT) = schedule.alphaSigma(at: t)
        switch kind {
        case .ddpm:
            // β = 1 − ᾱ_s/ᾱ_t; mean = α_t·β/(1−ᾱ_s)·x̂₀ + √(1−β)·(1−ᾱ_t)/(1−ᾱ_s)·x_s
            let abS = aS * aS, abT = aT * aT
            let beta = 1 - abS / abT
            let c0 = Float(aT * beta / (1 - abS)), cx = Float((1 - beta).squareRoot() * (1 - abT) / (1 - abS))
            let sd = Float((beta * (1 - abT) / (1 - abS)).squareRoot())
            for j in 0..<len { x[j] = c0 * x0[j] + cx * x[j] + sd * noise.next() }
        case .ddim where sampler.eta > 0:
            let c = sampler.eta * (sT / sS) * max(0, 1 - (aS * aS) / (aT * aT)).squareRoot()
            let ce = Float(max(0, sT * sT - c * c).squareRoot())
            for j in 0..<len {
                let eps = (x[j] - Float(aS) * x0[j]) / Float(sS)
                x[j] = Float(aT) * x0[j] + ce * eps + Float(c) * noise.next()
            }
        case .ddim, .dpmpp2m:
            let h = (log(aT) - log(sT)) - (log(aS) - log(sS))
            let cx = Float(sT / sS), cd = Float(-aT * expm1(-h))
            let lowerFinal = i == n - 1 && n < 15
            let second = sampler.orders.map { i < $0.count && $0[i] >= 2 } ?? !lowerFinal
            if kind == .dpmpp2m, sampler.maxOrder >= 2, let ph = prevH, second {
                let k = Float(1 / (2 * (ph / h)))
                for j in 0..<len { x[j] = cx * x[j] + cd * (x0[j] + k * (x0[j] - prevX0[j])) }
            } else {
                for j in 0..<len { x[j] = cx * x[j] + cd * x0[j] }
            }
            prevH = h
            swap(&prevX0, &x0)
        }
        index += 1
    }
}
