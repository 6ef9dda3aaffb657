import EffCore
import EffLLM
import EffTechniques
import Foundation

/// Runs MoA's calibration on the Llama engine: long documents in the chat template with the
/// model's own answer (MoA's "model-aligned" data), profiled through the attention observer
/// (forward-only attention-mass importance, see `MoAImportance`), then validation of
/// candidate plans by perplexity on a held-out text at a length the profile never saw.
public enum MoAProfiler {
    /// The questions calibration samples ask about their document, in turn: a summary (reads
    /// everywhere) and a quote lookup (must find one sentence at any depth and copy it, the
    /// long-range retrieval MoA's QA calibration data asks for).
    public enum Question: CaseIterable, Sendable {
        case summary, quote

        func text(window: String, salt: Int) -> String {
            switch self {
            case .summary: return "\n\nSummarize the text above in a few sentences."
            case .quote:
                let sentences = window.components(separatedBy: ". ").map { $0.split(whereSeparator: \.isWhitespace) }
                    .filter { $0.count >= 8 }
                guard !sentences.isEmpty else { return Question.summary.text(window: window, salt: salt) }
                let pick = sentences[(salt &* 7919 &+ 13) % sentences.count]
                return "\n\nQuote the sentence of the text above that begins with \"" + pick.prefix(6).joined(separator: " ")
                    + "\". Copy it exactly."
            }
        }
    }

    /// Profiles at every length with `samples` samples each (documents taken in turn, each
    /// sample at a different offset). A sample is the rendered prompt plus up to
    /// `answerTokens` greedy answer tokens, `length` tokens in all; the answer rows are
    /// observed (MoA's response-only loss).
    /// `progress` gets a line per sample; `cancelled` is polled between samples.
    public static func profile(model: LlamaModel, tokenizer: Tokenizer, template: ChatTemplate, stopTokens: Set<Int32>,
                               documents: [[Int32]], lengths: [Int], samples: Int, answerTokens: Int = 32,
                               blockSize: Int = 32, progress: ((String) -> Void)? = nil,
                               cancelled: () -> Bool = { false }) throws -> [MoAImportance] {
        let c = model.config
        let docs = documents.filter { !$0.isEmpty }
        guard !docs.isEmpty else { throw MoAProfileError.noDocuments }
        var out: [MoAImportance] = []
        var sampleIndex = 0
        let total = lengths.count * samples
        let t0 = MonotonicClock.seconds()
        for length in lengths {
            let collector = MoAProfileCollector(layers: c.nLayers, heads: c.nHeads, kvHeads: c.nKVHeads, length: length,
                                                blockSize: blockSize)
            for s in 0..<samples {
                if cancelled() { throw MoAProfileError.cancelled }
                let doc = docs[s % docs.count]
                let prompt = try samplePrompt(tokenizer: tokenizer, template: template, document: doc,
                                              promptTokens: length - answerTokens, salt: s / docs.count,
                                              question: Question.allCases[(s + s / docs.count) % Question.allCases.count])
                let state = model.makeState(maxContext: length, maxBatch: 64)
                collector.beginSample(responseFrom: prompt.count)
                try model.forward(prompt, state: state, logits: .last)
                state.attentionObserver = collector
                var produced = 0
                while state.position < length {
                    let next = Int32(LogitMath.argmax(state.logits, c.vocabSize))
                    if stopTokens.contains(next) { break }
                    try model.forward([next], state: state, logits: .last)
                    produced += 1
                }
                collector.endSample()
                sampleIndex += 1
                let elapsed = MonotonicClock.seconds() - t0
                let eta = elapsed / Double(sampleIndex) * Double(total - sampleIndex)
                progress?(String(format: "profile %d/%d: length %d, %d prompt + %d answer tokens, %.0f s elapsed, ETA %.0f s",
                                 sampleIndex, total, length, prompt.count, produced, elapsed, eta))
            }
            out.append(collector.importance())
        }
        return out
    }

    /// A document window rendered as a user message with `question`, at most `promptTokens`
    /// tokens; `salt` moves the window through the document and picks the quoted sentence.
    static func samplePrompt(tokenizer: Tokenizer, template: ChatTemplate, document: [Int32], promptTokens: Int,
                             salt: Int, question: Question) throws -> [Int32] {
        func render(_ window: ArraySlice<Int32>) throws -> [Int32] {
            let excerpt = tokenizer.decode(Array(window))
            let body = excerpt + question.text(window: excerpt, salt: salt)
            let text = try template.render([ChatMessage(role: "user", content: body)], addGenerationPrompt: true,
                                           bosToken: tokenizer.tokenText(tokenizer.bosID),
                                           eosToken: tokenizer.tokenText(tokenizer.eosID))
            return tokenizer.encode(text, parseSpecial: true)
        }
        let overhead = try render(document[0..<0]).count
        var count = max(1, min(document.count, promptTokens - overhead))
        let room = document.count - count
        let start = room <= 0 ? 0 : (salt * 397) % (room + 1)
        var ids = try render(document[start..<(start + count)])
        while ids.count > promptTokens && count > 1 {
            count -= max(1, ids.count - promptTokens)
            ids = try render(document[start..<(start + count)])
        }
        return ids
    }

    /// The candidate plans of one search, scored on held-out text.
    public struct Validation: Sendable {
        public var densePPL: Double
        public var ppl: [Double]
    }

    /// Perplexity of dense attention and of each plan on `tokens` (the first `length + 1`
    /// tokens are scored in chunks of `chunk`).
    public static func validate(model: LlamaModel, plans: [MoAPlan], tokens: [Int32], length: Int, chunk: Int = 128,
                                progress: ((String) -> Void)? = nil) throws -> Validation {
        let ids = Array(tokens.prefix(length + 1))
        let configs = [AttentionConfiguration.dense] + plans.map { AttentionSpec.moa($0).configuration }
        let rows = try LongContextEval.perplexity(model: model, tokens: ids, policies: configs, segment: length,
                                                  chunk: chunk, progress: progress)
        return Validation(densePPL: rows[0].ppl, ppl: rows.dropFirst().map(\.ppl))
    }
}

public enum MoAProfileError: Error, CustomStringConvertible {
    case noDocuments
    case cancelled

    public var description: String {
        switch self {
        case .noDocuments: return "no calibration documents (give readable, non-empty text files)"
        case .cancelled: return "profile cancelled"
        }
    }
}
