import Foundation

/// One message of a conversation as the engine and transcripts store it.
public struct TurnMessage: Codable, Hashable, Sendable {
    /// "system", "user" or "assistant".
    public var role: String
    public var content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
}

/// Sampler settings for one session (recorded in the transcript header).
public struct SamplerSettings: Codable, Hashable, Sendable {
    public var temperature: Double = 0.2
    public var topK: Int = 40
    public var topP: Double = 0.9
    public var minP: Double = 0.05
    public var repeatPenalty: Double = 1.1
    public var seed: UInt64 = 42
    public var maxTokens: Int = 512
    public init() {}

    enum CodingKeys: String, CodingKey {
        case temperature, topK = "top_k", topP = "top_p", minP = "min_p"
        case repeatPenalty = "repeat_penalty", seed, maxTokens = "max_tokens"
    }
}

/// Why an answer ended.
public enum StopReason: String, Codable, Sendable {
    case endOfTurn = "eos", maxTokens = "max_tokens", cancelled = "stopped"
    case contextFull = "context_full", failed = "error"
}

/// Measured cost of one answer.
public struct TurnStats: Codable, Hashable, Sendable {
    /// Tokens prefilled for this turn (new prompt tokens after the cached prefix).
    public var promptTokens: Int = 0
    public var prefillSeconds: Double = 0
    public var generatedTokens: Int = 0
    /// Single-token decode steps timed in `decodeSeconds` (0 = unknown: generated - 1).
    public var decodeSteps: Int = 0
    public var decodeSeconds: Double = 0
    public var stopReason: StopReason = .endOfTurn
    /// Context positions in use after the turn.
    public var contextUsed: Int = 0
    public init() {}

    public var prefillTokensPerSecond: Double? {
        promptTokens > 0 && prefillSeconds > 0 ? Double(promptTokens) / prefillSeconds : nil
    }
    /// Decode speed: single-token steps per second (the first token comes from prefill logits).
    public var decodeTokensPerSecond: Double? {
        let steps = decodeSteps > 0 ? decodeSteps : generatedTokens - 1
        return steps > 0 && decodeSeconds > 0 ? Double(steps) / decodeSeconds : nil
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens", prefillSeconds = "prefill_s"
        case generatedTokens = "generated_tokens", decodeSteps = "decode_steps", decodeSeconds = "decode_s"
        case stopReason = "stop", contextUsed = "context_used"
    }
}

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

/// One weight tensor as the bits panel shows it.
public struct TensorSummary: Hashable, Sendable {
    /// Block index, nil for tensors outside the blocks (embedding, final norm).
    public var layer: Int?
    /// Matrix role: "q", "k", "v", "o", "gate", "up", "down", "embd", "norm", ...
    public var role: String
    /// Format name from the traits table ("Q4_1", "Q8_0", "F32").
    public var format: String
    public var bytes: Int
    public var bitsPerWeight: Double
    public init(layer: Int?, role: String, format: String, bytes: Int, bitsPerWeight: Double) {
        self.layer = layer; self.role = role; self.format = format
        self.bytes = bytes; self.bitsPerWeight = bitsPerWeight
    }
}

/// What the UI shows about the loaded model.
public struct ModelInfo: Hashable, Sendable {
    public var name: String
    public var sha256: String
    public var templateHash: String
    public var contextMax: Int
    public var nLayers: Int
    public var nHeads: Int
    public var weightBytes: Int
    public var tensors: [TensorSummary]
    public init(name: String, sha256: String, templateHash: String, contextMax: Int,
                nLayers: Int, nHeads: Int, weightBytes: Int, tensors: [TensorSummary]) {
        self.name = name; self.sha256 = sha256; self.templateHash = templateHash
        self.contextMax = contextMax; self.nLayers = nLayers; self.nHeads = nHeads
        self.weightBytes = weightBytes; self.tensors = tensors
    }
}

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
    func generate(messages: [TurnMessage], settings: SamplerSettings, cancel: CancellationFlag,
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
