import EffCore

/// A Llama-architecture model (SmolLM2 et al.): blueprint + frozen weights + forward pass.
///
/// The forward pass follows llama.cpp's graph for `LLM_ARCH_LLAMA` (`llm_build_llama`):
/// per block `x += Wo · attn(rope(Wq·n), rope(Wk·n), Wv·n)` with `n = rmsnorm(x)`, then
/// `x += Wdown · (silu(Wgate·n') * (Wup·n'))` with `n' = rmsnorm(x)`; final rmsnorm and
/// the output head (tied to `token_embd` when the file has no `output.weight`). RoPE is
/// the NORM mode (adjacent pairs) llama.cpp uses for this architecture.
///
/// There is ONE forward pass (`run`), over a batch of (token, position, sequence) rows in the
/// spirit of llama.cpp's `llama_batch`: a prefill is one sequence with many rows, batched
/// decoding is many sequences with one row each, and any mix works. Every matmul runs once
/// over all rows (each weight block read once per call), attention runs per (sequence,
/// query, KV head) in one pass over the pool (`FastAttention.run`) over each sequence's KV
/// store in its format and under its attention policy, and every observer is called on
/// every path.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    /// The weights the forward pass reads; `replaceWeights` swaps them between calls.
    public private(set) var weights: LlamaWeights
    /// Counts `replaceWeights` calls: keys and values cached under another generation came
    /// from other weights.
    public private(set) var weightsGeneration = 0
    /// KV format of states made by `makeState` (the `--kv` option); set it before sharing
    /// the model between threads.
    public var kvFormat: KVFormat = .f32
    /// Simulated activation / KV quantization (the QLLM-Eval grid); nil: none. Set it before
    /// sharing the model between threads.
    public var study: QuantStudy?

    public init(weights: LlamaWeights) {
        self.config = weights.config
        self.weights = weights
    }

    /// Installs other weights for the same architecture (a requantized variant): call it
    /// only while no forward pass runs. States made before stay valid (they depend on the
    /// config only), but their cached keys and values came from the old weights.
    public func replaceWeights(_ w: LlamaWeights) throws {
        guard w.config == config else { throw LlamaModelError.weightsMismatch }
        weights = w
        weightsGeneration += 1
    }

    /// Binds a llama GGUF file: validated config, then every tensor.
    public convenience init(gguf: GGUFFile) throws {
        let config = try LlamaConfig(gguf: gguf)
        try self.init(weights: LlamaWeights(gguf: gguf, config: config))
    }

    /// A fresh per-sequence state for this model (KV format: `kvFormat` unless given).
    public func makeState(maxContext: Int? = nil, maxBatch: Int = 32, kvFormat: KVFormat? = nil) -> LlamaState {
        LlamaState(config: config, maxContext: maxContext, maxBatch: maxBatch, kvFormat: kvFormat ?? self.kvFormat)
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

    /// One sequence's rows in a forward batch: its `tokens` at the state's next positions;
    /// logits of its last row (or of every row with `allRows`) go to `logits` (nil: none).
    public struct SequenceInput {
        public var state: LlamaState
        public var tokens: UnsafeBufferPointer<Int32>
        public var logits: UnsafeMutablePointer<Float>?
        public var allRows: Bool

        public init(state: LlamaState, tokens: UnsafeBufferPointer<Int32>, logits: UnsafeMutablePointer<Float>?,
                    allRows: Bool = false) {
            self.state = state
            self.tokens = tokens
            self.logits = logits
            self.allRows = allRows
        }
    }

    /// Runs `tokens` at the state's next positions, appending their keys and values to its
    /// cache, in chunks of `state.maxBatch` rows. With an eviction policy each chunk first
    /// makes room (`LlamaState.makeRoom`) and holds at most the policy's `maxChunk` tokens,
    /// so a stream of any length fits the policy's budget.
    public func forward(_ tokens: UnsafeBufferPointer<Int32>, state: LlamaState, logits: LogitsRequest = .last) throws {
        guard let base = tokens.baseAddress, tokens.count > 0 else { throw LlamaModelError.batchEmpty }
        try validate(tokens)
        let chunk = min(state.maxBatch, state.evictionPolicy?.maxChunk ?? state.maxBatch)
        guard state.evictionPolicy != nil || state.position + tokens.count <= state.cache.maxLength else {
            throw LlamaModelError.contextFull(position: state.position + tokens.count - 1, capacity: state.cache.maxLength)
        }
        var done = 0
        while done < tokens.count {
            let n = min(chunk, tokens.count - done)
            if state.evictionPolicy != nil {
                try state.makeRoom(for: n)
                guard state.position + n <= state.cache.maxLength else {
                    throw LlamaModelError.contextFull(position: state.position + n - 1, capacity: state.cache.maxLength)
                }
            }
            let isLastChunk = done + n == tokens.count
            var input = SequenceInput(state: state, tokens: UnsafeBufferPointer(start: base + done, count: n), logits: nil)
            switch logits {
            case .none: break
            case .last: input.logits = isLastChunk ? state.logits : nil
            case .all(let buffer): input.logits = buffer + done * config.vocabSize; input.allRows = true
            }
            withUnsafePointer(to: input) { run(UnsafeBufferPointer(start: $0, count: 1), scratch: state.scratch) }
            done += n
        }
    }

    /// Convenience over an array of token ids.
    public func forward(_ tokens: [Int32], state: LlamaState, logits: LogitsRequest = .last) throws {
        try tokens.withUnsafeBufferPointer { try forward($0, state: state, logits: logits) }
    }

    /// Runs several sequences' rows in one forward call (batched decoding, or prefills of
    /// several sequences at once) using `scratch`; the states must be distinct and the rows
    /// fit `scratch.rows`.
    public func forward(batch: UnsafeBufferPointer<SequenceInput>, scratch: ForwardScratch) throws {
        var rows = 0
        for (i, s) in batch.enumerated() {
            guard s.tokens.count > 0 else { throw LlamaModelError.batchEmpty }
            try validate(s.tokens)
            if let policy = s.state.evictionPolicy {
                guard s.tokens.count <= policy.maxChunk else {
                    throw LlamaModelError.chunkTooLong(tokens: s.tokens.count, max: policy.maxChunk)
                }
                try s.state.makeRoom(for: s.tokens.count)
            }
            guard s.state.position + s.tokens.count <= s.state.cache.maxLength else {
                throw LlamaModelError.contextFull(position: s.state.position + s.tokens.count - 1,
                                                  capacity: s.state.cache.maxLength)
            }
            for j in 0..<i where batch[j].state === s.state { throw BatchDecoderError.duplicateState(index: i) }
            rows += s.tokens.count
        }
        guard rows > 0 else { throw LlamaModelError.batchEmpty }
        guard rows <= scratch.rows else { throw BatchDecoderError.tooManyStreams(rows, max: scratch.rows) }
        run(batch, scratch: scratch)
    }

    /// Runs blocks `layer ..< nLayers` and the head over one sequence's `tokens` (at most
    /// `state.maxBatch`, one call) whose residual stream entering block `layer` is
    /// `residual` (nTokens, dim); nil (only with `layer == 0`) embeds the tokens. The logits
    /// of every row go to `logits` (nTokens, vocabSize). Blocks before `layer` are skipped,
    /// their cache rows left unwritten: a state used this way serves only such calls (the
    /// quantization scan reruns the blocks after one changed tensor from a cached stream).
    public func forward(_ tokens: UnsafeBufferPointer<Int32>, fromLayer layer: Int, residual: UnsafePointer<Float>?,
                        state: LlamaState, logits: UnsafeMutablePointer<Float>) throws {
        guard tokens.count > 0 else { throw LlamaModelError.batchEmpty }
        try validate(tokens)
        guard (0..<config.nLayers).contains(layer), residual != nil || layer == 0 else {
            throw LlamaModelError.invalidValue(key: "fromLayer", value: "\(layer)",
                                               expected: residual == nil ? "0 without a residual" : "0 ..< \(config.nLayers)")
        }
        guard tokens.count <= state.maxBatch else { throw LlamaModelError.chunkTooLong(tokens: tokens.count, max: state.maxBatch) }
        guard state.position + tokens.count <= state.cache.maxLength else {
            throw LlamaModelError.contextFull(position: state.position + tokens.count - 1, capacity: state.cache.maxLength)
        }
        let input = SequenceInput(state: state, tokens: tokens, logits: logits, allRows: true)
        withUnsafePointer(to: input) {
            run(UnsafeBufferPointer(start: $0, count: 1), scratch: state.scratch, entry: (layer, residual))
        }
    }

    private func validate(_ tokens: UnsafeBufferPointer<Int32>) throws {
        for t in tokens where t < 0 || Int(t) >= config.vocabSize {
            throw LlamaModelError.tokenOutOfRange(token: t, vocabSize: config.vocabSize)
        }
    }

    /// The forward pass over validated rows (at most `scratch.rows`): sequence `i`'s tokens
    /// are rows `r_i ..< r_i + n_i` at positions `state.position ..< state.position + n_i`.
    /// `entry` (default: block 0 from the embeddings) starts at a later block from a given
    /// residual stream (`forward(_:fromLayer:residual:state:logits:)`).
    func run(_ seqs: UnsafeBufferPointer<SequenceInput>, scratch s: ForwardScratch,
             entry: (layer: Int, residual: UnsafePointer<Float>?) = (0, nil)) {
        let c = config, w = weights
        let dim = c.dim, hidden = c.hiddenDim, kvDim = c.kvDim, half = c.headSize / 2

        // Embedding rows and each row's RoPE angles at its own position.
        var nRows = 0
        let embd = w.tokenEmbedding
        for seq in seqs {
            let pos0 = seq.state.cache.length
            for t in 0..<seq.tokens.count {
                if let residual = entry.residual {
                    (s.x + (nRows + t) * dim).update(from: residual + (nRows + t) * dim, count: dim)
                } else if let k = embd.type.rowKernels {
                    k.dequantizeRow(embd.row(Int(seq.tokens[t])), s.x + (nRows + t) * dim, dim)
                }
                RoPETable.fill(position: pos0 + t, headSize: c.headSize, base: c.ropeFreqBase,
                               cos: s.ropeCos + (nRows + t) * half, sin: s.ropeSin + (nRows + t) * half)
            }
            nRows += seq.tokens.count
        }
        let anyResidualObserver = seqs.contains { $0.state.residualObserver != nil }
        // Linear inputs are shown for single-sequence calls (calibration), not batched decode.
        let inputObserver = seqs.count == 1 ? seqs[0].state.linearInputObserver : nil
        let aBits = study?.activationBits

        for l in entry.layer..<c.nLayers {
            let lw = w.layers[l]
            // Attention block: n = rmsnorm(x) * attn_norm; q, k, v = Wq n, Wk n, Wv n (one pass).
            Kernels.rmsNorm(s.x, weight: lw.attnNorm, eps: c.normEps, n: dim, nTokens: nRows, out: s.xb)
            inputObserver?.linearInput(layer: l, site: .attention, rows: s.xb, nTokens: nRows, width: dim)
            if let aBits { QuantStudy.quantizeTokens(s.xb, rows: nRows, width: dim, bits: aBits) }
            Kernels.matmul(x: s.xb, nTokens: nRows, (lw.wq, s.q), (lw.wk, s.k), (lw.wv, s.v))
            if let so = lw.outliers {  // + S x (requantized weights with outliers)
                so.q.multiplyAdd(x: s.xb, nTokens: nRows, y: s.q)
                so.k.multiplyAdd(x: s.xb, nTokens: nRows, y: s.k)
                so.v.multiplyAdd(x: s.xb, nTokens: nRows, y: s.v)
            }
            // RoPE on every query and key head at its row's position; the store takes the
            // new rows (converting them to its format).
            for r in 0..<nRows {
                Kernels.ropeNormal(s.q + r * dim, nHeads: c.nHeads, headSize: c.headSize,
                                   cos: s.ropeCos + r * half, sin: s.ropeSin + r * half)
                Kernels.ropeNormal(s.k + r * kvDim, nHeads: c.nKVHeads, headSize: c.headSize,
                                   cos: s.ropeCos + r * half, sin: s.ropeSin + r * half)
            }
            if let kvBits = study?.kvBits, let g = study?.kvGroup {
                QuantStudy.quantizeGroups(s.k, rows: nRows, width: kvDim, bits: kvBits, group: g)
                QuantStudy.quantizeGroups(s.v, rows: nRows, width: kvDim, bits: kvBits, group: g)
            }
            var r0 = 0
            for seq in seqs {
                let n = seq.tokens.count
                seq.state.cache.write(layer: l, position: seq.state.cache.length, rows: n,
                                      k: s.k + r0 * kvDim, v: s.v + r0 * kvDim)
                r0 += n
            }
            // att = softmax(q k^T / sqrt(headSize)) v, causal, per head (GQA).
            attention(layer: l, seqs, s)
            // x += Wo att
            inputObserver?.linearInput(layer: l, site: .attentionOutput, rows: s.att, nTokens: nRows, width: dim)
            if let aBits { QuantStudy.quantizeTokens(s.att, rows: nRows, width: dim, bits: aBits) }
            Kernels.matmul(lw.wo, x: s.att, nTokens: nRows, y: s.xb2)
            lw.outliers?.o.multiplyAdd(x: s.att, nTokens: nRows, y: s.xb2)
            VectorOps.add(s.xb2, into: s.x, nRows * dim)

            // Feed-forward block: n' = rmsnorm(x) * ffn_norm; x += Wdown (silu(Wgate n') * Wup n').
            Kernels.rmsNorm(s.x, weight: lw.ffnNorm, eps: c.normEps, n: dim, nTokens: nRows, out: s.xb)
            inputObserver?.linearInput(layer: l, site: .feedForward, rows: s.xb, nTokens: nRows, width: dim)
            if let aBits { QuantStudy.quantizeTokens(s.xb, rows: nRows, width: dim, bits: aBits) }
            Kernels.matmul(x: s.xb, nTokens: nRows, (lw.wGate, s.hb), (lw.wUp, s.hb2))
            if let so = lw.outliers {
                so.gate.multiplyAdd(x: s.xb, nTokens: nRows, y: s.hb)
                so.up.multiplyAdd(x: s.xb, nTokens: nRows, y: s.hb2)
            }
            Kernels.swiglu(gate: s.hb, up: s.hb2, n: nRows * hidden)
            inputObserver?.linearInput(layer: l, site: .feedForwardHidden, rows: s.hb, nTokens: nRows, width: hidden)
            if let aBits { QuantStudy.quantizeTokens(s.hb, rows: nRows, width: hidden, bits: aBits) }
            Kernels.matmul(lw.wDown, x: s.hb, nTokens: nRows, y: s.xb2)
            lw.outliers?.down.multiplyAdd(x: s.hb, nTokens: nRows, y: s.xb2)
            VectorOps.add(s.xb2, into: s.x, nRows * dim)
            if anyResidualObserver {
                var r0 = 0
                for seq in seqs {
                    let n = seq.tokens.count
                    seq.state.residualObserver?.residual(layer: l, position0: seq.state.cache.length,
                                                         rows: UnsafeBufferPointer(start: s.x + r0 * dim, count: n * dim),
                                                         nTokens: n)
                    r0 += n
                }
            }
        }
        for seq in seqs { seq.state.cache.commit(upTo: seq.state.cache.length + seq.tokens.count) }

        // Final norm and output head for the rows whose logits were asked for, gathered in
        // order; one matmul when their destinations are consecutive rows (batched decode).
        var outRows = 0, r0 = 0
        var consecutive = true
        var firstDest: UnsafeMutablePointer<Float>?
        for seq in seqs {
            let n = seq.tokens.count
            defer { r0 += n }
            guard let dest = seq.logits else { continue }
            let first = seq.allRows ? 0 : n - 1
            if let f = firstDest { consecutive = consecutive && dest == f + outRows * c.vocabSize } else { firstDest = dest }
            Kernels.rmsNorm(s.x + (r0 + first) * dim, weight: w.outputNorm, eps: c.normEps, n: dim,
                            nTokens: n - first, out: s.xb + outRows * dim)
            outRows += n - first
        }
        guard let dest0 = firstDest else { return }
        if consecutive {
            Kernels.matmul(w.output, x: s.xb, nTokens: outRows, y: dest0)
            return
        }
        var o = 0
        for seq in seqs {
            guard let dest = seq.logits else { continue }
            let rows = seq.allRows ? seq.tokens.count : 1
            Kernels.matmul(w.output, x: s.xb + o * dim, nTokens: rows, y: dest)
            o += rows
        }
    }

    /// Most links of a fork chain one sequence's attention gathers without allocating.
    static let maxSegments = 16

    /// Causal grouped-query attention of every sequence's rows over its own store: the fast
    /// kernels (`FastAttention.run`, every format and policy), else the Swift reference.
    /// Observers then get the probabilities of every (layer, head, query).
    private func attention(layer l: Int, _ seqs: UnsafeBufferPointer<SequenceInput>, _ s: ForwardScratch) {
        let c = config
        let dim = c.dim
        var done = false
        if FastAttention.isAvailable(nHeads: c.nHeads, nKVHeads: c.nKVHeads) {
            done = withUnsafeTemporaryAllocation(of: KVSegment.self, capacity: seqs.count * Self.maxSegments) { segs in
                withUnsafeTemporaryAllocation(of: AttentionSequence.self, capacity: seqs.count) { aseqs in
                    var used = 0, r0 = 0, built = 0
                    var overflow = false
                    for seq in seqs {
                        let first = used, pos0 = seq.state.cache.length, n = seq.tokens.count
                        seq.state.cache.forEachSegment(layer: l, end: pos0 + n) { seg in
                            if used - first < Self.maxSegments { segs.initializeElement(at: used, to: seg); used += 1 }
                            else { overflow = true }
                        }
                        if overflow { break }
                        aseqs.initializeElement(at: built, to: AttentionSequence(
                            q: s.q + r0 * dim, nQueries: n, pos0: pos0,
                            segments: UnsafeBufferPointer(rebasing: segs[first..<used]), out: s.att + r0 * dim,
                            layout: seq.state.cache.layout, policy: seq.state.attentionPolicy))
                        built += 1
                        r0 += n
                    }
                    if !overflow {
                        FastAttention.run(UnsafeBufferPointer(rebasing: aseqs[0..<built]), nHeads: c.nHeads,
                                          nKVHeads: c.nKVHeads, headSize: c.headSize, layer: l)
                    }
                    aseqs.baseAddress!.deinitialize(count: built)
                    return !overflow
                }
            }
        }
        var r0 = 0
        for seq in seqs {
            let n = seq.tokens.count
            if !done { referenceAttention(layer: l, seq, q: s.q + r0 * dim, out: s.att + r0 * dim, s) }
            else if seq.state.attentionObserver != nil { observe(layer: l, seq, q: s.q + r0 * dim) }
            r0 += n
        }
    }

    /// Hands the observer of `seq` the probabilities of every head of every query row (the
    /// fast kernels never materialize them): scores over the store in its format, softmax.
    private func observe(layer l: Int, _ seq: SequenceInput, q: UnsafeMutablePointer<Float>) {
        let c = config, st = seq.state
        guard let observer = st.attentionObserver else { return }
        let pos0 = st.cache.length, stride = st.cache.maxLength
        withUnsafeTemporaryAllocation(of: KVSegment.self, capacity: Self.maxSegments) { segs in
            var n = 0
            st.cache.forEachSegment(layer: l, end: pos0 + seq.tokens.count) { seg in
                if n < Self.maxSegments { segs[n] = seg; n += 1 }
            }
            for h in 0..<c.nHeads {
                let sc = st.scores + h * stride
                for t in 0..<seq.tokens.count {
                    FastAttention.probabilities(q: q + t * c.dim + h * c.headSize, head: h, nHeads: c.nHeads,
                                                nKVHeads: c.nKVHeads, headSize: c.headSize, position: pos0 + t,
                                                segments: UnsafeBufferPointer(rebasing: segs[0..<n]),
                                                layout: st.cache.layout, policy: st.attentionPolicy, layer: l,
                                                probabilities: sc)
                    observer.attention(layer: l, head: h, queryPosition: pos0 + t,
                                       probabilities: UnsafeBufferPointer(start: sc, count: pos0 + t + 1))
                }
            }
        }
    }

    /// The reference attention (Swift kernels, one row at a time, any format and policy):
    /// for each head and query, scores over the positions the policy lets it read (others
    /// get probability 0), softmax, observer, then the weighted sum of values.
    private func referenceAttention(layer l: Int, _ seq: SequenceInput, q: UnsafeMutablePointer<Float>,
                                    out: UnsafeMutablePointer<Float>, _ s: ForwardScratch) {
        let c = config, st = seq.state, cache = st.cache
        let hs = c.headSize, kvDim = c.kvDim, group = c.groupSize
        let scale = 1 / Float(hs).squareRoot()
        let pos0 = cache.length, stride = cache.maxLength
        let kRow = s.rowTmp, vRow = s.rowTmp + kvDim
        withUnsafeTemporaryAllocation(of: Range<Int>.self, capacity: AttentionPolicyLimits.maxRanges) { ranges in
            for h in 0..<c.nHeads {
                let kv = h / group, kvOffset = kv * hs
                let sc = st.scores + h * stride
                for t in 0..<seq.tokens.count {
                    let end = pos0 + t + 1
                    let nr: Int
                    if let policy = st.attentionPolicy {
                        nr = min(policy.keyRanges(layer: l, kvHead: kv, queryPosition: end - 1, into: ranges), ranges.count)
                    } else {
                        ranges[0] = 0..<end
                        nr = 1
                    }
                    sc.update(repeating: -.infinity, count: end)
                    for r in 0..<nr {
                        for p in ranges[r].clamped(to: 0..<end) {
                            cache.readRow(layer: l, position: p, key: kRow, value: vRow)
                            Kernels.attentionScores(q: q + t * c.dim + h * hs, keys: kRow + kvOffset, stride: kvDim,
                                                    n: 1, headSize: hs, scale: scale, scores: sc + p)
                        }
                    }
                    Kernels.softmax(sc, end)
                    st.attentionObserver?.attention(layer: l, head: h, queryPosition: end - 1,
                                                    probabilities: UnsafeBufferPointer(start: sc, count: end))
                    let o = out + t * c.dim + h * hs
                    o.update(repeating: 0, count: hs)
                    for r in 0..<nr {
                        for p in ranges[r].clamped(to: 0..<end) {
                            cache.readRow(layer: l, position: p, key: kRow, value: vRow)
                            Kernels.attentionMix(probs: sc + p, values: vRow + kvOffset, stride: kvDim, n: 1,
                                                 headSize: hs, out: o)
                        }
                    }
                }
            }
        }
    }
}
