import EffCore
import EffLLM
import EffTechniques
import Foundation

/// Skeleton-of-Thought's view of the Llama engine: each request becomes a chat prompt
/// (the model's own template, assistant turn forced to begin with the request's prefill),
/// decoded greedily.
///
/// `completeBatch` is SoT's batched point expansion: the requests' longest common token
/// prefix is prefilled once, forked into one KV cache per point without copying it
/// (`LlamaState.fork`), each fork prefills only its own tail, and `BatchDecoder` advances
/// every live stream by one token per step, sharing each weight read. A stream leaves the
/// batch at end of turn or at the cap. This shared-prefix prefill is an efficiency
/// deviation from the authors' left-padded batch; it changes no token.
public final class LlamaSoTModel: SoTLanguageModel {
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public let template: ChatTemplate
    public let stopTokens: Set<Int32>
    /// Checked between tokens; true ends every running completion early.
    public var isCancelled: () -> Bool = { false }
    private let decoder: BatchDecoder
    private let maxStreams: Int
    /// Reuse the keys and values of earlier prompts' common prefixes (see `PromptCache`).
    public var reusesPromptPrefixes = true
    /// Receives the attention probabilities of every `attentionSampleEvery`-th decode step
    /// (the skeleton's and the batched points'; prefills are not observed); nil: none.
    public var attentionObserver: AttentionObserver?
    /// Every how many decode steps the observer sees (1 = all).
    public var attentionSampleEvery = 8
    private var promptCache = PromptCache()

    public init(model: LlamaModel, tokenizer: Tokenizer, template: ChatTemplate,
                stopTokens: Set<Int32>, maxStreams: Int = 10) {
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.stopTokens = stopTokens
        self.maxStreams = maxStreams
        decoder = BatchDecoder(model: model, maxStreams: maxStreams)
    }

    /// The tokens of a request: rendered chat turn, then the forced answer start.
    public func promptTokens(_ request: SoTRequest) throws -> [Int32] {
        let text = try template.render([ChatMessage(role: "user", content: request.user)],
                                       addGenerationPrompt: true)
        return tokenizer.encode(text, parseSpecial: true)
            + tokenizer.encode(request.prefill, parseSpecial: false)
    }

    public func complete(_ request: SoTRequest, maxTokens: Int, shouldStop: (String) -> Bool,
                         onText: (String) -> Void) throws -> SoTCompletion {
        let prompt = try promptTokens(request)
        let vocab = model.config.vocabSize
        let start = MonotonicClock.seconds()
        let (state, reused) = try prefilledState(prompt, upTo: prompt.count, maxContext: prompt.count + maxTokens + 1)
        defer { state.attentionObserver = nil }
        let prefilled = MonotonicClock.seconds()

        var detokenizer = StreamingDetokenizer(tokenizer: tokenizer)
        var text = ""
        var generated = 0
        while generated < maxTokens, !isCancelled() {
            let next = Int32(LogitMath.argmax(state.logits, vocab))
            if stopTokens.contains(next) { break }
            generated += 1
            let piece = detokenizer.append(next)
            if !piece.isEmpty {
                text += piece
                onText(piece)
            }
            if shouldStop(text) || generated == maxTokens { break }
            state.attentionObserver = observes(step: generated - 1) ? attentionObserver : nil
            try model.forward([next], state: state, logits: .last)
        }
        let tail = detokenizer.flush()
        if !tail.isEmpty { text += tail; onText(tail) }
        return SoTCompletion(text: text, promptTokens: prompt.count, generatedTokens: generated,
                             prefillSeconds: prefilled - start, decodeSeconds: MonotonicClock.seconds() - prefilled,
                             reusedPromptTokens: reused)
    }

    /// A state holding `prompt[..<length]` with logits of its last token, reusing the cached
    /// prompt that shares the longest prefix: when that covers at least half the prompt the
    /// state forks it (nothing copied); otherwise the shared positions are copied into a new
    /// state that becomes a cache root itself, so forks never chain. Only the rest is
    /// prefilled. Returns the state and the tokens reused.
    private func prefilledState(_ prompt: [Int32], upTo length: Int, maxContext: Int) throws -> (LlamaState, Int) {
        let tokens = Array(prompt[..<length])
        let match = reusesPromptPrefixes ? promptCache.longestMatch(tokens, format: model.kvFormat, weights: model.weightsGeneration) : nil
        if let (root, shared) = match, shared * 2 >= length {
            let state = root.fork(at: shared, maxContext: maxContext, maxBatch: min(256, max(1, length - shared)))
            try model.forward(Array(tokens[shared...]), state: state, logits: .last)
            return (state, shared)
        }
        let state = model.makeState(maxContext: maxContext, maxBatch: min(256, max(1, length)))
        var reused = 0
        if let (root, shared) = match, state.cache.copyPositions(from: root.cache, length: shared) {
            reused = shared
        }
        try model.forward(Array(tokens[reused...]), state: state, logits: .last)
        if reusesPromptPrefixes { promptCache.insert(tokens, state, weights: model.weightsGeneration) }
        return (state, reused)
    }

    public func completeBatch(_ requests: [SoTRequest], maxTokens: Int, stopAtLineBreak: Bool,
                              onText: (Int, String) -> Void) throws -> SoTBatchCompletion {
        precondition(requests.count <= maxStreams, "more SoT points than the decoder's streams")
        let prompts = try requests.map(promptTokens)
        let vocab = model.config.vocabSize
        // Every stream needs at least one token of its own to produce its first logits.
        let shared = min(Self.commonPrefixLength(prompts), (prompts.map(\.count).min() ?? 1) - 1)

        let start = MonotonicClock.seconds()
        var reused = 0
        var base = model.makeState(maxContext: 1, maxBatch: 1)
        if shared > 0 { (base, reused) = try prefilledState(prompts[0], upTo: shared, maxContext: shared) }
        var states: [LlamaState] = []
        var next = [Int32](repeating: 0, count: prompts.count)
        for (i, prompt) in prompts.enumerated() {
            let own = prompt.count - shared
            let state = shared > 0
                ? base.fork(at: shared, maxContext: prompt.count + maxTokens + 1, maxBatch: min(256, own))
                : model.makeState(maxContext: prompt.count + maxTokens + 1, maxBatch: min(256, own))
            try model.forward(Array(prompt[shared...]), state: state, logits: .last)
            next[i] = Int32(LogitMath.argmax(state.logits, vocab))
            states.append(state)
        }
        let prefilled = MonotonicClock.seconds()

        var detokenizers = prompts.map { _ in StreamingDetokenizer(tokenizer: tokenizer) }
        var texts = [String](repeating: "", count: prompts.count)
        var counts = [Int](repeating: 0, count: prompts.count)
        var active = Array(prompts.indices)
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: prompts.count * vocab)
        defer { logits.deallocate() }
        var steps = 0
        var cut = Set<Int>()  // streams that ended at a line break
        while !active.isEmpty, !isCancelled() {
            // Take each live stream's pending token; streams that end leave the batch.
            active = active.filter { i in
                if stopTokens.contains(next[i]) { return false }
                counts[i] += 1
                var piece = detokenizers[i].append(next[i])
                if stopAtLineBreak, let head = Self.lineBreakCut(text: texts[i], piece: piece) {
                    piece = head
                    if !piece.isEmpty { texts[i] += piece; onText(i, piece) }
                    cut.insert(i)
                    return false
                }
                if !piece.isEmpty { texts[i] += piece; onText(i, piece) }
                return counts[i] < maxTokens
            }
            guard !active.isEmpty else { break }
            let observer = observes(step: steps) ? attentionObserver : nil
            for i in active { states[i].attentionObserver = observer }
            try decoder.step(tokens: active.map { next[$0] }, states: active.map { states[$0] },
                             logits: logits)
            steps += 1
            for (row, i) in active.enumerated() {
                next[i] = Int32(LogitMath.argmax(logits + row * vocab, vocab))
            }
        }
        for i in prompts.indices where !cut.contains(i) {
            let tail = detokenizers[i].flush()
            if !tail.isEmpty { texts[i] += tail; onText(i, tail) }
        }
        let end = MonotonicClock.seconds()
        let completions = prompts.indices.map { i in
            SoTCompletion(text: texts[i], promptTokens: prompts[i].count, generatedTokens: counts[i],
                          prefillSeconds: 0, decodeSeconds: 0)
        }
        return SoTBatchCompletion(completions: completions, sharedPrefixTokens: max(0, shared),
                                  prefillSeconds: prefilled - start, decodeSeconds: end - prefilled,
                                  steps: steps, lineBreakStops: cut.count, reusedPrefixTokens: reused)
    }

    private func observes(step: Int) -> Bool {
        attentionObserver != nil && attentionSampleEvery > 0 && step % attentionSampleEvery == 0
    }

    /// When `piece` holds a line break after some text (in `text` or earlier in `piece`),
    /// the part of `piece` before it; nil when the stream goes on.
    static func lineBreakCut(text: String, piece: String) -> String? {
        guard let newline = piece.firstIndex(of: "\n") else { return nil }
        let before = piece[..<newline]
        let hasText = !(text + before).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        return hasText ? String(before) : nil
    }

    /// Length of the longest token prefix all sequences share.
    static func commonPrefixLength(_ sequences: [[Int32]]) -> Int {
        guard let first = sequences.first else { return 0 }
        return sequences.dropFirst().reduce(first.count) { min($0, first.commonPrefixLength(with: $1)) }
    }
}

/// Prompt states kept for reuse. SoT's prompts start with the same text every time (the
/// chat template's system turn, the organizer instructions and both worked examples; the
/// point prompts' instructions), so the keys and values of that common prefix are
/// computed once per session and every later prompt forks them without copying
/// (`LlamaState.fork`), prefilling only its own tail; a short match is copied instead, into
/// a new root. This is prompt caching, as serving engines do; `effterm bench sot
/// --no-prefix-cache` measures without it.
struct PromptCache {
    private var roots: [(tokens: [Int32], state: LlamaState, weights: Int)] = []
    /// Roots kept, most recently used last.
    let capacity = 4
    /// Shorter common prefixes are prefilled again rather than forked.
    let minimumReuse = 8

    /// The root sharing the longest prefix with `tokens` and that length, leaving at least
    /// one token of `tokens` to prefill (its logits are needed). Roots stored in another KV
    /// format than `format`, or computed by other weights than `weights` (the chat switched
    /// its weight plan), are dropped: a fork takes its prefix's format and values.
    mutating func longestMatch(_ tokens: [Int32], format: KVFormat, weights: Int) -> (LlamaState, Int)? {
        roots.removeAll { $0.state.kvFormat != format || $0.weights != weights }
        var best: (index: Int, length: Int)?
        for (i, root) in roots.enumerated() {
            let n = max(0, min(root.tokens.commonPrefixLength(with: tokens), tokens.count - 1))
            if n >= minimumReuse, n > (best?.length ?? 0) { best = (i, n) }
        }
        guard let best else { return nil }
        let root = roots.remove(at: best.index)
        roots.append(root)
        return (root.state, best.length)
    }

    mutating func insert(_ tokens: [Int32], _ state: LlamaState, weights: Int) {
        roots.append((tokens, state, weights))
        if roots.count > capacity { roots.removeFirst() }
    }
}
