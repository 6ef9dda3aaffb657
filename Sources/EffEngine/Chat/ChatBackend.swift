import EffLLM
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
}

extension ChatBackend {
    public var sot: ChatSoTSupport? { nil }
}
