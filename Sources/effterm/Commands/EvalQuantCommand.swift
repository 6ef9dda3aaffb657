import ArgumentParser
import EffCore
import EffLLM
import Foundation

/// `effterm eval quant --text FILE --weights SPECS`: weight variants scored against the
/// reference (the file's weights dequantized to f32) on held-out text.
struct EvalQuantCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quant",
        abstract: "Score weight variants (file, Q4G32, Q3G64+o0.5%, ...) against the f32 reference on a text.",
        discussion: """
            The reference is this file's weights dequantized to f32 (the 210 linear tensors as \
            F32; the tied Q8_0 embedding / output head as in the file): no higher-precision copy \
            of the model exists offline. Each spec requantizes the linear tensors from that \
            reference (the embedding / head and norms stay as in the file). The text is \
            tokenized without BOS and cut into chunks of --ctx tokens, each from an empty cache, \
            the second half scored (llama.cpp's perplexity method). Per spec: weight MiB (all \
            tensors, outliers included), bits per weight of the linear tensors, perplexity, mean \
            KL(P_ref || P) in nats and top-1 agreement with the reference at the scored \
            positions. Progress goes to stderr.
            """
    )

    @Option(help: "The held-out text file (e.g. shared/fixtures/gpl-3.txt).")
    var text: String

    @Option(help: "Comma-separated weight specs: file, Q<bits>G<group>[+o<percent>%][+mse], Q4_1, Q8_0, F16, F32.")
    var weights = "file,Q4G32,Q3G64,Q2G32"

    @Option(help: "The token embedding / tied output head for every --weights spec: file (Q8_0 here) or a format such as Q6G32, Q4G32+mse (no outliers, no GPTQ). Plans carry their own.")
    var embedding = "file"

    @Option(help: "A weight plan (name in $XDG_DATA_HOME/effterm/quant-plans, or a path) to score after the specs; repeatable. Its measured quality is written back into the plan file.")
    var plan: [String] = []

    @Option(help: "Chunks of context to evaluate (default: all the text holds).")
    var chunks: Int?

    @Option(help: "Context length per chunk.")
    var ctx = 512

    @Option(help: "A GGUF file to use instead of the cached model (else EFFTERM_MODEL, else the cache).")
    var model: String?

    @Flag(help: "Run the QLLM-Eval grid instead of --weights: W8/6/5/4/3/2 x group 32/64, per-token activations A8/A4, KV cache 8/4/3/2 bits (group 64), and W4A8, W4KV4, W4A8KV4, W8A8KV8; each with perplexity, KLD, top-1 and a generation probe (repetition of greedy answers to --probe chat questions). Prints a Markdown table (or --json).")
    var grid = false

    @Option(help: "Grid: chat questions in the generation probe (at most 20).")
    var probe = 20

    @Option(help: "Grid: tokens per probe answer.")
    var probeTokens = 48

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        do { _ = try WeightSpec.list(weights) } catch { throw ValidationError("--\(error)") }
        do {
            let e = try WeightSpec(parsing: embedding)
            if e.gptq || e.outlierFraction > 0 { throw ValidationError("--embedding takes no outliers and no GPTQ (the embedding is read by row lookups too).") }
        } catch let e as ValidationError { throw e } catch { throw ValidationError("--embedding: \(error)") }
        guard probe >= 0, probeTokens >= 1 else { throw ValidationError("--probe must be 0 or more and --probe-tokens at least 1.") }
        guard ctx >= 8 else { throw ValidationError("--ctx must be at least 8.") }
        if let chunks, chunks < 1 { throw ValidationError("--chunks must be at least 1.") }
    }

    struct Row: Codable {
        var spec: String
        var weightMiB: Double
        var linearBitsPerWeight: Double
        var ppl: Double
        var kld: Double
        var top1: Double
        var scored: Int
        var seconds: Double

        enum CodingKeys: String, CodingKey {
            case spec, ppl, kld, top1, scored, seconds
            case weightMiB = "weight_mib", linearBitsPerWeight = "linear_bits_per_weight"
        }
    }

    func run() throws {
        compute.apply()
        let specs = try WeightSpec.list(weights)
        let embeddingSpec = try WeightSpec(parsing: embedding)
        guard let content = try? String(contentsOfFile: text, encoding: .utf8) else {
            throw ValidationErrorParagraph("effterm eval quant: cannot read the text file \(text)")
        }
        let loaded = try LoadedModel.load(explicitPath: model, command: "eval quant")
        let tokens = loaded.tokenizer.encode(content, parseSpecial: false)
        let available = tokens.count / ctx
        let n = min(chunks ?? available, available)
        guard n >= 1 else {
            throw ValidationErrorParagraph("effterm eval quant: \(text) has \(tokens.count) tokens, fewer than one chunk of \(ctx)")
        }
        func log(_ s: String) { FileHandle.standardError.write(Data(("eval quant: " + s + "\n").utf8)) }
        log("\(tokens.count) tokens, \(n) chunks of \(ctx)")

        let start = Date()
        let refModel = try requantize(loaded.model, WeightSpec(format: .f32))
        let ref: QuantEval.Reference
        do {
            ref = try QuantEval.reference(model: refModel, tokens: tokens, nCtx: ctx, chunks: n) { log("reference (f32) " + $0) }
        } catch {
            throw ValidationErrorParagraph("effterm eval quant: \(error)")
        }
        log(String(format: "reference ppl %.4f (%.0f s)", ref.ppl, Date().timeIntervalSince(start)))
        if grid {
            let g = QuantGrid(loaded: loaded, tokens: tokens, reference: ref, referenceModel: refModel,
                              questions: Array(QuantGrid.probeQuestions.prefix(max(0, probe))),
                              probeTokens: probeTokens, log: log)
            var rows: [QuantGrid.Row] = []
            for (i, cell) in QuantGrid.cells.enumerated() {
                log("cell \(i + 1)/\(QuantGrid.cells.count): \(cell.name)")
                do { rows.append(try g.run(cell)) } catch { throw ValidationErrorParagraph("effterm eval quant --grid: \(cell.name): \(error)") }
            }
            if json {
                struct Out: Codable {
                    var text: String, ctx: Int, chunks: Int, referencePPL: Double, probeQuestions: Int, probeTokens: Int
                    var rows: [QuantGrid.Row]
                    enum CodingKeys: String, CodingKey {
                        case text, ctx, chunks, rows
                        case referencePPL = "reference_ppl", probeQuestions = "probe_questions", probeTokens = "probe_tokens"
                    }
                }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                let out = Out(text: text, ctx: ctx, chunks: n, referencePPL: ref.ppl, probeQuestions: g.questions.count,
                              probeTokens: probeTokens, rows: rows)
                FileHandle.standardOutput.write(try encoder.encode(out) + Data("\n".utf8))
            } else {
                print(String(format: "reference (file weights as f32): ppl %.4f over %d chunks of %d; probe: %d questions x %d tokens",
                             ref.ppl, n, ctx, g.questions.count, probeTokens))
                print(QuantGrid.markdown(rows, referencePPL: ref.ppl), terminator: "")
            }
            return
        }

        // Plans are read and checked against this model before any scoring.
        var plans: [(url: URL, plan: WeightPlan, specs: [String: WeightSpec])] = []
        if !plan.isEmpty {
            let fingerprint = try QuantStore.fingerprint(loaded.path)
            for p in plan {
                let url = QuantStore.planURL(p)
                do {
                    let wp = try WeightPlan.load(from: url, fingerprint: fingerprint)
                    plans.append((url, wp, try wp.specs()))
                } catch {
                    throw ValidationErrorParagraph("effterm eval quant: --plan \(p): \(error)")
                }
            }
        }
        // GPTQ specs need the inputs' Gram matrices over calibration text (never the evaluation text).
        let needsCalibration = specs.contains(where: \.gptq) || plans.contains { $0.specs.values.contains(where: \.gptq) }
        let calibration = needsCalibration ? try gptqCalibration(loaded, log: log) : nil
        enum Variant { case spec(WeightSpec), plan(Int) }
        var rows: [Row] = []
        for variant in specs.map(Variant.spec) + plans.indices.map(Variant.plan) {
            let t0 = Date()
            let m: LlamaModel, label: String
            switch variant {
            case .spec(let spec):
                let linears = spec.isFile ? loaded.model : try requantize(loaded.model, spec, calibration: calibration)
                m = embeddingSpec.isFile ? linears : LlamaModel(weights: try linears.weights.requantizedEmbedding(embeddingSpec))
                label = spec.description + (embeddingSpec.isFile ? "" : " emb:" + embeddingSpec.description)
            case .plan(let i):
                label = "plan:" + plans[i].plan.name
                do {
                    m = LlamaModel(weights: try loaded.model.weights.requantized(plan: plans[i].specs, calibration: calibration))
                } catch {
                    throw ValidationErrorParagraph("effterm eval quant: --plan \(plan[i]): \(error)")
                }
            }
            let scores: QuantEval.Scores
            do {
                scores = try QuantEval.score(model: m, tokens: tokens, reference: ref) { log("\(label) " + $0) }
            } catch {
                throw ValidationErrorParagraph("effterm eval quant: \(error)")
            }
            let linear = m.weights.linearStorage
            let row = Row(spec: label, weightMiB: Double(m.weights.totalBytes) / 1_048_576,
                          linearBitsPerWeight: Double(linear.bytes * 8) / Double(max(1, linear.elements)),
                          ppl: scores.ppl, kld: scores.kld, top1: scores.top1, scored: scores.scored,
                          seconds: Date().timeIntervalSince(t0))
            log(String(format: "%@: ppl %.4f, KLD %.4f, top-1 %.1f%%", row.spec, row.ppl, row.kld, row.top1 * 100))
            rows.append(row)
            if case .plan(let i) = variant {
                var wp = plans[i].plan
                wp.measured = .init(text: text, chunks: n, ctx: ctx, ppl: row.ppl, kld: row.kld, top1: row.top1, weightMiB: row.weightMiB)
                try wp.save(to: plans[i].url)
            }
        }
        if json {
            struct Out: Codable {
                var text: String, ctx: Int, chunks: Int, referencePPL: Double, reference: String, rows: [Row]
                enum CodingKeys: String, CodingKey {
                    case text, ctx, chunks, rows, reference
                    case referencePPL = "reference_ppl"
                }
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            let out = Out(text: text, ctx: ctx, chunks: n, referencePPL: ref.ppl,
                          reference: "file weights dequantized to f32 (linear tensors F32, embedding/head as in the file)",
                          rows: rows)
            FileHandle.standardOutput.write(try encoder.encode(out) + Data("\n".utf8))
            return
        }
        print(String(format: "reference (file weights as f32): ppl %.4f over %d chunks of %d", ref.ppl, n, ctx))
        print("spec                 MiB   bits/w(linear)       ppl      KLD   top-1")
        for r in rows {
            let name = r.spec.padding(toLength: max(16, r.spec.count), withPad: " ", startingAt: 0)
            print(String(format: "%@ %7.2f   %14.3f  %8.4f  %7.4f  %5.1f%%", name, r.weightMiB, r.linearBitsPerWeight,
                         r.ppl, r.kld, r.top1 * 100))
        }
    }
}
