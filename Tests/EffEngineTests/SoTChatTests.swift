import EffTechniques
import Foundation
import Testing
@testable import EffEngine

/// Skeleton-of-Thought in the chat engine, over the scripted backend and scripted SoT model:
/// the live events, the router in `auto`, the fallback, transcripts, and the A/B compare.
@Suite struct SoTChatTests {
    func tempDir() -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("effterm-sot-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    func makeEngine(skeleton: String = " Plan the day\n2. Take breaks\n3. Sleep well\n",
                    router: SoTRouteDecision? = nil) async -> (ChatEngine, ScriptedChatBackend, ScriptedSoTSupport) {
        let backend = ScriptedChatBackend(answers: [["Normal ", "answer."]])
        let sot = ScriptedSoTSupport(skeleton: skeleton, expansionWords: ["it", "helps."], routerDecision: router)
        backend.sotScript = sot
        let engine = ChatEngine(backend: backend, settings: GenerationSettings(), system: nil,
                                store: SessionStore(directory: tempDir()))
        await engine.beginSession()
        return (engine, backend, sot)
    }

    func transcript(_ engine: ChatEngine) throws -> Transcript {
        let file = try #require(engine.snapshots.latest.value.sessionFile)
        return try SessionStore.load(URL(fileURLWithPath: file))
    }

    @Test func onModeStreamsSkeletonThenPointsAndRecordsThem() async throws {
        let (engine, _, _) = await makeEngine()
        await engine.setSoTMode(.on)
        await engine.send("How do I rest better?")
        await engine.waitUntilIdle()
        let events = engine.events.drain()
        let live = events.compactMap { if case .sot(let e) = $0 { return e } else { return nil } }
        // Skeleton text first, then the parsed points, then interleaved point text.
        let firstPoints = try #require(live.firstIndex { if case .skeleton = $0 { true } else { false } })
        #expect(live[..<firstPoints].allSatisfy { if case .skeletonText = $0 { true } else { false } })
        let slots = live.compactMap { if case .pointText(let s, _) = $0 { return s } else { return nil } }
        #expect(Array(slots.prefix(3)) == [0, 1, 2], "every point grows in the first step")
        #expect(!events.contains { if case .text = $0 { true } else { false } })

        let answer = try #require(await engine.conversation.last?.content)
        #expect(answer == "1. Plan the day: it helps.\n2. Take breaks: it helps.\n3. Sleep well: it helps.")
        var view = SoTAnswerView()
        for e in live { view.apply(e) }
        #expect(view.text(live: false) == answer)

        let status = try #require(engine.snapshots.latest.value.sot)
        #expect(status.stage == .done && status.measured.streams == 3)
        #expect(status.measured.normalEstimateSeconds != nil && status.measured.totalSeconds != nil)

        let t = try transcript(engine)
        let record = try #require(t.turns[0].sot)
        #expect(t.turns[0].techniques.sot == .on)
        #expect(record.usedSoT && record.streams == 3 && record.router == nil)
        #expect(record.points.map(\.text) == ["Plan the day", "Take breaks", "Sleep well"])
        #expect(record.points.allSatisfy { $0.expansion == " it helps." && $0.tokens == 2 })
        #expect(record.skeleton?.hasPrefix("1. Plan the day") == true)
        #expect(record.answerTokens == answer.split(whereSeparator: \.isWhitespace).count)
    }

    @Test func tooFewPointsFallsBackToNormalDecodingAndSaysSo() async throws {
        let (engine, _, _) = await makeEngine(skeleton: " Only one point\nThen prose.")
        await engine.setSoTMode(.on)
        await engine.send("Prove it.")
        await engine.waitUntilIdle()
        let events = engine.events.drain()
        #expect(events.contains { if case .sot(.fellBack(reason: let r)) = $0 { r.contains("only 1 point") } else { false } })
        let answer = try #require(await engine.conversation.last?.content)
        #expect(answer == "A plain answer to the question.")
        let record = try #require(try transcript(engine).turns[0].sot)
        #expect(record.fallbackReason?.contains("only 1 point") == true)
        #expect(record.streams == 0)
    }

    @Test func autoAsksTheRouterAndFollowsIt() async throws {
        let no = SoTRouteDecision(useSoT: false, score: 0.1, threshold: 0.6, reason: "looks like math (0.80) - normal decoding", seconds: 0.01)
        let (engine, _, sot) = await makeEngine(router: no)
        await engine.setSoTMode(.auto)
        await engine.send("What is 17 * 23?")
        await engine.waitUntilIdle()
        #expect(sot.routedQuestions == ["What is 17 * 23?"])
        #expect(try #require(await engine.conversation.last?.content) == "Normal answer.")
        var record = try #require(try transcript(engine).turns[0].sot)
        #expect(!record.usedSoT && record.router?.reason == "looks like math (0.80) - normal decoding")
        #expect(engine.snapshots.latest.value.sot?.router == "looks like math (0.80) - normal decoding")

        sot.routerDecision = SoTRouteDecision(useSoT: true, score: 0.9, threshold: 0.6, reason: "list-like (0.90)", seconds: 0.01)
        await engine.send("How do I rest better?")
        await engine.waitUntilIdle()
        #expect(try #require(await engine.conversation.last?.content).hasPrefix("1. Plan the day:"))
        record = try #require(try transcript(engine).turns[1].sot)
        #expect(record.usedSoT && record.router?.useSoT == true && record.mode == "auto")
    }

    @Test func autoWithoutRouterAnswersNormallyWithTheReason() async throws {
        let (engine, _, _) = await makeEngine(router: nil)
        await engine.setSoTMode(.auto)
        await engine.send("Anything")
        await engine.waitUntilIdle()
        #expect(try #require(await engine.conversation.last?.content) == "Normal answer.")
        let record = try #require(try transcript(engine).turns[0].sot)
        #expect(!record.usedSoT && record.fallbackReason == "no router in this script")
    }

    @Test func compareRunsBothWaysAndStoresTheVerdict() async throws {
        let (engine, _, _) = await makeEngine()
        await engine.send("How do I rest better?")
        await engine.waitUntilIdle()
        _ = engine.events.drain()
        await engine.compare()
        await engine.waitUntilIdle()
        let events = engine.events.drain().compactMap { if case .compare(let c) = $0 { return c } else { return nil } }
        guard case .started(_, let modes) = events.first else { Issue.record("no start"); return }
        #expect(Set(modes) == ["normal", "sot"])
        #expect(events.last == .ready)
        await engine.vote("B")
        let t = try transcript(engine)
        let c = try #require(t.compares.first)
        #expect(c.verdict == "B" && c.turnIndex == 0 && c.question == "How do I rest better?")
        #expect(c.sides.map(\.label) == ["A", "B"] && c.sides.map(\.mode) == modes)
        #expect(c.preferredMode == modes[1])
        let sotSide = try #require(c.sides.first { $0.mode == "sot" })
        #expect(sotSide.streams == 3 && sotSide.answer.hasPrefix("1. Plan the day:"))
        #expect(c.sides.first { $0.mode == "normal" }?.answer == "Normal answer.")
        // The comparison is not part of the conversation.
        #expect(await engine.conversation.count == 2)
        // Round trip: the compare line follows its turn and parses back.
        let lines = String(decoding: try t.jsonLines(), as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 3 && lines[2].contains("\"type\":\"compare\""))
        #expect(try Transcript.parse(try t.jsonLines(), file: "x") == t)
        #expect(t.markdown().contains("Verdict: B better"))
    }

    @Test func anUnjudgedCompareIsStoredAsSkippedBeforeTheNextTurn() async throws {
        let (engine, _, _) = await makeEngine()
        await engine.send("How do I rest better?")
        await engine.waitUntilIdle()
        await engine.compare()
        await engine.waitUntilIdle()
        await engine.send("Next")
        await engine.waitUntilIdle()
        let t = try transcript(engine)
        #expect(t.compares.map(\.verdict) == ["skipped"])
        #expect(t.turns.count == 2)
    }

    @Test func compareBeforeAnyQuestionIsRefused() async {
        let (engine, _, _) = await makeEngine()
        await engine.compare()
        let events = engine.events.drain()
        #expect(events.contains { if case .notice(let t, true) = $0 { t.contains("ask something first") } else { false } })
        #expect(!(await engine.isBusy))
    }

    @Test func oldTranscriptsWithoutSoTFieldsStillParse() throws {
        let text = """
        {"created":"2026-01-01T00:00:00Z","effterm_version":"0","model_name":"m","model_sha256":"00","sampler":{"max_tokens":1,"min_p":0,"repeat_penalty":1,"seed":1,"temperature":0,"top_k":1,"top_p":1},"seed":1,"template_hash":"t","type":"header"}
        {"index":0,"messages":[{"content":"q","role":"user"},{"content":"a","role":"assistant"}],"stats":{"context_used":0,"decode_s":0,"decode_steps":0,"generated_tokens":1,"prefill_s":0,"prompt_tokens":1,"stop":"eos"},"techniques":{"attention":"dense","kv_cache":"f32","sot":"off","weights":"Q4_1"},"time":"2026-01-01T00:00:00Z","type":"turn"}
        """
        let t = try Transcript.parse(Data(text.utf8), file: "old.jsonl")
        #expect(t.turns.count == 1 && t.turns[0].sot == nil && t.compares.isEmpty)
        let bad = text + "\n{\"type\":\"mystery\"}"
        #expect(throws: TranscriptError.self) { try Transcript.parse(Data(bad.utf8), file: "bad.jsonl") }
    }
}

extension SoTChatTests {
    @Test func aNewSessionStoresAnUnjudgedCompareInTheOldTranscript() async throws {
        let (engine, _, _) = await makeEngine()
        await engine.send("How do I rest better?")
        await engine.waitUntilIdle()
        await engine.compare()
        await engine.waitUntilIdle()
        let old = try #require(engine.snapshots.latest.value.sessionFile)
        await engine.newSession()
        let t = try SessionStore.load(URL(fileURLWithPath: old))
        #expect(t.compares.map(\.verdict) == ["skipped"])
    }
}

extension SoTChatTests {
    @Test func escStopsASoTAnswerAndKeepsWhatGrew() async throws {
        let backend = ScriptedChatBackend(answers: [["unused"]])
        // 2000 steps x 10 ms: the stop lands mid-expansion however loaded the machine is.
        let sot = ScriptedSoTSupport(skeleton: " Plan\n2. Rest\n3. Eat\n", expansionWords: Array(repeating: "w", count: 2000),
                                     delayPerStep: 0.01)
        backend.sotScript = sot
        let engine = ChatEngine(backend: backend, settings: GenerationSettings(), system: nil,
                                store: SessionStore(directory: tempDir()))
        await engine.beginSession()
        await engine.setSoTMode(.on)
        await engine.send("q")
        var grown = 0
        for _ in 0..<3000 where grown < 3 * 5 {  // wait until every point has a few words (up to 60 s)
            try await Task.sleep(nanoseconds: 20_000_000)
            grown += engine.events.drain().filter { if case .sot(.pointText) = $0 { true } else { false } }.count
        }
        await engine.stop()
        await engine.waitUntilIdle()
        let answer = try #require(await engine.conversation.last?.content)
        #expect(answer.hasPrefix("1. Plan: w"))
        #expect(answer.split(separator: "\n").count == 3)
        #expect(answer.count < 3 * 2000 * 2, "stopped long before the end")
        let t = try transcript(engine)
        #expect(t.turns[0].stats.stopReason == .cancelled)
        #expect(t.turns[0].sot?.streams == 3)
        #expect(engine.snapshots.latest.value.sot?.stage == .stopped)
    }
}
