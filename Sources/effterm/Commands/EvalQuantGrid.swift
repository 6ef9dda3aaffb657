import EffCore
import EffLLM
import Foundation

/// `effterm eval quant --grid`: the QLLM-Eval study on this model. Round-to-nearest weights
/// (W8/6/5/4/3/2, groups 32 and 64), per-token dynamic activations (A8, A4), the KV cache at
/// 8/4/3/2 bits per token in groups of 64 (quantized as it is written), and combinations,
/// each scored against the f32 reference on held-out text (perplexity, KLD, top-1) plus a
/// generation probe: greedy answers to chat questions and how much they repeat themselves,
/// since dialogue is where low bits break first.
struct QuantGrid {
    /// One cell of the grid.
    struct Cell {
        var name: String
        var weights: WeightSpec?
        var study: QuantStudy
    }

    struct Row: Codable {
        var cell: String
        var weights: String
        var activationBits: Int?
        var kvBits: Int?
        var ppl: Double
        var kld: Double
        var top1: Double
        /// Mean share of each probe answer's 4-grams that already occurred earlier in it.
        var repetition: Double
        var probeTokens: Double
        var seconds: Double

        enum CodingKeys: String, CodingKey {
            case cell, weights, ppl, kld, top1, repetition, seconds
            case activationBits = "activation_bits", kvBits = "kv_bits", probeTokens = "probe_mean_tokens"
        }
    }

    /// The cells: the reference, W alone, A alone, KV alone, and the combinations QLLM-Eval
    /// recommends looking at. Group 128 is left out: 576-wide rows (every q/k/v/o/gate/up
    /// tensor here) hold no whole number of 128-groups.
    static var cells: [Cell] {
        var out = [Cell(name: "FP (f32 reference)", weights: nil, study: QuantStudy())]
        for bits in [8, 6, 5, 4, 3, 2] {
            for group in [32, 64] {
                let f = WeightFormat.named("Q\(bits)G\(group)")!
                out.append(Cell(name: "W\(bits) g\(group)", weights: WeightSpec(format: f), study: QuantStudy()))
            }
        }
        for a in [8, 4] { out.append(Cell(name: "A\(a)", weights: nil, study: QuantStudy(activationBits: a))) }
        for kv in [8, 4, 3, 2] { out.append(Cell(name: "KV\(kv)", weights: nil, study: QuantStudy(kvBits: kv))) }
        let w4 = WeightSpec(format: WeightFormat.named("Q4G32")!), w8 = WeightSpec(format: WeightFormat.named("Q8G32")!)
        out.append(Cell(name: "W4A8", weights: w4, study: QuantStudy(activationBits: 8)))
        out.append(Cell(name: "W4KV4", weights: w4, study: QuantStudy(kvBits: 4)))
        out.append(Cell(name: "W4A8KV4", weights: w4, study: QuantStudy(activationBits: 8, kvBits: 4)))
        out.append(Cell(name: "W8A8KV8", weights: w8, study: QuantStudy(activationBits: 8, kvBits: 8)))
        return out
    }

    let loaded: LoadedModel
    let tokens: [Int32]
    let reference: QuantEval.Reference
    /// The f32 reference model (the file's weights dequantized), shared by the A and KV cells.
    let referenceModel: LlamaModel
    let questions: [String]
    let probeTokens: Int
    let log: (String) -> Void

    /// Greedy answers to every probe question under `model`: mean repetition and length.
    func probe(_ model: LlamaModel) throws -> (repetition: Double, tokens: Double) {
        var rep = 0.0, len = 0.0
        for q in questions {
            let text = try loaded.template.render([ChatMessage(role: "user", content: q)], addGenerationPrompt: true,
                                                  bosToken: loaded.tokenizer.tokenText(loaded.tokenizer.bosID),
                                                  eosToken: loaded.tokenizer.tokenText(loaded.tokenizer.eosID))
            let prompt = loaded.tokenizer.encode(text, parseSpecial: true)
            let state = model.makeState(maxContext: prompt.count + probeTokens + 1, maxBatch: 256)
            let gen = TokenGenerator(model: model, state: state, sampler: Sampler(config: .greedy, vocabSize: model.config.vocabSize),
                                     prompt: prompt, maxTokens: probeTokens, stopTokens: loaded.stopTokens)
            for _ in gen {}
            if let error = gen.error { throw error }
            rep += QuantEval.repetition(gen.generated)
            len += Double(gen.generated.count)
        }
        let n = Double(max(1, questions.count))
        return (rep / n, len / n)
    }

    func run(_ cell: Cell) throws -> Row {
        let t0 = Date()
        let model: LlamaModel
        if let spec = cell.weights {
            model = LlamaModel(weights: try loaded.model.weights.requantized(spec))
        } else {
            model = LlamaModel(weights: referenceModel.weights)
        }
        model.study = cell.study.activationBits == nil && cell.study.kvBits == nil ? nil : cell.study
        let scores = try QuantEval.score(model: model, tokens: tokens, reference: reference) { log("\(cell.name) " + $0) }
        let p = try probe(model)
        let row = Row(cell: cell.name, weights: cell.weights?.description ?? "f32", activationBits: cell.study.activationBits,
                      kvBits: cell.study.kvBits, ppl: scores.ppl, kld: scores.kld, top1: scores.top1,
                      repetition: p.repetition, probeTokens: p.tokens, seconds: Date().timeIntervalSince(t0))
        log(String(format: "%@: ppl %.3f  KLD %.4f  top-1 %.1f%%  repetition %.3f (%.0f s)", cell.name, row.ppl, row.kld,
                   row.top1 * 100, row.repetition, row.seconds))
        return row
    }

    /// The probe: twenty everyday chat questions (written for effterm), the kind of
    /// dialogue where a damaged model starts repeating itself.
    static let probeQuestions = [
        "How can I sleep better at night?", "What should I pack for a weekend hike?",
        "Explain what a prime number is.", "Give me three tips for learning a new language.",
        "Why is the sky blue?", "How do I make a simple tomato sauce?",
        "What is the difference between weather and climate?", "How can I stay focused while studying?",
        "Write a short poem about the sea.", "What are the benefits of regular exercise?",
        "How does a bicycle stay upright?", "Suggest a name for a friendly robot.",
        "What should I consider when adopting a dog?", "Summarize the water cycle in a few sentences.",
        "How can I save money on groceries?", "What is photosynthesis?",
        "Describe a good morning routine.", "How do I write a polite email asking for help?",
        "What are some fun things to do on a rainy day?", "Why do leaves change color in autumn?",
    ]

    static func markdown(_ rows: [Row], referencePPL: Double) -> String {
        var s = "| cell | weights | A | KV | ppl | KLD | top-1 | repetition |\n|---|---|---|---|---|---|---|---|\n"
        for r in rows {
            s += String(format: "| %@ | %@ | %@ | %@ | %.2f | %.4f | %.1f%% | %.3f |\n", r.cell, r.weights,
                        r.activationBits.map { "\($0)" } ?? "-", r.kvBits.map { "\($0)" } ?? "-", r.ppl, r.kld,
                        r.top1 * 100, r.repetition)
        }
        return s
    }
}
