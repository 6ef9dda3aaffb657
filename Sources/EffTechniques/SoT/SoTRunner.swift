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
        public init() {}
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
        let batch = try model.completeBatch(requests, maxTokens: config.pointMaxTokens,
                                            stopAtLineBreak: config.stopPointAtLineBreak) { i, delta in
            events(.pointText(index: i, delta: delta))
        }
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
