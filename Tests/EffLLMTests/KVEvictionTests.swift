import EffCore
import EffTechniques
import Foundation
import Testing
@testable import EffLLM

/// StreamingLLM eviction through the forward pass (`LlamaState.evictionPolicy`, consulted
/// before every chunk) on a tiny random Llama: a window that never fills equals dense
/// exactly; after evictions the logits equal a dense run over the kept rows with keys
/// rotated fresh at their re-indexed positions; a stream far past the context keeps
/// constant KV bytes.
@Suite struct KVEvictionTests {
    static func tokens(_ n: Int, seed: UInt64, vocab: Int) -> [Int32] {
        var s = seed &* 0x9E37_79B9_7F4A_7C15 &+ 3
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Int32((s >> 33) % UInt64(vocab))
        }
    }

    static func logits(_ state: LlamaState) -> [Float] {
        Array(UnsafeBufferPointer(start: state.logits, count: state.config.vocabSize))
    }

    static func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max()! }

    /// (a) A budget larger than the text: no eviction, logits bit-identical to dense at the
    /// prefill and at every decode step.
    @Test func windowLargerThanTextEqualsDense() throws {
        let tm = try LlamaTestModel(config: LlamaTestModel.smallConfig())
        let c = tm.model.config
        let text = Self.tokens(100, seed: 1, vocab: c.vocabSize)
        let dense = tm.model.makeState(maxContext: 128, maxBatch: 16)
        let streaming = tm.model.makeState(maxContext: 128, maxBatch: 16)
        streaming.evictionPolicy = StreamingLLMEviction(sinks: 4, window: 120)
        try tm.model.forward(Array(text[0..<60]), state: dense)
        try tm.model.forward(Array(text[0..<60]), state: streaming)
        #expect(Self.logits(dense) == Self.logits(streaming))
        for t in text[60...] {
            try tm.model.forward([t], state: dense)
            try tm.model.forward([t], state: streaming)
            #expect(Self.logits(dense) == Self.logits(streaming))
        }
        #expect(streaming.evictedCount == 0 && streaming.position == 100)
    }

    /// A fresh dense state holding `source`'s rows except `drop`, each key rotated in Double
    /// from its old position to its new one (`rotate: false` copies keys as stored: the
    /// mistake of not re-indexing, which the comparison must catch).
    /// With `f32` the rotation runs as the engine's RoPE does (f32 angle table, the same
    /// kernel), so a correct eviction must match it bit for bit.
    static func reindexed(_ source: LlamaState, dropping drop: Range<Int>, rotate: Bool = true,
                          f32: Bool = false) -> LlamaState {
        let c = source.config, kvDim = c.kvDim, hs = c.headSize
        let out = LlamaState(config: c, maxContext: source.cache.maxLength, maxBatch: source.maxBatch)
        var k = [Float](repeating: 0, count: kvDim), v = k
        var cosT = [Float](repeating: 0, count: hs / 2), sinT = cosT
        for l in 0..<c.nLayers {
            var to = 0
            for from in 0..<source.position where !drop.contains(from) {
                source.cache.readRow(layer: l, position: from, key: &k, value: &v)
                if rotate && to != from && f32 {
                    RoPETable.fill(position: to - from, headSize: hs, base: c.ropeFreqBase, cos: &cosT, sin: &sinT)
                    Kernels.ropeNormal(&k, nHeads: c.nKVHeads, headSize: hs, cos: cosT, sin: sinT)
                } else if rotate && to != from {
                    for h in 0..<c.nKVHeads {
                        for i in 0..<(hs / 2) {
                            let theta = Double(to - from) * pow(Double(c.ropeFreqBase), -2 * Double(i) / Double(hs))
                            let a = Double(k[h * hs + 2 * i]), b = Double(k[h * hs + 2 * i + 1])
                            k[h * hs + 2 * i] = Float(a * cos(theta) - b * sin(theta))
                            k[h * hs + 2 * i + 1] = Float(a * sin(theta) + b * cos(theta))
                        }
                    }
                }
                out.cache.write(layer: l, position: to, rows: 1, k: k, v: v)
                to += 1
            }
            out.cache.commit(upTo: to)
        }
        return out
    }

    /// (b) After evictions (one token per decode step, then a chunk of 8 at once), the
    /// streaming state's logits equal an oracle that rebuilds a dense cache of the kept rows
    /// with keys rotated fresh (in Double) at their re-indexed positions, then runs the same
    /// tokens densely. An oracle that skips the re-rotation must miss by far more.
    @Test func evictionEqualsDenseOverReindexedKeptRows() throws {
        let tm = try LlamaTestModel(config: LlamaTestModel.smallConfig())
        let c = tm.model.config
        let sinks = 4, window = 28
        let text = Self.tokens(32 + 20 + 8, seed: 2, vocab: c.vocabSize)
        let streaming = tm.model.makeState(maxContext: 64, maxBatch: 16)
        streaming.evictionPolicy = StreamingLLMEviction(sinks: sinks, window: window)
        var oracle = tm.model.makeState(maxContext: 64, maxBatch: 16)
        try tm.model.forward(Array(text[0..<32]), state: streaming)
        try tm.model.forward(Array(text[0..<32]), state: oracle)
        #expect(Self.logits(streaming) == Self.logits(oracle), "the budget is exactly full: nothing evicted yet")
        var worst: Float = 0, worstUnrotated: Float = 0
        var i = 32
        // One token at a time: each step evicts position `sinks`.
        while i < 52 {
            let unrotated = Self.reindexed(oracle, dropping: sinks..<(sinks + 1), rotate: false)
            oracle = Self.reindexed(oracle, dropping: sinks..<(sinks + 1))
            try tm.model.forward([text[i]], state: streaming)
            try tm.model.forward([text[i]], state: oracle)
            try tm.model.forward([text[i]], state: unrotated)
            #expect(streaming.position == sinks + window)
            worst = max(worst, Self.maxAbsDiff(Self.logits(streaming), Self.logits(oracle)))
            worstUnrotated = max(worstUnrotated, Self.maxAbsDiff(Self.logits(streaming), Self.logits(unrotated)))
            i += 1
        }
        // A chunk of 8: one eviction of 8 positions before it.
        oracle = Self.reindexed(oracle, dropping: sinks..<(sinks + 8))
        try tm.model.forward(Array(text[52..<60]), state: streaming)
        try tm.model.forward(Array(text[52..<60]), state: oracle)
        worst = max(worst, Self.maxAbsDiff(Self.logits(streaming), Self.logits(oracle)))
        #expect(streaming.evictedCount == 20 + 8)
        let scale = Self.logits(oracle).map(abs).max()!
        #expect(worst <= 1e-4 * max(1, scale), "re-indexed streaming vs oracle: \(worst) (logit scale \(scale))")
        #expect(worstUnrotated > 100 * max(worst, 1e-6), "keys not re-rotated must differ: \(worstUnrotated) vs \(worst)")
    }

    /// (c) A stream far past the model's context (8192 positions) runs with the cache pinned
    /// at sinks + window: constant KV bytes, finite logits, every step's position in range.
    @Test func generationPastTheContextKeepsConstantKVBytes() throws {
        let config = try LlamaConfig(dim: 64, hiddenDim: 128, nLayers: 2, nHeads: 4, nKVHeads: 2, vocabSize: 96,
                                     seqLen: 8192, ropeFreqBase: 10000, normEps: 1e-5)
        let tm = try LlamaTestModel(config: config)
        let state = tm.model.makeState(maxContext: 64, maxBatch: 16)
        state.evictionPolicy = StreamingLLMEviction(sinks: 4, window: 60)
        // A prompt longer than the whole cache streams through in chunks.
        try tm.model.forward(Self.tokens(300, seed: 3, vocab: config.vocabSize), state: state)
        #expect(state.position == 64)
        let bytes = state.cache.ownBytesInUse
        var token: Int32 = 1
        var total = 300
        while total < 8192 + 200 {
            try tm.model.forward([token], state: state)
            total += 1
            #expect(state.position == 64 && state.cache.ownBytesInUse == bytes)
            let l = Self.logits(state)
            guard l.allSatisfy(\.isFinite) else { Issue.record("non-finite logits at token \(total)"); return }
            token = Int32(l.indices.max { l[$0] < l[$1] }!)
        }
        #expect(state.evictedCount == total - 64)
        // Without eviction the same state refuses to go past its capacity.
        let bounded = tm.model.makeState(maxContext: 64, maxBatch: 16)
        #expect(throws: LlamaModelError.self) { try tm.model.forward(Self.tokens(65, seed: 4, vocab: 96), state: bounded) }
    }

    /// The token generator keeps going past the state's capacity under eviction.
    @Test func generatorRunsPastCapacityUnderEviction() throws {
        let tm = try LlamaTestModel(config: LlamaTestModel.smallConfig())
        let state = tm.model.makeState(maxContext: 32, maxBatch: 8)
        state.evictionPolicy = StreamingLLMEviction(sinks: 4, window: 28)
        let gen = TokenGenerator(model: tm.model, state: state,
                                 sampler: Sampler(config: SamplerConfig(temperature: 0), vocabSize: 96),
                                 prompt: Self.tokens(40, seed: 5, vocab: 96), maxTokens: 200, stopTokens: [])
        var n = 0
        for _ in gen { n += 1 }
        #expect(gen.error == nil)
        #expect(n == 200 && gen.stopReason == .maxTokens)
        #expect(state.position == 32)
    }
}
