import Foundation

/// The two prompts of Skeleton-of-Thought (Ning et al., ICLR'24, arXiv 2307.15337, §2 and
/// the open-source-model prompts of the authors' repository), rewritten in effterm's own
/// words with the same structure:
///
/// - skeleton: an organizer role that writes only a skeleton, a numbered list of 3-10
///   points of 3-5 words each, two short worked examples (a 135M model needs them), then
///   the question; the assistant turn is prefilled with `1.`;
/// - point expansion: the question, the whole skeleton, and "continue only point i in 1-2
///   short sentences"; the assistant turn is prefilled with `i. <point text>`.
public enum SoTPrompts {
    /// The user message of the skeleton stage for `question`.
    public static func skeleton(question: String) -> String {
        """
        You are an organizer. You do not answer the question. You write only the skeleton of \
        an answer: a numbered list of 3 to 10 short points, each point 3 to 5 words, not a \
        sentence. Use the format "1.", "2.", "3." and stop after the last point.

        Question: What kinds of fruit are good for breakfast?
        Skeleton:
        1. Bananas for energy.
        2. Berries with yogurt.
        3. Apples with oats.
        4. Oranges for vitamin C.

        Question: How can a small town attract more visitors?
        Skeleton:
        1. Host seasonal local festivals.
        2. Promote local food online.
        3. Improve walking trail signs.
        4. Partner with nearby hotels.
        5. Restore the historic centre.

        Now write only the skeleton for this question.
        Question: \(question)
        Skeleton:
        """
    }

    /// The text the skeleton answer is forced to begin with.
    public static let skeletonPrefill = "1."

    /// The user message asking to expand point `index` of `skeleton` for `question`.
    public static func expansion(question: String, skeleton: [SkeletonPoint], index: Int) -> String {
        let outline = skeleton.map { "\($0.index). \($0.text)" }.joined(separator: "\n")
        return """
        You are helping to write an answer in parts. You continue one and only one point of \
        the answer to this question.

        Question: \(question)

        The answer has these points:
        \(outline)

        Continue and only continue point \(index). Write it very shortly in 1 to 2 \
        sentences. Do not continue with other points.
        """
    }

    /// The text point `point`'s expansion is forced to begin with: `i. <point>` as the
    /// authors prefill it, ended with a colon when the point has no closing punctuation.
    /// Measured on SmolLM2-135M: after a bare `1. Improved sleep` the model treats the
    /// item as finished and writes the next list line; the colon asks for the explanation.
    public static func expansionPrefill(_ point: SkeletonPoint) -> String {
        let text = point.text.trimmingCharacters(in: .whitespaces)
        let closed = text.last.map { ".!?:".contains($0) } ?? false
        return "\(point.index). \(closed ? String(text.dropLast()) : text):"
    }
}
