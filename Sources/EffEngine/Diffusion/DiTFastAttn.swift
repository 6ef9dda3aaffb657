import EffCore
import EffDiffusion
import EffTechniques
import Foundation

/// Wires EffTechniques' DiTFastAttn plans and search to the DiT (TECHNIQUES.md §7).
public enum DiTFastAttn {
    /// The forward pass's mode for a plan strategy.
    public static func mode(_ s: FastAttnStrategy) -> DiTAttentionMode {
        switch s {
        case .full: return .full
        case .asc: return .sharedCFG
        case .wars: return .window
        case .warsASC: return .windowSharedCFG
        case .ast: return .sharedStep
        }
    }

    /// A plan bound to a model and a run of `steps` evaluations; errors say what does not fit.
    public static func schedule(_ plan: FastAttnPlan, config: DiTConfig, steps: Int) throws -> DiTAttentionSchedule {
        try plan.check(layers: config.nLayers, steps: steps)
        do {
            return try DiTAttentionSchedule(modes: plan.strategies.map { $0.map(mode) }, window: plan.window,
                                            layers: config.nLayers)
        } catch let e as DiTAttentionSchedule.Invalid {
            throw FastAttnPlan.LoadError.invalid(e.description)
        }
    }

    /// The calibration inputs the search uses unless told otherwise: `count` images, classes
    /// spread over all classes, seeds from 10_000 (disjoint from the bench's seeds 0...).
    public static func calibrationInputs(count: Int, classes: Int) -> [(classID: Int, seed: UInt64)] {
        (0..<count).map { i in (classID: (i * classes) / max(1, count) % classes, seed: 10_000 + UInt64(i)) }
    }

    /// Searches a plan for `model` with the given sampler settings on `inputs`.
    public static func search(model: DiT, modelName: String, sampler: Sampler, guidance: Float, window: Int,
                              delta: Double, inputs: [(classID: Int, seed: UInt64)],
                              progress: (Int, Int) -> Void = { _, _ in }) -> (plan: FastAttnPlan, result: FastAttnSearch.Result, seconds: Double) {
        let start = DispatchTime.now().uptimeNanoseconds
        var target = DiTCalibrationTarget(model: model, inputs: inputs, sampler: sampler, guidance: guidance, window: window)
        let result = FastAttnSearch(delta: delta).run(&target, progress: progress)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let notes = ["calibration": inputs.map { "class \($0.classID) seed \($0.seed)" }.joined(separator: ", "),
                     "search_seconds": String(format: "%.1f", seconds), "trials": "\(result.trials)",
                     "steps": "\(sampler.evaluations)"]
        let plan = FastAttnPlan(model: modelName, sampler: sampler.kind.rawValue, guidance: Double(guidance),
                                window: window, delta: delta, strategies: result.strategies, notes: notes)
        return (plan, result, seconds)
    }
}

/// The DiT with CFG over a batch of calibration images, driven one sampler step at a time
/// for `FastAttnSearch`. Trials run with caches frozen; commits store the window residual at
/// every full or asc cell (the search cannot know yet which later step will want it).
public struct DiTCalibrationTarget: FastAttnCalibrationTarget {
    private var guided: GuidedDiT
    private var cursor: SamplerCursor
    private var x: [Float]
    private var x0: [Float]
    private var noise = GaussianNoise(seed: 0)
    private let window: Int
    public var layers: Int { guided.model.config.nLayers }
    public var steps: Int { cursor.count }

    public init(model: DiT, inputs: [(classID: Int, seed: UInt64)], sampler: Sampler, guidance: Float, window: Int) {
        guided = GuidedDiT(model: model, classIDs: inputs.map(\.classID), guidance: guidance)
        var x: [Float] = []
        for i in inputs { var g = GaussianNoise(seed: i.seed); x += g.fill(model.config.imageFloats) }
        self.x = x
        x0 = x
        cursor = SamplerCursor(sampler, count: x.count)
        self.window = window
    }

    /// The current latents (the calibration trajectory so far).
    public var latents: [Float] { x }

    public mutating func output(step: Int, strategies: [FastAttnStrategy], commit: Bool) -> [Float] {
        precondition(step == cursor.index && !cursor.isFinished, "DiTCalibrationTarget: steps must run in order")
        let modes = strategies.map(DiTFastAttn.mode)
        let store = commit ? modes.map { $0 == .full || $0 == .sharedCFG } : nil
        let ctx = DiTStepContext(step: step, modes: modes, storeResidual: store, window: window, updateCaches: commit)
        let tau = cursor.tau
        guided.evaluate(x, tau: tau, context: ctx)
        let out = guided.guidedOutput
        if commit {
            guided.dataPrediction(x, tau: tau, into: &x0)
            cursor.advance(&x, x0: &x0, noise: &noise)
        }
        return out
    }
}
