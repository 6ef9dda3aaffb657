import Testing
@testable import EffLLM

@Suite struct GenerationTests {
    static let prompt: [Int32] = [1, 5, 9, 14, 2, 7]

    /// The reference loop: prefill, then argmax / single step, by hand.
    static func manualGreedy(_ model: LlamaModel, _ n: Int) throws -> [Int32] {
        let s = model.makeState()
        try model.forward(prompt, state: s)
        var out: [Int32] = []
        for _ in 0..<n {
            let t = Int32(LogitMath.argmax(s.logits, model.config.vocabSize))
            out.append(t)
            try model.forward([t], state: s)
        }
        return out
    }

    @Test func greedyGenerationMatchesManualLoopAndStopsAtMaxTokens() throws {
        let t = try LlamaTestModel(config: LlamaTestModel.smallConfig())
        let gen = TokenGenerator(model: t.model, state: t.model.makeState(),
                                 sampler: Sampler(config: .greedy, vocabSize: 96), prompt: Self.prompt,
                                 maxTokens: 12, stopTokens: [])
        let tokens = Array(gen)
        #expect(tokens == (try Self.manualGreedy(t.model, 12)))
        #expect(gen.stopReason == .maxTokens)
        #expect(gen.timings.promptTokens == Self.prompt.count && gen.timings.decodeSteps == 11)
        #expect(gen.timings.prefillMs > 0 && gen.timings.stepMs.count == 11)
    }

    @Test func stopTokenEndsGenerationWithoutBeingYielded() throws {
        let t = try LlamaTestModel(config: LlamaTestModel.smallConfig())
        let greedy = try Self.manualGreedy(t.model, 12)
        let stop = greedy[4]
        let firstStop = greedy.firstIndex(of: stop)!
        let gen = TokenGenerator(model: t.model, state: t.model.makeState(),
                                 sampler: Sampler(config: .greedy, vocabSize: 96), prompt: Self.prompt,
                                 maxTokens: 12, stopTokens: [stop])
        #expect(Array(gen) == Array(greedy[..<firstStop]))
        #expect(gen.stopReason == .endOfTurn)
    }

    @Test func cancellationIsCheckedBetweenTokens() throws {
        let t = try LlamaTestModel(config: LlamaTestModel.smallConfig())
        var count = 0
        let gen = TokenGenerator(model: t.model, state: t.model.makeState(),
                                 sampler: Sampler(config: .greedy, vocabSize: 96), prompt: Self.prompt,
                                 maxTokens: 50, stopTokens: [], shouldCancel: { count >= 3 })
        for _ in gen { count += 1 }
        #expect(count == 3 && gen.stopReason == .cancelled)
    }

    @Test func contextFullEndsGeneration() throws {
        let t = try LlamaTestModel(config: LlamaTestModel.smallConfig())
        let gen = TokenGenerator(model: t.model, state: t.model.makeState(maxContext: 9),
                                 sampler: Sampler(config: .greedy, vocabSize: 96), prompt: Self.prompt,
                                 maxTokens: 50, stopTokens: [])
        // 6 prompt positions + 3 decoded positions fill 9; the 4th sampled token is yielded
        // but cannot be decoded further.
        #expect(Array(gen).count == 4)
        #expect(gen.stopReason == .contextFull)
    }

    @Test func seededSamplingGenerationIsReproducible() throws {
        let t = try LlamaTestModel(config: LlamaTestModel.smallConfig())
        let config = SamplerConfig(temperature: 1.0, topK: 20, topP: 0.95, minP: 0.01, repeatPenalty: 1.1, seed: 77)
        func run() -> [Int32] {
            Array(TokenGenerator(model: t.model, state: t.model.makeState(), sampler: Sampler(config: config, vocabSize: 96),
                                 prompt: Self.prompt, maxTokens: 20, stopTokens: []))
        }
        #expect(run() == run())
    }
}
