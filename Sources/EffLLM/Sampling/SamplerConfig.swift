/// How the next token is chosen from logits: the knobs of the sampler chain.
///
/// Stage order follows llama.cpp's default chain: repetition penalty, top-k, top-p,
/// min-p, temperature, then a seeded draw. `temperature <= 0` means greedy (argmax after
/// the penalty). A value that disables a stage: `topK <= 0`, `topP >= 1`, `minP <= 0`,
/// `repeatPenalty == 1`.
public struct SamplerConfig: Sendable, Codable, Hashable {
    public var temperature: Float
    public var topK: Int
    public var topP: Float
    public var minP: Float
    public var repeatPenalty: Float
    /// How many of the most recent tokens the repetition penalty looks at.
    public var repeatLastN: Int
    public var seed: UInt64

    public init(temperature: Float = 0.2, topK: Int = 40, topP: Float = 0.9, minP: Float = 0.05,
                repeatPenalty: Float = 1.1, repeatLastN: Int = 64, seed: UInt64 = 42) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repeatPenalty = repeatPenalty
        self.repeatLastN = repeatLastN
        self.seed = seed
    }

    /// Chat default. SmolLM2's model card samples its instruct models at temperature 0.2,
    /// top-p 0.9: a 135M model drifts off topic quickly at 0.7-0.8. Top-k 40 and min-p 0.05
    /// cut the long tail; a mild 1.1 repetition penalty over 64 tokens curbs the loops small
    /// models fall into at low temperature.
    public static let chat = SamplerConfig()

    /// Pure greedy decoding (argmax, no penalty): what llama.cpp's `temperature 0` fixtures use.
    public static let greedy = SamplerConfig(temperature: 0, topK: 0, topP: 1, minP: 0, repeatPenalty: 1)

    /// True when the draw is an argmax.
    public var isGreedy: Bool { temperature <= 0 }

    /// The chain of stages this configuration runs, in order (disabled stages left out).
    public var stages: [SamplerStage] {
        var s: [SamplerStage] = []
        if repeatPenalty != 1 && repeatLastN > 0 { s.append(.repetitionPenalty(repeatPenalty, lastN: repeatLastN)) }
        if isGreedy { return s }
        if topK > 0 { s.append(.topK(topK)) }
        if topP < 1 { s.append(.topP(topP)) }
        if minP > 0 { s.append(.minP(minP)) }
        s.append(.temperature(temperature))
        return s
    }
}

/// One stage of the sampler chain (see `SamplerStages` for each one's exact rule).
public enum SamplerStage: Sendable, Equatable {
    case repetitionPenalty(Float, lastN: Int)
    case topK(Int)
    case topP(Float)
    case minP(Float)
    case temperature(Float)
}
