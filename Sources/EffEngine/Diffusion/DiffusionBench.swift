import EffCore
import EffDiffusion
import Foundation

/// Paired speed and quality of DiT sampling variants against a baseline on the same noise
/// and classes (`effterm bench diffuse`).
///
/// Every image is generated once per variant, the variants interleaved image by image (in
/// an order that rotates) so machine noise hits them alike; speed is reported as the
/// median per-image time and the median of per-image time ratios to the baseline. Quality
/// is paired PSNR / SSIM of each variant's image against the baseline's image.
public struct DiffusionBench {
    /// One way of sampling: kernels and an optional attention schedule.
    public struct Variant {
        public var name: String
        public var kernels: DiTKernelPath
        public var attention: DiTAttentionSchedule?
        /// Sampler steps for this variant (nil: the bench's).
        public var steps: Int?
        /// Integer block linears (nil: f32).
        public var quant: DiTQuant?
        /// A searched timestep schedule (its steps replace `steps`).
        public var schedule: TimestepSchedule?
        /// A model schedule: `models[perStep[i]]` at step i (OMS-DPM); the bench's weights
        /// are not used then.
        public var models: [DiT]?
        public var perStep: [Int]?
        public init(name: String, kernels: DiTKernelPath = .dit, attention: DiTAttentionSchedule? = nil, steps: Int? = nil,
                    quant: DiTQuant? = nil, schedule: TimestepSchedule? = nil, models: [DiT]? = nil, perStep: [Int]? = nil) {
            self.name = name; self.kernels = kernels; self.attention = attention; self.steps = steps; self.quant = quant
            self.schedule = schedule; self.models = models; self.perStep = perStep
        }
    }

    public struct VariantResult {
        public var name: String
        public var msPerImage: [Double]
        public var images: [[Float]]
        public var fallbacks = 0
        public var medianMs: Double { Self.median(msPerImage) }
        static func median(_ v: [Double]) -> Double {
            let s = v.sorted()
            return s.isEmpty ? 0 : s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
    }

    public let weights: DiTWeights
    public var sampler: SamplerKind
    public var steps: Int
    public var guidance: Float
    /// (class, seed) per image; the bench generates each with every variant.
    public var inputs: [(classID: Int, seed: UInt64)]

    public init(weights: DiTWeights, sampler: SamplerKind, steps: Int, guidance: Float,
                inputs: [(classID: Int, seed: UInt64)]) {
        self.weights = weights; self.sampler = sampler; self.steps = steps; self.guidance = guidance
        self.inputs = inputs
    }

    /// Runs every variant on every input after one untimed warm-up image per variant.
    /// `variants[0]` is the baseline the ratios and PSNR/SSIM refer to.
    public func run(_ variants: [Variant], progress: (Int, Int) -> Void = { _, _ in }) -> [VariantResult] {
        var results = variants.map { VariantResult(name: $0.name, msPerImage: [], images: []) }
        func generate(_ v: Variant, _ input: (classID: Int, seed: UInt64)) -> GenerationResult {
            let g = ImageGenerator(model: DiT(weights: weights, kernels: v.kernels, quant: v.quant))
            var r = GenerationRequest(classID: input.classID, sampler: v.schedule == nil ? sampler : .dpmpp2m,
                                      steps: v.schedule?.steps ?? v.steps ?? steps, guidance: guidance, seed: input.seed,
                                      attention: v.attention)
            r.taus = v.schedule?.taus
            r.orders = v.schedule?.orders
            if let models = v.models, let perStep = v.perStep {
                return ImageGenerator.generate(r, models: models, perStep: perStep)
            }
            return g.generate(r)
        }
        if let first = inputs.first { for v in variants { _ = generate(v, first) } }
        for (i, input) in inputs.enumerated() {
            progress(i, inputs.count)
            for j in 0..<variants.count {
                let k = (i + j) % variants.count
                let r = generate(variants[k], input)
                results[k].msPerImage.append(r.totalMilliseconds)
                results[k].images.append(r.planar)
                results[k].fallbacks += r.attentionFallbacks
            }
        }
        return results
    }

    /// Per-variant summary against results[0]: median ms, median time ratio, mean PSNR (finite
    /// values; identical images count as `identicalPSNR`), mean SSIM.
    public static func summary(_ results: [VariantResult], config c: DiTConfig,
                               identicalPSNR: Double = 100) -> [[String: Any]] {
        guard let base = results.first else { return [] }
        return results.map { r in
            let ratios = zip(r.msPerImage, base.msPerImage).map { $0 / $1 }
            let psnrs = zip(r.images, base.images).map { min(identicalPSNR, ImageMetrics.psnr($0, $1)) }
            let ssims = zip(r.images, base.images).map { ImageMetrics.ssim($0, $1, channels: c.channels, size: c.imageSize) }
            return [
                "name": r.name,
                "ms_per_image_median": round3(r.medianMs),
                "time_ratio_vs_baseline_median": round3(VariantResult.median(ratios)),
                "speedup_vs_baseline": round3(1 / max(1e-9, VariantResult.median(ratios))),
                "psnr_db_mean": round3(psnrs.reduce(0, +) / Double(max(1, psnrs.count))),
                "psnr_db_min": round3(psnrs.min() ?? 0),
                "ssim_mean": round4(ssims.reduce(0, +) / Double(max(1, ssims.count))),
                "attention_fallbacks": r.fallbacks,
            ]
        }
    }

    /// The input range of every block linear over `inputs` sampled with these settings in
    /// f32 (every timestep of every image): static activation scales' calibration.
    public static func activationRanges(weights: DiTWeights, sampler: SamplerKind, steps: Int, guidance: Float,
                                        inputs: [(classID: Int, seed: UInt64)]) -> DiTActivationRanges {
        let ranges = DiTActivationRanges(layers: weights.blocks.count)
        var model = DiT(weights: weights)
        model.rangeRecorder = ranges
        let g = ImageGenerator(model: model)
        for input in inputs {
            _ = g.generate(GenerationRequest(classID: input.classID, sampler: sampler, steps: steps, guidance: guidance,
                                             seed: input.seed))
        }
        return ranges
    }

    public static func round3(_ v: Double) -> Double { (v * 1000).rounded() / 1000 }
    public static func round4(_ v: Double) -> Double { (v * 10000).rounded() / 10000 }
}
