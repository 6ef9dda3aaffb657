import Foundation

/// Quality of a weight variant against a reference model on held-out text (QLLM-Eval's
/// perplexity + KL grid; issue 11): perplexity by llama.cpp's method (`FidelityEval.perplexity`:
/// chunks of `nCtx` tokens from an empty cache, second half scored), and at the same scored
/// positions the KL divergence `KL(P_ref || P)` of the next-token distributions and the share
/// of positions whose argmax agrees with the reference's.
public enum QuantEval {
    /// The reference's log-probabilities at every scored position (row-major, `vocab` each).
    public struct Reference {
        public let nCtx: Int
        public let chunks: Int
        public let vocab: Int
        public let logProbs: [Float]
        public let ppl: Double
        /// Scored positions per chunk: `nCtx - 1 - nCtx / 2`.
        public var perChunk: Int { nCtx - 1 - nCtx / 2 }
    }

    /// One variant's scores against the reference.
    public struct Scores: Sendable, Codable {
        public var ppl: Double
        public var kld: Double
        public var top1: Double
        public var scored: Int
    }

    /// Runs the reference model over the chunks and keeps its log-probabilities.
    public static func reference(model: LlamaModel, tokens: [Int32], nCtx: Int, chunks: Int,
                                 progress: ((String) -> Void)? = nil) throws -> Reference {
        let vocab = model.config.vocabSize
        let perChunk = nCtx - 1 - nCtx / 2
        var logProbs = [Float](repeating: 0, count: chunks * perChunk * vocab)
        var nll = 0.0
        try logProbs.withUnsafeMutableBufferPointer { out in
            try forEachScoredRow(model: model, tokens: tokens, nCtx: nCtx, chunks: chunks, progress: progress) { c, i, row, next in
                let lse = LogitMath.logSumExp(row, vocab)
                let dst = out.baseAddress! + (c * perChunk + i) * vocab
                for v in 0..<vocab { dst[v] = Float(Double(row[v]) - lse) }
                nll -= Double(dst[next])
            }
        }
        return Reference(nCtx: nCtx, chunks: chunks, vocab: vocab, logProbs: logProbs,
                         ppl: exp(nll / Double(max(1, chunks * perChunk))))
    }

    /// Scores `model` at the reference's positions.
    public static func score(model: LlamaModel, tokens: [Int32], reference ref: Reference,
                             progress: ((String) -> Void)? = nil) throws -> Scores {
        let vocab = ref.vocab
        var nll = 0.0, kl = 0.0
        var agree = 0, scored = 0
        try ref.logProbs.withUnsafeBufferPointer { rp in
            try forEachScoredRow(model: model, tokens: tokens, nCtx: ref.nCtx, chunks: ref.chunks, progress: progress) { c, i, row, next in
                let lse = LogitMath.logSumExp(row, vocab)
                let r = rp.baseAddress! + (c * ref.perChunk + i) * vocab
                var sum = 0.0
                var refBest = 0
                for v in 0..<vocab {
                    let lr = Double(r[v])
                    if r[v] > r[refBest] { refBest = v }
                    sum += exp(lr) * (lr - (Double(row[v]) - lse))
                }
                kl += sum
                if LogitMath.argmax(row, vocab) == refBest { agree += 1 }
                nll -= Double(row[next]) - lse
                scored += 1
            }
        }
        let n = Double(max(1, scored))
        return Scores(ppl: exp(nll / n), kld: kl / n, top1: Double(agree) / n, scored: scored)
    }

    /// Calls `body(chunk, index, logits, nextToken)` for every scored position, in order.
    static func forEachScoredRow(model: LlamaModel, tokens: [Int32], nCtx: Int, chunks: Int,
                                 progress: ((String) -> Void)?,
                                 _ body: (Int, Int, UnsafePointer<Float>, Int) -> Void) throws {
        let vocab = model.config.vocabSize
        guard chunks > 0, nCtx >= 4, tokens.count >= chunks * nCtx else { throw QuantEvalError.textTooShort(tokens.count, chunks * nCtx) }
        let batch = 64
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: batch * vocab)
        defer { logits.deallocate() }
        let state = model.makeState(maxContext: nCtx, maxBatch: batch)
        let first = nCtx / 2
        for c in 0..<chunks {
            let chunk = Array(tokens[(c * nCtx)..<((c + 1) * nCtx)])
            _ = state.rewind(to: 0)
            try model.forward(Array(chunk[0..<first]), state: state, logits: .none)
            var pos = first
            while pos < nCtx - 1 {
                let n = min(batch, nCtx - 1 - pos)
                try model.forward(Array(chunk[pos..<(pos + n)]), state: state, logits: .all(logits))
                for r in 0..<n { body(c, pos - first + r, logits + r * vocab, Int(chunk[pos + r + 1])) }
                pos += n
            }
            progress?("chunk \(c + 1)/\(chunks)")
        }
    }
}

/// Why a quantization evaluation could not run.
public enum QuantEvalError: Error, CustomStringConvertible {
    case textTooShort(Int, Int)

    public var description: String {
        switch self {
        case .textTooShort(let have, let need): return "the text has \(have) tokens, \(need) needed for the chunks asked"
        }
    }
}
