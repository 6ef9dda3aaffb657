import EffCore
import EffDiffusion
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

    public init() {}
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

    public var next: DiTWeightsChoice {
        let all = Self.allCases
        return all[(all.firstIndex(of: self)! + 1) % all.count]
    }
}

/// Quantized weights built once per choice and model (calibration and scans are slow).
final class DiTQuantCache: @unchecked Sendable {
    private let lock = NSLock()
    private var built: [DiTWeightsChoice: DiTQuant] = [:]

    /// The weights for `choice` (nil: f32), built on first use; `status` names slow stages.
    func quant(_ choice: DiTWeightsChoice, weights: DiTWeights, status: (String) -> Void) throws -> DiTQuant? {
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
    private let quantCache = DiTQuantCache()

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
    public func generate(_ request: GenerationRequest, weights: DiTWeightsChoice = .f32, compare: Bool = false) {
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
        }
        let job = assigned
        let cache = quantCache
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
            let mib = Double(quant?.blockBytes ?? bundle.weights.blocks.reduce(0) { acc, b in
                acc + DiTBlockMatrix.allCases.reduce(0) { $0 + b[$1].rows * b[$1].cols * 4 }
            }) / 1_048_576
            box.update { if $0.job == job { $0.blockMiB = mib } }
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
            let result = generator.generate(request, shouldStop: { flag.isCancelled }) { step in
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
