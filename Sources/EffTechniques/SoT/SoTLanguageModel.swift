/// One chat turn to complete: the user's message, and the text the assistant's answer is
/// forced to begin with (SoT prefills `1.` and `i. <point>`).
public struct SoTRequest: Sendable, Equatable {
    public var user: String
    public var prefill: String
    public init(user: String, prefill: String) {
        self.user = user
        self.prefill = prefill
    }
}

/// What came back from one completion, with the costs SoT's latency model needs.
public struct SoTCompletion: Sendable, Equatable {
    /// Generated text after the prefill.
    public var text: String
    public var promptTokens: Int
    public var generatedTokens: Int
    public var prefillSeconds: Double
    public var decodeSeconds: Double
    /// Leading prompt tokens whose keys and values were reused from an earlier prompt
    /// (not prefilled by this call).
    public var reusedPromptTokens: Int
    public init(text: String, promptTokens: Int, generatedTokens: Int,
                prefillSeconds: Double, decodeSeconds: Double, reusedPromptTokens: Int = 0) {
        self.text = text
        self.promptTokens = promptTokens
        self.generatedTokens = generatedTokens
        self.prefillSeconds = prefillSeconds
        self.decodeSeconds = decodeSeconds
        self.reusedPromptTokens = reusedPromptTokens
    }
}

/// A batch of completions decoded together over a shared prompt prefix.
public struct SoTBatchCompletion: Sendable, Equatable {
    public var completions: [SoTCompletion]
    /// Tokens of the common prompt prefix, prefilled once and shared by every stream.
    public var sharedPrefixTokens: Int
    /// Prefill of the shared prefix plus every stream's own tail.
    public var prefillSeconds: Double
    /// Batched decode until the last stream left the batch.
    public var decodeSeconds: Double
    /// Batched decode steps taken (the longest stream's length).
    public var steps: Int
    /// Streams that ended at a line break rather than end of turn or the cap.
    public var lineBreakStops: Int = 0
    /// Leading tokens of the shared prefix reused from an earlier prompt (not prefilled).
    public var reusedPrefixTokens: Int = 0
    public init(completions: [SoTCompletion], sharedPrefixTokens: Int, prefillSeconds: Double,
                decodeSeconds: Double, steps: Int, lineBreakStops: Int = 0, reusedPrefixTokens: Int = 0) {
        self.lineBreakStops = lineBreakStops
        self.reusedPrefixTokens = reusedPrefixTokens
        self.completions = completions
        self.sharedPrefixTokens = sharedPrefixTokens
        self.prefillSeconds = prefillSeconds
        self.decodeSeconds = decodeSeconds
        self.steps = steps
    }
}

extension SoTBatchCompletion {
    /// This batch and a later wave as one: completions in order, times and steps added
    /// (the waves ran one after the other), the shared prefix as the first wave's.
    public func followed(by next: SoTBatchCompletion) -> SoTBatchCompletion {
        SoTBatchCompletion(completions: completions + next.completions, sharedPrefixTokens: sharedPrefixTokens,
                           prefillSeconds: prefillSeconds + next.prefillSeconds,
                           decodeSeconds: decodeSeconds + next.decodeSeconds, steps: steps + next.steps,
                           lineBreakStops: lineBreakStops + next.lineBreakStops,
                           reusedPrefixTokens: reusedPrefixTokens + next.reusedPrefixTokens)
    }
}

/// What Skeleton-of-Thought needs from a language model. EffTechniques never sees the
/// Llama engine; EffEngine adapts it to this protocol, and tests script a fake.
///
/// Both calls decode greedily and stop at end of turn or `maxTokens`.
public protocol SoTLanguageModel: AnyObject {
    /// Completes one turn, streaming decoded text to `onText`; stops early once
    /// `shouldStop` returns true for the text generated so far.
    func complete(_ request: SoTRequest, maxTokens: Int, shouldStop: (String) -> Bool,
                  onText: (String) -> Void) throws -> SoTCompletion

    /// Completes several turns as one batch: the prompts' common prefix is computed once,
    /// every stream advances one token per step, and streams leave as they finish: at end
    /// of turn, at `maxTokens`, or (with `stopAtLineBreak`) at the first line break after
    /// some text, which is dropped. `onText(i, delta)` streams request `i`'s text.
    func completeBatch(_ requests: [SoTRequest], maxTokens: Int, stopAtLineBreak: Bool,
                       onText: (Int, String) -> Void) throws -> SoTBatchCompletion
}
