/// What a Skeleton-of-Thought router decided for one question, and why.
///
/// SoT-R (Ning et al., ICLR'24, §4): before answering, a router judges whether the answer
/// is a list of independent points (SoT helps) or needs step-by-step reasoning, code or
/// coherent prose (SoT hurts); only the first kind runs SoT.
public struct SoTRouteDecision: Sendable, Hashable, Codable {
    /// True: run SoT. False: normal decoding.
    public var useSoT: Bool
    /// The router's probability that the question suits SoT.
    public var score: Double
    /// `useSoT == (score >= threshold)`.
    public var threshold: Double
    /// Short, for a status line: "looks like math (0.81) - normal decoding".
    public var reason: String
    /// Wall-clock cost of routing (forward pass over the question plus the head).
    public var seconds: Double
    /// The router's best guess at the question's category, when it has a category head.
    public var category: String?
    /// That category's probability.
    public var categoryScore: Double?

    public init(useSoT: Bool, score: Double, threshold: Double, reason: String, seconds: Double,
                category: String? = nil, categoryScore: Double? = nil) {
        self.useSoT = useSoT
        self.score = score
        self.threshold = threshold
        self.reason = reason
        self.seconds = seconds
        self.category = category
        self.categoryScore = categoryScore
    }
}

/// Decides, per question, whether Skeleton-of-Thought should answer it.
///
/// Routers hold model state (a forward pass per call), so they are classes and not
/// thread-safe: call one from one thread at a time, like the model it wraps.
public protocol SoTRouting: AnyObject {
    /// Routes one question; throws when the model cannot run (context, cancelled, ...).
    func route(question: String) throws -> SoTRouteDecision
}

/// `effterm sot --mode` and the chat pane's SoT toggle.
public enum SoTMode: String, Sendable, Codable, CaseIterable {
    /// Normal decoding, always.
    case off
    /// Skeleton-of-Thought, always.
    case on
    /// Ask the router per question.
    case auto
}
