import EffCore

/// StreamingLLM's read pattern (Xiao et al., "Efficient Streaming Language Models with
/// Attention Sinks", 2023): every query reads the first `sinks` positions (the attention
/// sinks that absorb surplus probability mass) and the `window` most recent positions
/// (itself included), and nothing in between.
///
/// This is the read mask only: the KV store keeps every position (eviction, which makes the
/// memory bounded, is a later step; `KVCache.removePositions` re-rotates the keys it moves).
/// Every layer and KV head reads the same spans; a per-head policy (MoA) returns different
/// ranges per `kvHead` through the same seam.
public final class SinkWindowAttentionPolicy: AttentionPolicy {
    public let sinks: Int
    public let window: Int

    /// `sinks >= 0`, `window >= 1` (values below are raised to those).
    public init(sinks: Int, window: Int) {
        self.sinks = max(0, sinks)
        self.window = max(1, window)
    }

    public var name: String { "sinks\(sinks)+window\(window)" }

    public func keyRanges(layer: Int, kvHead: Int, queryPosition: Int,
                          into ranges: UnsafeMutableBufferPointer<Range<Int>>) -> Int {
        let n = queryPosition + 1
        let recent = max(0, n - window)
        if recent <= sinks {
            ranges[0] = 0..<n
            return 1
        }
        if sinks == 0 || ranges.count < 2 {
            ranges[0] = recent..<n
            return 1
        }
        ranges[0] = 0..<sinks
        ranges[1] = recent..<n
        return 2
    }
}
