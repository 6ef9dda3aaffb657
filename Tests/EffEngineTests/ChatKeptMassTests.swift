import EffCore
import EffLLM
import EffTechniques
import EffTestSupport
import Foundation
import Testing
@testable import EffEngine

/// Model tier: the chat backend measures the attention mass a MoA plan keeps on dense
/// answers only (under the plan itself it is trivially 1), for the plan the app seeded or
/// the last one installed, and keeps measuring it after switching back to dense.
@Suite(.serialized, .enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
struct ChatKeptMassTests {
    @Test func denseAnswersMeasureTheSeededOrLastInstalledPlan() throws {
        let b = try LlamaChatBackend(modelURL: TestPaths.model, maxContext: 512, attentionSampleEvery: 1)
        let c = b.config
        // Every head reads 4 sinks + the last 8 positions: a ~40-token prompt loses mass.
        let plan = MoAPlan(name: "narrow", modelFingerprint: b.info.sha256, layers: c.nLayers, kvHeads: c.nKVHeads,
                           sinkTokens: 4, minSpan: 8, rules: Array(repeating: MoARule(alpha: 8, beta: 0),
                                                                   count: c.nLayers * c.nKVHeads),
                           budget: 0.1, constrainedLengths: [64])
        var settings = GenerationSettings(maxTokens: 6)
        settings.sampler.temperature = 0
        let messages = [TurnMessage(role: "user", content: "Name three colours.")]
        func answer() throws -> AttentionSummary {
            _ = try b.generate(messages: messages, settings: settings, cancel: CancellationFlag()) { _ in }
            return try #require(b.lastAttention)
        }

        #expect(try answer().keptMass == nil)   // no plan to measure
        b.setMeasuredPlan(plan)
        let seeded = try answer()
        let kept = try #require(seeded.keptMass)
        #expect(seeded.keptPlan == "narrow" && kept.count == c.nLayers * c.nHeads)
        #expect(kept.allSatisfy { $0 > 0 && $0 <= 1 })
        #expect(kept.contains { $0 < 0.99 })

        _ = try b.setAttention(.moa(plan))
        #expect(try answer().keptMass == nil)   // under the plan: not measured
        _ = try b.setAttention(.dense)
        #expect(b.measuredPlan == plan)
        #expect(try answer().keptPlan == "narrow")
        b.setMeasuredPlan(nil)
        #expect(try answer().keptMass == nil)
    }
}
