import EffLLM

/// Why an answer ended (the generator's own type, named here for the UI and transcripts).
public typealias StopReason = EffLLM.StopReason

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
