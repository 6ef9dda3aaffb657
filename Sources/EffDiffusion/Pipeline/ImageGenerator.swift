import EffCore
import Foundation

/// What to generate: class, sampler, step count, guidance scale and noise seed.
public struct GenerationRequest: Equatable, Sendable {
    public var classID: Int
    public var sampler: SamplerKind
    public var steps: Int
    public var guidance: Float
    public var seed: UInt64
    /// DiTFastAttn modes per (step, block); nil = full attention everywhere.
    public var attention: DiTAttentionSchedule?
    /// A searched timestep schedule (`Sampler.explicitTaus` / `orders`); nil = the sampler's
    /// own spacing for `steps`.
    public var taus: [Double]?
    public var orders: [Int]?

    public init(classID: Int, sampler: SamplerKind = .dpmpp2m, steps: Int = 20, guidance: Float = 3, seed: UInt64 = 0,
                attention: DiTAttentionSchedule? = nil) {
        self.classID = classID; self.sampler = sampler; self.steps = steps; self.guidance = guidance; self.seed = seed
        self.attention = attention
    }
}

/// A finished image with its timings.
public struct GenerationResult: Sendable {
    /// (channels, S, S) floats, nominally in [-1, 1].
    public var planar: [Float]
    public var image: RGBImage
    /// Guided model evaluations (each one forward pass over a batch of 2).
    public var evaluations: Int
    public var totalMilliseconds: Double
    public var forwardMilliseconds: Double
    /// False when the run was cancelled before the last step (`planar` is then partial).
    public var completed: Bool = true
    /// Steps where the attention plan asked for a cache that was not there (ran full attention).
    public var attentionFallbacks = 0
    public var millisecondsPerStep: Double { evaluations > 0 ? totalMilliseconds / Double(evaluations) : 0 }
}

/// Runs requests against one loaded DiT; synchronous, one image at a time.
public struct ImageGenerator: Sendable {
    public let model: DiT

    public init(model: DiT) { self.model = model }

    /// The initial latent for a seed: standard normal noise in (channels, S, S) order.
    public func initialNoise(seed: UInt64) -> [Float] {
        var noise = GaussianNoise(seed: seed)
        return noise.fill(model.config.imageFloats)
    }

    /// Generates one image; `onStep` sees each step's predicted x̂₀ (for previews).
    public func generate(_ r: GenerationRequest, shouldStop: () -> Bool = { false },
                         onStep: (SamplerStep) -> Void = { _ in }) -> GenerationResult {
        let start = DispatchTime.now().uptimeNanoseconds
        var rng = GaussianNoise(seed: r.seed)
        var x = rng.fill(model.config.imageFloats)
        var guided = GuidedDiT(model: model, classID: r.classID, guidance: r.guidance, attention: r.attention)
        var sampler = Sampler(kind: r.sampler, steps: r.steps, schedule: guided.schedule)
        sampler.explicitTaus = r.taus
        sampler.orders = r.orders
        let completed = sampler.run(&x, model: &guided, noise: &rng, shouldStop: shouldStop, onStep: onStep)
        let total = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        let s = model.config.imageSize
        return GenerationResult(planar: x, image: RGBImage(planar: x, width: s, height: s),
                                evaluations: guided.evaluations, totalMilliseconds: total,
                                forwardMilliseconds: guided.forwardSeconds * 1000, completed: completed,
                                attentionFallbacks: guided.attentionFallbacks)
    }
}

/// A model schedule (OMS-DPM): several DiTs trained for the same data and noise schedule,
/// one chosen per sampler step, behind one `DataPredictor`.
public struct ModelScheduledDiT: DataPredictor {
    private var guided: [GuidedDiT]
    /// Index into the models for every step (the last entry repeats past the end).
    public let perStep: [Int]
    public private(set) var step = 0

    public var evaluations: Int { step }
    public var forwardSeconds: Double { guided.reduce(0) { $0 + $1.forwardSeconds } }

    public init(models: [DiT], perStep: [Int], classID: Int, guidance: Float) {
        precondition(!models.isEmpty && !perStep.isEmpty && perStep.allSatisfy { models.indices.contains($0) },
                     "ModelScheduledDiT: a step names a missing model")
        let c = models[0].config
        precondition(models.allSatisfy {
            $0.config.imageFloats == c.imageFloats && $0.config.timesteps == c.timesteps
                && $0.config.prediction == c.prediction && $0.config.numClasses == c.numClasses
        }, "ModelScheduledDiT: models differ in image, timesteps, prediction or classes")
        guided = models.map { GuidedDiT(model: $0, classID: classID, guidance: guidance) }
        self.perStep = perStep
    }

    public mutating func predictX0(_ x: [Float], tau: Double, into x0: inout [Float]) {
        let m = perStep[min(step, perStep.count - 1)]
        guided[m].predictX0(x, tau: tau, into: &x0)
        step += 1
    }
}

extension ImageGenerator {
    /// Generates `r` with `models[perStep[i]]` at step i (OMS-DPM); no attention schedule.
    public static func generate(_ r: GenerationRequest, models: [DiT], perStep: [Int], shouldStop: () -> Bool = { false },
                                onStep: (SamplerStep) -> Void = { _ in }) -> GenerationResult {
        let start = DispatchTime.now().uptimeNanoseconds
        var rng = GaussianNoise(seed: r.seed)
        var x = rng.fill(models[0].config.imageFloats)
        var predictor = ModelScheduledDiT(models: models, perStep: perStep, classID: r.classID, guidance: r.guidance)
        var sampler = Sampler(kind: r.sampler, steps: r.steps, schedule: NoiseSchedule(cosineWithTimesteps: models[0].config.timesteps))
        sampler.explicitTaus = r.taus
        sampler.orders = r.orders
        let completed = sampler.run(&x, model: &predictor, noise: &rng, shouldStop: shouldStop, onStep: onStep)
        let total = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        let s = models[0].config.imageSize
        return GenerationResult(planar: x, image: RGBImage(planar: x, width: s, height: s),
                                evaluations: predictor.evaluations, totalMilliseconds: total,
                                forwardMilliseconds: predictor.forwardSeconds * 1000, completed: completed)
    }
}
