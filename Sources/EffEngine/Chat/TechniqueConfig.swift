/// The efficiency techniques in force for a turn (recorded per turn in transcripts).
public struct TechniqueConfig: Codable, Hashable, Sendable {
    /// Weight format plan, e.g. "Q4_1" for the file as shipped.
    public var weights: String = "Q4_1"
    /// KV cache element format.
    public var kvCache: String = "f32"
    /// Attention policy ("dense" until sparse policies land).
    public var attention: String = "dense"
    /// Skeleton-of-Thought ("off", "on", "auto").
    public var sot: String = "off"
    public init() {}
    enum CodingKeys: String, CodingKey { case weights, kvCache = "kv_cache", attention, sot }
}
