import EffCore

/// StreamingLLM's bounded cache (Xiao et al., "Efficient Streaming Language Models with
/// Attention Sinks", 2023, section 3.2): the first `sinks` tokens stay forever, and before
/// new tokens are written the oldest non-sink tokens leave so that sinks + the `window` most
/// recent tokens fit (`budget = sinks + window`). Memory is constant however long the
/// stream runs.
///
/// Positions are re-indexed inside the cache as the authors do: the store moves the window
/// down to follow the sinks and re-rotates every moved key by the shift (keys are cached
/// after RoPE here, so this is the "-Δ rotation" variant; the authors cache keys before RoPE
/// and rotate at cache positions each step, which is the same function). The sinks never
/// move and keep their rotation; a new token takes the cache position after the window.
/// With `sinks == 0` this is plain window attention, the baseline that breaks once the
/// first tokens leave.
///
/// `step` (default 1, the paper's behaviour) evicts that many positions at a time once the
/// cache is full, so the window holds between `window - step + 1` and `window` recent
/// tokens. Each eviction moves and re-rotates the whole window (about 47 MB of f32 keys and
/// values at window 1020 on SmolLM2), which one token at a time costs as much as the
/// attention itself; a step of 64 spreads that over 64 tokens. Memory stays bounded by
/// `sinks + window` either way.
public final class StreamingLLMEviction: KVEvictionPolicy {
    public let sinks: Int
    public let window: Int
    /// Positions evicted at once when the cache is full (1 ... window).
    public let step: Int

    /// `sinks >= 0`, `window >= 1`, `1 <= step <= window` (values outside are clamped).
    public init(sinks: Int, window: Int, step: Int = 1) {
        self.sinks = max(0, sinks)
        self.window = max(1, window)
        self.step = min(max(1, step), self.window)
    }

    public var name: String { "sink\(sinks)+win\(window)+evict" + (step > 1 ? "/\(step)" : "") }
    public var budget: Int { sinks + window }
    public var pinned: Int { sinks }

    public func positionsToEvict(length: Int, incoming: Int) -> Range<Int> {
        let over = length + incoming - budget
        guard over > 0, length > sinks else { return 0..<0 }
        return sinks..<min(length, sinks + max(over, step))
    }
}
