import EffCore

/// Advances several independent sequences by one token each in one step.
///
/// Every matmul runs once for the whole batch (`nTokens = B`), so each weight block is read
/// once per step and shared across the B activations; that is what makes a batch of B
/// cheaper than B single steps (r(B) = t_B / t_1, reported by `effterm bench`). Each
/// sequence keeps its own position and KV cache (`LlamaState`), which may be a fork over a
/// shared prompt prefix (`LlamaState.fork`): the prefix is computed once and never copied.
/// A step takes whichever sequences are still running, so sequences join and leave the
/// batch between steps. Attention runs per (sequence, KV head) pair in one pass over the
/// compute pool; matrices that read the same input (Q, K, V; gate, up) share one pass too.
///
/// The math per sequence is the one of `LlamaModel.forward` for a single token (same
/// kernels, same order); BatchTests checks the logits against separate single steps.
public final class BatchDecoder {
    public let model: LlamaModel
    /// Most sequences one step can advance.
    public let maxStreams: Int

    // Scratch, all (maxStreams, ·) row-major, allocated once.
    private let x: UnsafeMutablePointer<Float>     // (B, dim)       residual streams
    private let xb: UnsafeMutablePointer<Float>    // (B, dim)       normed input
    private let xb2: UnsafeMutablePointer<Float>   // (B, dim)       sub-block output
    private let q: UnsafeMutablePointer<Float>     // (B, dim)       queries
    private let k: UnsafeMutablePointer<Float>     // (B, kvDim)     new keys before they go to each cache
    private let v: UnsafeMutablePointer<Float>     // (B, kvDim)     new values
    private let att: UnsafeMutablePointer<Float>   // (B, dim)       attention outputs
    private let hb: UnsafeMutablePointer<Float>    // (B, hiddenDim) gate, then silu(gate) * up
    private let hb2: UnsafeMutablePointer<Float>   // (B, hiddenDim) up
    private let storage: UnsafeMutablePointer<Float>

    public init(model: LlamaModel, maxStreams: Int) {
        let c = model.config
        self.model = model
        self.maxStreams = max(1, maxStreams)
        let b = self.maxStreams
        let sizes = [b * c.dim, b * c.dim, b * c.dim, b * c.dim, b * c.kvDim, b * c.kvDim, b * c.dim,
                     b * c.hiddenDim, b * c.hiddenDim]
        storage = .allocate(capacity: sizes.reduce(0, +))
        storage.initialize(repeating: 0, count: sizes.reduce(0, +))
        var offsets: [Int] = []
        var o = 0
        for s in sizes { offsets.append(o); o += s }
        x = storage + offsets[0]; xb = storage + offsets[1]; xb2 = storage + offsets[2]
        q = storage + offsets[3]; k = storage + offsets[4]; v = storage + offsets[5]
        att = storage + offsets[6]; hb = storage + offsets[7]; hb2 = storage + offsets[8]
    }

    deinit { storage.deallocate() }

    /// Feeds `tokens[i]` to `states[i]` at its next position for every i, and writes each
    /// sequence's next-token logits to `logits + i * vocabSize`. The states must be distinct
    /// (a fork is a distinct state) and each must have room for one more position.
    public func step(tokens: UnsafeBufferPointer<Int32>, states: [LlamaState],
                     logits: UnsafeMutablePointer<Float>) throws {
        let c = model.config, w = model.weights
        let n = states.count
        guard n > 0, tokens.count == n else { throw LlamaModelError.batchEmpty }
        guard n <= maxStreams else { throw BatchDecoderError.tooManyStreams(n, max: maxStreams) }
        for (i, t) in tokens.enumerated() {
            guard t >= 0, Int(t) < c.vocabSize else {
                throw LlamaModelError.tokenOutOfRange(token: t, vocabSize: c.vocabSize)
            }
            let s = states[i]
            guard s.position < s.cache.maxLength else {
                throw LlamaModelError.contextFull(position: s.position, capacity: s.cache.maxLength)
            }
            for j in 0..<i where states[j] === s { throw BatchDecoderError.duplicateState(index: i) }
        }
        let dim = c.dim, kvDim = c.kvDim, hidden = c.hiddenDim

        // Embeddings and each sequence's RoPE angles at its own position.
        let embd = w.tokenEmbedding
        if let rk = embd.type.rowKernels {
            for i in 0..<n { rk.dequantizeRow(embd.row(Int(tokens[i])), x + i * dim, dim) }
        }
        for s in states { s.prepareRope(from: s.position, count: 1) }

        for l in 0..<c.nLayers {
            let lw = w.layers[l]
            Kernels.rmsNorm(x, weight: lw.attnNorm, eps: c.normEps, n: dim, nTokens: n, out: xb)
            Kernels.matmul(x: xb, nTokens: n, (lw.wq, q), (lw.wk, k), (lw.wv, v))
            for (i, s) in states.enumerated() {
                Kernels.ropeNormal(q + i * dim, nHeads: c.nHeads, headSize: c.headSize, cos: s.ropeCos, sin: s.ropeSin)
                Kernels.ropeNormal(k + i * kvDim, nHeads: c.nKVHeads, headSize: c.headSize, cos: s.ropeCos, sin: s.ropeSin)
                let pos = s.position
                s.cache.keySlot(layer: l, position: pos).update(from: k + i * kvDim, count: kvDim)
                s.cache.valueSlot(layer: l, position: pos).update(from: v + i * kvDim, count: kvDim)
            }
            attention(layer: l, states: states)
            Kernels.matmul(lw.wo, x: att, nTokens: n, y: xb2)
            VectorOps.add(xb2, into: x, n * dim)

            Kernels.rmsNorm(x, weight: lw.ffnNorm, eps: c.normEps, n: dim, nTokens: n, out: xb)
            Kernels.matmul(x: xb, nTokens: n, (lw.wGate, hb), (lw.wUp, hb2))
            Kernels.swiglu(gate: hb, up: hb2, n: n * hidden)
            Kernels.matmul(lw.wDown, x: hb, nTokens: n, y: xb2)
            VectorOps.add(xb2, into: x, n * dim)
        }
        for s in states { s.cache.commit(upTo: s.position + 1) }

        Kernels.rmsNorm(x, weight: w.outputNorm, eps: c.normEps, n: dim, nTokens: n, out: xb)
        Kernels.matmul(w.output, x: xb, nTokens: n, y: logits)
    }

    /// Convenience over arrays.
    public func step(tokens: [Int32], states: [LlamaState], logits: UnsafeMutablePointer<Float>) throws {
        try tokens.withUnsafeBufferPointer { try step(tokens: $0, states: states, logits: logits) }
    }

    /// Attention of each sequence's new query over its own cache (prefix segments included),
    /// one work item per (sequence, head), spread over the compute pool.
    private func attention(layer l: Int, states: [LlamaState]) {
        let c = model.config
        let dim = c.dim, hs = c.headSize, kvDim = c.kvDim, group = c.groupSize, nHeads = c.nHeads
        let scale = 1 / Float(hs).squareRoot()
        let q = self.q, att = self.att
        if FastAttention.isAvailable(nHeads: nHeads, nKVHeads: c.nKVHeads) && states.count > 1 {
            // All sequences in one pass over the workers: (sequence, KV head) work items.
            let n = states.count
            let done = withUnsafeTemporaryAllocation(of: KVSegment.self, capacity: n * KVCache.maxSegments) { segs in
                withUnsafeTemporaryAllocation(of: AttentionQuery.self, capacity: n) { queries in
                    var used = 0
                    for (i, s) in states.enumerated() {
                        let first = used
                        var overflow = false
                        s.cache.forEachSegment(layer: l, end: s.position + 1) { p0, count, keys, values in
                            if used - first < KVCache.maxSegments {
                                segs.initializeElement(at: used, to: KVSegment(first: p0, count: count, keys: keys, values: values))
                                used += 1
                            } else {
                                overflow = true
                            }
                        }
                        if overflow { return false }
                        queries.initializeElement(at: i, to: AttentionQuery(
                            q: q + i * dim, position: s.position,
                            segments: UnsafeBufferPointer(rebasing: segs[first..<used]), out: att + i * dim))
                    }
                    FastAttention.causalBatch(UnsafeBufferPointer(queries), nHeads: nHeads, nKVHeads: c.nKVHeads,
                                              headSize: hs, kvDim: kvDim)
                    return true
                }
            }
            if done { return }
        }
        if FastAttention.isAvailable(nHeads: nHeads, nKVHeads: c.nKVHeads) {
            var done = true
            for (i, s) in states.enumerated() {
                done = done && s.cache.withSegments(layer: l, end: s.position + 1) { segments in
                    FastAttention.causal(q: q + i * dim, nQueries: 1, pos0: s.position, nHeads: nHeads,
                                         nKVHeads: c.nKVHeads, headSize: hs, kvDim: kvDim, segments: segments,
                                         out: att + i * dim)
                }
            }
            if done { return }
        }
        let items = states.count * nHeads
        states.withUnsafeBufferPointer { sts in
            KernelParallelism.forEachChunk(items, minChunk: 1) { range in
                for item in range {
                    let i = item / nHeads, h = item % nHeads
                    let s = sts[i]
                    let end = s.position + 1
                    let kvOffset = (h / group) * hs
                    let sc = s.scores + h * s.cache.maxLength
                    let qh = q + i * dim + h * hs
                    s.cache.forEachSegment(layer: l, end: end) { first, count, keys, _ in
                        Kernels.attentionScores(q: qh, keys: keys + kvOffset, stride: kvDim, n: count,
                                                headSize: hs, scale: scale, scores: sc + first)
                    }
                    Kernels.softmax(sc, end)
                    let out = att + i * dim + h * hs
                    out.update(repeating: 0, count: hs)
                    s.cache.forEachSegment(layer: l, end: end) { first, count, _, values in
                        Kernels.attentionMix(probs: sc + first, values: values + kvOffset, stride: kvDim,
                                             n: count, headSize: hs, out: out)
                    }
                }
            }
        }
    }
}

/// Misuse of `BatchDecoder.step`.
public enum BatchDecoderError: Error, Equatable, CustomStringConvertible {
    case tooManyStreams(Int, max: Int)
    case duplicateState(index: Int)

    public var description: String {
        switch self {
        case .tooManyStreams(let n, let m): return "batch of \(n) sequences exceeds the decoder's \(m)"
        case .duplicateState(let i): return "sequence \(i) repeats a state already in the batch (fork it instead)"
        }
    }
}
