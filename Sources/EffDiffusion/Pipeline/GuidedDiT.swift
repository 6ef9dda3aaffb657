import Foundation

/// The DiT with classifier-free guidance, as a `DataPredictor` for the samplers.
///
/// The latent holds K images (K = `classIDs.count`, usually 1). One forward pass runs a
/// batch of 2K rows in (conditional, unconditional-with-null-class) pairs, then
/// `out = out_u + scale·(out_c − out_u)` on every channel, then converts the guided output
/// to x̂₀ (v: x̂₀ = α·x − σ·v; ε: x̂₀ = (x − σ·ε)/α). With an attention schedule, the
/// forward pass of evaluation i runs under step i of the schedule (DiTFastAttn).
public struct GuidedDiT: DataPredictor {
    public let model: DiT
    public let schedule: NoiseSchedule
    /// One class per image in the latent.
    public var classIDs: [Int]
    public var classID: Int {
        get { classIDs[0] }
        set { classIDs = [newValue] }
    }
    public var guidance: Float
    /// Per-step attention modes; nil = full attention at every step (the reference model).
    public var attention: DiTAttentionSchedule?
    private let state: DiTState
    private var input: [Float]    // (2K, C, S, S)
    private var output: [Float]   // (2K, C, S, S)
    /// The guided network output of the newest evaluation, (K, C, S, S).
    public private(set) var guidedOutput: [Float]
    /// Model evaluations so far and the wall time they took.
    public private(set) var evaluations = 0
    public private(set) var forwardSeconds = 0.0
    /// Evaluations whose plan asked for a cache the state did not hold (ran full instead).
    public var attentionFallbacks: Int { state.fallbacks }

    public init(model: DiT, classID: Int, guidance: Float, attention: DiTAttentionSchedule? = nil) {
        self.init(model: model, classIDs: [classID], guidance: guidance, attention: attention)
    }

    public init(model: DiT, classIDs: [Int], guidance: Float, attention: DiTAttentionSchedule? = nil) {
        precondition(!classIDs.isEmpty, "GuidedDiT: no images")
        self.model = model
        self.schedule = NoiseSchedule(cosineWithTimesteps: model.config.timesteps)
        self.classIDs = classIDs
        self.guidance = guidance
        self.attention = attention
        state = DiTState(config: model.config, batch: 2 * classIDs.count)
        input = [Float](repeating: 0, count: 2 * classIDs.count * model.config.imageFloats)
        output = input
        guidedOutput = [Float](repeating: 0, count: classIDs.count * model.config.imageFloats)
    }

    /// The context evaluation `step` runs under: the schedule's modes for that step (full
    /// attention past its end or without a schedule).
    public func context(step: Int) -> DiTStepContext {
        guard let a = attention, step < a.steps else { return DiTStepContext(step: step) }
        return a.context(step: step)
    }

    public mutating func predictX0(_ x: [Float], tau: Double, into x0: inout [Float]) {
        evaluate(x, tau: tau, context: context(step: evaluations))
        evaluations += 1
        dataPrediction(x, tau: tau, into: &x0)
    }

    /// x̂₀ from `guidedOutput` (the newest evaluation at `x`, `tau`).
    public func dataPrediction(_ x: [Float], tau: Double, into x0: inout [Float]) {
        let n = x.count
        let (a, s) = schedule.alphaSigma(at: tau)
        let alpha = Float(a), sigma = Float(s)
        let isV = model.config.prediction == "v"
        for i in 0..<n {
            let o = guidedOutput[i]
            x0[i] = isV ? alpha * x[i] - sigma * o : (x[i] - sigma * o) / alpha
        }
    }

    /// Runs one guided forward pass under `context` and leaves the guided network output in
    /// `guidedOutput` (calibration trials pass `updateCaches: false` and do not count as
    /// evaluations).
    public mutating func evaluate(_ x: [Float], tau: Double, context: DiTStepContext) {
        let n = model.config.imageFloats, K = classIDs.count
        precondition(x.count == K * n, "GuidedDiT: latent size mismatch")
        for k in 0..<K {
            for i in 0..<n { input[2 * k * n + i] = x[k * n + i]; input[(2 * k + 1) * n + i] = x[k * n + i] }
        }
        if context.step == 0 && context.updateCaches { state.resetCaches() }
        let start = DispatchTime.now().uptimeNanoseconds
        var labels: [Int] = []
        for c in classIDs { labels.append(c); labels.append(model.config.numClasses) }
        let taus = [Double](repeating: tau, count: 2 * K)
        input.withUnsafeBufferPointer { inp in
            output.withUnsafeMutableBufferPointer { out in
                model.forward(x: inp.baseAddress!, tau: taus, labels: labels, state: state, out: out.baseAddress!,
                              context: context)
            }
        }
        forwardSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let g = guidance
        for k in 0..<K {
            let cond = 2 * k * n, uncond = (2 * k + 1) * n
            for i in 0..<n { guidedOutput[k * n + i] = output[uncond + i] + g * (output[cond + i] - output[uncond + i]) }
        }
    }
}
