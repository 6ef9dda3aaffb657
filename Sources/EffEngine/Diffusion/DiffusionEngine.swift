import EffCore
import EffDiffusion
import Foundation

/// What the diff panel draws: the job's settings, its progress and the step previews.
public struct DiffusionSnapshot: Sendable {
    public enum Phase: Sendable, Equatable {
        case idle, loading, running, done, cancelled
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

    public init() {}
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

    /// Starts generating `request`, cancelling any job in flight.
    public func generate(_ request: GenerationRequest) {
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
        }
        let job = assigned
        let generator = ImageGenerator(model: bundle.model)
        ComputeThread.start(name: "effterm.diffusion") {
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
