import EffCore

/// A Llama-architecture model (SmolLM2 et al.): blueprint + frozen weights + forward pass.
///
/// The forward pass follows llama.cpp's graph for `LLM_ARCH_LLAMA` (`llm_build_llama`):
/// per block `x += Wo · attn(rope(Wq·n), rope(Wk·n), Wv·n)` with `n = rmsnorm(x)`, then
/// `x += Wdown · (silu(Wgate·n') * (Wup·n'))` with `n' = rmsnorm(x)`; final rmsnorm and
/// the output head (tied to `token_embd` when the file has no `output.weight`). RoPE is
/// the NORM mode (adjacent pairs) llama.cpp uses for this architecture. A batch of tokens
/// goes through every matmul at once (prefill is matrix-matrix); attention is causal.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    public let weights: LlamaWeights

    public init(weights: LlamaWeights) {
        self.config = weights.config
        self.weights = weights
    }

    /// Binds a llama GGUF file: validated config, then every tensor.
    public convenience init(gguf: GGUFFile) throws {
        let config = try LlamaConfig(gguf: gguf)
        try self.init(weights: LlamaWeights(gguf: gguf, config: config))
    }

    /// A fresh per-sequence state for this model.
    public func makeState(maxContext: Int? = nil, maxBatch: Int = 32) -> LlamaState {
        LlamaState(config: config, maxContext: maxContext, maxBatch: maxBatch)
    }

    /// Which logits a forward call produces.
    public enum LogitsRequest {
        /// None (pure prefill of context).
        case none
        /// The last token's, into `state.logits` (vocabSize floats).
        case last
        /// Every token's, row `t` of the batch at `buffer + t * vocabSize` (`count * vocabSize` floats).
        case all(UnsafeMutablePointer<Float>)
    }

    /// Runs `tokens` at the state's next positions, appending their keys and values to its
    /// cache, in chunks of `state.maxBatch`.
    public func forward(_ tokens: UnsafeBufferPointer<Int32>, state: LlamaState, logits: LogitsRequest = .last) throws {
        guard let base = tokens.baseAddress, tokens.count > 0 else { throw LlamaModelError.batchEmpty }
        for t in tokens where t < 0 || Int(t) >= config.vocabSize {
            throw LlamaModelError.tokenOutOfRange(token: t, vocabSize: config.vocabSize)
        }
        guard state.position + tokens.count <= state.cache.maxLength else {
            throw LlamaModelError.contextFull(position: state.position + tokens.count - 1, capacity: state.cache.maxLength)
        }
        var done = 0
        while done < tokens.count {
            let n = min(state.maxBatch, tokens.count - done)
            let isLastChunk = done + n == tokens.count
            let out: UnsafeMutablePointer<Float>?
            switch logits {
            case .none: out = nil
            case .last: out = isLastChunk ? state.logits : nil
            case .all(let buffer): out = buffer + done * config.vocabSize
            }
            let allRows: Bool
            if case .all = logits { allRows = true } else { allRows = false }
            forwardChunk(base + done, n, state, logitsOut: out, allRows: allRows)
            done += n
        }
    }

    /// Convenience over an array of token ids.
    public func forward(_ tokens: [Int32], state: LlamaState, logits: LogitsRequest = .last) throws {
        try tokens.withUnsafeBufferPointer { try forward($0, state: state, logits: logits) }
    }

    /// One chunk of `n <= maxBatch` validated tokens at positions `pos0 ..< pos0 + n`.
    private func forwardChunk(_ tokens: UnsafePointer<Int32>, _ n: Int, _ s: LlamaState,
                              logitsOut: UnsafeMutablePointer<Float>?, allRows: Bool) {
        let c = config, w = weights
        let dim = c.dim, hidden = c.hiddenDim, kvDim = c.kvDim, half = c.headSize / 2
        let cache = s.cache
        let pos0 = cache.length

        // Embedding: x[t] = token_embd[token_t] (one dequantized row per token).
        let embd = w.tokenEmbedding
        if let k = embd.type.rowKernels {
            for t in 0..<n { k.dequantizeRow(embd.row(Int(tokens[t])), s.x + t * dim, dim) }
        }
        s.prepareRope(from: pos0, count: n)

        for l in 0..<c.nLayers {
            let lw = w.layers[l]

            // Attention block: n = rmsnorm(x) * attn_norm.
            Kernels.rmsNorm(s.x, weight: lw.attnNorm, eps: c.normEps, n: dim, nTokens: n, out: s.xb)
            // q = Wq n; k, v = Wk n, Wv n written straight into this layer's cache rows,
            // which are contiguous for consecutive positions ([layer][position][kvDim]).
            let kSlot = cache.keySlot(layer: l, position: pos0)
            let vSlot = cache.valueSlot(layer: l, position: pos0)
            Kernels.matmul(lw.wq, x: s.xb, nTokens: n, y: s.q)
            Kernels.matmul(lw.wk, x: s.xb, nTokens: n, y: kSlot)
            Kernels.matmul(lw.wv, x: s.xb, nTokens: n, y: vSlot)
            // RoPE on every query and key head at its token's position.
            for t in 0..<n {
                Kernels.ropeNormal(s.q + t * dim, nHeads: c.nHeads, headSize: c.headSize,
                                   cos: s.ropeCos + t * half, sin: s.ropeSin + t * half)
                Kernels.ropeNormal(kSlot + t * kvDim, nHeads: c.nKVHeads, headSize: c.headSize,
                                   cos: s.ropeCos + t * half, sin: s.ropeSin + t * half)
            }
            // att = softmax(q k^T / sqrt(headSize)) v, causal, per head (GQA).
            attention(layer: l, pos0: pos0, n: n, s)
            // x += Wo att
            Kernels.matmul(lw.wo, x: s.att, nTokens: n, y: s.xb2)
            VectorOps.add(s.xb2, into: s.x, n * dim)

            // Feed-forward block: n' = rmsnorm(x) * ffn_norm; x += Wdown (silu(Wgate n') * Wup n').
            Kernels.rmsNorm(s.x, weight: lw.ffnNorm, eps: c.normEps, n: dim, nTokens: n, out: s.xb)
            Kernels.matmul(lw.wGate, x: s.xb, nTokens: n, y: s.hb)
            Kernels.matmul(lw.wUp, x: s.xb, nTokens: n, y: s.hb2)
            Kernels.swiglu(gate: s.hb, up: s.hb2, n: n * hidden)
            Kernels.matmul(lw.wDown, x: s.hb, nTokens: n, y: s.xb2)
            VectorOps.add(s.xb2, into: s.x, n * dim)
            s.residualObserver?.residual(layer: l, position0: pos0,
                                         rows: UnsafeBufferPointer(start: s.x, count: n * dim), nTokens: n)
        }
        cache.commit(upTo: pos0 + n)

        // Final norm and output head, for the rows whose logits were asked for.
        guard let out = logitsOut else { return }
        let first = allRows ? 0 : n - 1
        let rows = n - first
        Kernels.rmsNorm(s.x + first * dim, weight: w.outputNorm, eps: c.normEps, n: dim, nTokens: rows, out: s.xb)
        Kernels.matmul(w.output, x: s.xb, nTokens: rows, y: out)
    }

    /// Causal grouped-query attention for queries at `pos0 ..< pos0 + n` over cache
    /// positions `0 ... query`. Query head `h` reads KV head `h / groupSize`. Heads run in
    /// parallel unless an observer is set (then in order, on the calling thread).
    private func attention(layer l: Int, pos0: Int, n: Int, _ s: LlamaState) {
        let c = config
        let dim = c.dim, hs = c.headSize, kvDim = c.kvDim, group = c.groupSize
        let scale = 1 / Float(hs).squareRoot()
        let stride = s.cache.maxLength
        let cache = s.cache

        func head(_ h: Int) {
            let kvOffset = (h / group) * hs
            let sc = s.scores + h * stride
            for t in 0..<n {
                let end = pos0 + t + 1
                let q = s.q + t * dim + h * hs
                cache.forEachSegment(layer: l, end: end) { first, count, keys, _ in
                    Kernels.attentionScores(q: q, keys: keys + kvOffset, stride: kvDim, n: count,
                                            headSize: hs, scale: scale, scores: sc + first)
                }
                Kernels.softmax(sc, end)
                if let observer = s.attentionObserver {
                    observer.attention(layer: l, head: h, queryPosition: end - 1,
                                       probabilities: UnsafeBufferPointer(start: sc, count: end))
                }
                let out = s.att + t * dim + h * hs
                out.update(repeating: 0, count: hs)
                cache.forEachSegment(layer: l, end: end) { first, count, _, values in
                    Kernels.attentionMix(probs: sc + first, values: values + kvOffset, stride: kvDim, n: count,
                                         headSize: hs, out: out)
                }
            }
        }

        if s.attentionObserver == nil, FastAttention.isAvailable(nHeads: c.nHeads, nKVHeads: c.nKVHeads),
           cache.withSegments(layer: l, end: pos0 + n, { segments in
               FastAttention.causal(q: s.q, nQueries: n, pos0: pos0, nHeads: c.nHeads, nKVHeads: c.nKVHeads,
                                    headSize: hs, kvDim: kvDim, segments: segments, out: s.att)
           }) {
            return  // online-softmax attention (FastAttention); the loops below are the reference
        }
        if s.attentionObserver != nil {
            for h in 0..<c.nHeads { head(h) }
        } else {
            KernelParallelism.forEachChunk(c.nHeads, minChunk: 1) { range in
                for h in range { head(h) }
            }
        }
    }
}
