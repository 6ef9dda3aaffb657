import EffCore
import EffTestSupport
import Foundation
import Testing
@testable import EffLLM

/// Model tier: a small scan on the real SmolLM2 file (issue 11 item 3).
@Suite(.serialized, .enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
struct SensitivityScanModelTests {
    /// Two tensors, 64 tokens: quantizing a tensor at 8 bits disturbs the next-token
    /// distributions less than at 2 bits, and not quantizing (F32) not at all.
    @Test func q8DisturbsLessThanQ2() throws {
        let gguf = try GGUFFile(path: TestPaths.model.path)
        let model = try LlamaModel(gguf: gguf)
        let tokenizer = try Tokenizer(gguf: gguf)
        let text = try String(contentsOf: TestPaths.fixtures.appendingPathComponent("gpl-3.txt"), encoding: .utf8)
        let tokens = tokenizer.encode(text, parseSpecial: false)
        let ref = LlamaModel(weights: try model.weights.requantized(WeightSpec(format: .f32)))
        let scan = try SensitivityScan(reference: ref, tokens: tokens, chunks: 1, ctx: 64)
        let ids = [LinearTensorID(layer: 2, role: .v), LinearTensorID(layer: 28, role: .down)]
        let entries = try scan.run(tensors: ids, candidates: try WeightSpec.list("F32,Q8G32,Q2G32"))
        for id in ids {
            let e = entries.filter { $0.tensor == id.name }
            try #require(e.count == 3)
            #expect(e[0].kl == 0)
            let kl8 = try #require(e[1].kl), kl2 = try #require(e[2].kl)
            #expect(kl8 < kl2, "\(id): Q8 \(kl8) Q2 \(kl2)")
            #expect(kl2 > 1e-3)
            #expect(e[1].bytes > e[2].bytes)
        }
    }
}
