/// The latency model of Skeleton-of-Thought on this machine (TECHNIQUES.md §1):
///
///     T_SoT = P(skeleton prompt) + L_s·t₁ + P(shared prefix + B tails) + max_i L_i · r(B) · t₁
///
/// with P(n) the prefill time of n tokens, t₁ one single-stream decode step and
/// r(B) = t_B / t₁ the measured cost of one batched step of B streams. When the measured
/// SoT time agrees with this within ±15%, a missed speed-up is explained by its terms.
public struct SoTLatencyModel: Sendable, Codable, Equatable {
    /// Measured prefill throughput, tokens per second.
    public var prefillTokensPerSecond: Double
    /// Measured single-stream decode step, seconds.
    public var stepSeconds: Double
    /// Measured r(B) for B = 1...; index B-1.
    public var stepRatios: [Double]

    public init(prefillTokensPerSecond: Double, stepSeconds: Double, stepRatios: [Double]) {
        self.prefillTokensPerSecond = prefillTokensPerSecond
        self.stepSeconds = stepSeconds
        self.stepRatios = stepRatios
    }

    /// r(B), extrapolated linearly past the last measured B.
    public func ratio(_ b: Int) -> Double { Self.ratio(b, of: stepRatios) }

    /// r(B) from measured ratios (index B-1), extrapolated linearly past the last one.
    public static func ratio(_ b: Int, of ratios: [Double]) -> Double {
        guard !ratios.isEmpty, b >= 1 else { return 1 }
        if b <= ratios.count { return ratios[b - 1] }
        let n = ratios.count
        let slope = n >= 2 ? ratios[n - 1] - ratios[n - 2] : 1
        return ratios[n - 1] + slope * Double(b - n)
    }

    public struct Prediction: Sendable, Codable, Equatable {
        public var skeletonPrefill: Double
        public var skeletonDecode: Double
        public var expansionPrefill: Double
        public var expansionDecode: Double
        public var total: Double { skeletonPrefill + skeletonDecode + expansionPrefill + expansionDecode }
    }

    public func predict(skeletonPromptTokens: Int, skeletonTokens: Int, prefilledTokens: Int,
                        longestPoint: Int, streams: Int) -> Prediction {
        Prediction(skeletonPrefill: Double(skeletonPromptTokens) / prefillTokensPerSecond,
                   skeletonDecode: Double(skeletonTokens) * stepSeconds,
                   expansionPrefill: Double(prefilledTokens) / prefillTokensPerSecond,
                   expansionDecode: Double(longestPoint) * ratio(streams) * stepSeconds)
    }

    /// Normal decoding of `answerTokens` after a `promptTokens` prompt.
    public func predictNormal(promptTokens: Int, answerTokens: Int) -> Double {
        Double(promptTokens) / prefillTokensPerSecond + Double(answerTokens) * stepSeconds
    }
}
