import EffCore
import Foundation

/// Per-sequence run state: the KV cache plus scratch buffers, all allocated once.
///
/// Like llama2.c's `RunState`: the forward pass only reads and writes these buffers, so
/// the per-token path allocates nothing. Batch buffers hold `maxBatch` token rows; longer
/// prompts are processed in chunks of `maxBatch`. Shapes (row-major, `B = maxBatch`):
public final class LlamaState {
    public let config: LlamaConfig
    /// Tokens processed per forward chunk (rows of the batch buffers).
    public let maxBatch: Int
    /// Keys and values of every position so far (possibly over a shared prefix).
    public let cache: KVCache
    /// Receives attention probabilities when set; nil costs one branch per head.
    public var attentionObserver: AttentionObserver?
    /// Receives the residual stream after every block when set (hidden-state features).
    public var residualObserver: ResidualObserver?

    let x: UnsafeMutablePointer<Float>        // (B, dim)        residual stream
    let xb: UnsafeMutablePointer<Float>       // (B, dim)        normed input of a sub-block
    let xb2: UnsafeMutablePointer<Float>      // (B, dim)        sub-block output before the residual add
    let q: UnsafeMutablePointer<Float>        // (B, dim)        queries, nHeads * headSize per token
    let att: UnsafeMutablePointer<Float>      // (B, dim)        attention output per head, concatenated
    let hb: UnsafeMutablePointer<Float>       // (B, hiddenDim)  gate, then silu(gate) * up
    let hb2: UnsafeMutablePointer<Float>      // (B, hiddenDim)  up
    let scores: UnsafeMutablePointer<Float>   // (nHeads, maxLength) attention scores/probabilities
    let ropeCos: UnsafeMutablePointer<Float>  // (B, headSize / 2) cos(pos * freq_i) for the chunk
    let ropeSin: UnsafeMutablePointer<Float>  // (B, headSize / 2)
    /// Logits of the last token of the last forward call with `.last`.
    public let logits: UnsafeMutablePointer<Float>  // (vocabSize)
    private let buffers: [OwnedFloats]

    /// A fresh state holding up to `maxContext` positions (default: the trained context),
    /// over an optional shared `prefix` cache (its first `prefixLength` positions).
    public init(config: LlamaConfig, maxContext: Int? = nil, maxBatch: Int = 32,
                prefix: KVCache? = nil, prefixLength: Int? = nil) {
        self.config = config
        self.maxBatch = max(1, maxBatch)
        let pLen = prefix.map { min(prefixLength ?? $0.length, $0.length) } ?? 0
        let total = max(1, min(maxContext ?? config.seqLen, config.seqLen))
        cache = KVCache(nLayers: config.nLayers, kvDim: config.kvDim, capacity: max(0, total - pLen),
                        prefix: prefix, prefixLength: pLen)
        let b = self.maxBatch, c = config
        let sizes = [b * c.dim, b * c.dim, b * c.dim, b * c.dim, b * c.dim, b * c.hiddenDim, b * c.hiddenDim,
                     c.nHeads * max(1, cache.maxLength), b * c.headSize / 2, b * c.headSize / 2, c.vocabSize]
        buffers = sizes.map { OwnedFloats(count: $0) }
        x = buffers[0].pointer; xb = buffers[1].pointer; xb2 = buffers[2].pointer
        q = buffers[3].pointer; att = buffers[4].pointer
        hb = buffers[5].pointer; hb2 = buffers[6].pointer
        scores = buffers[7].pointer
        ropeCos = buffers[8].pointer; ropeSin = buffers[9].pointer
        logits = buffers[10].pointer
    }

    /// Next position to be written (= tokens seen so far, prefix included).
    public var position: Int { cache.length }

    /// A new state continuing this one's first `at` positions (default all) through a
    /// shared, read-only prefix; it can hold up to `maxContext` positions in total.
    public func fork(at length: Int? = nil, maxContext: Int? = nil, maxBatch: Int? = nil) -> LlamaState {
        LlamaState(config: config, maxContext: maxContext ?? cache.maxLength, maxBatch: maxBatch ?? self.maxBatch,
                   prefix: cache, prefixLength: length ?? cache.length)
    }

    /// Rewinds to absolute position `length` (keeps positions before it); false when refused.
    @discardableResult
    public func rewind(to length: Int) -> Bool { cache.truncate(to: length) }

    /// Fills the RoPE tables for `n` consecutive positions from `pos0`, as ggml computes
    /// them for mode NORM: `theta_i = pos * base^(-2i/headSize)`, accumulated in f32 by
    /// repeated multiplication with `theta_scale = base^(-2/headSize)`.
    func prepareRope(from pos0: Int, count n: Int) {
        let half = config.headSize / 2
        let thetaScale = powf(config.ropeFreqBase, -2 / Float(config.headSize))
        for t in 0..<n {
            var theta = Float(pos0 + t)
            for i in 0..<half {
                ropeCos[t * half + i] = cosf(theta)
                ropeSin[t * half + i] = sinf(theta)
                theta *= thetaScale
            }
        }
    }

    /// Bytes of scratch and own KV storage this state reserves (KV counted at capacity).
    public var reservedBytes: Int {
        buffers.reduce(0) { $0 + $1.count * 4 } + 2 * cache.nLayers * cache.capacity * cache.kvDim * 4
    }

    /// Addresses of every scratch buffer, for tests that check nothing is reallocated.
    public var scratchAddresses: [UnsafeMutableRawPointer] { buffers.map { UnsafeMutableRawPointer($0.pointer) } }
}
