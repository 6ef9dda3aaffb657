import EffCore
import EffTestSupport
import Testing
@testable import EffLLM

@Suite struct LlamaModelTests {
    /// Prefill (batched matmul, other summation order) vs single steps: f32 reassociation only.
    static let prefillVsDecodeTolerance: Float = 2e-4

    static let tokens: [Int32] = [1, 17, 42, 5, 88, 3, 61, 29, 70, 11, 2, 95, 40]

    static func maxAbsDiff(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var m: Float = 0
        for i in 0..<n { m = max(m, abs(a[i] - b[i])) }
        return m
    }

    @Test(arguments: [GGMLType.q4_1, .q8_0, .f32])
    func prefillEqualsSingleSteps(_ type: GGMLType) throws {
        let t = try LlamaTestModel(config: LlamaTestModel.smallConfig(), type: type)
        let model = t.model, vocab = model.config.vocabSize
        let n = Self.tokens.count
        // Batch: all logits in one prefill, chunked by maxBatch 5 to cross chunk edges.
        var batchLogits = [Float](repeating: .nan, count: n * vocab)
        let batched = model.makeState(maxBatch: 5)
        try batchLogits.withUnsafeMutableBufferPointer {
            try model.forward(Self.tokens, state: batched, logits: .all($0.baseAddress!))
        }
        // Single steps.
        let single = model.makeState(maxBatch: 1)
        for (i, tok) in Self.tokens.enumerated() {
            try model.forward([tok], state: single, logits: .last)
            let d = batchLogits.withUnsafeBufferPointer { Self.maxAbsDiff($0.baseAddress! + i * vocab, single.logits, vocab) }
            #expect(d <= Self.prefillVsDecodeTolerance, "position \(i): max |diff| \(d)")
        }
        #expect(batched.position == n && single.position == n)
        // `.last` after a batch equals the last row of `.all`.
        let last = model.makeState(maxBatch: 4)
        try model.forward(Self.tokens, state: last, logits: .last)
        let d = batchLogits.withUnsafeBufferPointer { Self.maxAbsDiff($0.baseAddress! + (n - 1) * vocab, last.logits, vocab) }
        #expect(d <= Self.prefillVsDecodeTolerance)
    }

    /// A fork over a shared prefix continues exactly like the original sequence.
    @Test func forkedStateMatchesContinuation() throws {
        let t = try LlamaTestModel(config: LlamaTestModel.smallConfig())
        let model = t.model, vocab = model.config.vocabSize
        let parent = model.makeState()
        try model.forward(Array(Self.tokens[0..<8]), state: parent, logits: .none)
        let child = parent.fork()
        #expect(child.position == 8 && child.cache.prefixLength == 8)
        try model.forward(Array(Self.tokens[8...]), state: child, logits: .last)
        let whole = model.makeState()
        try model.forward(Self.tokens, state: whole, logits: .last)
        #expect(Self.maxAbsDiff(child.logits, whole.logits, vocab) <= Self.prefillVsDecodeTolerance)
        // The parent may keep going; the child does not see it. A fork of a fork works too.
        try model.forward([9, 9, 9], state: parent, logits: .none)
        let grandchild = child.fork(at: 10)
        try model.forward(Array(Self.tokens[10...]), state: grandchild, logits: .last)
        #expect(Self.maxAbsDiff(grandchild.logits, whole.logits, vocab) <= Self.prefillVsDecodeTolerance)
        // The parent cannot be rewound below the fork point while forks exist.
        #expect(!parent.rewind(to: 4))
        #expect(parent.rewind(to: 10))
    }

    /// The per-token path keeps nothing per token on the heap: after a warm-up, 100 decode
    /// steps leave the allocator's in-use bytes within 16 KiB of where they were (a path that
    /// kept one logits row or a stats record per token would add more than that).
    /// Counts every arena (glibc's `mallinfo2` reports the main one only, so the pool threads'
    /// arenas are read through `malloc_info`).
    @Test func decodeRetainsNothingPerToken() throws {
        let t = try LlamaTestModel(config: LlamaTestModel.smallConfig())
        let state = t.model.makeState()
        for tok in Self.tokens { try t.model.forward([tok], state: state, logits: .last) }
        let before = HeapUsage.bytesInUse()
        for i in 0..<100 { try t.model.forward([Self.tokens[i % Self.tokens.count]], state: state, logits: .last) }
        let after = HeapUsage.bytesInUse()
        #expect(after - before < 16 << 10, "heap grew by \(after - before) bytes over 100 tokens")
    }

    @Test func rejectsBadTokensAndFullContext() throws {
        let t = try LlamaTestModel(config: LlamaTestModel.smallConfig())
        let state = t.model.makeState(maxContext: 4)
        #expect(throws: LlamaModelError.tokenOutOfRange(token: 96, vocabSize: 96)) {
            try t.model.forward([96], state: state)
        }
        #expect(throws: LlamaModelError.tokenOutOfRange(token: -1, vocabSize: 96)) {
            try t.model.forward([-1], state: state)
        }
        #expect(throws: LlamaModelError.batchEmpty) { try t.model.forward([], state: state) }
        try t.model.forward([1, 2, 3], state: state)
        #expect(throws: LlamaModelError.contextFull(position: 4, capacity: 4)) {
            try t.model.forward([4, 5], state: state)
        }
    }

    /// The observer sees every (layer, head) once per query, with probabilities summing to 1.
    @Test func attentionObserverSeesNormalizedRows() throws {
        final class Recorder: AttentionObserver {
            var calls = 0
            var maxError: Float = 0
            func attention(layer: Int, head: Int, queryPosition: Int, probabilities: UnsafeBufferPointer<Float>) {
                calls += 1
                maxError = max(maxError, abs(probabilities.reduce(0, +) - 1))
                if probabilities.count != queryPosition + 1 { maxError = .infinity }
            }
        }
        let t = try LlamaTestModel(config: LlamaTestModel.smallConfig())
        let state = t.model.makeState()
        let rec = Recorder()
        state.attentionObserver = rec
        try t.model.forward([1, 2, 3], state: state)
        try t.model.forward([4], state: state)
        let c = t.model.config
        #expect(rec.calls == 4 * c.nLayers * c.nHeads)
        #expect(rec.maxError < 1e-5)
    }

    @Test func configValidationNamesTheKey() {
        #expect(throws: LlamaModelError.invalidValue(key: "llama.attention.head_count", value: "7",
                                                     expected: "a divisor of llama.embedding_length = 64")) {
            try LlamaConfig(dim: 64, hiddenDim: 128, nLayers: 2, nHeads: 7, nKVHeads: 7, vocabSize: 96, seqLen: 128)
        }
        #expect(throws: LlamaModelError.invalidValue(key: "llama.attention.head_count_kv", value: "3",
                                                     expected: "a divisor of llama.attention.head_count = 4")) {
            try LlamaConfig(dim: 64, hiddenDim: 128, nLayers: 2, nHeads: 4, nKVHeads: 3, vocabSize: 96, seqLen: 128)
        }
    }
}
