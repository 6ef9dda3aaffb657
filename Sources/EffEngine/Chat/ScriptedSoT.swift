import EffTechniques
import Foundation

/// A scripted Skeleton-of-Thought model for tests of the engine and the UI without a model:
/// the skeleton comes from a script, every point streams the same few words, one word per
/// stream per step with an optional delay, so the points visibly grow together.
public final class ScriptedSoTSupport: ChatSoTSupport, @unchecked Sendable {
    /// The skeleton answer after the `1.` prefill, e.g. " Sleep well\n2. Eat well\n".
    public var skeleton: String
    /// Words every point's expansion streams (each stream prefixes its point index).
    public var expansionWords: [String]
    public var delayPerStep: TimeInterval
    /// The router's answer in `auto`; nil means no router (with `routerUnavailableReason`).
    public var routerDecision: SoTRouteDecision?
    public var routerUnavailableReason: String? { routerDecision == nil ? "no router in this script" : nil }
    public private(set) var routedQuestions: [String] = []
    private var flag: CancellationFlag?
    private lazy var model = Model(owner: self)

    public init(skeleton: String, expansionWords: [String], delayPerStep: TimeInterval = 0,
                routerDecision: SoTRouteDecision? = nil) {
        self.skeleton = skeleton
        self.expansionWords = expansionWords
        self.delayPerStep = delayPerStep
        self.routerDecision = routerDecision
    }

    public var sotModel: SoTLanguageModel { model }

    public func route(question: String) throws -> SoTRouteDecision? {
        routedQuestions.append(question)
        return routerDecision
    }

    public func tokenCount(_ text: String) -> Int { text.split(whereSeparator: \.isWhitespace).count }
    public func promptTokenCount(question: String) -> Int { tokenCount(question) + 10 }
    public func watch(_ flag: CancellationFlag) { self.flag = flag }

    var cancelled: Bool { flag?.isCancelled ?? false }

    private final class Model: SoTLanguageModel {
        unowned let owner: ScriptedSoTSupport
        init(owner: ScriptedSoTSupport) { self.owner = owner }

        func complete(_ request: SoTRequest, maxTokens: Int, shouldStop: (String) -> Bool,
                      onText: (String) -> Void) throws -> SoTCompletion {
            let full = request.prefill == SoTPrompts.skeletonPrefill ? owner.skeleton : "A plain answer to the question."
            var text = ""
            var n = 0
            let t0 = Date()
            for piece in full.split(separator: " ", omittingEmptySubsequences: false).enumerated()
                .map({ $0.offset == 0 ? String($0.element) : " " + $0.element }) {
                if n == maxTokens || shouldStop(text) || owner.cancelled { break }
                if owner.delayPerStep > 0 { Thread.sleep(forTimeInterval: owner.delayPerStep) }
                text += piece; n += 1
                onText(piece)
            }
            return SoTCompletion(text: text, promptTokens: request.user.count / 4, generatedTokens: n,
                                 prefillSeconds: 0.001, decodeSeconds: Date().timeIntervalSince(t0))
        }

        func completeBatch(_ requests: [SoTRequest], maxTokens: Int, stopAtLineBreak: Bool,
                           onText: (Int, String) -> Void) throws -> SoTBatchCompletion {
            var texts = [String](repeating: "", count: requests.count)
            var steps = 0
            let t0 = Date()
            for word in owner.expansionWords.prefix(maxTokens) {
                if owner.cancelled { break }
                if owner.delayPerStep > 0 { Thread.sleep(forTimeInterval: owner.delayPerStep) }
                for i in requests.indices {
                    let piece = " " + word
                    texts[i] += piece
                    onText(i, piece)
                }
                steps += 1
            }
            let completions = texts.enumerated().map { i, t in
                SoTCompletion(text: t, promptTokens: requests[i].user.count / 4, generatedTokens: steps,
                              prefillSeconds: 0, decodeSeconds: 0)
            }
            return SoTBatchCompletion(completions: completions, sharedPrefixTokens: 0, prefillSeconds: 0.001,
                                      decodeSeconds: Date().timeIntervalSince(t0), steps: steps)
        }
    }
}
