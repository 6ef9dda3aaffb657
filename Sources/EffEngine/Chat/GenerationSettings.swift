import EffLLM

/// How one session generates: the sampler's parameters (EffLLM's `SamplerConfig`, the one
/// place their defaults live) and the answer length limit. Recorded in the transcript
/// header as flat keys (`temperature`, `top_k`, ..., `max_tokens`).
public struct GenerationSettings: Codable, Hashable, Sendable {
    public var sampler: SamplerConfig = .chat
    /// Most tokens one answer may have.
    public var maxTokens: Int = 512

    public init(sampler: SamplerConfig = .chat, maxTokens: Int = 512) {
        self.sampler = sampler
        self.maxTokens = maxTokens
    }

    enum CodingKeys: String, CodingKey {
        case temperature, topK = "top_k", topP = "top_p", minP = "min_p"
        case repeatPenalty = "repeat_penalty", repeatLastN = "repeat_last_n", seed, maxTokens = "max_tokens"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SamplerConfig.chat
        sampler = SamplerConfig(
            temperature: try c.decodeIfPresent(Float.self, forKey: .temperature) ?? d.temperature,
            topK: try c.decodeIfPresent(Int.self, forKey: .topK) ?? d.topK,
            topP: try c.decodeIfPresent(Float.self, forKey: .topP) ?? d.topP,
            minP: try c.decodeIfPresent(Float.self, forKey: .minP) ?? d.minP,
            repeatPenalty: try c.decodeIfPresent(Float.self, forKey: .repeatPenalty) ?? d.repeatPenalty,
            repeatLastN: try c.decodeIfPresent(Int.self, forKey: .repeatLastN) ?? d.repeatLastN,
            seed: try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed)
        maxTokens = try c.decodeIfPresent(Int.self, forKey: .maxTokens) ?? 512
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(shortDecimal(sampler.temperature), forKey: .temperature)
        try c.encode(sampler.topK, forKey: .topK)
        try c.encode(shortDecimal(sampler.topP), forKey: .topP)
        try c.encode(shortDecimal(sampler.minP), forKey: .minP)
        try c.encode(shortDecimal(sampler.repeatPenalty), forKey: .repeatPenalty)
        try c.encode(sampler.repeatLastN, forKey: .repeatLastN)
        try c.encode(sampler.seed, forKey: .seed)
        try c.encode(maxTokens, forKey: .maxTokens)
    }
}

/// A Float as the short decimal it was written as (0.9, not 0.8999999761581421), for JSON.
public func shortDecimal(_ v: Float) -> Double { Double("\(v)") ?? Double(v) }
