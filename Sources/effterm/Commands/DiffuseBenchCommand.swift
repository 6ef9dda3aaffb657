import ArgumentParser
import EffCore
import EffDiffusion
import EffEngine
import EffLLM
import EffTechniques
import Foundation

/// `effterm bench diffuse`: DiT sampling speed and paired quality, baseline against
/// DiTFastAttn plans (and, for the kernel A/B, the general-purpose kernel path).
struct DiffuseBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diffuse",
        abstract: "Measure DiT sampling: baseline vs DiTFastAttn plans (ms/image, attention MACs, paired PSNR/SSIM).",
        discussion: """
        The baseline is dit-base with the given sampler (default 20-step DPM-Solver++ 2M, \
        guidance 3, full attention, DiT kernels). Each variant generates the same --images \
        images (classes round-robin, seeds 0...), interleaved image by image; speed is the \
        median ms per image and the median per-image time ratio to the baseline; quality is \
        paired PSNR/SSIM against the baseline's image on the same noise and class (PSNR of \
        identical images is reported as 100). --deltas searches plans in this run (calibration \
        on --calibration images with seeds 10000..., disjoint from the measured ones); --plans \
        adds plan files. --kernels-ab adds the baseline on the general kernel surface (the path \
        before the DiT kernels).
        """)

    @Option(help: "Shipped model: dit-base or dit-small.")
    var model: String = "dit-base"

    @Option(help: "Sampler steps.")
    var steps: Int = 20

    @Option(help: "Sampler: dpmpp2m or ddim.")
    var sampler: String = "dpmpp2m"

    @Option(help: "Classifier-free guidance scale.")
    var cfg: Float = 3

    @Option(help: "Measured images per variant.")
    var images: Int = 24

    @Option(help: "Plan search thresholds δ, comma-separated (empty: none).")
    var deltas: String = "0.025,0.05,0.1,0.15"

    @Option(help: "Calibration images for the plan search.")
    var calibration: Int = 8

    @Option(help: "Band half-width (tokens) for window attention in searched plans.")
    var window: Int = 8

    @Option(help: "Plan files to measure too, comma-separated.")
    var plans: String?

    @Option(help: "Directory to write the searched plans into (plan-delta-D.json).")
    var writePlans: String?

    @Option(help: "Fewer-step variants of the baseline sampler to measure too, comma-separated (e.g. 5,8,10).")
    var stepsList: String = ""

    @Flag(help: "Also measure the baseline on EffCore's general kernel surface.")
    var kernelsAb = false

    @Flag(help: ArgumentHelp("Also measure W8A8 block linears: int8 weights (Q8_0) times 8-bit activations, with dynamic and with static activation scales.",
                             discussion: "Static scales come from the largest input of each matrix over the --calibration images at every step."))
    var w8a8 = false

    @Option(help: ArgumentHelp("Mixed-precision budgets for the block linears in bits per weight, comma-separated (e.g. 6.5,5.5).",
                               discussion: "Scans each block matrix at Q8_0 and Q4_1 on the --calibration images (image MSE against f32 with only that matrix quantized), picks one format per matrix by an exact knapsack under each budget, and measures the plans beside uniform W4A8 (Q4_1 everywhere). Activations: dynamic 8-bit."))
    var mixedBits: String = ""

    @Option(help: ArgumentHelp("Step counts for a USF-style timestep-schedule search, comma-separated (e.g. 5,8,10).",
                               discussion: "For each count, searches where DPM-Solver++'s steps fall (in logSNR) and each step's order against 250-step DDIM on the --calibration images, then measures the searched schedule beside the default one with the same steps (and, with --w8a8, the schedule with W8A8 block linears: the techniques stacked)."))
    var usf: String = ""

    @Option(help: "Proposals per USF search.")
    var usfIterations: Int = 60

    @Option(help: ArgumentHelp("Time budgets for an OMS-DPM-style model schedule, as fractions of the baseline model's time, comma-separated (e.g. 0.8,0.6).",
                               discussion: "Chooses dit-small or dit-base at every step: each step's cost of running dit-small is measured on the --calibration images (image MSE against dit-base everywhere) and an exact knapsack minimizes the summed cost under each budget. Needs --model dit-base."))
    var oms: String = ""

    @Flag(help: "Print one JSON object.")
    var json = false

    @OptionGroup var compute: ComputeOptions

    func run() throws {
        compute.apply()
        let bundle: DiTBundle
        do { bundle = try DiTBundle.bundled(model) } catch let e as DiTError { throw ValidationErrorParagraph(e.description) }
        guard let kind = SamplerKind(rawValue: sampler), kind != .ddpm else {
            throw ValidationError("--sampler must be dpmpp2m or ddim")
        }
        guard (1...1000).contains(steps) else { throw ValidationError("--steps must be in 1...1000") }
        guard (1...10_000).contains(images) else { throw ValidationError("--images must be in 1...10000") }
        guard (1...256).contains(calibration) else { throw ValidationError("--calibration must be in 1...256") }
        guard window >= 1 else { throw ValidationError("--window must be at least 1") }
        let deltaList = try deltas.split(separator: ",").map { s -> Double in
            guard let d = Double(s.trimmingCharacters(in: .whitespaces)), d >= 0 else {
                throw ValidationError("--deltas: '\(s)' is not a number >= 0")
            }
            return d
        }
        let c = bundle.config
        let log: (String) -> Void = json ? { FileHandle.standardError.write(Data(($0 + "\n").utf8)) } : { print($0) }
        let samplerValue = Sampler(kind: kind, steps: steps, schedule: NoiseSchedule(cosineWithTimesteps: c.timesteps))
        let evals = samplerValue.evaluations

        var variants = [DiffusionBench.Variant(name: "baseline")]
        if kernelsAb { variants.append(.init(name: "baseline-surface-kernels", kernels: .surface)) }
        for s in stepsList.split(separator: ",") {
            guard let n = Int(s.trimmingCharacters(in: .whitespaces)), (1...1000).contains(n) else {
                throw ValidationError("--steps-list: '\(s)' is not a step count in 1...1000")
            }
            variants.append(.init(name: "\(kind.rawValue)-\(n)-steps", steps: n))
        }
        var variantInfo: [String: [String: Any]] = [:]
        if w8a8 {
            log("calibrating static W8A8 scales on \(calibration) images ...")
            let ranges = DiffusionBench.activationRanges(
                weights: bundle.weights, sampler: kind, steps: steps, guidance: cfg,
                inputs: DiTFastAttn.calibrationInputs(count: calibration, classes: c.numClasses))
            for mode in DiTQuant.Activations.allCases {
                let q: DiTQuant
                do { q = try DiTQuant.w8a8(weights: bundle.weights, activations: mode, ranges: ranges) } catch let e as DiTQuant.Error {
                    throw ValidationErrorParagraph(e.description)
                }
                let name = "w8a8-\(mode.rawValue)"
                variants.append(.init(name: name, quant: q))
                variantInfo[name] = ["block_linear_bytes": q.blockBytes, "block_linear_f32_bytes": q.floatBytes,
                                  "activations": mode.rawValue, "weights": "Q8_0 (int8, f16 scale per 32 inputs)"]
            }
        }
        let budgets = try mixedBits.split(separator: ",").map { t -> Double in
            guard let b = Double(t.trimmingCharacters(in: .whitespaces)), b > 0 else {
                throw ValidationError("--mixed-bits: '\(t)' is not a number of bits per weight > 0")
            }
            return b
        }
        if !budgets.isEmpty {
            log("scanning block-matrix sensitivity (Q8_0, Q4_1) on \(calibration) images ...")
            let inputs = DiTFastAttn.calibrationInputs(count: calibration, classes: c.numClasses)
            let sens = try DiTMixedPrecision.scan(weights: bundle.weights, sampler: kind, steps: steps, guidance: cfg,
                                                 inputs: inputs)
            log(String(format: "scan: %.1f s", sens.seconds))
            let w4 = try DiTQuant(weights: bundle.weights, formats: DiTQuant.uniform(bundle.weights, .q4_1))
            variants.append(.init(name: "w4a8-q4_1", quant: w4))
            variantInfo["w4a8-q4_1"] = ["block_linear_bytes": w4.blockBytes, "block_linear_f32_bytes": w4.floatBytes,
                                     "activations": "dynamic", "weights": "Q4_1 everywhere"]
            for b in budgets {
                let plan: DiTMixedPrecision.Plan
                do { plan = try DiTMixedPrecision.plan(sens, weights: bundle.weights, bitsPerWeight: b) } catch let e as BitAllocator.AllocationError {
                    throw ValidationErrorParagraph("--mixed-bits \(b): \(e.description)")
                }
                let q = try DiTQuant(weights: bundle.weights, formats: plan.formats)
                let name = "mixed-\(b)bpw"
                variants.append(.init(name: name, quant: q))
                variantInfo[name] = ["block_linear_bytes": q.blockBytes, "block_linear_f32_bytes": q.floatBytes,
                                  "activations": "dynamic", "bits_per_weight": DiffusionBench.round3(plan.bitsPerWeight),
                                  "formats": plan.histogram, "predicted_mse_sum": plan.predictedMSE,
                                  "map": plan.formats.map { $0.map { $0?.name ?? "f32" }.joined(separator: " ") },
                                  "scan_seconds": DiffusionBench.round3(sens.seconds)]
            }
        }
        let usfSteps = try usf.split(separator: ",").map { t -> Int in
            guard let n = Int(t.trimmingCharacters(in: .whitespaces)), (1...100).contains(n) else {
                throw ValidationError("--usf: '\(t)' is not a step count in 1...100")
            }
            return n
        }
        guard (1...10_000).contains(usfIterations) else { throw ValidationError("--usf-iterations must be in 1...10000") }
        if !usfSteps.isEmpty {
            let inputs = DiTFastAttn.calibrationInputs(count: calibration, classes: c.numClasses)
            log("USF: 250-step DDIM reference on \(calibration) calibration images ...")
            let reference = TimestepScheduleSearch.reference(model: bundle.model, guidance: cfg, inputs: inputs)
            for n in usfSteps {
                let start = DispatchTime.now().uptimeNanoseconds
                let found = TimestepScheduleSearch.search(model: bundle.model, steps: n, guidance: cfg, inputs: inputs,
                                                          reference: reference, iterations: usfIterations)
                let secs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                log(String(format: "USF %d steps: MSE vs DDIM-250 %.5f (default schedule %.5f), %.1f s", n, found.error,
                           found.defaultError, secs))
                if !stepsList.split(separator: ",").contains(where: { Int($0.trimmingCharacters(in: .whitespaces)) == n }) {
                    variants.append(.init(name: "\(kind.rawValue)-\(n)-steps", steps: n))
                }
                let name = "usf-\(n)-steps"
                variants.append(.init(name: name, schedule: found))
                variantInfo[name] = ["steps": n, "taus": found.taus.map { DiffusionBench.round3($0) }, "orders": found.orders,
                                  "calibration_mse_vs_ddim250": found.error,
                                  "default_schedule_calibration_mse_vs_ddim250": found.defaultError,
                                  "search_seconds": DiffusionBench.round3(secs)]
                // Stacked: the searched schedule with W8A8 (dynamic) or W4A8 block linears.
                for (weightsName, tag) in [("w8a8-dynamic", "w8a8"), ("w4a8-q4_1", "w4a8")] {
                    guard let q = variants.first(where: { $0.name == weightsName })?.quant else { continue }
                    let combined = "usf-\(n)-steps+\(tag)"
                    variants.append(.init(name: combined, quant: q, schedule: found))
                    variantInfo[combined] = ["steps": n, "block_linear_bytes": q.blockBytes, "block_linear_f32_bytes": q.floatBytes,
                                          "combines": ["usf-\(n)-steps", weightsName]]
                }
            }
        }
        let omsBudgets = try oms.split(separator: ",").map { t -> Double in
            guard let f = Double(t.trimmingCharacters(in: .whitespaces)), f > 0, f <= 1 else {
                throw ValidationError("--oms: '\(t)' is not a time fraction in (0, 1]")
            }
            return f
        }
        if !omsBudgets.isEmpty {
            guard model == "dit-base" else { throw ValidationError("--oms schedules dit-small under dit-base: use --model dit-base") }
            let small: DiTBundle
            do { small = try DiTBundle.bundled("dit-small") } catch let e as DiTError { throw ValidationErrorParagraph(e.description) }
            let models = [(name: "dit-base", model: bundle.model), (name: "dit-small", model: small.model)]
            log("OMS: per-step dit-small cost on \(calibration) calibration images ...")
            let start = DispatchTime.now().uptimeNanoseconds
            let found: [ModelSchedule]
            do {
                found = try ModelScheduleSearch.search(models: models, steps: evals, guidance: cfg,
                                                       inputs: DiTFastAttn.calibrationInputs(count: calibration, classes: c.numClasses),
                                                       timeFractions: omsBudgets)
            } catch let e as BitAllocator.AllocationError { throw ValidationErrorParagraph("--oms: \(e.description)") }
            let secs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let smallOnly = "dit-small-\(evals)-steps"
            variants.append(.init(name: smallOnly, models: models.map(\.model), perStep: [1]))
            variantInfo[smallOnly] = ["model_schedule": String(repeating: "s", count: evals)]
            for (f, sched) in zip(omsBudgets, found) {
                let name = "oms-\(f)-time"
                variants.append(.init(name: name, models: models.map(\.model), perStep: sched.perStep))
                variantInfo[name] = ["model_schedule": sched.map, "ms_per_evaluation": sched.msPerEvaluation.map { DiffusionBench.round3($0) },
                                  "predicted_time_fraction": DiffusionBench.round3(sched.predictedTimeFraction),
                                  "predicted_mse_sum": sched.predictedError, "search_seconds": DiffusionBench.round3(secs)]
                log("OMS \(f): \(sched.map) (predicted time \(DiffusionBench.round3(sched.predictedTimeFraction)))")
            }
        }
        var planInfo: [[String: Any]] = []
        func addPlan(_ plan: FastAttnPlan, name: String, searchSeconds: Double?) throws {
            let sched = try DiTFastAttn.schedule(plan, config: c, steps: evals)
            variants.append(.init(name: name, attention: sched))
            let macs = sched.attentionMACs(config: c)
            var info: [String: Any] = [
                "name": name, "delta": plan.delta, "window": plan.window,
                "histogram": Dictionary(uniqueKeysWithValues: plan.histogram.map { ($0.key.rawValue, $0.value) }),
                "attention_core_macs_per_image": macs.core, "attention_module_macs_per_image": macs.module,
                "map": plan.map,
            ]
            if let searchSeconds { info["search_seconds"] = (searchSeconds * 10).rounded() / 10 }
            planInfo.append(info)
        }
        let calib = DiTFastAttn.calibrationInputs(count: calibration, classes: c.numClasses)
        for d in deltaList {
            log("searching plan delta \(d) on \(calibration) calibration images ...")
            let found = DiTFastAttn.search(model: bundle.model, modelName: model, sampler: samplerValue, guidance: cfg,
                                           window: window, delta: d, inputs: calib)
            if let dir = writePlans {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                try found.plan.encoded().write(to: URL(fileURLWithPath: "\(dir)/plan-delta-\(d).json"), options: .atomic)
            }
            try addPlan(found.plan, name: "fastattn-delta-\(d)", searchSeconds: found.seconds)
        }
        for path in (plans ?? "").split(separator: ",").map(String.init) where !path.isEmpty {
            let plan: FastAttnPlan
            do { plan = try FastAttnPlan.load(path: path) } catch let e as FastAttnPlan.LoadError {
                throw ValidationErrorParagraph("\(path): \(e.description)")
            }
            do { try addPlan(plan, name: (path as NSString).lastPathComponent, searchSeconds: nil) } catch let e as FastAttnPlan.LoadError {
                throw ValidationErrorParagraph("\(path): \(e.description)")
            }
        }

        let inputs = (0..<images).map { i in (classID: i % c.numClasses, seed: UInt64(i / c.numClasses)) }
        let bench = DiffusionBench(weights: bundle.weights, sampler: kind, steps: steps, guidance: cfg, inputs: inputs)
        log("measuring \(variants.count) variants x \(images) images ...")
        let results = bench.run(variants)
        var rows = DiffusionBench.summary(results, config: c)
        let full = DiTAttentionSchedule.fullAttentionMACs(steps: evals, config: c)
        for i in rows.indices {
            let name = rows[i]["name"] as? String ?? ""
            for (k, v) in variantInfo[name] ?? [:] { rows[i][k] = v }
            if let p = planInfo.first(where: { ($0["name"] as? String) == name }) {
                for (k, v) in p where k != "name" { rows[i][k] = v }
                let core = p["attention_core_macs_per_image"] as? Int ?? 0, module = p["attention_module_macs_per_image"] as? Int ?? 0
                rows[i]["attention_core_macs_fraction"] = DiffusionBench.round4(Double(core) / Double(full.core))
                rows[i]["attention_module_macs_fraction"] = DiffusionBench.round4(Double(module) / Double(full.module))
            } else if let v = variants.first(where: { $0.name == name }), let n = v.steps ?? v.schedule?.steps {
                let f = DiTAttentionSchedule.fullAttentionMACs(steps: Sampler(kind: kind, steps: n, schedule: samplerValue.schedule).evaluations, config: c)
                rows[i]["steps"] = n
                rows[i]["attention_core_macs_per_image"] = f.core
                rows[i]["attention_module_macs_per_image"] = f.module
                rows[i]["attention_core_macs_fraction"] = DiffusionBench.round4(Double(f.core) / Double(full.core))
                rows[i]["attention_module_macs_fraction"] = DiffusionBench.round4(Double(f.module) / Double(full.module))
            } else {
                rows[i]["attention_core_macs_per_image"] = full.core
                rows[i]["attention_module_macs_per_image"] = full.module
                rows[i]["attention_core_macs_fraction"] = 1.0
                rows[i]["attention_module_macs_fraction"] = 1.0
            }
        }
        let result: [String: Any] = [
            "model": model, "sampler": kind.rawValue, "steps": evals, "cfg": Double(cfg), "images": images,
            "calibration_images": calibration, "window": window,
            "machine": LLMBenchCommand.machine(threads: ComputePool.shared.threadCount),
            "quality_reference": "baseline images, same noise and class (PSNR of identical images reported as 100)",
            "classifier_metrics": "not computed here (PyTorch): write grids with effterm diffuse --grid K [--weights W] [--usf] and score them with Tools/dit/evaluate.py; the classifier is rebuilt by Tools/dit/rebuild.sh's first two steps",
            "variants": rows,
        ]
        if json {
            let data = try JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            // Foundation's String(format:) does not pad %@ on Linux: pad by hand.
            func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
            func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
            print(pad("variant", 28) + [("ms/image", 11), ("speedup", 9), ("PSNR dB", 10), ("SSIM", 9), ("attn MACs", 10),
                                        ("block MiB", 11)].map { lpad($0.0, $0.1) }.joined())
            let fullBlockBytes = bundle.weights.blockLinearParameters * 4
            for r in rows {
                let bytes = r["block_linear_bytes"] as? Int ?? fullBlockBytes
                let mib = r["model_schedule"] == nil ? String(format: " %10.2f", Double(bytes) / 1_048_576) : lpad("-", 11)
                print(pad(r["name"] as? String ?? "", 28)
                      + String(format: " %10.1f %7.2fx %9.2f %8.4f %8.0f%%",
                               r["ms_per_image_median"] as? Double ?? 0, r["speedup_vs_baseline"] as? Double ?? 0,
                               r["psnr_db_mean"] as? Double ?? 0, r["ssim_mean"] as? Double ?? 0,
                               100 * (r["attention_module_macs_fraction"] as? Double ?? 0)) + mib)
            }
        }
    }
}
