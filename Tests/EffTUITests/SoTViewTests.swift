import EffEngine
import EffTechniques
import Foundation
import Testing
@testable import EffTUI

/// Skeleton-of-Thought in the chat pane and the A/B compare view, rendered to the in-memory
/// grid: points growing in place, the SoT status row, the blind compare and its reveal.
@Suite struct SoTViewTests {
    static let points = [SkeletonPoint(index: 1, text: "Plan the day"), SkeletonPoint(index: 2, text: "Take breaks"),
                         SkeletonPoint(index: 3, text: "Sleep well")]

    /// A SoT answer mid-expansion: skeleton parsed, every point part-way.
    static func liveSoT(_ app: ChatApp, _ engine: ChatEngine) {
        app.apply(.userMessage("How can I rest better?"))
        app.apply(.sot(.skeletonText("1.")))
        app.apply(.sot(.skeletonText(" Plan the day\n2. Take breaks\n3. Sleep well\n")))
        app.apply(.sot(.skeleton(points)))
        for (slot, words) in [(0, [" Write", " three", " tasks"]), (1, [" Stand", " up"]), (2, [" Keep", " a", " fixed"])] {
            for w in words { app.apply(.sot(.pointText(index: slot, delta: w))) }
        }
        engine.snapshots.update {
            $0.sotMode = .on; $0.techniques.sot = .on; $0.isGenerating = true
            var s = SoTStatus(stage: .expanding)
            s.measured.streams = 3; s.measured.skeletonSeconds = 0.312; s.measured.expansionSeconds = 0.21
            $0.sot = s
        }
    }

    func check(_ name: String, _ grid: CellGrid) throws {
        try PaneSnapshotTests().check(name, grid)
    }

    @Test(arguments: PaneSnapshotTests.sizes) func pointsGrowInPlaceWithSoTStatusRow(size: (Int, Int)) throws {
        let (app, _, engine) = PaneSnapshotTests.makeApp(width: size.0, height: size.1)
        if size.0 >= ChatApp.panelMinWidth { app.perform(.cyclePanel); app.perform(.cyclePanel) }
        Self.liveSoT(app, engine)
        let grid = app.frame(snapshot: engine.snapshots.latest.value).0
        let text = grid.text()
        if size.1 >= 24 {
            #expect(text.contains("1. Plan the day: Write three tasks ▍"))
            #expect(text.contains("2. Take breaks: Stand up ▍"))
            #expect(text.contains("expanding B=3"))
        }
        try check("sot_live", grid)
    }

    @Test func finishedSoTAnswerShowsTheComparisonWithNormalDecoding() {
        let (app, _, engine) = PaneSnapshotTests.makeApp(width: 150, height: 30)
        app.perform(.cyclePanel); app.perform(.cyclePanel)
        Self.liveSoT(app, engine)
        app.apply(.answerFinished(TurnStats()))
        engine.snapshots.update {
            $0.isGenerating = false
            var s = SoTStatus(stage: .done)
            s.measured.streams = 3; s.measured.skeletonSeconds = 0.312; s.measured.expansionSeconds = 0.84; s.measured.totalSeconds = 1.152
            s.measured.stepRatio = 2.14; s.measured.normalEstimateSeconds = 1.62
            $0.sot = s
        }
        let text = app.frame(snapshot: engine.snapshots.latest.value).0.text()
        #expect(text.contains("1. Plan the day: Write three tasks\n") || text.contains("1. Plan the day: Write three tasks "))
        #expect(!text.contains("▍"))
        #expect(text.contains("skeleton 312 ms"))
        #expect(text.contains("expansion 840 ms"))
        #expect(text.contains("r(B) 2.14"))
        #expect(text.contains("1.15 s vs normal ≈ 1.62 s (1.41x faster)"))
    }

    @Test func fallbackShowsNormalTextAndTheReason() {
        var log = ChatLog()
        log.apply(.userMessage("q"))
        log.apply(.sot(.skeletonText("1. Only")))
        log.apply(.sot(.fellBack(reason: "the skeleton had only 1 point (need 2)")))
        log.apply(.text("Plain "))
        log.apply(.text("answer."))
        log.apply(.answerFinished(TurnStats()))
        #expect(log.entries.last?.text == "Plain answer.")
        let lines = ChatPane.lines(log, width: 80, theme: .builtin).map { $0.map(\.text).joined() }
        #expect(lines.contains { $0.contains("SoT fell back to normal decoding: the skeleton had only 1 point") })
    }

    @Test func sotKeyCyclesModeAndStatusRowAppears() async throws {
        let (app, _, engine) = PaneSnapshotTests.makeApp(width: 80, height: 24)
        #expect(StatusBar.height(for: engine.snapshots.latest.value) == 2)
        await engine.setSoTMode(.on)
        let snap = engine.snapshots.latest.value
        #expect(snap.sotMode == .on && StatusBar.height(for: snap) == 3)
        let text = app.frame(snapshot: snap).0.text()
        #expect(text.contains("SoT on │ F7 mode │ F8 A/B compare"))
        await engine.cycleSoTMode()
        #expect(engine.snapshots.latest.value.sotMode == .auto)
    }

    @Test(arguments: PaneSnapshotTests.sizes) func compareIsBlindUntilTheVote(size: (Int, Int)) throws {
        let (app, _, engine) = PaneSnapshotTests.makeApp(width: size.0, height: size.1)
        app.apply(.compare(.started(question: "How can I rest better?", modes: ["sot", "normal"])))
        app.apply(.compare(.text(side: 0, text: "1. Plan the day: Write")))
        var running = app.frame(snapshot: engine.snapshots.latest.value).0.text()
        #expect(!running.contains("Plan the day"), "no text while running")
        let sot = CompareSide(label: "A", mode: "sot", answer: "1. Plan the day: Write three tasks.\n2. Take breaks: Stand up.",
                              seconds: 1.15, tokens: 24, streams: 2, stop: .endOfTurn)
        let normal = CompareSide(label: "B", mode: "normal", answer: "Rest by keeping a regular sleep schedule.",
                                 seconds: 1.62, tokens: 9, streams: 0, stop: .endOfTurn)
        app.apply(.compare(.sideDone(side: 0, sot)))
        app.apply(.compare(.sideDone(side: 1, normal)))
        app.apply(.compare(.ready))
        let ready = app.frame(snapshot: engine.snapshots.latest.value).0
        running = ready.text()
        if size.0 >= 80 {
            #expect(running.contains("Plan the day") && running.contains("regular sleep"))
            #expect(running.contains("1 = A"))
        }
        #expect(!running.contains("SoT ·") && !running.contains("1.15 s"), "modes and timings hidden before the vote")
        try check("compare_ready", ready)
        app.handle(.char("1"))   // the vote goes to the engine; the engine answers with .recorded
        var record = CompareRecord(turnIndex: 0, question: "How can I rest better?", sides: [sot, normal], verdict: "A")
        record.verdict = "A"
        app.apply(.compare(.recorded(record)))
        let revealed = app.frame(snapshot: engine.snapshots.latest.value).0.text()
        if size.0 >= 80 {
            #expect(revealed.contains("A = SoT · 1.15 s · 24 tok · B=2"))
            #expect(revealed.contains("verdict saved in the transcript: A (SoT) better"))
        }
        app.handle(.escape)
        #expect(app.compareView == nil)
    }
}
