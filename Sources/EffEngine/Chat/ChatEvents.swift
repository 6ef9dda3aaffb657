import EffCore
import EffTechniques
import Foundation

/// Lossless events from the chat engine to the UI, in order.
public enum ChatEvent: Sendable, Equatable {
    /// The conversation was replaced (new session or resumed transcript).
    case conversationLoaded([TurnMessage])
    /// A user message was accepted and an answer begins.
    case userMessage(String)
    /// Next piece of the answer (always whole UTF-8 characters).
    case text(String)
    /// The answer ended; the message in the conversation is final.
    case answerFinished(TurnStats)
    /// A short message for the status line (saved to ..., warnings, errors).
    case notice(String, isWarning: Bool)
    /// The running answer is a Skeleton-of-Thought answer: its skeleton and points grow
    /// through the runner's events (normal-decoding text after a fallback comes as `.text`).
    case sot(SoTRunner.Event)
    /// The A/B comparison of the last question (normal against SoT).
    case compare(CompareEvent)
}

/// Where the engine stands, newest wins. Immutable; the UI renders from it.
public struct ChatSnapshot: Sendable, Equatable {
    public var model: ModelInfo?
    public var isGenerating = false
    /// Tokens generated so far in the running answer.
    public var liveTokens = 0
    /// Tokens per second of the running answer so far (since its first token).
    public var liveTokensPerSecond: Double?
    public var lastStats: TurnStats?
    public var kvBytesInUse = 0
    public var contextUsed = 0
    public var techniques = TechniqueConfig()
    /// A KV format switch waiting for the running answer to end (or being applied).
    public var pendingKV: KVFormat?
    /// An attention policy switch waiting for the running answer to end.
    public var pendingAttention: AttentionSpec?
    /// A weights switch waiting for the running answer to end (or being built).
    public var pendingWeights: WeightChoice?
    /// Conversation tokens an evicting policy dropped from the cache (gone for good).
    public var evictedTokens = 0
    public var attention: AttentionSummary?
    /// Answers completed since the attention summary was measured (0 = current).
    public var attentionTurn = 0
    public var sessionFile: String?
    public var turns = 0
    /// Set when the loaded transcript came from a different model.
    public var warning: String?
    /// Why the transcript is not on disk (the last autosave failed; it is being retried).
    public var saveError: String?
    /// The chat's Skeleton-of-Thought mode (F7 cycles it).
    public var sotMode: SoTMode = .off
    /// The running or last SoT turn, for the status line (nil after a normal turn in `off`).
    public var sot: SoTStatus?
    public init() {}
}
