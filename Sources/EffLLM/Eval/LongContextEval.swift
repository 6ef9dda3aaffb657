import EffCore
import Foundation

/// Long-context checks of an attention configuration (issue 12, part 6): passkey retrieval
/// and streaming perplexity, run the same way for dense attention, StreamingLLM and any
/// other policy the caller names.
///
/// **Passkey retrieval** (Mohtashami & Jaggi, "Landmark Attention", 2023, the test
/// StreamingLLM's and MoA's papers use): a five-digit number hidden once in repeated filler
/// sentences at a needle depth (0% = just after the instructions, 100% = just before the
/// question), asked for at the end, in the chat template, with the answer started as
/// "The pass key is". The model answers greedily; a case is correct when the answer holds
/// the number.
///
/// **Perplexity**: teacher-forced negative log-likelihood of every next token of a text fed
/// in chunks through the policy's state (so eviction happens as it would while streaming),
/// reported overall and per segment of `segment` tokens, which shows where window-only
/// attention breaks and whether sinks hold it flat.
public enum LongContextEval {
    public typealias Policy = AttentionConfiguration

    /// One passkey question.
    public struct PasskeyCase: Codable, Sendable {
        public var depth: Double
        public var passkey: String
        public var promptTokens: Int
        public var answer: String
        public var correct: Bool
        /// KV bytes the state held when the answer ended.
        public var kvBytes: Int
        public var evicted: Int
    }

    /// Every needle of one (policy, length).
    public struct PasskeyRow: Codable, Sendable {
        public var policy: String
        public var length: Int
        public var correct: Int
        public var total: Int
        public var accuracy: Double { total == 0 ? 0 : Double(correct) / Double(total) }
        public var seconds: Double
        public var cases: [PasskeyCase]
    }

    /// What the passkey prompts are made of (the filler was chosen so that dense attention
    /// answers at 1k tokens; see `effterm eval longctx --help`).
    public struct PasskeyText: Sendable {
        public var intro = "There is an important pass key hidden inside a lot of irrelevant text. Find it and "
            + "memorize it. I will ask you for the pass key at the end.\n\n"
        public var filler = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
        public var needle = "The pass key is {KEY}. Remember it. {KEY} is the pass key. "
        public var question = "\n\nWhat is the pass key? Answer with the number only."
        public var answerStart = "The pass key is"
        public init() {}
    }

    /// Depths `0, 1/(n-1), ..., 1` of `n` needles (one needle: the middle).
    public static func depths(_ n: Int) -> [Double] {
        n <= 1 ? [0.5] : (0..<n).map { Double($0) / Double(n - 1) }
    }

    /// The prompt ids for a passkey question of about `length` tokens (at most `length`):
    /// template-rendered user message, generation prompt and the started answer.
    public static func passkeyPrompt(tokenizer: Tokenizer, template: ChatTemplate, text: PasskeyText = PasskeyText(),
                                     length: Int, depth: Double, passkey: String) throws -> [Int32] {
        func render(_ units: Int) throws -> [Int32] {
            let at = Int((depth * Double(units)).rounded())
            var body = text.intro
            for i in 0...units {
                if i == at { body += text.needle.replacingOccurrences(of: "{KEY}", with: passkey) }
                if i < units { body += text.filler }
            }
            body += text.question
            let rendered = try template.render([ChatMessage(role: "user", content: body)], addGenerationPrompt: true,
                                               bosToken: tokenizer.tokenText(tokenizer.bosID),
                                               eosToken: tokenizer.tokenText(tokenizer.eosID))
            return tokenizer.encode(rendered + text.answerStart, parseSpecial: true)
        }
        let base = try render(0).count
        let perUnit = max(1, tokenizer.encode(text.filler, parseSpecial: false).count)
        var units = max(0, (length - base) / perUnit)
        var ids = try render(units)
        while ids.count > length && units > 0 {
            units -= max(1, (ids.count - length + perUnit - 1) / perUnit)
            units = max(0, units)
            ids = try render(units)
        }
        // Fill up: the per-unit estimate undercounts when units merge at their seams.
        while true {
            let more = try render(units + 1)
            guard more.count <= length else { return ids }
            units += 1
            ids = more
        }
    }

    /// Passkey retrieval at every length x depth for every policy (policies interleaved per
    /// case, so a long run can be compared as it goes). `answerTokens` greedy tokens at most.
    public static func passkey(model: LlamaModel, tokenizer: Tokenizer, template: ChatTemplate, stopTokens: Set<Int32>,
                               policies: [Policy], lengths: [Int], needles: Int, seed: UInt64 = 12,
                               answerTokens: Int = 8, text: PasskeyText = PasskeyText(),
                               progress: ((String) -> Void)? = nil) throws -> [PasskeyRow] {
        var rows: [PasskeyRow] = []
        var rng = SplitMix64(seed: seed)
        let vocab = model.config.vocabSize
        for length in lengths {
            let limit = min(length, model.config.seqLen - answerTokens)
            var byPolicy = policies.map { PasskeyRow(policy: $0.name, length: length, correct: 0, total: 0, seconds: 0, cases: []) }
            for depth in depths(needles) {
                let key = String(10000 + rng.next() % 90000)
                let prompt = try passkeyPrompt(tokenizer: tokenizer, template: template, text: text, length: limit,
                                               depth: depth, passkey: key)
                for (p, policy) in policies.enumerated() {
                    let t0 = MonotonicClock.seconds()
                    let state = policy.makeState(model, tokens: prompt.count + answerTokens, maxBatch: 64)
                    try model.forward(prompt, state: state, logits: .last)
                    var answer: [Int32] = []
                    while answer.count < answerTokens {
                        let next = Int32(LogitMath.argmax(state.logits, vocab))
                        if stopTokens.contains(next) { break }
                        answer.append(next)
                        if answer.count < answerTokens { try model.forward([next], state: state, logits: .last) }
                    }
                    let said = tokenizer.decode(answer)
                    let ok = said.contains(key)
                    byPolicy[p].cases.append(PasskeyCase(depth: depth, passkey: key, promptTokens: prompt.count,
                                                         answer: said, correct: ok, kvBytes: state.cache.ownBytesInUse,
                                                         evicted: state.evictedCount))
                    byPolicy[p].total += 1
                    if ok { byPolicy[p].correct += 1 }
                    let dt = MonotonicClock.seconds() - t0
                    byPolicy[p].seconds += dt
                    progress?(String(format: "passkey %@ length %d depth %3.0f%%: %@ (%@) %.1f s", policy.name, prompt.count,
                                     depth * 100, ok ? "ok" : "MISS", said.trimmingCharacters(in: .whitespacesAndNewlines),
                                     dt))
                }
            }
            rows += byPolicy
        }
        return rows
    }

    /// Perplexity of one policy over a text.
    public struct PerplexityRow: Codable, Sendable {
        public var policy: String
        /// Tokens whose next token was scored.
        public var scored: Int
        public var ppl: Double
        /// Tokens per segment and each segment's perplexity, in order.
        public var segment: Int
        public var segments: [Double]
        /// Largest KV bytes the state held.
        public var kvBytesMax: Int
        public var evicted: Int
        public var seconds: Double
        /// Why scoring stopped before the end of the text (dense past its context), or nil.
        public var stoppedAt: String?
    }

    /// Teacher-forced perplexity of `tokens` under every policy, fed `chunk` tokens per
    /// forward call. A policy without eviction stops at the model's context.
    public static func perplexity(model: LlamaModel, tokens: [Int32], policies: [Policy], segment: Int = 512,
                                  chunk: Int = 32, progress: ((String) -> Void)? = nil) throws -> [PerplexityRow] {
        let vocab = model.config.vocabSize
        let chunk = max(1, chunk)
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: chunk * vocab)
        defer { logits.deallocate() }
        var rows: [PerplexityRow] = []
        for policy in policies {
            let t0 = MonotonicClock.seconds()
            let state = policy.makeState(model, tokens: tokens.count, maxBatch: chunk)
            var nll = 0.0, scored = 0
            var segNLL = 0.0, segCount = 0
            var segments: [Double] = []
            var kvMax = 0
            var stopped: String?
            var i = 0
            while i < tokens.count - 1 {
                var n = min(chunk, tokens.count - 1 - i, policy.eviction?.maxChunk ?? chunk)
                if policy.eviction == nil {
                    n = min(n, state.cache.maxLength - state.position)
                    if n <= 0 { stopped = "context of \(state.cache.maxLength) positions full"; break }
                }
                try model.forward(Array(tokens[i..<(i + n)]), state: state, logits: .all(logits))
                kvMax = max(kvMax, state.cache.ownBytesInUse)
                for t in 0..<n {
                    let lp = LogitMath.logProbability(logits + t * vocab, vocab, index: Int(tokens[i + t + 1]))
                    nll -= lp; segNLL -= lp
                    scored += 1; segCount += 1
                    if segCount == segment {
                        segments.append(exp(segNLL / Double(segCount)))
                        segNLL = 0; segCount = 0
                    }
                }
                i += n
            }
            if segCount > 0 { segments.append(exp(segNLL / Double(segCount))) }
            let row = PerplexityRow(policy: policy.name, scored: scored, ppl: scored == 0 ? .nan : exp(nll / Double(scored)),
                                    segment: segment, segments: segments, kvBytesMax: kvMax, evicted: state.evictedCount,
                                    seconds: MonotonicClock.seconds() - t0, stoppedAt: stopped)
            progress?(String(format: "perplexity %@: %.3f over %d tokens (%.0f s)", policy.name, row.ppl, scored, row.seconds))
            rows.append(row)
        }
        return rows
    }
}
