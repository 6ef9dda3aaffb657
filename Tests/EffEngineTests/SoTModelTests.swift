import EffCore
import EffLLM
import EffTechniques
import EffTestSupport
import Foundation
import Testing
@testable import EffEngine

/// Skeleton-of-Thought on the real model: prompt-prefix reuse must not change a token, and
/// the chat backend's SoT support answers with several points.
@Suite(.serialized, .enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
struct SoTModelTests {
    static let backend: LlamaChatBackend? = try? LlamaChatBackend(modelURL: TestPaths.model)

    @Test func reusedPromptPrefixesChangeNoToken() throws {
        let backend = try #require(Self.backend)
        let questions = ["What are some tips for staying healthy?", "How can I save money on groceries?"]
        func run(reuse: Bool) throws -> [SoTRunner.Result] {
            let sot = LlamaSoTModel(model: backend.model, tokenizer: backend.tokenizer, template: backend.template,
                                    stopTokens: backend.stopTokens)
            sot.reusesPromptPrefixes = reuse
            var config = SoTRunner.Config()
            config.pointMaxTokens = 24
            return try questions.map { try SoTRunner(config: config).run(question: $0, model: sot) }
        }
        let fresh = try run(reuse: false)
        let cached = try run(reuse: true)
        for (a, b) in zip(fresh, cached) {
            #expect(a.skeletonText == b.skeletonText)
            #expect(a.expansions == b.expansions)
            #expect(b.points.count >= 2)
        }
        // Nothing reused without the cache; with it the second question's skeleton prompt
        // reuses the instructions and both examples (well over 200 tokens).
        #expect(fresh.allSatisfy { $0.skeleton.reusedPromptTokens == 0 && ($0.batch?.reusedPrefixTokens ?? 0) == 0 })
        #expect(cached[1].skeleton.reusedPromptTokens > 200)
        #expect(cached[1].skeleton.reusedPromptTokens < cached[1].skeleton.promptTokens)
        #expect(cached[1].tokensProcessed < fresh[1].tokensProcessed)
    }

    @Test func chatBackendAnswersInPoints() throws {
        let backend = try #require(Self.backend)
        let support = try #require(backend.sot)
        let result = try SoTTurn(support: support).run(
            question: "What are some tips for staying healthy?", mode: .on, router: nil, cancel: CancellationFlag(),
            started: MonotonicClock.seconds(), onEvent: { _ in }, onStatus: { _ in })
        #expect(result.record.streams >= 2)
        #expect(result.answer.hasPrefix("1. "))
        #expect(result.record.stepRatio ?? 0 > 0.5)
        #expect(result.record.normalEstimateSeconds ?? 0 > 0)
        #expect(result.record.answerTokens == support.tokenCount(result.answer))
    }
}
