import EffCore
import Foundation

/// Row buffers of one forward call, allocated once: every (token, position, sequence) entry
/// of a batch is one row. A state owns one for its own prefill chunks (`maxBatch` rows); a
/// `BatchDecoder` owns one for its streams. Shapes (row-major, `R = rows`):
public final class ForwardScratch {
    /// Rows one forward call can hold.
    public let rows: Int
    let x: UnsafeMutablePointer<Float>        // (R, dim)        residual stream
    let xb: UnsafeMutablePointer<Float>       // (R, dim)        normed input of a sub-block
    let xb2: UnsafeMutablePointer<Float>      // (R, dim)        sub-block output before the residual add
    let q: UnsafeMutablePointer<Float>        // (R, dim)        queries, nHeads * headSize per row
    let k: UnsafeMutablePointer<Float>        // (R, kvDim)      new keys (f32) before the store converts them
    let v: UnsafeMutablePointer<Float>        // (R, kvDim)      new values
    let att: UnsafeMutablePointer<Float>      // (R, dim)        attention output per head, concatenated
    let hb: UnsafeMutablePointer<Float>       // (R, hiddenDim)  gate, then silu(gate) * up
    let hb2: UnsafeMutablePointer<Float>      // (R, hiddenDim)  up
    let ropeCos: UnsafeMutablePointer<Float>  // (R, headSize / 2) cos(pos * freq_i) of each row's position
    let ropeSin: UnsafeMutablePointer<Float>  // (R, headSize / 2)
    let rowTmp: UnsafeMutablePointer<Float>   // (2 * kvDim)     one decoded key and value row (reference path)
    private let buffers: [OwnedFloats]

    public init(config c: LlamaConfig, rows: Int) {
        self.rows = max(1, rows)
        let r = self.rows
        let sizes = [r * c.dim, r * c.dim, r * c.dim, r * c.dim, r * c.kvDim, r * c.kvDim, r * c.dim,
                     r * c.hiddenDim, r * c.hiddenDim, r * c.headSize / 2, r * c.headSize / 2, 2 * c.kvDim]
        buffers = sizes.map { OwnedFloats(count: $0) }
        x = buffers[0].pointer; xb = buffers[1].pointer; xb2 = buffers[2].pointer
        q = buffers[3].pointer; k = buffers[4].pointer; v = buffers[5].pointer; att = buffers[6].pointer
        hb = buffers[7].pointer; hb2 = buffers[8].pointer
        ropeCos = buffers[9].pointer; ropeSin = buffers[10].pointer; rowTmp = buffers[11].pointer
    }

    var bytes: Int { buffers.reduce(0) { $0 + $1.count * 4 } }
}

/// Per-sequence run state: the KV store plus scratch buffers, all allocated once.
///
/// Like llama2.c's `RunState`: the forward pass only reads and writes these buffers, so
/// the per-token path allocates nothing. Prompts longer than `maxBatch` are processed in
/// chunks of `maxBatch` rows.
public final class LlamaState {
    public let config: LlamaConfig
    /// Tokens processed per forward chunk (rows of the batch buffers).
    public let maxBatch: Int
    /// Keys and values of every position so far (possibly over a shared prefix), in the
    /// store's `KVFormat`.
    public private(set) var cache: KVCache
    /// Receives attention probabilities when set; nil costs one branch per layer.
    public var attentionObserver: AttentionObserver?
    /// Receives the residual stream after every block when set (hidden-state features).
    public var residualObserver: ResidualObserver?
    /// Receives the inputs of every block's linear tensors when set (calibration statistics).
    public var linearInputObserver: LinearInputObserver?
    /// Which cached positions attention reads (nil: all, dense). Forks inherit it.
    public var attentionPolicy: AttentionPolicy?
    /// Which positions to drop before new tokens are written (nil: none, the cache grows to
    /// its capacity). Consulted by the forward pass before every chunk (`makeRoom`). Forks
    /// do not inherit it: their shared prefix is read-only and cannot be evicted from.
    public var evictionPolicy: KVEvictionPolicy?
    /// Positions evicted so far (by `makeRoom`); `rewind` and `reset` do not restore them.
    public private(set) var evictedCount = 0
    /// Where evictions cut the token stream when they all started at one position (the
    /// sinks): tokens `evictionStart ..< evictionStart + evictedCount` of the stream are
    /// gone and later ones sit `evictedCount` positions lower. Nil before any eviction, or
    /// once evictions started at different positions (the mapping is then unknown).
    public private(set) var evictionStart: Int?
    private var evictionStartsVary = false

    let scratch: ForwardScratch
    let scores: UnsafeMutablePointer<Float>   // (nHeads, maxLength) attention probabilities (observers)
    /// Logits of the last token of the last forward call with `.last`.
    public let logits: UnsafeMutablePointer<Float>  // (vocabSize)
    private let buffers: [OwnedFloats]

    /// A fresh state holding up to `maxContext` positions (default: the trained context),
    /// over an optional shared `prefix` cache (its first `prefixLength` positions), storing
    /// keys and values in `kvFormat` (a fork takes its prefix's format).
    public init(config: LlamaConfig, maxContext: Int? = nil, maxBatch: Int = 32,
                prefix: KVCache? = nil, prefixLength: Int? = nil, kvFormat: KVFormat = .f32) {
        self.config = config
        self.maxBatch = max(1, maxBatch)
        let pLen = prefix.map { min(prefixLength ?? $0.length, $0.length) } ?? 0
        let total = max(1, min(maxContext ?? config.seqLen, config.seqLen))
        cache = KVCache(nLayers: config.nLayers, kvDim: config.kvDim, capacity: max(0, total - pLen),
                        format: kvFormat, prefix: prefix, prefixLength: pLen)
        scratch = ForwardScratch(config: config, rows: self.maxBatch)
        buffers = [OwnedFloats(count: config.nHeads * max(1, cache.maxLength)), OwnedFloats(count: config.vocabSize)]
        scores = buffers[0].pointer
        logits = buffers[1].pointer
    }

    /// Next position to be written (= tokens seen so far, prefix included).
    public var position: Int { cache.length }

    /// The KV format this state stores.
    public var kvFormat: KVFormat { cache.format }

    /// A new state continuing this one's first `at` positions (default all) through a
    /// shared, read-only prefix; it can hold up to `maxContext` positions in total. It keeps
    /// this state's KV format and attention policy.
    public func fork(at length: Int? = nil, maxContext: Int? = nil, maxBatch: Int? = nil) -> LlamaState {
        let s = LlamaState(config: config, maxContext: maxContext ?? cache.maxLength, maxBatch: maxBatch ?? self.maxBatch,
                           prefix: cache, prefixLength: length ?? cache.length)
        s.attentionPolicy = attentionPolicy
        return s
    }

    /// Re-encodes every cached position in `format` (one call; the prefix chain is
    /// flattened into own storage, so forks taken earlier keep the old store). Returns the
    /// seconds it took. Same format: nothing changes.
    @discardableResult
    public func convertKV(to format: KVFormat) -> Double {
        guard format != cache.format else { return 0 }
        let t0 = MonotonicClock.seconds()
        cache = cache.converted(to: format)
        return MonotonicClock.seconds() - t0
    }

    /// Rewinds to absolute position `length` (keeps positions before it); false when refused.
    @discardableResult
    public func rewind(to length: Int) -> Bool {
        guard cache.truncate(to: length) else { return false }
        if length == 0 { evictedCount = 0; evictionStart = nil; evictionStartsVary = false }
        return true
    }

    /// Evicts what the eviction policy asks for before `incoming` tokens are written (no
    /// policy: nothing). Positions after the evicted range move down and their keys are
    /// re-rotated by the shift (`KVCache.removePositions`). Returns the number of positions
    /// evicted; throws when the policy's range cannot be removed (it reaches into a shared
    /// prefix or below a fork point).
    @discardableResult
    public func makeRoom(for incoming: Int) throws -> Int {
        guard let policy = evictionPolicy else { return 0 }
        let range = policy.positionsToEvict(length: cache.length, incoming: incoming).clamped(to: 0..<cache.length)
        guard !range.isEmpty else { return 0 }
        guard cache.removePositions(range, headSize: config.headSize, ropeBase: config.ropeFreqBase) else {
            throw LlamaModelError.evictionRefused(range: range, length: cache.length)
        }
        if evictedCount == 0 { evictionStart = range.lowerBound }
        else if evictionStart != range.lowerBound { evictionStartsVary = true; evictionStart = nil }
        if evictionStartsVary { evictionStart = nil }
        evictedCount += range.count
        return range.count
    }

    /// Bytes of scratch and own KV storage this state reserves (KV counted at capacity).
    public var reservedBytes: Int {
        scratch.bytes + buffers.reduce(0) { $0 + $1.count * 4 } + cache.reservedBytes
    }
}
