import Foundation
import Testing
@testable import EffLLM

@Suite struct SamplerTests {
    static func candidates(_ logits: [Float]) -> TokenCandidates {
        let c = TokenCandidates(capacity: logits.count)
        logits.withUnsafeBufferPointer { c.load($0.baseAddress!, logits.count) }
        return c
    }

    @Test func repetitionPenaltyDividesPositiveMultipliesNegativeOncePerToken() {
        let c = Self.candidates([2, -1, 4, 0.5])
        let recent: [Int32] = [0, 1, 0, 0]
        recent.withUnsafeBufferPointer { SamplerStages.repetitionPenalty(c, penalty: 2, recent: $0) }
        #expect(c.items.map(\.logit) == [1, -2, 4, 0.5])
    }

    @Test func topKKeepsTheKLargestSorted() {
        let logits = LlamaTestModel.values(1000, seed: 5, scale: 3)
        let c = Self.candidates(logits)
        SamplerStages.topK(c, k: 17)
        let expected = logits.enumerated().sorted { $0.element > $1.element || ($0.element == $1.element && $0.offset < $1.offset) }
            .prefix(17).map { Int32($0.offset) }
        #expect(c.items.map(\.id) == expected)
        // Ties: equal logits keep the lower id first; k larger than the set keeps all.
        let t = Self.candidates([1, 3, 3, 3, 0])
        SamplerStages.topK(t, k: 2)
        #expect(t.items.map(\.id) == [1, 2])
        let all = Self.candidates([1, 2])
        SamplerStages.topK(all, k: 5)
        #expect(all.items.map(\.id) == [1, 0])
    }

    @Test func topPKeepsSmallestPrefixReachingMass() {
        // Probabilities 0.5, 0.25, 0.125, 0.125 (logits ln of them).
        let c = Self.candidates([log(0.125), log(0.5), log(0.25), log(0.125)].map { Float($0) })
        SamplerStages.topP(c, p: 0.7)
        #expect(c.items.map(\.id) == [1, 2])
        let one = Self.candidates([0, 10])
        SamplerStages.topP(one, p: 0.5)
        #expect(one.items.map(\.id) == [1])
    }

    @Test func minPDropsTokensBelowFractionOfTheBest() {
        let c = Self.candidates([log(0.5), log(0.04), log(0.3), log(0.16)].map { Float($0) })
        SamplerStages.minP(c, p: 0.1)  // threshold 0.05
        #expect(c.items.map(\.id) == [0, 2, 3])
    }

    @Test func temperatureScalesLogits() {
        let c = Self.candidates([1, -2, 4])
        SamplerStages.temperature(c, t: 0.5)
        #expect(c.items.map(\.logit) == [2, -4, 8])
    }

    @Test func greedyIsArgmaxWithLowestIdOnTies() {
        let logits: [Float] = [0, 5, 2, 5]
        let s = Sampler(config: .greedy, vocabSize: 4)
        #expect(logits.withUnsafeBufferPointer { s.sample($0.baseAddress!) } == 1)
        #expect(SamplerConfig.greedy.stages.isEmpty)
    }

    @Test func seededSamplingIsDeterministicAndFollowsTheDistribution() {
        let logits: [Float] = [log(0.6), log(0.3), log(0.1)].map { Float($0) }
        let config = SamplerConfig(temperature: 1, topK: 0, topP: 1, minP: 0, repeatPenalty: 1, seed: 1234)
        func run() -> [Int32] {
            let s = Sampler(config: config, vocabSize: 3)
            return (0..<3000).map { _ in logits.withUnsafeBufferPointer { s.sample($0.baseAddress!) } }
        }
        let a = run(), b = run()
        #expect(a == b)
        let freq0 = Double(a.filter { $0 == 0 }.count) / 3000
        let freq2 = Double(a.filter { $0 == 2 }.count) / 3000
        // 3000 draws: binomial standard deviation < 0.01; allow 4 sigma.
        #expect(abs(freq0 - 0.6) < 0.04 && abs(freq2 - 0.1) < 0.03)
        var other = config
        other.seed = 99
        let s = Sampler(config: other, vocabSize: 3)
        let c = (0..<3000).map { _ in logits.withUnsafeBufferPointer { s.sample($0.baseAddress!) } }
        #expect(c != a)
    }

    @Test func penaltyHistoryChangesTheGreedyChoice() {
        let logits: [Float] = [3, 2.5, 0]
        let config = SamplerConfig(temperature: 0, repeatPenalty: 1.5, repeatLastN: 2)
        let s = Sampler(config: config, vocabSize: 3)
        #expect(logits.withUnsafeBufferPointer { s.sample($0.baseAddress!) } == 0)
        s.accept(0)  // 3 / 1.5 = 2 < 2.5
        #expect(logits.withUnsafeBufferPointer { s.sample($0.baseAddress!) } == 1)
        s.accept(1); s.accept(2)  // window of 2 forgets token 0: 3 vs 2.5/1.5
        #expect(logits.withUnsafeBufferPointer { s.sample($0.baseAddress!) } == 0)
    }

    @Test func configIsCodableAndStagesFollowLlamaCppOrder() throws {
        let c = SamplerConfig.chat
        let back = try JSONDecoder().decode(SamplerConfig.self, from: JSONEncoder().encode(c))
        #expect(back == c)
        #expect(c.stages == [.repetitionPenalty(1.1, lastN: 64), .topK(40), .topP(0.9), .minP(0.05), .temperature(0.2)])
    }
}
