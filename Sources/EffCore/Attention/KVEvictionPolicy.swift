/// Which cached positions to drop before new tokens are written: the seam that bounds KV
/// memory (StreamingLLM's sinks + window). Unlike an `AttentionPolicy`, which only masks
/// reads, an eviction policy removes rows for good: a later dense read cannot see them.
///
/// The state asks before every forward chunk of `incoming` tokens; the policy answers with
/// one contiguous range of positions to remove (empty: none). The store then moves every
/// later position down by the range's length and re-rotates the moved keys (positions are
/// re-indexed inside the cache, as StreamingLLM does), so after the call the cache holds at
/// most `budget - incoming` positions and the new tokens take the positions right after.
public protocol KVEvictionPolicy: AnyObject {
    /// Short name for status and JSON output ("sink4+win1020+evict").
    var name: String { get }
    /// Most positions the cache holds once the incoming tokens are written.
    var budget: Int { get }
    /// Leading positions never evicted (sinks); a forward chunk holds at most
    /// `budget - pinned` tokens so that eviction alone can make room for it.
    var pinned: Int { get }
    /// The positions to remove before `incoming` tokens are appended to a cache of `length`
    /// positions: inside `pinned ..< length`, empty when everything fits.
    func positionsToEvict(length: Int, incoming: Int) -> Range<Int>
}

extension KVEvictionPolicy {
    /// Most tokens one forward chunk may carry under this policy (at least 1).
    public var maxChunk: Int { max(1, budget - pinned) }
}
