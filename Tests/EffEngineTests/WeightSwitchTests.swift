import EffCore
import EffLLM
import EffTestSupport
import Foundation
import Testing
@testable import EffEngine

/// Model tier: switching the chat's weights between turns (Ctrl-P). The cached conversation
/// is recomputed with the new weights, so the next answer is exactly what a chat that had
/// those weights from the start gives; switching back to the file restores its answers; the
/// bits panel's tensors and the transcript follow.
@Suite(.serialized, .enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
struct WeightSwitchTests {
    static var greedy: GenerationSettings {
        var s = GenerationSettings(maxTokens: 12)
        s.sampler.temperature = 0
        s.sampler.repeatPenalty = 1
        return s
    }

    static func answer(_ b: LlamaChatBackend, _ messages: [TurnMessage]) throws -> String {
        var text = ""
        _ = try b.generate(messages: messages, settings: greedy, cancel: CancellationFlag()) { text += $0 }
        return text
    }

    @Test func switchedWeightsAnswerAsIfLoadedFromTheStart() throws {
        let q1 = [TurnMessage(role: "user", content: "Name three colors.")]
        let chat = try LlamaChatBackend(modelURL: TestPaths.model, attentionSampleEvery: 0)
        let a1 = try Self.answer(chat, q1)
        let before = chat.info.weightBytes
        #expect(chat.weights == .file("Q4_1"))

        let change = try chat.setWeights(.uniform("Q3G64")) { _, _ in }
        #expect(change.positions == chat.contextUsed && change.positions > 0)
        #expect(chat.weights == .uniform("Q3G64"))
        #expect(chat.info.weightBytes < before && change.bytesAfter == chat.info.weightBytes)
        let q = try #require(chat.info.tensors.first { $0.name == "blk.0.attn_q.weight" })
        #expect(q.format == "Q3G64" && abs(q.bitsPerWeight - 3.5) < 1e-9)

        let q2 = q1 + [TurnMessage(role: "assistant", content: a1), TurnMessage(role: "user", content: "And three animals?")]
        let switched = try Self.answer(chat, q2)
        let fresh = try LlamaChatBackend(modelURL: TestPaths.model, attentionSampleEvery: 0)
        let none = try fresh.setWeights(.uniform("Q3G64")) { _, _ in }
        #expect(none.positions == 0)  // nothing cached yet: nothing to recompute
        #expect(try Self.answer(fresh, q2) == switched)

        // Back to the file: its own tensors again, and its answers.
        let back = try chat.setWeights(.file("Q4_1")) { _, _ in }
        #expect(back.buildSeconds == 0 && chat.info.weightBytes == before)
        let plain = try LlamaChatBackend(modelURL: TestPaths.model, attentionSampleEvery: 0)
        #expect(try Self.answer(chat, q2) == (try Self.answer(plain, q2)))
        // A spec that does not parse changes nothing.
        #expect(throws: ChatBackendError.self) { try chat.setWeights(.uniform("Q7G32")) { _, _ in } }
        #expect(chat.weights == .file("Q4_1"))
    }

    @Test func chatCyclesWeightsAndRecordsThemPerTurn() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("effterm-w-\(UUID().uuidString)")
        let backend = try LlamaChatBackend(modelURL: TestPaths.model, attentionSampleEvery: 0)
        let engine = ChatEngine(backend: backend, settings: Self.greedy, system: nil, store: SessionStore(directory: dir))
        await engine.setWeightChoices(WeightChoice.chatCycle(file: backend.weights, plans: []))
        await engine.beginSession()
        await engine.send("Say hello.")
        await engine.waitUntilIdle()
        await engine.cycleWeights()  // idle: built and installed at once
        let snap = engine.snapshots.latest.value
        #expect(snap.techniques.weights == .uniform("Q4G64") && snap.pendingWeights == nil)
        #expect(snap.model?.tensors.contains { $0.format == "Q4G64" } == true)
        let notices = engine.events.drain().compactMap { e -> String? in
            if case .notice(let t, false) = e { return t } else { return nil }
        }
        #expect(notices.contains { $0.hasPrefix("weights Q4_1 -> uniform:Q4G64: ") && $0.contains("recomputed") })
        await engine.send("Say goodbye.")
        await engine.waitUntilIdle()
        let file = try #require(engine.snapshots.latest.value.sessionFile)
        let t = try SessionStore.load(URL(fileURLWithPath: file))
        #expect(t.turns.map(\.techniques.weights) == [.file("Q4_1"), .uniform("Q4G64")])
    }

    @Test func aBackendWithoutVariantsSaysSo() async throws {
        let engine = ChatEngine(backend: ScriptedChatBackend(answers: [["x"]]), settings: GenerationSettings(),
                                system: nil, store: nil)
        await engine.cycleWeights()
        let warnings = engine.events.drain().compactMap { e -> String? in
            if case .notice(let t, true) = e { return t } else { return nil }
        }
        #expect(warnings.contains { $0.contains("no other weights") })
    }

    @Test func weightChoicesRoundTripThroughTheirSpelling() {
        for c in [WeightChoice.file("Q4_1"), .uniform("Q3G64+o0.5%"), .plan("b3.0")] {
            #expect(WeightChoice(c.description) == c)
        }
    }
}
