import EffCore
import EffTestSupport
import Foundation
import Testing
@testable import EffLLM

/// Model tier: the real SmolLM2 file against llama.cpp's fixtures (issue 2's criteria).
/// Fails (does not skip) when the model or fixtures are missing.
@Suite(.serialized, .enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
struct FidelityTests {
    static let top1Target = 0.95
    static let meanAbsLogprobDiffTarget = 0.1  // nats
    static let pplRelativeTolerance = 0.01

    static func loadModel() throws -> LlamaModel {
        try LlamaModel(gguf: GGUFFile(path: TestPaths.model.path))
    }

    @Test func greedyFixturesAgreeWithLlamaCpp() throws {
        let model = try Self.loadModel()
        let cases = try #require(try Fixtures.loadLines(Fixtures.GreedyCase.self,
                                                        at: TestPaths.fixtures.appendingPathComponent("greedy.jsonl")))
        #expect(cases.count >= 6)
        let r = try FidelityEval.greedy(model: model, cases: cases) { print($0) }
        print("top1 \(r.top1Agreement) mean|dlogprob| \(r.meanAbsLogprobDiff) prefixOk \(r.prefixOkCount)/\(r.prompts.count)")
        #expect(r.top1Agreement >= Self.top1Target)
        #expect(r.meanAbsLogprobDiff <= Self.meanAbsLogprobDiffTarget)
        #expect(r.prefixOkCount >= r.prompts.count - 1)
    }

    @Test func perplexityMatchesLlamaCppWithinOnePercent() throws {
        let gguf = try GGUFFile(path: TestPaths.model.path)
        let model = try LlamaModel(gguf: gguf)
        let tokenizer = try Tokenizer(gguf: gguf)
        let spec = try #require(try Fixtures.load(Fixtures.Perplexity.self,
                                                  at: TestPaths.fixtures.appendingPathComponent("perplexity.json")))
        let text = try String(contentsOf: TestPaths.fixtures.appendingPathComponent(spec.text_file), encoding: .utf8)
        let tokens = tokenizer.encode(text, parseSpecial: false)
        let r = try FidelityEval.perplexity(model: model, tokens: tokens, nCtx: spec.n_ctx)
        print("ppl \(r.ppl) (ref \(spec.ppl_ref)), \(r.scored) scored tokens")
        if let chunks = spec.chunks { #expect(tokens.count / spec.n_ctx == chunks) }
        #expect(abs(r.ppl / spec.ppl_ref - 1) <= Self.pplRelativeTolerance)
    }

    /// Real weights: a batched prefill gives the logits of single-token steps.
    @Test func realModelPrefillEqualsSingleSteps() throws {
        let model = try Self.loadModel()
        let tokens: [Int32] = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308]
        let vocab = model.config.vocabSize
        var batch = [Float](repeating: 0, count: tokens.count * vocab)
        let a = model.makeState(maxContext: 64)
        try batch.withUnsafeMutableBufferPointer { try model.forward(tokens, state: a, logits: .all($0.baseAddress!)) }
        let b = model.makeState(maxContext: 64, maxBatch: 1)
        var worst: Float = 0
        for (i, t) in tokens.enumerated() {
            try model.forward([t], state: b, logits: .last)
            for j in 0..<vocab { worst = max(worst, abs(batch[i * vocab + j] - b.logits[j])) }
        }
        print("real model prefill vs decode: max |dlogit| \(worst)")
        #expect(worst <= Self.realPrefillVsDecodeTolerance)
    }

    /// Logits are O(10); batched and single-token matmuls sum in different orders (measured
    /// max difference 8e-5 with the reference kernels); the bound leaves room for fast paths.
    static let realPrefillVsDecodeTolerance: Float = 2e-3

    @Test func weightSummaryDescribesEveryTensor() throws {
        let w = try Self.loadModel().weights
        #expect(w.tiedOutput)
        #expect(w.summary.count == 1 + 30 * 9 + 1)
        #expect(w.summary.first?.role == .embd && w.summary.first?.format == "Q8_0")
        #expect(w.summary.first?.bitsPerWeight == 8.5)
        let q41 = w.summary.filter { $0.format == "Q4_1" }
        #expect(q41.count == 210 && q41.allSatisfy { $0.bitsPerWeight == 5.0 })
        #expect(w.summary.filter { $0.role == .norm }.count == 61)
        #expect(Set(w.summary.compactMap(\.layer)) == Set(0..<30))
    }
}
