import EffTechniques
import Foundation

extension SoTMode {
    /// The next mode in the chat's hotkey cycle: off -> on -> auto -> off.
    public var next: SoTMode {
        switch self {
        case .off: return .on
        case .on: return .auto
        case .auto: return .off
        }
    }
}

/// What a chat backend offers Skeleton-of-Thought: the model behind the `SoTLanguageModel`
/// protocol, an optional router for `auto`, and token counts for the same-length estimate.
public protocol ChatSoTSupport: AnyObject {
    var sotModel: SoTLanguageModel { get }
    /// Asks the router whether `question` suits SoT; nil when no router is available (then
    /// `routerUnavailableReason` says why, and `auto` decodes normally).
    func route(question: String) throws -> SoTRouteDecision?
    /// Why the router is missing (e.g. trained on another model file), for the status line.
    var routerUnavailableReason: String? { get }
    /// Tokens of `text` as the answer would hold them.
    func tokenCount(_ text: String) -> Int
    /// Prompt tokens of a one-question chat turn (what normal decoding would prefill).
    func promptTokenCount(question: String) -> Int
    /// Makes every running completion stop between tokens once `flag` is raised.
    func watch(_ flag: CancellationFlag)
    /// This machine's measured r(B) = t_B / t_1 (index B-1) for the current weights, measured
    /// on first use (a few seconds, once per weights); nil when unknown. The points of a SoT
    /// answer run in waves of the batch size these make fastest.
    func stepRatios() -> [Double]?
}

extension ChatSoTSupport {
    public func stepRatios() -> [Double]? { nil }
}

/// A SoT answer as the chat pane draws it while it grows: the skeleton first, then every
/// point's expansion in place. `text` is exactly the answer stored in the conversation once
/// the batch is done (`i. point:` + expansion per line), plus live markers while streaming.
public struct SoTAnswerView: Sendable, Equatable {
    public var skeleton = ""
    public var points: [SkeletonPoint] = []
    public var expansions: [String] = []
    public var fallbackReason: String?
    /// Normal-decoding text after a fallback.
    public var fallbackText = ""

    public init() {}

    /// Folds one of the runner's live events into the view (stage changes draw nothing).
    public mutating func apply(_ event: SoTRunner.Event) {
        switch event {
        case .stage: break
        case .skeletonText(let t): skeleton += t
        case .skeleton(let p):
            points = p
            expansions = Array(repeating: "", count: p.count)
        case .pointText(let slot, let delta):
            if expansions.indices.contains(slot) { expansions[slot] += delta }
        case .fellBack(let reason): fallbackReason = reason
        case .fallbackText(let t): fallbackText += t
        case .waves: break
        }
    }

    /// The answer so far; `live` appends a growing marker to every point still in the batch.
    public func text(live: Bool) -> String {
        if fallbackReason != nil { return fallbackText }
        if points.isEmpty {
            // Skeleton stage: the numbered list as it is written.
            return skeleton
        }
        return zip(points, expansions).map { point, expansion in
            SoTPrompts.expansionPrefill(point) + expansion + (live ? " ▍" : "")
        }.joined(separator: "\n")
    }

    public var isSkeletonStage: Bool { points.isEmpty && fallbackReason == nil }
}

/// Where a SoT turn stands, for the status line (part of `ChatSnapshot`, newest wins): its
/// stage, the router's word, and the turn's record as measured so far (the same value the
/// transcript saves when the turn ends, so the status row and the file cannot disagree).
public struct SoTStatus: Sendable, Equatable {
    public enum Stage: String, Sendable, Equatable {
        case routing, calibrating, skeleton, expanding, fallback, normal, done, stopped
    }
    public var stage: Stage
    /// The router's decision and why, auto mode only, as the status row says it.
    public var router: String?
    /// Streams, stage times, r(B), the normal-decoding estimate, a fallback's reason: nil
    /// (or 0 streams) until measured.
    public var measured = SoTTurnRecord(mode: "", router: nil, usedSoT: false)

    public init(stage: Stage) { self.stage = stage }
}

/// What a transcript records of a turn answered in SoT mode.
public struct SoTTurnRecord: Codable, Hashable, Sendable {
    public struct Point: Codable, Hashable, Sendable {
        public var index: Int
        public var text: String
        public var expansion: String
        public var tokens: Int
        public init(index: Int, text: String, expansion: String, tokens: Int) {
            self.index = index; self.text = text; self.expansion = expansion; self.tokens = tokens
        }
    }

    /// "on" or "auto".
    public var mode: String
    public var router: SoTRouteDecision?
    /// False when the router chose normal decoding.
    public var usedSoT: Bool
    public var skeleton: String?
    public var points: [Point] = []
    public var fallbackReason: String?
    /// B: streams in the expansion batch.
    public var streams = 0
    /// Streams per wave when the measured r(B) made waves faster than one batch of all.
    public var waveSize: Int?
    public var batchSteps = 0
    public var sharedPrefixTokens = 0
    /// Stage and turn times; nil until measured (a live status) or when the stage never ran.
    public var skeletonSeconds: Double?
    public var expansionSeconds: Double?
    public var totalSeconds: Double?
    public var stepRatio: Double?
    public var singleStepMs: Double?
    public var normalEstimateSeconds: Double?
    public var answerTokens = 0
    public var leakedPoints: [Int] = []

    public init(mode: String, router: SoTRouteDecision?, usedSoT: Bool) {
        self.mode = mode; self.router = router; self.usedSoT = usedSoT
    }

    enum CodingKeys: String, CodingKey {
        case mode, router, usedSoT = "used_sot", skeleton, points, fallbackReason = "fallback_reason"
        case streams, waveSize = "wave_size", batchSteps = "batch_steps", sharedPrefixTokens = "shared_prefix_tokens"
        case skeletonSeconds = "skeleton_s", expansionSeconds = "expansion_s", totalSeconds = "total_s"
        case stepRatio = "step_ratio", singleStepMs = "single_step_ms"
        case normalEstimateSeconds = "normal_estimate_s", answerTokens = "answer_tokens"
        case leakedPoints = "leaked_points"
    }
}
