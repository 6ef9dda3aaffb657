import EffCore
import EffTechniques
import EffTestSupport
import Foundation
import Testing
@testable import EffLLM

/// Model tier: StreamingLLM eviction on SmolLM2-135M (reference: the GGUF's Q4_1 weights
/// dequantized to f32, f32 KV cache).
@Suite(.serialized, .enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
struct StreamingLLMModelTests {
    static func logits(_ s: LlamaState) -> [Float] { Array(UnsafeBufferPointer(start: s.logits, count: s.config.vocabSize)) }

    /// A budget larger than the text: bit-identical to dense, prefill and decode.
    @Test func windowLargerThanTextEqualsDense() throws {
        let model = try LlamaModel(gguf: GGUFFile(path: TestPaths.model.path))
        let text = (0..<300).map { Int32(200 + ($0 * 7) % 5000) }
        let dense = model.makeState(maxContext: 320, maxBatch: 64)
        let streaming = model.makeState(maxContext: 320, maxBatch: 64)
        streaming.evictionPolicy = StreamingLLMEviction(sinks: 4, window: 1020)
        try model.forward(text, state: dense)
        try model.forward(text, state: streaming)
        #expect(Self.logits(dense) == Self.logits(streaming))
        for t in 0..<5 {
            try model.forward([Int32(1234 + t)], state: dense)
            try model.forward([Int32(1234 + t)], state: streaming)
            #expect(Self.logits(dense) == Self.logits(streaming))
        }
        #expect(streaming.evictedCount == 0)
    }

    /// After evictions the logits equal a dense run over the kept rows with keys rotated
    /// fresh at their re-indexed positions; skipping the re-rotation misses by far more.
    @Test func evictionEqualsDenseOverReindexedKeptRows() throws {
        let model = try LlamaModel(gguf: GGUFFile(path: TestPaths.model.path))
        let text = (0..<74).map { Int32(300 + ($0 * 11) % 4000) }
        let streaming = model.makeState(maxContext: 64, maxBatch: 16)
        streaming.evictionPolicy = StreamingLLMEviction(sinks: 4, window: 60)
        var oracle = model.makeState(maxContext: 64, maxBatch: 16)
        try model.forward(Array(text[0..<64]), state: streaming)
        try model.forward(Array(text[0..<64]), state: oracle)
        var worst: Float = 0, worstUnrotated: Float = 0
        for t in text[64...] {
            let unrotated = KVEvictionTests.reindexed(oracle, dropping: 4..<5, rotate: false)
            oracle = KVEvictionTests.reindexed(oracle, dropping: 4..<5)
            try model.forward([t], state: streaming)
            try model.forward([t], state: oracle)
            try model.forward([t], state: unrotated)
            worst = max(worst, KVEvictionTests.maxAbsDiff(Self.logits(streaming), Self.logits(oracle)))
            worstUnrotated = max(worstUnrotated, KVEvictionTests.maxAbsDiff(Self.logits(streaming), Self.logits(unrotated)))
        }
        #expect(streaming.evictedCount == 10 && streaming.position == 64)
        #expect(worst <= 2e-3, "re-indexed streaming vs oracle: \(worst)")
        #expect(worstUnrotated > 10 * max(worst, 1e-5), "keys not re-rotated must differ: \(worstUnrotated) vs \(worst)")
    }
}
