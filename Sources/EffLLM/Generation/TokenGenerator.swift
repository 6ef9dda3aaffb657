import Foundation

/// Why generation ended: one type for the generator, the chat engine and transcripts (the
/// raw values are what transcripts and `--json` outputs store).
public enum StopReason: String, Sendable, Codable {
    /// A stop token (EOS / `<|im_end|>`) was sampled; it is not yielded.
    case endOfTurn = "eos"
    /// `maxTokens` tokens were generated.
    case maxTokens = "max_tokens"
    /// The cancellation check returned true between tokens (the user stopped it).
    case cancelled = "stopped"
    /// The state's context (KV cache) is full.
    case contextFull = "context_full"
    /// The forward pass threw (see `TokenGenerator.error`).
    case failed = "error"
}

/// Wall-clock measurements of one generation.
public struct GenerationTimings: Sendable, Codable, Equatable {
    public var promptTokens = 0
    /// Prefill of the prompt through the first sampled token, milliseconds.
    public var prefillMs = 0.0
    /// Tokens that went through a single-token decode step.
    public var decodeSteps = 0
    /// Sum of decode step times (forward of the previous token + sampling), milliseconds.
    public var decodeMs = 0.0
    /// Duration of each decode step, milliseconds.
    public var stepMs: [Double] = []

    public init() {}

    public var prefillTokensPerSecond: Double { prefillMs > 0 ? Double(promptTokens) / (prefillMs / 1000) : 0 }
    public var decodeTokensPerSecond: Double { decodeMs > 0 ? Double(decodeSteps) / (decodeMs / 1000) : 0 }
    public var meanStepMs: Double { decodeSteps > 0 ? decodeMs / Double(decodeSteps) : 0 }
}

/// Generation as an iterator of tokens: prefill, then sample / decode one token at a time.
///
/// Synchronous (the caller's thread runs every forward pass). The first `next()` prefills
/// the prompt as one batch and yields the first sampled token; each later `next()` runs
/// the previous token through the model and samples again. Iteration ends on a stop token
/// (not yielded), `maxTokens`, a full context, a thrown error (kept in `error`) or when
/// `shouldCancel` returns true (checked before every step).
public final class TokenGenerator: Sequence, IteratorProtocol {
    public let model: LlamaModel
    public let state: LlamaState
    public let sampler: Sampler
    public let maxTokens: Int
    public let stopTokens: Set<Int32>
    private let prompt: [Int32]
    private let shouldCancel: (() -> Bool)?

    public private(set) var generated: [Int32] = []
    public private(set) var stopReason: StopReason?
    public private(set) var error: Error?
    public private(set) var timings = GenerationTimings()
    private var pending: Int32?
    private var started = false

    /// `prompt` is appended at the state's current position (it may continue a previous
    /// turn); it must not be empty. The sampler sees the prompt as history.
    public init(model: LlamaModel, state: LlamaState, sampler: Sampler, prompt: [Int32], maxTokens: Int,
                stopTokens: Set<Int32>, shouldCancel: (() -> Bool)? = nil) {
        self.model = model
        self.state = state
        self.sampler = sampler
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.stopTokens = stopTokens
        self.shouldCancel = shouldCancel
        let expected = Swift.max(0, Swift.min(maxTokens, state.cache.maxLength))
        generated.reserveCapacity(expected)
        timings.stepMs.reserveCapacity(expected)
    }

    public func next() -> Int32? {
        guard stopReason == nil else { return nil }
        if shouldCancel?() == true { return finish(.cancelled) }
        if generated.count >= maxTokens { return finish(.maxTokens) }
        let t0 = DispatchTime.now().uptimeNanoseconds
        do {
            if !started {
                started = true
                timings.promptTokens = prompt.count
                guard state.evictionPolicy != nil || state.position + prompt.count <= state.cache.maxLength else {
                    return finish(.contextFull)
                }
                try model.forward(prompt, state: state, logits: .last)
                for t in prompt { sampler.accept(t) }
            } else if let last = pending {
                guard state.evictionPolicy != nil || state.position < state.cache.maxLength else { return finish(.contextFull) }
                try model.forward([last], state: state, logits: .last)
            }
        } catch {
            self.error = error
            return finish(.failed)
        }
        let token = sampler.sample(state.logits)
        let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
        if pending == nil && generated.isEmpty {
            timings.prefillMs = ms
        } else {
            timings.decodeSteps += 1
            timings.decodeMs += ms
            timings.stepMs.append(ms)
        }
        if stopTokens.contains(token) { return finish(.endOfTurn) }
        sampler.accept(token)
        generated.append(token)
        pending = token
        return token
    }

    private func finish(_ reason: StopReason) -> Int32? {
        stopReason = reason
        return nil
    }
}
