import EffCore

/// A named attention configuration as the engine runs it: a read mask and an eviction
/// policy (nil: dense, keep everything). Techniques build these (`AttentionSpec` in
/// EffTechniques); the evaluation and the bench run them without knowing which technique.
public struct AttentionConfiguration {
    public var name: String
    public var read: AttentionPolicy?
    public var eviction: KVEvictionPolicy?

    public init(name: String, read: AttentionPolicy? = nil, eviction: KVEvictionPolicy? = nil) {
        self.name = name; self.read = read; self.eviction = eviction
    }

    /// Dense attention, nothing evicted.
    public static let dense = AttentionConfiguration(name: "dense")

    /// Installs the read mask and eviction policy on `state`.
    public func apply(to state: LlamaState) {
        state.attentionPolicy = read
        state.evictionPolicy = eviction
    }

    /// A fresh state of `model` for a stream of `tokens` positions under this configuration
    /// (an evicting one only needs its budget), in the model's KV format.
    public func makeState(_ model: LlamaModel, tokens: Int, maxBatch: Int) -> LlamaState {
        let context = min(model.config.seqLen, eviction.map { min($0.budget, tokens) } ?? tokens)
        let s = model.makeState(maxContext: max(1, context), maxBatch: maxBatch)
        apply(to: s)
        return s
    }
}
