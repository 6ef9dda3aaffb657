import Foundation

/// Every fidelity check over a directory of fixture files, as `effterm eval fixtures` runs it.
///
/// Files are optional: a check whose file is absent reports nil. Fractions are 0...1.
/// - `tokenizer_exact`: (text, mode) pairs of `tokenizer.jsonl` tokenized exactly, modes
///   plain (`ids`) and specials parsed (`ids_parse_special`).
/// - `template_exact`: cases of `chat-template.jsonl` whose rendered prompt and its tokens
///   (specials parsed) are both exact.
/// - `top1_agreement`, `mean_abs_logprob_diff`, `greedy_prefix_ok`, `greedy_prompts`: see
///   `FidelityEval.greedy` over `greedy.jsonl`.
/// - `ppl`, `ppl_ref`: `FidelityEval.perplexity` on `perplexity.json`'s text and context.
public enum FixtureSuite {
    public struct Report: Sendable, Codable {
        public var tokenizerExact: Double?
        public var tokenizerCases: Int?
        public var templateExact: Double?
        public var templateCases: Int?
        public var top1Agreement: Double?
        public var meanAbsLogprobDiff: Double?
        public var greedyPrefixOk: Int?
        public var greedyPrompts: Int?
        public var greedyPositions: Int?
        public var greedyPerPrompt: [FidelityEval.PromptResult]?
        public var ppl: Double?
        public var pplRef: Double?
        public var pplScoredTokens: Int?
        public var pplChunks: Int?
        public var seconds: Double = 0

        public init() {}

        enum CodingKeys: String, CodingKey {
            case tokenizerExact = "tokenizer_exact", tokenizerCases = "tokenizer_cases"
            case templateExact = "template_exact", templateCases = "template_cases"
            case top1Agreement = "top1_agreement", meanAbsLogprobDiff = "mean_abs_logprob_diff"
            case greedyPrefixOk = "greedy_prefix_ok", greedyPrompts = "greedy_prompts"
            case greedyPositions = "greedy_positions", greedyPerPrompt = "greedy_per_prompt"
            case ppl, pplRef = "ppl_ref", pplScoredTokens = "ppl_scored_tokens", pplChunks = "ppl_chunks"
            case seconds
        }

        /// Explicit nulls for absent checks, so every documented key is always present.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(tokenizerExact, forKey: .tokenizerExact)
            try c.encode(tokenizerCases, forKey: .tokenizerCases)
            try c.encode(templateExact, forKey: .templateExact)
            try c.encode(templateCases, forKey: .templateCases)
            try c.encode(top1Agreement, forKey: .top1Agreement)
            try c.encode(meanAbsLogprobDiff, forKey: .meanAbsLogprobDiff)
            try c.encode(greedyPrefixOk, forKey: .greedyPrefixOk)
            try c.encode(greedyPrompts, forKey: .greedyPrompts)
            try c.encode(greedyPositions, forKey: .greedyPositions)
            try c.encode(greedyPerPrompt, forKey: .greedyPerPrompt)
            try c.encode(ppl, forKey: .ppl)
            try c.encode(pplRef, forKey: .pplRef)
            try c.encode(pplScoredTokens, forKey: .pplScoredTokens)
            try c.encode(pplChunks, forKey: .pplChunks)
            try c.encode(seconds, forKey: .seconds)
        }
    }

    /// Runs the checks whose files exist in `directory`. `maxPerplexityChunks` limits the
    /// perplexity run (nil: all chunks, as the reference figure was computed).
    public static func run(directory: URL, model: LlamaModel, tokenizer: Tokenizer, template: ChatTemplate,
                           maxPerplexityChunks: Int? = nil, progress: ((String) -> Void)? = nil) throws -> Report {
        let start = Date()
        var report = Report()
        let file = { (name: String) in directory.appendingPathComponent(name) }

        if let cases = try Fixtures.loadLines(Fixtures.TokenizerCase.self, at: file("tokenizer.jsonl")) {
            var exact = 0
            for c in cases {
                if tokenizer.encode(c.text, parseSpecial: false) == c.ids { exact += 1 }
                if tokenizer.encode(c.text, parseSpecial: true) == c.ids_parse_special { exact += 1 }
            }
            report.tokenizerCases = cases.count * 2
            report.tokenizerExact = cases.isEmpty ? nil : Double(exact) / Double(cases.count * 2)
            progress?("tokenizer: \(exact)/\(cases.count * 2) exact")
        }

        if let cases = try Fixtures.loadLines(Fixtures.TemplateCase.self, at: file("chat-template.jsonl")) {
            var exact = 0
            for c in cases {
                let messages = c.messages.map { ChatMessage(role: $0.role, content: $0.content) }
                let prompt = try? template.render(messages, addGenerationPrompt: c.add_generation_prompt,
                                                  bosToken: tokenizer.tokenText(tokenizer.bosID),
                                                  eosToken: tokenizer.tokenText(tokenizer.eosID))
                if let p = prompt, p == c.prompt, tokenizer.encode(p, parseSpecial: true) == c.ids { exact += 1 }
            }
            report.templateCases = cases.count
            report.templateExact = cases.isEmpty ? nil : Double(exact) / Double(cases.count)
            progress?("chat template: \(exact)/\(cases.count) exact")
        }

        if let cases = try Fixtures.loadLines(Fixtures.GreedyCase.self, at: file("greedy.jsonl")) {
            let g = try FidelityEval.greedy(model: model, cases: cases, progress: progress)
            report.top1Agreement = g.top1Agreement
            report.meanAbsLogprobDiff = g.meanAbsLogprobDiff
            report.greedyPrefixOk = g.prefixOkCount
            report.greedyPrompts = g.prompts.count
            report.greedyPositions = g.positions
            report.greedyPerPrompt = g.prompts
        }

        if let p = try Fixtures.load(Fixtures.Perplexity.self, at: file("perplexity.json")) {
            let textURL = file(p.text_file)
            let text: String
            do { text = try String(contentsOf: textURL, encoding: .utf8) } catch {
                throw Fixtures.LoadError.unreadable(path: textURL.path, reason: "\(error.localizedDescription)")
            }
            // llama-perplexity tokenizes without parsing specials; no BOS (add_bos_token false).
            let tokens = tokenizer.encode(text, parseSpecial: false)
            let r = try FidelityEval.perplexity(model: model, tokens: tokens, nCtx: p.n_ctx,
                                                maxChunks: maxPerplexityChunks, progress: progress)
            report.ppl = r.ppl
            report.pplRef = p.ppl_ref
            report.pplScoredTokens = r.scored
            report.pplChunks = min(tokens.count / p.n_ctx, maxPerplexityChunks ?? Int.max)
        }
        report.seconds = Date().timeIntervalSince(start)
        return report
    }
}
