import EffLLM
import EffTechniques

/// Wires an attention configuration (EffTechniques) onto the Llama engine (EffLLM): the one
/// place the two meet.
extension AttentionSpec {
    /// This configuration as the engine runs it (chat, evaluation, bench).
    public var configuration: AttentionConfiguration {
        AttentionConfiguration(name: description, read: makeReadPolicy(), eviction: makeEvictionPolicy())
    }

    /// Installs this configuration's read mask and eviction policy on `state` (dense clears
    /// both). Tokens already evicted stay gone.
    public func apply(to state: LlamaState) { configuration.apply(to: state) }
}
