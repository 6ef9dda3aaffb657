import EffCore
import EffLLM
import EffTechniques
import Foundation

/// The real chat backend: SmolLM2 (or any Llama GGUF) with its tokenizer and chat template,
/// one per-sequence state whose KV cache persists across turns.
///
/// Each turn renders the whole conversation with the template, keeps the longest prefix of
/// tokens already in the cache (rewinding the rest) and prefills only what is new, so a turn
/// costs its own tokens, not the whole history. Attention statistics are collected during
/// decode steps only (not prefill) through the model state's `AttentionObserver`.
public final class LlamaChatBackend: ChatBackend, @unchecked Sendable {
    public private(set) var info: ModelInfo
    /// Where the weights come from now (`setWeights`).
    public private(set) var weights: WeightChoice
    /// The file's own tensors: every requantization starts from them, and switching back
    /// to the file reinstalls them.
    private let fileWeights: LlamaWeights
    /// Builds a named plan's weights from the file's (`effterm quant plan` files), with the
    /// plan's measured quality when known; nil: this chat has no plans.
    public var planBuilder: ((String, LlamaWeights, @escaping (Int, Int) -> Void) throws -> (LlamaWeights, String?))?

    /// Attaches a sensitivity scan of this model file (the bits panel draws it).
    public func setSensitivity(_ s: [String: [SensitivityPoint]]) { info.sensitivity = s }
    /// Attention statistics of the last answer, normal or Skeleton-of-Thought (its skeleton
    /// and batched point steps feed the same collector).
    public var lastAttention: AttentionSummary? {
        attentionSampleEvery > 0 ? collector.summary() : nil
    }
    let model: LlamaModel
    /// The model's shape (what attention plans are checked against).
    public var config: LlamaConfig { model.config }
    public let tokenizer: Tokenizer
    let template: ChatTemplate
    let stopTokens: Set<Int32>
    let state: LlamaState
    /// Tokens fed to the cache since the last reset, in order. Without eviction they are
    /// the cache's positions (count == state.position); after evictions the cache holds
    /// only some of them (count == state.position + state.evictedCount).
    private var cached: [Int32] = []
    /// The attention configuration in force (`setAttention`).
    public private(set) var attention: AttentionSpec = .dense
    private let collector: AttentionStatsCollector
    /// Every how many decode steps attention probabilities are observed (1 = all, 0 = never).
    public var attentionSampleEvery: Int
    /// Skeleton-of-Thought over the same weights, built on first use.
    public var sot: ChatSoTSupport? { sotSupport }
    private lazy var sotSupport: LlamaChatSoT = {
        LlamaChatSoT(model: model, tokenizer: tokenizer, template: template, stopTokens: stopTokens,
                            collector: collector, attentionSampleEvery: attentionSampleEvery)
    }()

    /// Loads `modelURL`; `sha256` is the file's digest when the caller already verified it.
    public init(modelURL: URL, sha256: String? = nil, name: String? = nil, maxContext: Int? = nil,
                attentionSampleEvery: Int = 8, kvFormat: KVFormat = .f32) throws {
        self.attentionSampleEvery = max(0, attentionSampleEvery)
        let gguf = try GGUFFile(path: modelURL.path)
        model = try LlamaModel(gguf: gguf)
        model.kvFormat = kvFormat
        tokenizer = try Tokenizer(gguf: gguf)
        template = ChatTemplate.fromModel(gguf).template
        stopTokens = tokenizer.endOfTurnTokens
        let c = model.config
        let context = min(c.seqLen, maxContext ?? c.seqLen)
        state = model.makeState(maxContext: context, maxBatch: 64)
        collector = AttentionStatsCollector(nLayers: c.nLayers, nHeads: c.nHeads)
        let w = model.weights
        fileWeights = w
        weights = .file(Self.mainFormat(w))
        let tensors = Self.shownTensors(w)
        let digest = try sha256 ?? ModelStore.sha256(of: modelURL)
        let name = name ?? (try? gguf.string("general.name")) ?? modelURL.deletingPathExtension().lastPathComponent
        info = ModelInfo(name: name, sha256: digest, templateHash: template.sourceHash, contextMax: context,
                         nLayers: c.nLayers, nHeads: c.nHeads, weightBytes: w.totalBytes, tensors: tensors)
    }

    /// The tensors the bits panel shows (a tied output head is the embedding's twin).
    static func shownTensors(_ w: LlamaWeights) -> [TensorSummary] {
        w.summary.filter { !(w.tiedOutput && $0.role == .output) }
    }

    /// The format holding most of the linear tensors' bytes ("Q4_1" for SmolLM2's file).
    static func mainFormat(_ w: LlamaWeights) -> String {
        let roles = Set(LlamaWeights.linearRoles)
        var bytes: [String: Int] = [:]
        for t in w.summary where roles.contains(t.role) { bytes[t.format, default: 0] += t.bytes }
        return bytes.max { $0.value < $1.value }?.key ?? "file"
    }

    /// Builds `choice` from the file's tensors, installs it, and recomputes the cached
    /// conversation with it (between turns only). After evictions the kept positions cannot
    /// be recomputed (their tokens' earlier context is gone): the cache is emptied instead
    /// and the next turn streams the conversation through the policy again.
    public func setWeights(_ choice: WeightChoice, progress: @escaping (Int, Int) -> Void) throws -> WeightChange {
        let from = weights, before = model.weights.totalBytes
        let t0 = MonotonicClock.seconds()
        let w: LlamaWeights
        var quality: String?
        switch choice {
        case .file:
            w = fileWeights
        case .uniform(let text):
            let spec: WeightSpec
            do { spec = try WeightSpec(parsing: text) } catch {
                throw ChatBackendError.unknownWeights(choice.description, "\(error)")
            }
            w = spec.isFile ? fileWeights : try fileWeights.requantized(spec, progress: progress)
        case .plan(let name):
            guard let planBuilder else {
                throw ChatBackendError.unknownWeights(choice.description, "this chat has no weight plans")
            }
            (w, quality) = try planBuilder(name, fileWeights, progress)
        }
        let build = w === fileWeights ? 0 : MonotonicClock.seconds() - t0
        try model.replaceWeights(w)
        weights = choice.isFile ? .file(Self.mainFormat(w)) : choice
        info.tensors = Self.shownTensors(w)
        info.weightBytes = w.totalBytes
        info.weightsQuality = quality
        var positions = 0, seconds = 0.0
        if state.evictedCount > 0 {
            reset()
        } else if !cached.isEmpty {
            let tokens = cached
            _ = state.rewind(to: 0)
            let t1 = MonotonicClock.seconds()
            do { try model.forward(tokens, state: state, logits: .none) } catch {
                reset()
                throw error
            }
            positions = tokens.count
            seconds = MonotonicClock.seconds() - t1
        }
        return WeightChange(from: from, to: weights, bytesBefore: before, bytesAfter: w.totalBytes,
                            buildSeconds: build, positions: positions, prefillSeconds: seconds)
    }

    func render(_ messages: [TurnMessage], generationPrompt: Bool) throws -> [Int32] {
        let text = try template.render(messages.map { ChatMessage(role: $0.role, content: $0.content) },
                                       addGenerationPrompt: generationPrompt,
                                       bosToken: tokenizer.tokenText(tokenizer.bosID),
                                       eosToken: tokenizer.tokenText(tokenizer.eosID))
        return tokenizer.encode(text, parseSpecial: true)
    }

    /// Rewinds the cache to the longest prefix it shares with `ids`, leaving at least one
    /// token of `ids` to process; returns the tokens still to run.
    func reuse(_ ids: [Int32]) throws -> ArraySlice<Int32> {
        if state.evictedCount > 0 {
            // Evicted tokens cannot be rewound into: keep the common prefix when it ends
            // after the evicted stretch (fed token i sits at position i - evicted there),
            // else start over and stream the whole conversation through the policy.
            let p = min(cached.commonPrefixLength(with: ids), ids.count - 1)
            if let start = state.evictionStart, p >= start + state.evictedCount, p > state.evictedCount,
               state.rewind(to: p - state.evictedCount) {
                cached.removeSubrange(p...)
                return ids[p...]
            }
            reset()
        }
        guard state.evictionPolicy != nil || ids.count <= state.cache.maxLength else {
            throw ChatBackendError.contextFull(tokens: ids.count, context: state.cache.maxLength)
        }
        let p = max(0, min(cached.commonPrefixLength(with: ids), ids.count - 1))
        if p < cached.count {
            guard state.rewind(to: p) else { throw ChatBackendError.rewindFailed(position: p) }
            cached.removeSubrange(p...)
        }
        return ids[p...]
    }

    /// The tokens of `messages` rendered with the chat template, ending in the generation
    /// prompt (what `generate` feeds the model).
    public func promptTokens(for messages: [TurnMessage]) throws -> [Int32] {
        try render(messages, generationPrompt: true)
    }

    /// `text` as tokens, as is (no template); control tokens in it are recognized.
    public func promptTokens(raw text: String) -> [Int32] { tokenizer.encode(text, parseSpecial: true) }

    /// What one completion produced.
    public struct Completion: Sendable {
        /// Sampled tokens (a stop token that ended the answer is not included).
        public var generated: [Int32]
        public var timings: GenerationTimings
        public var stopReason: StopReason
        /// The turn's statistics, as the chat shows and records them.
        public var stats: TurnStats
    }

    /// Brings the cache up to `ids` (keeping the prefix it already holds) and samples an
    /// answer with `settings`, calling `onText` with each complete UTF-8 piece; checks
    /// `cancel` between tokens. The chat's turns and `effterm run` both come through here.
    public func complete(_ ids: [Int32], settings: GenerationSettings, cancel: CancellationFlag,
                         onText: (String) -> Void) throws -> Completion {
        let fresh = try reuse(ids)
        // Under eviction the stream never runs out of room.
        let room = state.evictionPolicy == nil ? state.cache.maxLength - ids.count : Int.max
        let sampler = Sampler(config: settings.sampler, vocabSize: model.config.vocabSize)
        let generator = TokenGenerator(model: model, state: state, sampler: sampler, prompt: Array(fresh),
                                       maxTokens: max(1, min(settings.maxTokens, room)), stopTokens: stopTokens,
                                       shouldCancel: { cancel.isCancelled })
        collector.reset()
        defer { state.attentionObserver = nil }
        var detok = StreamingDetokenizer(tokenizer: tokenizer)
        var produced = 0
        for id in generator {
            // Observe decode steps only (the first token came from the prompt's prefill), and
            // only every `attentionSampleEvery`-th: an observed step also computes every
            // head's probabilities (the fast kernel never materializes them); the output is
            // the same either way.
            produced += 1
            let observe = attentionSampleEvery > 0 && (produced - 1) % attentionSampleEvery == 0
            state.attentionObserver = observe ? collector : nil
            let piece = detok.append(id)
            if !piece.isEmpty { onText(piece) }
        }
        let tail = detok.flush()
        if !tail.isEmpty { onText(tail) }
        cached = Array(cached + fresh + generator.generated)
        let fed = state.position + state.evictedCount
        if cached.count > fed { cached.removeSubrange(fed...) }
        if let error = generator.error { throw error }
        let t = generator.timings
        var stats = TurnStats()
        stats.promptTokens = t.promptTokens
        stats.prefillSeconds = t.prefillMs / 1000
        stats.generatedTokens = generator.generated.count
        stats.decodeSteps = t.decodeSteps
        stats.decodeSeconds = t.decodeMs / 1000
        stats.contextUsed = state.position
        switch generator.stopReason ?? .endOfTurn {
        case .maxTokens: stats.stopReason = room <= settings.maxTokens ? .contextFull : .maxTokens
        case let reason: stats.stopReason = reason
        }
        return Completion(generated: generator.generated, timings: t, stopReason: stats.stopReason, stats: stats)
    }

    public func generate(messages: [TurnMessage], settings: GenerationSettings, cancel: CancellationFlag,
                         onText: (String) -> Void) throws -> TurnStats {
        try complete(render(messages, generationPrompt: true), settings: settings, cancel: cancel, onText: onText).stats
    }

    public func prime(messages: [TurnMessage]) throws -> TurnStats {
        let ids = try render(messages, generationPrompt: false)
        var stats = TurnStats()
        guard ids.count > 1 else { return stats }
        let fresh = try reuse(ids)
        let t0 = DispatchTime.now().uptimeNanoseconds
        try model.forward(Array(fresh), state: state, logits: .none)
        cached += fresh
        stats.promptTokens = fresh.count
        stats.prefillSeconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        stats.contextUsed = state.position
        return stats
    }

    public func reset() {
        _ = state.rewind(to: 0)
        cached.removeAll()
        collector.reset()
    }

    public var kvBytesInUse: Int { state.cache.ownBytesInUse }
    public var evictedTokens: Int { state.evictedCount }

    /// Installs `spec` on the conversation's state (between turns). An evicting policy trims
    /// the cache at the next token; tokens already evicted stay gone whatever comes next.
    public func setAttention(_ spec: AttentionSpec) throws -> AttentionChange {
        let change = AttentionChange(from: attention, to: spec, positions: state.position, evicted: state.evictedCount)
        spec.apply(to: state)
        attention = spec
        if case let .moa(plan) = spec { measuredPlan = plan }
        updateKeepPlan()
        return change
    }

    /// The MoA plan whose kept attention mass answers measure: the last plan installed, or
    /// the one the app seeded (`setMeasuredPlan`). It stays after switching back to dense,
    /// so dense answers report what the plan would keep of the reference attention.
    public private(set) var measuredPlan: MoAPlan?

    /// Seeds (or clears) the plan to measure, e.g. with the first saved plan (between turns).
    public func setMeasuredPlan(_ plan: MoAPlan?) {
        measuredPlan = plan
        updateKeepPlan()
    }

    /// Kept mass is measured under dense attention only: under the plan itself the
    /// probabilities outside its spans are 0 (kept mass trivially 1), and under another mask
    /// they are not the reference's.
    private func updateKeepPlan() {
        let plan = attention == .dense ? measuredPlan : nil
        if collector.keepPlan != plan { collector.keepPlan = plan }
    }
    public var contextUsed: Int { state.position }
    public var kvFormat: KVFormat { state.kvFormat }

    /// Re-encodes the cached conversation in `format` in one call (no re-prefill); later
    /// states (SoT prompts, a new session) take the model's format, which follows.
    public func setKVFormat(_ format: KVFormat) throws -> KVFormatChange {
        let from = state.kvFormat, before = kvBytesInUse
        let seconds = state.convertKV(to: format)
        model.kvFormat = format
        return KVFormatChange(from: from, to: format, positions: state.position, seconds: seconds,
                              bytesBefore: before, bytesAfter: kvBytesInUse, reprefilled: false)
    }
}

/// Why a turn could not run.
public enum ChatBackendError: Error, CustomStringConvertible {
    case contextFull(tokens: Int, context: Int)
    case rewindFailed(position: Int)
    case attentionUnsupported(String)
    case weightsUnsupported(String)
    case unknownWeights(String, String)

    public var description: String {
        switch self {
        case .contextFull(let n, let c):
            return "the conversation has \(n) tokens but the context holds \(c); start a new session (Ctrl-N)"
        case .rewindFailed(let p): return "the KV cache cannot rewind to position \(p)"
        case .attentionUnsupported(let a): return "this backend runs dense attention only (asked for \(a))"
        case .weightsUnsupported(let w): return "this backend cannot change its weights (asked for \(w))"
        case .unknownWeights(let w, let why): return "weights \(w): \(why)"
        }
    }
}

