import ArgumentParser
import EffCore
import EffDiffusion
import EffEngine
import EffTechniques
import EffTUI
import Foundation

/// `effterm diffuse`: generate an emoji-class image with the shipped DiT, headless.
struct DiffuseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diffuse",
        abstract: "Generate a 32x32 image of a class with the tiny DiT (PNG out, timings).",
        discussion: """
        The DiT was trained by Tools/dit on Noto Color Emoji; its weights ship with effterm. \
        Samplers: dpmpp2m (DPM-Solver++ 2M, log-SNR spacing, default), ddim (eta=0, uniform \
        time), ddpm (ancestral over all 1000 timesteps; --steps is ignored). Classifier-free \
        guidance runs the conditional and unconditional rows as one batch of 2. \
        --grid K writes K samples per class (rows = classes, seeds seed..seed+K-1) as one \
        PNG for Tools/dit/evaluate.py. \
        --plan FILE runs a DiTFastAttn plan (per step and block: full, asc, wars, wars+asc or \
        ast attention); --calibrate-plan FILE searches one (the authors' greedy search under \
        threshold --delta on --calibration images) for the given sampler, steps and cfg, \
        writes it and exits.
        """)

    @Option(name: .customLong("class"), help: "Class name or id (see --list-classes).")
    var className: String?

    @Option(help: "Sampler steps (model evaluations).")
    var steps: Int = 20

    @Option(help: "Sampler: dpmpp2m, ddim or ddpm.")
    var sampler: String = "dpmpp2m"

    @Option(help: "Classifier-free guidance scale (1 = conditional only).")
    var cfg: Float = 3

    @Option(help: "Noise seed.")
    var seed: UInt64 = 0

    @Option(help: "Output PNG path.")
    var out: String = "diffuse.png"

    @Option(help: "Directory for the predicted clean image x0 at every step (step-NNN.png).")
    var previews: String?

    @Option(help: "Nearest-neighbour upscale factor for written PNGs.")
    var upscale: Int = 1

    @Option(help: "Write K samples per class as one grid PNG instead of a single image.")
    var grid: Int?

    @Option(help: "Shipped model: dit-base or dit-small.")
    var model: String = "dit-base"

    @Option(help: "Directory holding <model>.safetensors, <model>.json, classes.json (default: shipped).")
    var weightsDir: String?

    @Flag(help: "Print the image to the terminal with half blocks.")
    var show = false

    @Option(help: "Colour depth for --show: truecolor or 256.")
    var colors: String = "truecolor"

    @Flag(help: "List the classes and exit.")
    var listClasses = false

    @Flag(help: "Print one JSON object (timings, class, sampler, steps, output path).")
    var json = false

    @Option(help: "A DiTFastAttn plan file to sample with (see --calibrate-plan).")
    var plan: String?

    @Option(help: "Search a DiTFastAttn plan for these settings, write it to this file and exit.")
    var calibratePlan: String?

    @Option(help: "Plan search threshold delta (with --calibrate-plan).")
    var delta: Double = 0.05

    @Option(help: "Calibration images for the plan search (classes spread, seeds 10000...).")
    var calibration: Int = 8

    @Option(help: "Band half-width in tokens for window attention (with --calibrate-plan).")
    var window: Int = 8

    @Option(help: ArgumentHelp("Block weights: f32, W8A8, W8A8-static, W4A8 or mixed-6.5bpw.",
                               discussion: "W8A8-static calibrates its activation scales on 4 images and mixed-6.5bpw scans every block matrix first (progress on stderr); both take a few seconds."))
    var weights: String = "f32"

    @Flag(help: "Sample with a USF-searched timestep schedule for --steps (dpmpp2m; searched against 250-step DDIM on 2 calibration images first).")
    var usf = false

    @OptionGroup var compute: ComputeOptions

    func run() throws {
        compute.apply()
        let bundle: DiTBundle
        do {
            bundle = try weightsDir.map { try DiTBundle(directory: URL(fileURLWithPath: $0), name: model) }
                ?? DiTBundle.bundled(model)
        } catch let e as DiTError { throw ValidationErrorParagraph(e.description) }
        if listClasses { return printClasses(bundle) }
        guard let kind = SamplerKind(rawValue: sampler) else {
            throw ValidationError("--sampler must be one of: \(SamplerKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard steps >= 1, steps <= 10_000 else { throw ValidationError("--steps must be in 1...10000") }
        guard upscale >= 1, upscale <= 64 else { throw ValidationError("--upscale must be in 1...64") }
        let schedule = NoiseSchedule(cosineWithTimesteps: bundle.config.timesteps)
        let evals = Sampler(kind: kind, steps: steps, schedule: schedule).evaluations
        if let out = calibratePlan { return try searchPlan(bundle, kind, writeTo: out) }
        var attention: DiTAttentionSchedule?
        if let path = plan {
            do {
                let p = try FastAttnPlan.load(path: path)
                attention = try DiTFastAttn.schedule(p, config: bundle.config, steps: evals)
            } catch let e as FastAttnPlan.LoadError { throw ValidationErrorParagraph("--plan \(path): \(e.description)") }
        }
        guard let choice = DiTWeightsChoice(rawValue: weights) ?? DiTWeightsChoice.allCases.first(where: {
            $0.rawValue.lowercased() == weights.lowercased() }) else {
            throw ValidationError("--weights must be one of: \(DiTWeightsChoice.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let cache = DiffusionTechniqueCache()
        // Status of slow preparation on stderr: one redrawn line on a terminal; in a pipe or
        // log only the lines that are not "i/n" progress counts.
        let interactive = isatty(STDERR_FILENO) == 1
        var drawn = false
        let note: (String) -> Void = { text in
            let counting = text.hasSuffix("...") && text.contains("/")
            if interactive {
                FileHandle.standardError.write(Data(("\r\u{1B}[2K" + text + (counting ? "" : "\n")).utf8))
                drawn = counting
            } else if !counting {
                FileHandle.standardError.write(Data((text + "\n").utf8))
            }
        }
        defer { if drawn { FileHandle.standardError.write(Data("\n".utf8)) } }
        let quant: DiTQuant?
        do { quant = try cache.quant(choice, weights: bundle.weights, status: note) } catch let e as DiTQuant.Error {
            throw ValidationErrorParagraph("--weights \(weights): \(e.description)")
        }
        var taus: [Double]?, orders: [Int]?
        if usf {
            guard kind == .dpmpp2m else { throw ValidationError("--usf searches DPM-Solver++ schedules: use --sampler dpmpp2m") }
            guard plan == nil else { throw ValidationError("--usf and --plan cannot be combined (a plan is searched for one schedule)") }
            let found = cache.schedule(steps: steps, model: bundle.model, status: note)
            taus = found.taus; orders = found.orders
            note(String(format: "USF %d steps: error vs DDIM-250 %.5f (default schedule %.5f)", steps, found.error, found.defaultError))
        }
        let generator = ImageGenerator(model: DiT(weights: bundle.weights, kernels: bundle.model.kernels, quant: quant))
        if let k = grid { return try runGrid(bundle, generator, kind, perClass: k, attention: attention, taus: taus, orders: orders) }
        guard let className else { throw ValidationError("--class is required (or --list-classes / --grid)") }
        let classID: Int
        do { classID = try bundle.classID(for: className) } catch let e as DiTError { throw ValidationErrorParagraph(e.description) }

        var request = GenerationRequest(classID: classID, sampler: kind, steps: steps, guidance: cfg, seed: seed,
                                        attention: attention)
        request.taus = taus; request.orders = orders
        var previewError: Error?
        if let dir = previews { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let size = bundle.config.imageSize
        let result = generator.generate(request) { step in
            guard let dir = previews, previewError == nil else { return }
            let img = RGBImage(planar: step.x0, width: size, height: size)
            do { try write(img, to: "\(dir)/step-\(String(format: "%03d", step.index)).png") } catch { previewError = error }
        }
        if let previewError { throw previewError }
        try write(result.image, to: out)
        if show { print(HalfBlockImage.ansi(result.image, depth: colors == "256" ? .palette256 : .truecolor), terminator: "") }
        let report: [String: Any] = [
            "class": bundle.classes[classID].name, "class_id": classID, "sampler": kind.rawValue,
            "steps": result.evaluations, "cfg": Double(cfg), "seed": seed, "model": model, "out": out,
            "ms_per_image": round3(result.totalMilliseconds), "ms_per_step": round3(result.millisecondsPerStep),
            "ms_forward_total": round3(result.forwardMilliseconds),
            "previews": previews as Any? ?? NSNull(), "plan": plan as Any? ?? NSNull(),
            "weights": choice.rawValue, "usf": usf,
        ]
        if json { try printJSON(report) } else {
            print("\(bundle.classes[classID].name) (\(kind.rawValue), \(result.evaluations) steps, cfg \(cfg), seed \(seed)) -> \(out): "
                  + String(format: "%.1f ms/image, %.2f ms/step", result.totalMilliseconds, result.millisecondsPerStep))
        }
    }

    private func searchPlan(_ bundle: DiTBundle, _ kind: SamplerKind, writeTo path: String) throws {
        guard kind != .ddpm else { throw ValidationError("--calibrate-plan needs --sampler dpmpp2m or ddim") }
        guard (1...256).contains(calibration) else { throw ValidationError("--calibration must be in 1...256") }
        guard delta >= 0, delta.isFinite else { throw ValidationError("--delta must be a number >= 0") }
        guard window >= 1 else { throw ValidationError("--window must be at least 1") }
        let sampler = Sampler(kind: kind, steps: steps, schedule: NoiseSchedule(cosineWithTimesteps: bundle.config.timesteps))
        let inputs = DiTFastAttn.calibrationInputs(count: calibration, classes: bundle.config.numClasses)
        let found = DiTFastAttn.search(model: bundle.model, modelName: model, sampler: sampler, guidance: cfg,
                                       window: window, delta: delta, inputs: inputs)
        try found.plan.encoded().write(to: URL(fileURLWithPath: path), options: .atomic)
        let hist = FastAttnStrategy.allCases.map { "\($0.rawValue) \(found.plan.histogram[$0] ?? 0)" }.joined(separator: ", ")
        if json {
            try printJSON(["plan": path, "delta": delta, "steps": found.plan.steps, "layers": found.plan.layers,
                           "histogram": Dictionary(uniqueKeysWithValues: found.plan.histogram.map { ($0.key.rawValue, $0.value) }),
                           "trials": found.result.trials, "search_seconds": round3(found.seconds), "map": found.plan.map])
        } else {
            print("plan (delta \(delta), \(found.result.trials) trials, \(String(format: "%.1f", found.seconds)) s) -> \(path): \(hist)")
            for (l, row) in found.plan.map.enumerated() { print("  block \(l): \(row)") }
        }
    }

    private func runGrid(_ bundle: DiTBundle, _ generator: ImageGenerator, _ kind: SamplerKind, perClass k: Int,
                         attention: DiTAttentionSchedule?, taus: [Double]?, orders: [Int]?) throws {
        guard k >= 1, k <= 1000 else { throw ValidationError("--grid must be in 1...1000") }
        let s = bundle.config.imageSize, n = bundle.classes.count
        var sheet = RGBImage(width: k * s, height: n * s)
        var total = 0.0, evals = 0
        for c in 0..<n {
            for j in 0..<k {
                var request = GenerationRequest(classID: c, sampler: kind, steps: steps, guidance: cfg,
                                                seed: seed &+ UInt64(j), attention: attention)
                request.taus = taus; request.orders = orders
                let r = generator.generate(request)
                sheet.paste(r.image, x: j * s, y: c * s)
                total += r.totalMilliseconds; evals += r.evaluations
            }
        }
        try write(sheet, to: out)
        let images = n * k
        let report: [String: Any] = [
            "grid": ["rows": n, "columns": k, "tile": s, "classes": bundle.classes.map(\.name)],
            "sampler": kind.rawValue, "steps": evals / max(1, images), "cfg": Double(cfg), "seed": seed,
            "model": model, "out": out, "images": images, "weights": weights, "usf": usf,
            "ms_per_image": round3(total / Double(images)), "ms_per_step": round3(total / Double(max(1, evals))),
        ]
        if json { try printJSON(report) } else {
            print("\(images) images (\(n) classes x \(k)) -> \(out): " + String(format: "%.1f ms/image", total / Double(images)))
        }
    }

    private func printClasses(_ bundle: DiTBundle) {
        if json {
            let rows = bundle.classes.map { ["id": $0.id, "name": $0.name, "description": $0.description] as [String: Any] }
            try? printJSON(["model": model, "classes": rows])
            return
        }
        for c in bundle.classes { print(String(format: "%2d  %-13@ %@", c.id, c.name as NSString, c.description as NSString)) }
    }

    private func write(_ image: RGBImage, to path: String) throws {
        let img = upscale > 1 ? image.scaled(by: upscale) : image
        try Data(PNGEncoder.encode(img)).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    private func round3(_ v: Double) -> Double { (v * 1000).rounded() / 1000 }

    private func printJSON(_ obj: [String: Any]) throws {
        let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}
