import Foundation

/// Fidelity checks of the forward pass against llama.cpp's fixtures (issue 2's criteria).
///
/// Teacher forcing: each greedy case's prompt, then its reference `greedy_ids` fed back one
/// by one; at every step the model's top-1 token is compared with the reference token and
/// its log-probability (log-softmax of our logits) with the fixture's `logprob`. Free
/// running: real single-token greedy decoding from the prompt, compared with the first
/// `freeRunTokens` reference tokens (or all of them when the answer is shorter).
public enum FidelityEval {
    /// Per-prompt outcome of the greedy checks.
    public struct PromptResult: Sendable, Codable {
        public var positions: Int
        public var top1Matches: Int
        public var meanAbsLogprobDiff: Double
        /// Free-running tokens that matched the reference before the first difference.
        public var freeRunMatched: Int
        /// Tokens that had to match (`min(freeRunTokens, greedy_ids.count)`).
        public var freeRunRequired: Int
        public var prefixOk: Bool { freeRunMatched >= freeRunRequired }
    }

    /// Aggregate greedy outcome over all prompts.
    public struct GreedyResult: Sendable, Codable {
        public var prompts: [PromptResult] = []
        public var positions: Int { prompts.reduce(0) { $0 + $1.positions } }
        public var top1Agreement: Double {
            positions == 0 ? 0 : Double(prompts.reduce(0) { $0 + $1.top1Matches }) / Double(positions)
        }
        public var meanAbsLogprobDiff: Double {
            positions == 0 ? 0 : prompts.reduce(0) { $0 + $1.meanAbsLogprobDiff * Double($1.positions) } / Double(positions)
        }
        public var prefixOkCount: Int { prompts.filter(\.prefixOk).count }
    }

    /// Runs teacher-forced and free-running greedy checks for every case.
    public static func greedy(model: LlamaModel, cases: [Fixtures.GreedyCase], freeRunTokens: Int = 8,
                              progress: ((String) -> Void)? = nil) throws -> GreedyResult {
        let vocab = model.config.vocabSize
        var result = GreedyResult()
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: 64 * vocab)
        defer { logits.deallocate() }
        for (index, c) in cases.enumerated() {
            let n = min(c.greedy_ids.count, c.steps.count)
            guard n > 0, !c.prompt_ids.isEmpty else { continue }
            let needed = c.prompt_ids.count + n + 1
            // Teacher forcing: step 0 from the prompt, step i from greedy_ids[i-1].
            var matches = 0
            var sumDiff = 0.0
            func score(_ row: UnsafePointer<Float>, step i: Int) {
                let ref = Int(c.greedy_ids[i])
                if LogitMath.argmax(row, vocab) == ref { matches += 1 }
                sumDiff += abs(LogitMath.logProbability(row, vocab, index: ref) - c.steps[i].logprob)
            }
            let state = model.makeState(maxContext: needed, maxBatch: 64)
            try model.forward(c.prompt_ids, state: state, logits: .last)
            score(state.logits, step: 0)
            var i = 1
            while i < n {
                let chunk = min(64, n - i)
                try c.greedy_ids[(i - 1)..<(i - 1 + chunk)].withUnsafeBufferPointer {
                    try model.forward($0, state: state, logits: .all(logits))
                }
                for r in 0..<chunk { score(logits + r * vocab, step: i + r) }
                i += chunk
            }
            // Free running: single-token decode steps.
            let required = min(freeRunTokens, c.greedy_ids.count)
            let free = model.makeState(maxContext: c.prompt_ids.count + required + 1, maxBatch: 64)
            try model.forward(c.prompt_ids, state: free, logits: .last)
            var matched = 0
            while matched < required {
                let next = Int32(LogitMath.argmax(free.logits, vocab))
                guard next == c.greedy_ids[matched] else { break }
                matched += 1
                if matched < required { try model.forward([next], state: free, logits: .last) }
            }
            let r = PromptResult(positions: n, top1Matches: matches, meanAbsLogprobDiff: sumDiff / Double(n),
                                 freeRunMatched: matched, freeRunRequired: required)
            result.prompts.append(r)
            progress?(String(format: "greedy prompt %d/%d: top1 %d/%d, mean |dlogprob| %.4f, free-run %d/%d",
                             index + 1, cases.count, matches, n, r.meanAbsLogprobDiff, matched, required))
        }
        return result
    }

    /// Perplexity by llama.cpp's `llama-perplexity` method: consecutive non-overlapping
    /// chunks of `nCtx` tokens (remainder dropped), each from an empty cache; only the
    /// second half is scored (logits at `nCtx/2 ... nCtx-2` predict the next token).
    /// Returns `exp(mean NLL)` and the number of scored tokens.
    public static func perplexity(model: LlamaModel, tokens: [Int32], nCtx: Int, maxChunks: Int? = nil,
                                  progress: ((String) -> Void)? = nil) throws -> (ppl: Double, scored: Int) {
        let vocab = model.config.vocabSize
        var chunks = tokens.count / nCtx
        if let m = maxChunks { chunks = min(chunks, m) }
        guard chunks > 0, nCtx >= 4 else { return (.nan, 0) }
        let batch = 64
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: batch * vocab)
        defer { logits.deallocate() }
        let state = model.makeState(maxContext: nCtx, maxBatch: batch)
        let first = nCtx / 2
        var nll = 0.0
        var scored = 0
        for c in 0..<chunks {
            let chunk = Array(tokens[(c * nCtx)..<((c + 1) * nCtx)])
            state.rewind(to: 0)
            try model.forward(Array(chunk[0..<first]), state: state, logits: .none)
            var pos = first
            while pos < nCtx - 1 {
                let n = min(batch, nCtx - 1 - pos)
                try model.forward(Array(chunk[pos..<(pos + n)]), state: state, logits: .all(logits))
                for r in 0..<n {
                    nll -= LogitMath.logProbability(logits + r * vocab, vocab, index: Int(chunk[pos + r + 1]))
                }
                scored += n
                pos += n
            }
            progress?(String(format: "perplexity chunk %d/%d: running ppl %.4f", c + 1, chunks, exp(nll / Double(scored))))
        }
        return (exp(nll / Double(scored)), scored)
    }
}
