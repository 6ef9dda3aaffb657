import EffCore
import EffLLM
import EffTechniques
import Foundation

/// A chat model as the engine drives it: synchronous and single-threaded from the caller's
/// view (the engine calls it from one compute thread at a time, never from an actor).
///
/// The backend owns the per-sequence state (KV cache) and reuses the longest cached prefix
/// of the rendered conversation, so each turn prefills only the new tokens.
public protocol ChatBackend: AnyObject {
    var info: ModelInfo { get }
    /// Renders `messages` with the chat template plus the generation prompt, brings the
    /// cache up to it, and samples an answer, calling `onText` with each complete UTF-8
    /// piece. Checks `cancel` between tokens.
    func generate(messages: [TurnMessage], settings: GenerationSettings, cancel: CancellationFlag,
                  onText: (String) -> Void) throws -> TurnStats
    /// Rebuilds the cache for `messages` without generating (resuming a transcript).
    func prime(messages: [TurnMessage]) throws -> TurnStats
    /// Forgets the conversation (a new session).
    func reset()
    /// Bytes of KV cache holding live positions.
    var kvBytesInUse: Int { get }
    /// Context positions in use.
    var contextUsed: Int { get }
    /// Attention statistics measured during the last `generate`, if the backend observes them.
    var lastAttention: AttentionSummary? { get }
    /// Skeleton-of-Thought over this backend's model; nil when it cannot run SoT.
    var sot: ChatSoTSupport? { get }
    /// The format the KV cache holds keys and values in now.
    var kvFormat: KVFormat { get }
    /// Re-stores every cached position in `format` (the conversation is kept); called between
    /// turns only. Returns what it did, for the status line; throws when it cannot.
    func setKVFormat(_ format: KVFormat) throws -> KVFormatChange
    /// Which keys attention reads and whether the cache evicts, now.
    var attention: AttentionSpec { get }
    /// Installs `spec` for the next turns (between turns only). The cached conversation is
    /// kept; tokens an evicting policy already dropped stay gone.
    func setAttention(_ spec: AttentionSpec) throws -> AttentionChange
    /// Conversation tokens evicted from the cache so far (0 when nothing was evicted).
    var evictedTokens: Int { get }
    /// Where the weights come from now.
    var weights: WeightChoice { get }
    /// Installs `choice` (between turns only): requantizes from the file's tensors, calling
    /// `progress(done, total)` per tensor, then recomputes the cached conversation with the
    /// new weights. Throws when the choice cannot be built; the old weights stay then.
    func setWeights(_ choice: WeightChoice, progress: @escaping (Int, Int) -> Void) throws -> WeightChange
}

/// What switching the weights did.
public struct WeightChange: Sendable, Equatable {
    public var from: WeightChoice
    public var to: WeightChoice
    /// Bytes of all weight tensors before and after (outliers included).
    public var bytesBefore: Int
    public var bytesAfter: Int
    /// Wall time of building the new weights (0 when they were kept from before).
    public var buildSeconds: Double
    /// Positions recomputed with the new weights, and the time it took.
    public var positions: Int
    public var prefillSeconds: Double

    public init(from: WeightChoice, to: WeightChoice, bytesBefore: Int, bytesAfter: Int, buildSeconds: Double,
                positions: Int, prefillSeconds: Double) {
        self.from = from; self.to = to; self.bytesBefore = bytesBefore; self.bytesAfter = bytesAfter
        self.buildSeconds = buildSeconds; self.positions = positions; self.prefillSeconds = prefillSeconds
    }
}

/// What switching the attention policy did.
public struct AttentionChange: Sendable, Equatable {
    public var from: AttentionSpec
    public var to: AttentionSpec
    /// Positions the cache holds now.
    public var positions: Int
    /// Conversation tokens evicted before the switch (they cannot come back).
    public var evicted: Int

    public init(from: AttentionSpec, to: AttentionSpec, positions: Int, evicted: Int) {
        self.from = from; self.to = to; self.positions = positions; self.evicted = evicted
    }
}

/// What switching the KV format did.
public struct KVFormatChange: Sendable, Equatable {
    public var from: KVFormat
    public var to: KVFormat
    /// Positions carried over.
    public var positions: Int
    /// Wall time of the conversion (or re-prefill).
    public var seconds: Double
    public var bytesBefore: Int
    public var bytesAfter: Int
    /// True when the positions were recomputed by a prefill rather than converted.
    public var reprefilled: Bool

    public init(from: KVFormat, to: KVFormat, positions: Int, seconds: Double, bytesBefore: Int, bytesAfter: Int,
                reprefilled: Bool) {
        self.from = from; self.to = to; self.positions = positions; self.seconds = seconds
        self.bytesBefore = bytesBefore; self.bytesAfter = bytesAfter; self.reprefilled = reprefilled
    }
}

extension ChatBackend {
    /// A backend without weight variants reports the default.
    public var weights: WeightChoice { TechniqueConfig().weights }
    public func setWeights(_ choice: WeightChoice, progress: @escaping (Int, Int) -> Void) throws -> WeightChange {
        throw ChatBackendError.weightsUnsupported(choice.description)
    }
    public var sot: ChatSoTSupport? { nil }
    public var attention: AttentionSpec { .dense }
    public var evictedTokens: Int { 0 }
    public func setAttention(_ spec: AttentionSpec) throws -> AttentionChange {
        guard spec == .dense else { throw ChatBackendError.attentionUnsupported(spec.description) }
        return AttentionChange(from: .dense, to: .dense, positions: contextUsed, evicted: 0)
    }
}
