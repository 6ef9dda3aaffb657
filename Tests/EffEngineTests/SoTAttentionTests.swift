import EffCore
import EffLLM
import EffTechniques
import EffTestSupport
import Foundation
import Testing
@testable import EffEngine

/// Model tier: a Skeleton-of-Thought turn in the chat backend feeds the attention panel
/// (its skeleton and batched point steps go through the same forward pass and observer as
/// normal decoding), and observing changes no token.
@Suite(.serialized, .enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
struct SoTAttentionTests {
    @Test func sotTurnProducesAttentionStatistics() throws {
        let question = "What are some tips for staying healthy?"
        var config = SoTRunner.Config()
        config.pointMaxTokens = 12
        let watched = try LlamaChatBackend(modelURL: TestPaths.model, attentionSampleEvery: 1)
        let sot = try #require(watched.sot)
        sot.watch(CancellationFlag())  // what SoTTurn does when a SoT answer starts
        let result = try SoTRunner(config: config).run(question: question, model: sot.sotModel)
        #expect(result.points.count >= 2)
        #expect((result.batch?.steps ?? 0) > 0)
        let summary = try #require(watched.lastAttention)
        // Every skeleton and batch step was observed (sample every step), for every layer and head.
        #expect(summary.steps >= (result.batch?.steps ?? 0))
        #expect(summary.k95.count == summary.nLayers * summary.nHeads)
        #expect(summary.k95.allSatisfy { $0 > 0 && $0 <= 1 })
        #expect(summary.keys > 0)

        // The same turn without observing gives the same text.
        let plain = try LlamaChatBackend(modelURL: TestPaths.model, attentionSampleEvery: 0)
        let again = try SoTRunner(config: config).run(question: question, model: try #require(plain.sot).sotModel)
        #expect(again.skeletonText == result.skeletonText)
        #expect(again.expansions == result.expansions)
    }
}
