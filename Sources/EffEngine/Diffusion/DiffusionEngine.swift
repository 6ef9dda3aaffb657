import EffCore
import EffDiffusion
import EffTechniques
import Foundation

/// What the diff panel draws: the job's settings, its progress and the step previews.
public struct DiffusionSnapshot: Sendable {
    public enum Phase: Sendable, Equatable {
        case idle, loading, running, done, cancelled
        /// Building quantized weights (calibration or a sensitivity scan) before sampling.
        case preparing(String)
        /// Sampling the f32 baseline of a comparison (before the accelerated image).
        case baseline
        case failed(String)
    }
    public var phase: Phase = .idle
    /// Class names of the loaded model (empty until loaded).
    public var classes: [String] = []
    public var modelName = ""
    public var request: GenerationRequest?
    /// Increments with every started job; a stale job never edits a newer job's snapshot.
    public var job = 0
    /// Model evaluations finished so far and in total.
    public var step = 0
    public var steps = 0
    /// The newest predicted clean image x̂₀ (or the final image once done).
    public var preview: RGBImage?
    /// x̂₀ of every finished step, oldest first.
    public var thumbnails: [RGBImage] = []
    public var msPerStep = 0.0
    public var msTotal = 0.0
    /// The weights the job samples with, and their block-linear MiB.
    public var weights: DiTWeightsChoice = .f32
    public var blockMiB: Double?
    /// A comparison job's f32 baseline: its image, ms and the PSNR of the job's image
    /// against it (same noise, class and sampler).
    public var baselineImage: RGBImage?
    public var baselineMs: Double?
    public var psnr: Double?
    /// The job's attention plan and timestep schedule, the plan's map (one row of
    /// `FastAttnStrategy` glyphs per block, one column per step) and a note on the schedule.
    public var attention: DiTAttentionChoice = .full
    public var schedule: DiTScheduleChoice = .solver
    public var planMap: [String]?
    public var scheduleNote: String?

    public init() {}
}

extension CaseIterable where Self: Equatable {
    /// The case after this one in declaration order, wrapping (the diff panel's key cycles).
    fileprivate var followingCase: Self {
        let all = Array(Self.allCases)
        return all[(all.firstIndex(of: self)! + 1) % all.count]
    }
}

/// DiTFastAttn in the diff panel: full attention, or a plan searched on first use for the
/// job's sampler and steps at a threshold δ.
public enum DiTAttentionChoice: String, CaseIterable, Sendable {
    case full
    case fastAttn = "DiTFastAttn-0.05"
    case fastAttnAggressive = "DiTFastAttn-0.15"

    public var delta: Double? {
        switch self {
        case .full: return nil
        case .fastAttn: return 0.05
        case .fastAttnAggressive: return 0.15
        }
    }

    public var next: DiTAttentionChoice { followingCase }
}

/// The schedule in the diff panel: the sampler's own timesteps, a USF-style timestep
/// schedule, or an OMS-DPM-style model schedule (dit-small at the steps where it costs least,
/// 60% of dit-base's time), each searched on first use for DPM-Solver++ at the job's steps.
public enum DiTScheduleChoice: String, CaseIterable, Sendable {
    case solver = "default"
    case usf = "USF"
    case oms = "OMS-0.6"

    public var next: DiTScheduleChoice { followingCase }
}

/// What the DiT's transformer-block linears run as in the diff panel (`DiTQuant`).
public enum DiTWeightsChoice: String, CaseIterable, Sendable {
    case f32
    /// Q8_0 weights, 8-bit activations rounded per 32 values as they are used.
    case w8a8 = "W8A8"
    /// Q8_0 weights, one activation step per matrix from calibration (clips).
    case w8a8Static = "W8A8-static"
    /// Q4_1 weights, dynamic 8-bit activations.
    case w4a8 = "W4A8"
    /// Q8_0 / Q4_1 per matrix from a sensitivity scan, 6.5 bits per weight on average.
    case mixed = "mixed-6.5bpw"

    public var next: DiTWeightsChoice { followingCase }
}

/// Quantized weights, attention plans and schedules, built once per choice (calibration,
/// scans and searches are slow).
public final class DiffusionTechniqueCache: @unchecked Sendable {
    private let lock = NSLock()
    private var built: [DiTWeightsChoice: DiTQuant] = [:]
    private var plans: [String: FastAttnPlan] = [:]
    private var schedules: [Int: TimestepSchedule] = [:]
    private var modelSchedules: [Int: ModelSchedule] = [:]
    private var small: DiTBundle?

    public init() {}

    /// dit-small and the OMS-style schedule (60% of `model`'s time) for `steps` DPM-Solver++
    /// steps, searched on first use on 2 calibration images.
    public func modelSchedule(steps: Int, model: DiT, status: (String) -> Void) throws -> (small: DiT, schedule: ModelSchedule) {
        let smallBundle = try lock.withLock { () throws -> DiTBundle in
            if let small { return small }
            let b = try DiTBundle.bundled("dit-small")
            small = b
            return b
        }
        if let s = lock.withLock({ modelSchedules[steps] }) { return (smallBundle.model, s) }
        let inputs = Array(DiTFastAttn.calibrationInputs(count: 2, classes: model.config.numClasses))
        let found = try ModelScheduleSearch.search(models: [("dit-base", model), ("dit-small", smallBundle.model)], steps: steps,
                                                   guidance: 3, inputs: inputs, timeFractions: [0.6],
                                                   clampToFeasible: true) { done, total in
            status("OMS: per-step dit-small cost \(done)/\(total)...")
        }[0]
        lock.withLock { modelSchedules[steps] = found }
        return (smallBundle.model, found)
    }

    /// The DiTFastAttn plan at `delta` for this sampler and step count, searched on first use
    /// on 4 calibration images.
    public func plan(delta: Double, sampler: Sampler, model: DiT, status: (String) -> Void) -> FastAttnPlan {
        let key = "\(delta) \(sampler.kind.rawValue) \(sampler.evaluations) \(sampler.explicitTaus.map { "\($0)" } ?? "") \(sampler.orders.map { "\($0)" } ?? "")"
        if let p = lock.withLock({ plans[key] }) { return p }
        let inputs = DiTFastAttn.calibrationInputs(count: 4, classes: model.config.numClasses)
        let found = DiTFastAttn.search(model: model, modelName: "dit", sampler: sampler, guidance: 3, window: 8, delta: delta,
                                       inputs: inputs) { done, total in
            status("searching the DiTFastAttn plan (delta \(delta)) \(done)/\(total)...")
        }
        lock.withLock { plans[key] = found.plan }
        return found.plan
    }

    /// The USF-style schedule for `steps` DPM-Solver++ steps, searched on first use against
    /// 250-step DDIM on 2 calibration images.
    public func schedule(steps: Int, model: DiT, status: (String) -> Void) -> TimestepSchedule {
        if let s = lock.withLock({ schedules[steps] }) { return s }
        let inputs = Array(DiTFastAttn.calibrationInputs(count: 2, classes: model.config.numClasses))
        status("USF: 250-step DDIM reference on 2 images...")
        let reference = TimestepScheduleSearch.reference(model: model, guidance: 3, inputs: inputs)
        let found = TimestepScheduleSearch.search(model: model, steps: steps, guidance: 3, inputs: inputs,
                                                  reference: reference, iterations: 40) { done, total in
            status("USF: searching \(steps)-step timesteps \(done)/\(total)...")
        }
        lock.withLock { schedules[steps] = found }
        return found
    }

    /// The weights for `choice` (nil: f32), built on first use; `status` names slow stages.
    public func quant(_ choice: DiTWeightsChoice, weights: DiTWeights, status: (String) -> Void) throws -> DiTQuant? {
        if choice == .f32 { return nil }
        if let q = lock.withLock({ built[choice] }) { return q }
        let q: DiTQuant
        let calibration = DiTFastAttn.calibrationInputs(count: 4, classes: weights.config.numClasses)
        switch choice {
        case .f32: return nil
        case .w8a8: q = try DiTQuant.w8a8(weights: weights)
        case .w4a8: q = try DiTQuant(weights: weights, formats: DiTQuant.uniform(weights, .q4_1))
        case .w8a8Static:
            status("calibrating static activation scales on 4 images...")
            let ranges = DiffusionBench.activationRanges(weights: weights, sampler: .dpmpp2m, steps: 20, guidance: 3,
                                                         inputs: calibration)
            q = try DiTQuant.w8a8(weights: weights, activations: .static, ranges: ranges)
        case .mixed:
            let s = try DiTMixedPrecision.scan(weights: weights, sampler: .dpmpp2m, steps: 10, guidance: 3,
                                               inputs: Array(calibration.prefix(2))) { done, total in
                status("scanning block sensitivity \(done)/\(total)...")
            }
            q = try DiTQuant(weights: weights, formats: DiTMixedPrecision.plan(s, weights: weights, bitsPerWeight: 6.5).formats)
        }
        lock.withLock { built[choice] = q }
        return q
    }
}

/// Owns the DiT and runs one generation at a time on its own compute thread (never on the
/// cooperative pool); publishes a `DiffusionSnapshot` after every denoising step. Starting a
/// new job or calling `cancel()` stops the running one between steps.
public actor DiffusionEngine {
    public nonisolated let snapshots = SnapshotBox(DiffusionSnapshot())
    private let modelName: String
    private let loader: @Sendable () throws -> DiTBundle
    private var bundle: DiTBundle?
    private var cancelFlag: CancellationFlag?
    private let techniqueCache = DiffusionTechniqueCache()

    public init(modelName: String = "dit-base", loader: (@Sendable () throws -> DiTBundle)? = nil) {
        self.modelName = modelName
        self.loader = loader ?? { try DiTBundle.bundled(modelName) }
    }

    /// Loads the model now (otherwise the first `generate` does); publishes the class list.
    public func load() -> Bool {
        if bundle != nil { return true }
        snapshots.update { $0.phase = .loading }
        do {
            let b = try loader()
            bundle = b
            snapshots.update { $0.phase = .idle; $0.classes = b.classes.map(\.name); $0.modelName = self.modelName }
            return true
        } catch {
            snapshots.update { $0.phase = .failed("\(error)") }
            return false
        }
    }

    /// Starts generating `request` with `weights`, cancelling any job in flight; with
    /// `compare`, samples the f32 baseline on the same noise first and reports the PSNR.
    public func generate(_ request: GenerationRequest, weights: DiTWeightsChoice = .f32, compare: Bool = false,
                         attention: DiTAttentionChoice = .full, schedule: DiTScheduleChoice = .solver) {
        cancelFlag?.cancel()
        guard load(), let bundle else { return }
        let flag = CancellationFlag()
        cancelFlag = flag
        let box = snapshots
        let size = bundle.config.imageSize
        let sampler = Sampler(kind: request.sampler, steps: request.steps,
                              schedule: NoiseSchedule(cosineWithTimesteps: bundle.config.timesteps))
        var assigned = 0
        box.update {
            $0.job += 1; assigned = $0.job
            $0.phase = .running; $0.request = request; $0.step = 0; $0.steps = sampler.evaluations
            $0.thumbnails = []; $0.msPerStep = 0; $0.msTotal = 0
            $0.weights = weights; $0.blockMiB = nil; $0.baselineImage = nil; $0.baselineMs = nil; $0.psnr = nil
            $0.attention = attention; $0.schedule = schedule; $0.planMap = nil; $0.scheduleNote = nil
        }
        let job = assigned
        let cache = techniqueCache
        ComputeThread.start(name: "effterm.diffusion") {
            let quant: DiTQuant?
            do {
                quant = try cache.quant(weights, weights: bundle.weights) { text in
                    box.update { if $0.job == job { $0.phase = .preparing(text) } }
                }
            } catch {
                box.update { if $0.job == job { $0.phase = .failed("\(weights.rawValue): \(error)") } }
                return
            }
            let mib = Double(quant?.blockBytes ?? bundle.weights.blockLinearParameters * 4) / 1_048_576
            box.update { if $0.job == job { $0.blockMiB = mib } }
            let status: (String) -> Void = { text in box.update { if $0.job == job { $0.phase = .preparing(text) } } }
            // The accelerated request: a searched schedule (DPM-Solver++ only), then an
            // attention plan for its steps.
            var fast = request
            var modelSchedule: (small: DiT, schedule: ModelSchedule)?
            if schedule == .oms {
                if request.sampler == .dpmpp2m {
                    do {
                        let ms = try cache.modelSchedule(steps: request.steps, model: bundle.model, status: status)
                        modelSchedule = ms
                        let note = "OMS: \(ms.schedule.map) (s = dit-small), predicted time "
                            + String(format: "%.2f", ms.schedule.predictedTimeFraction)
                            + (attention == .full ? "" : "; attention plans apply to single-model runs only")
                        box.update { if $0.job == job { $0.scheduleNote = note } }
                    } catch {
                        box.update { if $0.job == job { $0.phase = .failed("OMS: \(error)") } }
                        return
                    }
                } else {
                    box.update { if $0.job == job { $0.scheduleNote = "OMS schedules are for dpmpp2m: dit-base throughout" } }
                }
            }
            if schedule == .usf {
                if request.sampler == .dpmpp2m {
                    let found = cache.schedule(steps: request.steps, model: bundle.model, status: status)
                    fast.taus = found.taus; fast.orders = found.orders
                    let note = String(format: "USF %d steps: error vs DDIM-250 %.4f (default %.4f)", found.steps,
                                      found.error, found.defaultError)
                    box.update { if $0.job == job { $0.scheduleNote = note } }
                } else {
                    box.update { if $0.job == job { $0.scheduleNote = "USF schedules are for dpmpp2m: default timesteps" } }
                }
            }
            if let delta = attention.delta, modelSchedule == nil, !flag.isCancelled {
                var s = Sampler(kind: fast.sampler, steps: fast.steps, schedule: NoiseSchedule(cosineWithTimesteps: bundle.config.timesteps))
                s.explicitTaus = fast.taus; s.orders = fast.orders
                let plan = cache.plan(delta: delta, sampler: s, model: bundle.model, status: status)
                do {
                    fast.attention = try DiTFastAttn.schedule(plan, config: bundle.config, steps: s.evaluations)
                    box.update { if $0.job == job { $0.planMap = plan.map } }
                } catch {
                    box.update { if $0.job == job { $0.phase = .failed("DiTFastAttn plan: \(error)") } }
                    return
                }
            }
            box.update { if $0.job == job { $0.phase = .running } }
            var baseline: GenerationResult?
            if compare {
                box.update { if $0.job == job { $0.phase = .baseline } }
                let b = ImageGenerator(model: bundle.model).generate(request, shouldStop: { flag.isCancelled })
                guard !flag.isCancelled else {
                    box.update { if $0.job == job { $0.phase = .cancelled } }
                    return
                }
                baseline = b
                box.update {
                    guard $0.job == job else { return }
                    $0.baselineImage = b.image; $0.baselineMs = b.totalMilliseconds; $0.phase = .running
                }
            }
            let generator = ImageGenerator(model: DiT(weights: bundle.weights, kernels: bundle.model.kernels, quant: quant))
            let start = DispatchTime.now().uptimeNanoseconds
            let onStep: (SamplerStep) -> Void = { step in
                let img = RGBImage(planar: step.x0, width: size, height: size)
                let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
                guard !flag.isCancelled else { return }
                box.update {
                    guard $0.job == job else { return }
                    $0.step = step.index + 1; $0.preview = img; $0.msTotal = ms
                    $0.msPerStep = ms / Double(step.index + 1)
                    // Keep the strip bounded for long DDPM runs: every step up to 64, then sparser.
                    if step.count <= 64 || step.index % max(1, step.count / 64) == 0 { $0.thumbnails.append(img) }
                }
            }
            let result = modelSchedule.map {
                ImageGenerator.generate(fast, models: [generator.model, $0.small], perStep: $0.schedule.perStep,
                                        shouldStop: { flag.isCancelled }, onStep: onStep)
            } ?? generator.generate(fast, shouldStop: { flag.isCancelled }, onStep: onStep)
            guard !flag.isCancelled else {
                box.update { if $0.job == job { $0.phase = .cancelled } }
                return
            }
            box.update {
                guard $0.job == job else { return }
                $0.phase = .done; $0.preview = result.image; $0.step = result.evaluations
                $0.msTotal = result.totalMilliseconds; $0.msPerStep = result.millisecondsPerStep
                if let baseline { $0.psnr = ImageMetrics.psnr(result.planar, baseline.planar) }
            }
        }
    }

    /// Stops the running job between steps (the snapshot then reads `cancelled`).
    public func cancel() {
        cancelFlag?.cancel()
        cancelFlag = nil
        snapshots.update { if $0.phase == .running { $0.phase = .cancelled } }
    }
}
