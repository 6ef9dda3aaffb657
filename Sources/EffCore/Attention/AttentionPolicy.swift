/// Which cached positions attention reads: the seam for sparse attention (StreamingLLM's
/// sinks + window, MoA's per-head spans).
///
/// For one query at `queryPosition` in `layer`, the query heads of KV head `kvHead` read the
/// keys and values of the position ranges this returns: ascending, disjoint, inside
/// `0 ... queryPosition`, gaps allowed, possibly different per KV head. The ranges go into
/// caller-provided storage (`ranges`, `AttentionPolicyLimits.maxRanges` entries), so the
/// per-token path allocates nothing. A state without a policy reads every position (dense),
/// through the same kernels. A policy only masks reads: it never evicts (the cache keeps
/// every position), so turning it off restores dense attention exactly.
public protocol AttentionPolicy: AnyObject {
    /// Short name for status and JSON output ("dense", "sinks4+window256").
    var name: String { get }
    /// Writes the ranges to read into `ranges` and returns how many it wrote.
    func keyRanges(layer: Int, kvHead: Int, queryPosition: Int, into ranges: UnsafeMutableBufferPointer<Range<Int>>) -> Int
}

/// Sizes of the storage the kernels hand a policy.
public enum AttentionPolicyLimits {
    /// Most ranges one (layer, KV head, query) may read.
    public static let maxRanges = 8
}

/// Every position: what a nil policy does, as an explicit value.
public final class DenseAttentionPolicy: AttentionPolicy {
    public init() {}
    public var name: String { "dense" }
    public func keyRanges(layer: Int, kvHead: Int, queryPosition: Int,
                          into ranges: UnsafeMutableBufferPointer<Range<Int>>) -> Int {
        ranges[0] = 0..<(queryPosition + 1)
        return 1
    }
}
