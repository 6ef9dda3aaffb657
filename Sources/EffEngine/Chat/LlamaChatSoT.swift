import EffLLM
import EffTechniques
import Foundation

/// Skeleton-of-Thought for the Llama chat backend: the same weights, its own KV caches
/// (the skeleton and the forked point streams never touch the chat's cache), and the
/// router for `auto`.
final class LlamaChatSoT: ChatSoTSupport {
    let model: LlamaModel
    let tokenizer: Tokenizer
    let template: ChatTemplate
    private let engine: LlamaSoTModel
    private var flag: CancellationFlag?

    /// Collects the SoT turns' attention for the attn panel (the chat backend's collector).
    private let collector: AttentionStatsCollector?

    init(model: LlamaModel, tokenizer: Tokenizer, template: ChatTemplate, stopTokens: Set<Int32>,
         collector: AttentionStatsCollector? = nil, attentionSampleEvery: Int = 8) {
        self.collector = collector
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        engine = LlamaSoTModel(model: model, tokenizer: tokenizer, template: template, stopTokens: stopTokens)
        engine.isCancelled = { [weak self] in self?.flag?.isCancelled ?? false }
        engine.attentionObserver = attentionSampleEvery > 0 ? collector : nil
        engine.attentionSampleEvery = attentionSampleEvery
    }

    var sotModel: SoTLanguageModel { engine }

    /// The hidden-state router with its bundled weights, loaded on first use; nil with a
    /// reason when they cannot be used with this model file.
    private lazy var router: Result<HiddenStateRouter, Error> = Result {
        try HiddenStateRouter.bundled(model: model, tokenizer: tokenizer, template: template)
    }

    func route(question: String) throws -> SoTRouteDecision? {
        guard case .success(let router) = router else { return nil }
        return try router.route(question: question)
    }

    var routerUnavailableReason: String? {
        if case .failure(let error) = router { return "router unavailable: \(error)" }
        return nil
    }

    func tokenCount(_ text: String) -> Int { tokenizer.encode(text, parseSpecial: false).count }

    func promptTokenCount(question: String) -> Int {
        (try? engine.promptTokens(SoTRequest(user: question, prefill: "")).count) ?? tokenCount(question)
    }

    /// r(B) measured for these weights (keyed by `LlamaModel.weightsGeneration`).
    private var measuredRatios: (generation: Int, ratios: [Double]?)?

    /// Measures r(B) for B = 1...10 once per weights: 6 batched steps per B over a 144-token
    /// prefix (SoT's shared-prefix depth), one timed run after a warm-up; B = 5, 7 and 9 are
    /// interpolated. About 3 s on a 2-core AVX2 machine.
    func stepRatios() -> [Double]? {
        if let m = measuredRatios, m.generation == model.weightsGeneration { return m.ratios }
        let measured = [1, 2, 3, 4, 6, 8, 10]
        let rows = try? ModelBench(model: model, reps: 1).batched(streams: measured, steps: 6, prompt: 144)
        let ratios = rows.map { rows -> [Double] in
            let at = Dictionary(uniqueKeysWithValues: rows.map { ($0.streams, $0.stepRatio) })
            return (1...10).map { b in
                if let r = at[b] { return r }
                let lo = measured.last { $0 < b }!, hi = measured.first { $0 > b }!
                return at[lo]! + (at[hi]! - at[lo]!) * Double(b - lo) / Double(hi - lo)
            }
        }
        measuredRatios = (model.weightsGeneration, ratios)
        return ratios
    }

    /// Called at the start of every SoT turn: also starts its attention statistics afresh.
    func watch(_ flag: CancellationFlag) {
        self.flag = flag
        collector?.reset()
    }
}
