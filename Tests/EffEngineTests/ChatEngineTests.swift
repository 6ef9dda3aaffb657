import Foundation
import Testing
@testable import EffEngine

@Suite struct ChatEngineTests {
    func tempDir() -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("effterm-chat-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    @Test func streamsTextLosslesslyAndAutosavesEachTurn() async throws {
        let dir = tempDir()
        let backend = ScriptedChatBackend(answers: [["Hel", "lo", " 世界", "!"], ["Second"]])
        let store = SessionStore(directory: dir)
        let engine = ChatEngine(backend: backend, settings: GenerationSettings(), system: "be brief", store: store)
        await engine.beginSession()
        await engine.send("hi")
        await engine.waitUntilIdle()
        var events = engine.events.drain()
        #expect(events.first == .userMessage("hi"))
        let text = events.compactMap { if case .text(let t) = $0 { return t } else { return nil } }.joined()
        #expect(text == "Hello 世界!")
        guard case .answerFinished(let stats) = events.last(where: { if case .answerFinished = $0 { true } else { false } }) else {
            Issue.record("no answerFinished"); return
        }
        #expect(stats.generatedTokens == 4)
        let file = try #require(engine.snapshots.latest.value.sessionFile)
        var t = try SessionStore.load(URL(fileURLWithPath: file))
        #expect(t.turns.count == 1)
        #expect(t.messages.map(\.role) == ["system", "user", "assistant"])
        #expect(t.turns[0].messages[1].content == "Hello 世界!")

        await engine.send("again")
        await engine.waitUntilIdle()
        events = engine.events.drain()
        t = try SessionStore.load(URL(fileURLWithPath: file))
        #expect(t.turns.count == 2)
        #expect(t.turns[1].messages[1].content == "Second")
        #expect(engine.snapshots.latest.value.turns == 2)
    }

    @Test func stopKeepsPartialAnswer() async throws {
        // 20 s of scripted answer: the stop lands mid-answer however loaded the machine is.
        let pieces = 4000
        let backend = ScriptedChatBackend(answers: [Array(repeating: "x", count: pieces)], delayPerPiece: 0.005)
        let engine = ChatEngine(backend: backend, settings: GenerationSettings(), system: nil, store: nil)
        await engine.send("go")
        var streamed = ""
        for _ in 0..<3000 where streamed.isEmpty {  // wait for the first text, up to 60 s
            try await Task.sleep(nanoseconds: 20_000_000)
            streamed = engine.events.drain().compactMap { event -> String? in
                if case let .text(t) = event { return t }
                return nil
            }.joined()
        }
        #expect(!streamed.isEmpty)
        await engine.stop()
        await engine.waitUntilIdle()
        let convo = await engine.conversation
        #expect(convo.count == 2)
        let partial = convo[1].content
        #expect(!partial.isEmpty && partial.count < pieces)
        let stats = engine.snapshots.latest.value.lastStats
        #expect(stats?.stopReason == .cancelled)
    }

    @Test func resumeReplaysMessagesAndWarnsOnOtherModel() async throws {
        let dir = tempDir()
        var header = TranscriptHeader(modelName: "other", modelSHA256: "ab", templateHash: "t",
                                      sampler: GenerationSettings(), system: nil)
        header.seed = 7
        let t = Transcript(header: header, turns: [
            TranscriptTurn(index: 0, messages: [TurnMessage(role: "user", content: "q"),
                                                TurnMessage(role: "assistant", content: "a")],
                           techniques: TechniqueConfig(), stats: TurnStats())])
        let file = dir.appendingPathComponent("s.jsonl")
        try SessionStore.writeAtomically(try t.jsonLines(), to: file)
        let backend = ScriptedChatBackend(answers: [["ok"]])
        let engine = ChatEngine(backend: backend, settings: GenerationSettings(), system: nil,
                                store: SessionStore(directory: dir))
        await engine.resume(try SessionStore.load(file), file: file)
        #expect(backend.primedMessages == t.messages)
        #expect(engine.snapshots.latest.value.warning?.contains("other") == true)
        await engine.send("more")
        await engine.waitUntilIdle()
        let again = try SessionStore.load(file)
        #expect(again.turns.count == 2)
        #expect(again.header.seed == 7)
    }

    @Test func keysCoveringCountsTopMass() {
        let probs: [Float] = [0.05, 0.6, 0.3, 0.03, 0.02]
        let k = probs.withUnsafeBufferPointer { AttentionStatsCollector.keysCovering(0.95, $0) }
        #expect(k == 3)   // 0.6 + 0.3 + 0.05 = 0.95
        let flat = [Float](repeating: 0.01, count: 100)
        let kf = flat.withUnsafeBufferPointer { AttentionStatsCollector.keysCovering(0.95, $0) }
        #expect(kf >= 95)
        let c = AttentionStatsCollector(nLayers: 1, nHeads: 2, patternBins: 2, sinkTokens: 1)
        probs.withUnsafeBufferPointer { c.observe(layer: 0, head: 1, probs: $0) }
        let s = c.summary()
        #expect(abs(s.k95(layer: 0, head: 1) - 0.6) < 1e-6)
        #expect(abs(s.sinkMass(layer: 0, head: 1) - 0.05) < 1e-6)
        #expect(s.k95(layer: 0, head: 0) == 0)
        #expect(Array(s.pattern(layer: 0, head: 1)).map { ($0 * 100).rounded() } == [95, 5])   // keys 0-2 | 3-4
    }
}
