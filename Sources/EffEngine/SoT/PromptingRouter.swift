import EffCore
import EffLLM
import EffTechniques
import Foundation

/// SoT-R's prompting router (Ning et al., ICLR'24, §4.1), run on SmolLM2 itself: the
/// question with three options — A: independent points, B: points that build on each
/// other, C: not a list — and the model's next-token logits read at the letters A, B and C
/// only (a constrained one-token answer). `score` is P(A) renormalized over the three
/// letters; only A-like questions run SoT.
///
/// Kept as the baseline the hidden-state router is measured against.
public final class PromptingRouter: SoTRouting {
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public let template: ChatTemplate
    public var threshold: Double
    /// Token ids of "A", "B", "C" as the answer's first token.
    public let letters: [Int32]

    public init(model: LlamaModel, tokenizer: Tokenizer, template: ChatTemplate, threshold: Double = 0.5) throws {
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.threshold = threshold
        letters = try ["A", "B", "C"].map { letter in
            let ids = tokenizer.encode(letter, parseSpecial: false)
            guard ids.count == 1 else {
                throw SoTRouterError.badWeights(source: "PromptingRouter", reason: "\"\(letter)\" is not one token")
            }
            return ids[0]
        }
    }

    /// The router prompt (our own wording of the authors' three options).
    public static func prompt(question: String) -> String {
        """
        Classify how a good answer to the question below is organized.
        A: a list of independent points, each of which can be written on its own (tips, reasons, causes, features, effects).
        B: steps that build on each other (a calculation, an estimate, a derivation, a procedure).
        C: not a list (code, a story, a poem, a letter, a speech, or one short fact).

        Question: \(question)

        Reply with one letter: A, B or C.
        """
    }

    /// P(A), P(B), P(C) renormalized over the three letters.
    public func letterProbabilities(question: String) throws -> [Double] {
        let text = try template.render([ChatMessage(role: "user", content: Self.prompt(question: question))],
                                       addGenerationPrompt: true)
        let tokens = tokenizer.encode(text, parseSpecial: true)
        let state = model.makeState(maxContext: tokens.count, maxBatch: min(256, tokens.count))
        try model.forward(tokens, state: state, logits: .last)
        return RouterMath.softmax(letters.map { Double(state.logits[Int($0)]) })
    }

    public func route(question: String) throws -> SoTRouteDecision {
        let start = DispatchTime.now().uptimeNanoseconds
        let p = try letterProbabilities(question: question)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let use = p[0] >= threshold
        let letter = ["A", "B", "C"][p.indices.max(by: { p[$0] < p[$1] }) ?? 0]
        let reason = String(format: "prompted router says %@ (A %.2f B %.2f C %.2f) - %@", letter, p[0], p[1], p[2],
                            use ? "SoT" : "normal decoding")
        return SoTRouteDecision(useSoT: use, score: p[0], threshold: threshold, reason: reason, seconds: seconds)
    }
}
