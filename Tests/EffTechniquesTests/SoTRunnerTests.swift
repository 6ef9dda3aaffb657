import Testing
@testable import EffTechniques

/// A scripted language model: answers by looking at the request, records every call.
final class ScriptedModel: SoTLanguageModel {
    var skeletonAnswer: String
    var pointAnswers: [String: String]  // keyed by prefill
    var normalAnswer = "A plain answer."
    private(set) var singleCalls: [SoTRequest] = []
    private(set) var batchCalls: [[SoTRequest]] = []

    init(skeleton: String, points: [String: String] = [:]) {
        skeletonAnswer = skeleton
        pointAnswers = points
    }

    func complete(_ request: SoTRequest, maxTokens: Int, shouldStop: (String) -> Bool,
                  onText: (String) -> Void) throws -> SoTCompletion {
        singleCalls.append(request)
        let full = request.prefill == "1." ? skeletonAnswer : normalAnswer
        // Stream word by word and honour the stop predicate like a real decoder would.
        var produced = ""
        var tokens = 0
        for piece in full.split(separator: " ", omittingEmptySubsequences: false).enumerated()
            .map({ $0.offset == 0 ? String($0.element) : " " + $0.element }) {
            if tokens == maxTokens || shouldStop(produced) { break }
            produced += piece
            tokens += 1
            onText(piece)
        }
        return SoTCompletion(text: produced, promptTokens: request.user.count / 4,
                             generatedTokens: tokens, prefillSeconds: 0.1, decodeSeconds: 0.01 * Double(tokens))
    }

    private(set) var lineBreakFlags: [Bool] = []

    func completeBatch(_ requests: [SoTRequest], maxTokens: Int, stopAtLineBreak: Bool,
                       onText: (Int, String) -> Void) throws -> SoTBatchCompletion {
        batchCalls.append(requests)
        lineBreakFlags.append(stopAtLineBreak)
        var completions: [SoTCompletion] = []
        for (i, r) in requests.enumerated() {
            let text = pointAnswers[r.prefill] ?? " - detail."
            onText(i, text)
            completions.append(SoTCompletion(text: text, promptTokens: 300, generatedTokens: 5,
                                             prefillSeconds: 0, decodeSeconds: 0))
        }
        return SoTBatchCompletion(completions: completions, sharedPrefixTokens: 280,
                                  prefillSeconds: 0.2, decodeSeconds: 0.3, steps: 5)
    }
}

@Suite struct SoTRunnerTests {
    @Test func skeletonThenBatchedExpansion() throws {
        let model = ScriptedModel(
            skeleton: " Set goals\n2. Plan the week\n3. Take breaks\nThat is all.\nMore chatter",
            points: ["2. Plan the week:": " so nothing is forgotten. It helps."])
        var events: [SoTRunner.Event] = []
        let result = try SoTRunner().run(question: "How to manage time?", model: model) {
            events.append($0)
        }
        #expect(result.points.map(\.text) == ["Set goals", "Plan the week", "Take breaks"])
        #expect(result.fallbackReason == nil)
        // The skeleton stage stopped once a non-point line was complete.
        #expect(!result.skeletonText.contains("More chatter"))
        #expect(model.batchCalls.count == 1)
        #expect(model.lineBreakFlags == [true])
        let batch = model.batchCalls[0]
        #expect(batch.map(\.prefill) == ["1. Set goals:", "2. Plan the week:", "3. Take breaks:"])
        #expect(batch.allSatisfy { $0.user.contains("How to manage time?") })
        #expect(batch[1].user.contains("only continue point 2"))
        #expect(batch[1].user.contains("3. Take breaks"))  // the whole skeleton is shown
        #expect(result.answer == "1. Set goals: - detail.\n2. Plan the week: so nothing is forgotten. It helps.\n3. Take breaks: - detail.")
        #expect(result.leakedPoints.isEmpty)
        #expect(events.first == .stage(.skeleton))
        #expect(events.contains(.skeleton(result.points)))
        #expect(events.contains(.pointText(index: 1, delta: " so nothing is forgotten. It helps.")))
        #expect(events.last == .stage(.done))
        #expect(abs(result.totalSeconds - (0.1 + 0.01 * Double(result.skeleton.generatedTokens) + 0.5)) < 1e-9)
        #expect(result.tokensProcessed == result.skeleton.promptTokens
                + result.skeleton.generatedTokens + 280 + 3 * (20 + 5))
    }

    /// The wave size minimises r(B) * ceil(points / B): the AVX2 EPYC's r(B) (issue 14:
    /// r(2) 1.48, r(4) 2.38, r(8) 5.32) expands 8 points sooner as two waves of 4 than as
    /// one batch of 8; where batching gains nothing, one point at a time.
    @Test func waveSizeFollowsTheMeasuredStepRatios() {
        let epyc = [1, 1.48, 1.93, 2.38, 3.1, 3.83, 4.57, 5.32]
        #expect(SoTRunner.waveSize(points: 8, ratios: epyc) == 4)   // 4.76 vs 5.32 at B = 8
        #expect(SoTRunner.waveSize(points: 4, ratios: epyc) == 4)
        #expect(SoTRunner.waveSize(points: 3, ratios: epyc) == 3)
        let wide = [1, 1.32, 1.4, 1.49, 1.6, 1.7, 1.8, 1.92]  // AVX-512 VNNI: batching is cheap
        #expect(SoTRunner.waveSize(points: 8, ratios: wide) == 8)
        #expect(SoTRunner.waveSize(points: 10, ratios: wide) == 10)  // extrapolated past B = 8
        let worse = (1...8).map { $0 == 1 ? 1.0 : 1.2 * Double($0) }  // batching costs extra
        #expect(SoTRunner.waveSize(points: 6, ratios: worse) == 1)
        #expect(SoTRunner.waveSize(points: 1, ratios: epyc) == 1)
    }

    @Test func pointsRunInWavesInOrder() throws {
        let model = ScriptedModel(skeleton: " A\n2. B\n3. C\n4. D\n5. E\n6. F\n7. G\n8. H\nend",
                                  points: ["6. F:": " six."])
        var config = SoTRunner.Config()
        config.stepRatios = [1, 1.48, 1.93, 2.38, 3.1, 3.83, 4.57, 5.32]
        var events: [SoTRunner.Event] = []
        let result = try SoTRunner(config: config).run(question: "q", model: model) { events.append($0) }
        #expect(model.batchCalls.map(\.count) == [4, 4])
        #expect(model.batchCalls.flatMap { $0.map(\.prefill) } == (1...8).map { "\($0). \(["A", "B", "C", "D", "E", "F", "G", "H"][$0 - 1]):" })
        #expect(result.waveSize == 4 && events.contains(.waves(size: 4, points: 8)))
        // The second wave's point 2 is point 6 of the answer.
        #expect(events.contains(.pointText(index: 5, delta: " six.")))
        #expect(result.expansions[5] == " six." && result.expansions.count == 8)
        let batch = try #require(result.batch)
        #expect(batch.steps == 10 && abs(batch.decodeSeconds - 0.6) < 1e-12 && batch.sharedPrefixTokens == 280)
        // Without ratios: one batch of all, no waves event.
        let one = ScriptedModel(skeleton: " A\n2. B\n3. C\nend")
        var plain: [SoTRunner.Event] = []
        let r = try SoTRunner().run(question: "q", model: one) { plain.append($0) }
        #expect(one.batchCalls.map(\.count) == [3] && r.waveSize == nil)
        #expect(!plain.contains { if case .waves = $0 { return true } else { return false } })
    }

    @Test func fallsBackWhenTooFewPoints() throws {
        let model = ScriptedModel(skeleton: " Just do it.\nNothing else")
        var events: [SoTRunner.Event] = []
        let result = try SoTRunner().run(question: "What is 2+2?", model: model) { events.append($0) }
        #expect(result.points.count == 1)
        #expect(result.fallbackReason?.contains("only 1 point") == true)
        #expect(model.batchCalls.isEmpty)
        #expect(model.singleCalls.last == SoTRequest(user: "What is 2+2?", prefill: ""))
        #expect(result.answer == "A plain answer.")
        #expect(events.contains(.stage(.fallback)))
    }

    @Test func fallsBackOnJunkSkeleton() throws {
        let model = ScriptedModel(skeleton: "")
        let result = try SoTRunner().run(question: "Write a poem", model: model)
        #expect(result.fallbackReason == "the skeleton had no numbered points")
    }

    @Test func flagsLeakyExpansions() throws {
        let model = ScriptedModel(skeleton: " A\n2. B\n",
                                  points: ["1. A:": " first.\n2. B again", "2. B:": " fine."])
        let result = try SoTRunner().run(question: "q", model: model)
        #expect(result.leakedPoints == [1])
    }

    @Test func capsPointCount() throws {
        let many = (2...14).map { "\($0). p\($0)" }.joined(separator: "\n")
        let model = ScriptedModel(skeleton: " p1\n" + many + "\n")
        var config = SoTRunner.Config()
        config.skeletonMaxTokens = 1000
        let result = try SoTRunner(config: config).run(question: "q", model: model)
        #expect(result.points.count == 10)
        #expect(model.batchCalls[0].count == 10)
    }

    @Test func promptsKeepTheAuthorsStructure() {
        let skeleton = SoTPrompts.skeleton(question: "Why sleep?")
        #expect(skeleton.contains("organizer"))
        #expect(skeleton.contains("3 to 5 words"))
        #expect(skeleton.components(separatedBy: "Skeleton:").count == 4)  // 2 examples + ask
        #expect(skeleton.hasSuffix("Question: Why sleep?\nSkeleton:"))
        let point = SoTPrompts.expansion(question: "Why sleep?",
                                         skeleton: [SkeletonPoint(index: 1, text: "Rest"),
                                                    SkeletonPoint(index: 2, text: "Health")],
                                         index: 2)
        #expect(point.contains("one and only one point"))
        #expect(point.contains("1. Rest\n2. Health"))
        #expect(point.contains("1 to 2 sentences"))
        #expect(SoTPrompts.expansionPrefill(SkeletonPoint(index: 3, text: "Sleep well")) == "3. Sleep well:")
        #expect(SoTPrompts.expansionPrefill(SkeletonPoint(index: 4, text: "Eat well.")) == "4. Eat well:")
    }
}
