import EffTechniques
import Foundation
import Testing
import EffCore
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
        // A uniform row needs ceil(0.95 n) keys, not all of them (1/64 is exact in binary).
        let flat = [Float](repeating: 1.0 / 64, count: 64)
        let kf = flat.withUnsafeBufferPointer { AttentionStatsCollector.keysCovering(0.95, $0) }
        #expect(kf == 61)
        // Against a full sort on random rows with ties (counts may differ by one only where
        // the two summation orders round across the target).
        var rng = SystemRandomNumberGenerator()
        for n in [1, 2, 7, 100, 1000] {
            for _ in 0..<20 {
                let raw = (0..<n).map { _ in Float(Int.random(in: 0..<6, using: &rng)) + Float.random(in: 0..<1, using: &rng) * (Bool.random(using: &rng) ? 1 : 0) }
                let total = raw.reduce(0, +)
                guard total > 0 else { continue }
                let p = raw.map { $0 / total }
                let got = p.withUnsafeBufferPointer { AttentionStatsCollector.keysCovering(0.95, $0) }
                var acc: Float = 0, want = 0
                let target = 0.95 * p.reduce(0, +)
                for v in p.sorted(by: >) { want += 1; acc += v; if acc >= target { break } }
                #expect(abs(got - max(1, want)) <= 1, "n \(n): \(got) vs \(want)")
            }
        }
        let c = AttentionStatsCollector(nLayers: 1, nHeads: 2, patternBins: 2, sinkTokens: 1)
        probs.withUnsafeBufferPointer { c.observe(layer: 0, head: 1, probs: $0) }
        let s = c.summary()
        #expect(abs(s.k95(layer: 0, head: 1) - 0.6) < 1e-6)
        #expect(abs(s.sinkMass(layer: 0, head: 1) - 0.05) < 1e-6)
        #expect(s.k95(layer: 0, head: 0) == 0)
        #expect(Array(s.pattern(layer: 0, head: 1)).map { ($0 * 100).rounded() } == [95, 5])   // keys 0-2 | 3-4
    }
}

@Suite struct ChatEngineTechniqueTests {
    @Test func kvFormatSwitchesBetweenTurnsAndIsRecordedPerTurn() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("effterm-kv-\(UUID().uuidString)")
        let backend = ScriptedChatBackend(answers: [["one"], ["two"]])
        let engine = ChatEngine(backend: backend, settings: GenerationSettings(), system: nil,
                                store: SessionStore(directory: dir))
        await engine.beginSession()
        await engine.send("first question")
        await engine.waitUntilIdle()
        let before = engine.snapshots.latest.value.kvBytesInUse
        #expect(before > 0)
        await engine.cycleKVFormat()  // idle: applied at once
        var snap = engine.snapshots.latest.value
        #expect(snap.techniques.kv == .f16 && snap.pendingKV == nil && backend.kvFormat == .f16)
        #expect(snap.kvBytesInUse * 2 == before)
        let notices = engine.events.drain().compactMap { e -> String? in
            if case .notice(let t, false) = e { return t } else { return nil }
        }
        #expect(notices.contains { $0.hasPrefix("KV f32 -> f16: ") && $0.contains("converted") })
        await engine.send("second question")
        await engine.waitUntilIdle()
        let file = try #require(engine.snapshots.latest.value.sessionFile)
        let t = try SessionStore.load(URL(fileURLWithPath: file))
        #expect(t.turns.map(\.techniques.kv) == [.f32, .f16])
        #expect(t.markdown().contains("KV f16"))
        snap = engine.snapshots.latest.value
        #expect(snap.techniques.kv == .f16)
    }

    @Test func kvFormatAskedDuringAnAnswerWaitsForItsEnd() async throws {
        let backend = ScriptedChatBackend(answers: [Array(repeating: "x", count: 200)], delayPerPiece: 0.005)
        let engine = ChatEngine(backend: backend, settings: GenerationSettings(), system: nil, store: nil)
        await engine.send("go")
        await engine.setKVFormat(.q8)
        // Queued, not applied: the running decode still writes f32 rows.
        #expect(backend.kvFormat == .f32)
        #expect(engine.snapshots.latest.value.pendingKV == .q8)
        await engine.waitUntilIdle()
        let snap = engine.snapshots.latest.value
        #expect(backend.kvFormat == .q8 && snap.techniques.kv == .q8 && snap.pendingKV == nil)
    }

    /// F11 cycles dense -> StreamingLLM (evicting) -> dense between turns; every turn
    /// records the policy it ran with; going back to dense after evictions says the tokens
    /// are gone.
    @Test func attentionTogglesBetweenTurnsAndRecordsThePolicyPerTurn() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("effterm-attn-\(UUID().uuidString)")
        let backend = ScriptedChatBackend(answers: [Array(repeating: "w", count: 600)])
        let engine = ChatEngine(backend: backend, settings: GenerationSettings(), system: nil,
                                store: SessionStore(directory: dir))
        await engine.beginSession()
        await engine.send("first")
        await engine.waitUntilIdle()
        await engine.cycleAttention()
        #expect(backend.attention == .sinkWindow(sinks: 4, window: 1020, evict: true, step: 64))
        #expect(engine.snapshots.latest.value.techniques.attention == AttentionSpec.streamingDefault)
        await engine.send("second")
        await engine.waitUntilIdle()
        // 600 + 600 generated positions exceed 1024: the scripted cache evicted the excess.
        var snap = engine.snapshots.latest.value
        #expect(snap.contextUsed == 1024 && snap.evictedTokens > 0)
        _ = engine.events.drain()
        await engine.cycleAttention()
        snap = engine.snapshots.latest.value
        #expect(snap.techniques.attention == .dense && backend.attention == .dense)
        let warnings = engine.events.drain().compactMap { e -> String? in
            if case .notice(let t, true) = e { return t } else { return nil }
        }
        #expect(warnings.contains { $0.contains("evicted tokens are gone") }, "\(warnings)")
        await engine.send("third")
        await engine.waitUntilIdle()
        let file = try #require(engine.snapshots.latest.value.sessionFile)
        let t = try SessionStore.load(URL(fileURLWithPath: file))
        #expect(t.turns.map(\.techniques.attention.description) == ["dense", "sink4+win1020+evict/64", "dense"])
    }

    @Test func techniqueRecordReadsOldTranscriptsAndRoundTrips() throws {
        let old = #"{"attention":"dense","kv_cache":"f32","sot":"off","weights":"Q4_1"}"#
        let c = try JSONDecoder().decode(TechniqueRecord.self, from: Data(old.utf8))
        #expect(c == TechniqueRecord(TechniqueConfig()))
        let typed = TechniqueRecord(TechniqueConfig(weights: .plan("mix3.0"), kv: .q8(group: 64),
                                                    attention: .sinkWindow(sinks: 4, window: 1020), sot: .auto))
        let back = try JSONDecoder().decode(TechniqueRecord.self, from: JSONEncoder().encode(typed))
        #expect(back == typed)
        for bad in [#"{"kv_cache":"q3"}"#, #"{"attention":"sparse"}"#, #"{"attention":"moa:"}"#] {
            #expect(throws: DecodingError.self) { try JSONDecoder().decode(TechniqueRecord.self, from: Data(bad.utf8)) }
        }
    }

    /// A MoA turn names its plan; the transcript must read back (and render) without the
    /// plan file, which may have been deleted since.
    @Test func aMoATurnReadsBackWithoutItsPlanFile() throws {
        let plan = MoAPlan(name: "moa-d0.50", modelFingerprint: "abc", layers: 1, kvHeads: 1, sinkTokens: 32,
                           minSpan: 64, rules: [MoARule(alpha: 128, beta: 0.25)], budget: 0.5,
                           constrainedLengths: [1024])
        var t = Transcript(header: TranscriptHeader(modelName: "m", modelSHA256: "s", templateHash: "h",
                                                    sampler: GenerationSettings(), system: nil))
        for (i, spec) in [AttentionSpec.dense, .moa(plan), .streamingDefault].enumerated() {
            t.turns.append(TranscriptTurn(index: i, messages: [TurnMessage(role: "user", content: "q\(i)"),
                                                               TurnMessage(role: "assistant", content: "a\(i)")],
                                          techniques: TechniqueConfig(attention: spec), stats: TurnStats()))
        }
        let back = try Transcript.parse(t.jsonLines(), file: "moa.jsonl")
        #expect(back.turns.map(\.techniques.attention) == ["dense", "moa:moa-d0.50", "sink4+win1020+evict/64"])
        #expect(back == t)
        #expect(back.markdown().contains("attention moa:moa-d0.50"))
    }
}
