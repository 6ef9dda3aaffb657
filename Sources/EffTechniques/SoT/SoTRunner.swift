/// Runs Skeleton-of-Thought (Ning et al., ICLR'24) over any `SoTLanguageModel`: a greedy
/// skeleton first, then every point expanded at once in one batch over a shared prefix.
/// Fewer than `minPoints` parsed points falls back to normal decoding, and says so.
public struct SoTRunner: Sendable {
    public struct Config: Sendable, Equatable, Codable {
        public var skeletonMaxTokens = 100
        public var pointMaxTokens = 64
        public var minPoints = 2
        public var maxPoints = 10
        public var fallbackMaxTokens = 256
        /// A point is one paragraph: its stream leaves the batch at the first line break
        /// after some text. Measured on SmolLM2-135M, expansions otherwise go on with
        /// "I hope this helps." or the next point's line after their 1-2 sentences.
        public var stopPointAtLineBreak = true
        /// Measured r(B) = t_B / t_1 for B = 1, 2, ... (index B-1), this machine's batched
        /// decode step against one stream. With them the points are expanded in waves of the
        /// batch size that finishes soonest (`waveSize`); nil: all points in one batch.
        public var stepRatios: [Double]?
        public init() {}
    }

    /// The batch size B <= `points` that expands `points` equally long points soonest,
    /// in ceil(points / B) waves of at most B streams: argmin of r(B) * ceil(points / B)
    /// (ties go to the larger B: fewer waves, fewer prefills). Where batching gains nothing
    /// (r(B) >= B) that is 1: one point after another, as fast as normal decoding. Past the
    /// measured B, r grows by the last measured step.
    public static func waveSize(points: Int, ratios: [Double]) -> Int {
        guard points > 1, !ratios.isEmpty else { return max(1, points) }
        var best = 1, bestCost = Double(points)
        for b in 1...points {
            let cost = SoTLatencyModel.ratio(b, of: ratios) * Double((points + b - 1) / b)
            if cost <= bestCost * (1 + 1e-9) { best = b; bestCost = min(cost, bestCost) }
        }
        return best
    }

    public enum Stage: String, Sendable, Codable { case skeleton, expanding, fallback, done }

    /// What the live view hears, in order.
    public enum Event: Sendable, Equatable {
        case stage(Stage)
        case skeletonText(String)
        case skeleton([SkeletonPoint])
        case pointText(index: Int, delta: String)
        case fallbackText(String)
        case fellBack(reason: String)
        /// The points run in waves of `size` streams, not all at once, because the
        /// measured r(B) makes that sooner (`Config.stepRatios`).
        case waves(size: Int, points: Int)
    }

    public struct Result: Sendable, Equatable {
        public var question: String
        /// The skeleton answer as decoded, with its `1.` prefill.
        public var skeletonText: String
        public var points: [SkeletonPoint]
        /// One per point: the generated continuation after `i. <point>`.
        public var expansions: [String]
        public var answer: String
        public var fallbackReason: String?
        public var skeleton: SoTCompletion
        public var batch: SoTBatchCompletion?
        public var fallback: SoTCompletion?
        /// Expansions that start another point or run past three sentences.
        public var leakedPoints: [Int]

        public var batchSize: Int { points.count }
        /// Streams per wave when the points ran in waves (nil: one batch of all).
        public var waveSize: Int?
        public var skeletonSeconds: Double { skeleton.prefillSeconds + skeleton.decodeSeconds }
        public var expansionSeconds: Double {
            (batch.map { $0.prefillSeconds + $0.decodeSeconds } ?? 0)
                + (fallback.map { $0.prefillSeconds + $0.decodeSeconds } ?? 0)
        }
        public var totalSeconds: Double { skeletonSeconds + expansionSeconds }
        /// Every prompt and generated token the model processed (SoT re-reads the question
        /// and skeleton per point, so this exceeds normal decoding even when time falls);
        /// prompt tokens reused from an earlier prompt's cache are not counted.
        public var tokensProcessed: Int {
            var n = skeleton.promptTokens - skeleton.reusedPromptTokens + skeleton.generatedTokens
            if let batch {
                n += batch.sharedPrefixTokens - batch.reusedPrefixTokens
                for c in batch.completions {
                    n += c.promptTokens - batch.sharedPrefixTokens + c.generatedTokens
                }
            }
            if let fallback { n += fallback.promptTokens + fallback.generatedTokens }
            return n
        }
    }

    public var config: Config
    public init(config: Config = Config()) { self.config = config }

    public func run(question: String, model: SoTLanguageModel,
                    events: (Event) -> Void = { _ in }) throws -> Result {
        events(.stage(.skeleton))
        let skeletonRequest = SoTRequest(user: SoTPrompts.skeleton(question: question),
                                         prefill: SoTPrompts.skeletonPrefill)
        events(.skeletonText(SoTPrompts.skeletonPrefill))
        let skeleton = try model.complete(
            skeletonRequest, maxTokens: config.skeletonMaxTokens,
            shouldStop: { SkeletonParser.skeletonIsComplete(SoTPrompts.skeletonPrefill + $0) },
            onText: { events(.skeletonText($0)) })
        let skeletonText = SoTPrompts.skeletonPrefill + skeleton.text
        let points = Array(SkeletonParser.parse(skeletonText).prefix(config.maxPoints))
        var result = Result(question: question, skeletonText: skeletonText, points: points,
                            expansions: [], answer: "", fallbackReason: nil, skeleton: skeleton,
                            batch: nil, fallback: nil, leakedPoints: [])

        guard points.count >= config.minPoints else {
            let reason = points.isEmpty
                ? "the skeleton had no numbered points"
                : "the skeleton had only \(points.count) point (need \(config.minPoints))"
            result.fallbackReason = reason
            events(.fellBack(reason: reason))
            events(.stage(.fallback))
            let normal = try model.complete(SoTRequest(user: question, prefill: ""),
                                            maxTokens: config.fallbackMaxTokens,
                                            shouldStop: { _ in false },
                                            onText: { events(.fallbackText($0)) })
            result.fallback = normal
            result.answer = normal.text
            events(.stage(.done))
            return result
        }

        events(.skeleton(points))
        events(.stage(.expanding))
        let requests = points.map { point in
            SoTRequest(user: SoTPrompts.expansion(question: question, skeleton: points,
                                                  index: point.index),
                       prefill: SoTPrompts.expansionPrefill(point))
        }
        let wave = config.stepRatios.map { Self.waveSize(points: requests.count, ratios: $0) } ?? requests.count
        if wave < requests.count {
            result.waveSize = wave
            events(.waves(size: wave, points: requests.count))
        }
        var batch: SoTBatchCompletion?
        for start in stride(from: 0, to: requests.count, by: wave) {
            let part = try model.completeBatch(Array(requests[start..<min(requests.count, start + wave)]),
                                               maxTokens: config.pointMaxTokens,
                                               stopAtLineBreak: config.stopPointAtLineBreak) { i, delta in
                events(.pointText(index: start + i, delta: delta))
            }
            batch = batch.map { $0.followed(by: part) } ?? part
        }
        guard let batch else { throw SoTRunnerError.noPoints }
        result.batch = batch
        result.expansions = batch.completions.map(\.text)
        result.leakedPoints = zip(points, result.expansions).compactMap { point, text in
            SkeletonParser.leaks(expansion: text, index: point.index) ? point.index : nil
        }
        result.answer = zip(points, result.expansions).map { point, text in
            SoTPrompts.expansionPrefill(point) + text
        }.joined(separator: "\n")
        events(.stage(.done))
        return result
    }
}

/// Why a Skeleton-of-Thought run stopped.
public enum SoTRunnerError: Error, CustomStringConvertible {
    case noPoints

    public var description: String { "the skeleton gave no points to expand" }
}
