import EffCore
import EffLLM
import EffTechniques
import Foundation

/// Runs a question through the Llama model and pools its hidden states into router features
/// (`HiddenStateRecipe` says which input, layers and pools).
///
/// One prefill over the prompt with a `ResidualObserver` on the state; no logits are
/// computed. The question's own tokens are located by encoding the template's text
/// before and after the question separately, so `mean` pools exactly those positions.
public final class HiddenStateFeatures {
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public let template: ChatTemplate

    public init(model: LlamaModel, tokenizer: Tokenizer, template: ChatTemplate) {
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
    }

    /// Pooled, RMS-normalized residuals of every block for one input mode: `mean[l]` and
    /// `last[l]` are (dim) vectors, for l in 0..<nLayers. Recipes are slices of this.
    public struct Bank: Sendable {
        public var mean: [[Float]]  // (nLayers, dim)
        public var last: [[Float]]  // (nLayers, dim)
        public var tokens: Int
        public var questionTokens: Range<Int>

        /// The recipe's feature vector: (layer, pool) blocks concatenated.
        public func features(_ recipe: HiddenStateRecipe) -> [Double] {
            var out: [Double] = []
            for l in recipe.layers {
                for p in recipe.pools {
                    out += (p == .mean ? mean[l] : last[l]).map(Double.init)
                }
            }
            return out
        }
    }

    /// The prompt tokens for `question` and the range of the question's own tokens in it.
    public func prompt(_ question: String, input: HiddenStateRecipe.Input) throws -> (tokens: [Int32], question: Range<Int>) {
        let q = tokenizer.encode(question, parseSpecial: false)
        guard !q.isEmpty else { throw SoTRouterError.emptyQuestion }
        switch input {
        case .raw:
            return (q, 0..<q.count)
        case .chat:
            let text = try template.render([ChatMessage(role: "user", content: question)], addGenerationPrompt: true)
            guard let r = text.range(of: question) else {
                // A template that rewrites the content: fall back to pooling the whole prompt.
                let all = tokenizer.encode(text, parseSpecial: true)
                return (all, 0..<all.count)
            }
            let head = tokenizer.encode(String(text[..<r.lowerBound]), parseSpecial: true)
            let tail = tokenizer.encode(String(text[r.upperBound...]), parseSpecial: true)
            return (head + q + tail, head.count..<(head.count + q.count))
        }
    }

    /// One forward pass over the prompt, pooling every block's residual stream.
    public func bank(_ question: String, input: HiddenStateRecipe.Input) throws -> Bank {
        let (tokens, span) = try prompt(question, input: input)
        let state = model.makeState(maxContext: tokens.count, maxBatch: min(256, tokens.count))
        let pool = PoolingObserver(nLayers: model.config.nLayers, dim: model.config.dim, span: span,
                                   lastPosition: tokens.count - 1, eps: model.config.normEps)
        state.residualObserver = pool
        defer { state.residualObserver = nil }
        try model.forward(tokens, state: state, logits: .none)
        let n = Float(span.count)
        return Bank(mean: pool.sum.map { $0.map { $0 / n } }, last: pool.last, tokens: tokens.count,
                    questionTokens: span)
    }

    /// The feature vector `recipe` asks for.
    public func features(_ question: String, recipe: HiddenStateRecipe) throws -> [Double] {
        try bank(question, input: recipe.input).features(recipe)
    }
}

/// Accumulates per-layer sums of RMS-normalized residual rows over a span of positions,
/// and keeps the row at one position.
final class PoolingObserver: ResidualObserver {
    let dim: Int
    let span: Range<Int>
    let lastPosition: Int
    let eps: Float
    var sum: [[Float]]   // (nLayers, dim)
    var last: [[Float]]  // (nLayers, dim)

    init(nLayers: Int, dim: Int, span: Range<Int>, lastPosition: Int, eps: Float) {
        self.dim = dim
        self.span = span
        self.lastPosition = lastPosition
        self.eps = eps
        sum = .init(repeating: .init(repeating: 0, count: dim), count: nLayers)
        last = sum
    }

    func residual(layer: Int, position0: Int, rows: UnsafeBufferPointer<Float>, nTokens: Int) {
        for t in 0..<nTokens {
            let pos = position0 + t
            guard span.contains(pos) || pos == lastPosition else { continue }
            // rmsnorm with unit weights: x / sqrt(mean(x²) + eps)
            var ss: Float = 0
            for j in 0..<dim { let v = rows[t * dim + j]; ss += v * v }
            let scale = 1 / (ss / Float(dim) + eps).squareRoot()
            if span.contains(pos) {
                for j in 0..<dim { sum[layer][j] += rows[t * dim + j] * scale }
            }
            if pos == lastPosition {
                for j in 0..<dim { last[layer][j] = rows[t * dim + j] * scale }
            }
        }
    }
}
