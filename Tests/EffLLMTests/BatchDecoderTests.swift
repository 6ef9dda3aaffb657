import EffCore
import Testing
@testable import EffLLM

/// Batched multi-stream decode against separate single-sequence steps.
@Suite struct BatchDecoderTests {
    /// Same kernels and order as single steps; only the matmul's token grouping differs,
    /// which the fast kernels compute identically (KernelFastTests), so this is tight.
    static let logitTolerance: Float = 1e-4

    static func maxAbsDiff(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var m: Float = 0
        for i in 0..<n { m = max(m, abs(a[i] - b[i])) }
        return m
    }

    @Test func forkedStreamsMatchSingleStepsAndLeaveAtDifferentTimes() throws {
        let tm = try LlamaTestModel(config: LlamaTestModel.smallConfig())
        let model = tm.model
        let vocab = model.config.vocabSize
        let prompt: [Int32] = [3, 14, 15, 9, 26, 5, 35]

        // Shared prompt computed once; four forks continue it with different tokens.
        let root = model.makeState(maxContext: 64)
        try model.forward(prompt, state: root, logits: .none)
        let streams = (0..<4).map { _ in root.fork(maxContext: 64) }
        // Reference: the same continuations, each its own fork, one token at a time.
        let singles = (0..<4).map { _ in root.fork(maxContext: 64) }
        #expect(streams[0].cache.ownBytesInUse == 0)  // the prefix is shared, not copied

        let decoder = BatchDecoder(model: model, maxStreams: 4)
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: 4 * vocab)
        defer { logits.deallocate() }
        var active = Array(0..<4)
        let lengths = [5, 3, 6, 1]  // each stream leaves after this many steps
        var stepIndex = 0
        while !active.isEmpty {
            let tokens = active.map { Int32(($0 * 17 + stepIndex * 5 + 1) % vocab) }
            try decoder.step(tokens: tokens, states: active.map { streams[$0] }, logits: logits)
            for (slot, sIdx) in active.enumerated() {
                try model.forward([tokens[slot]], state: singles[sIdx], logits: .last)
                #expect(streams[sIdx].position == singles[sIdx].position)
                let d = Self.maxAbsDiff(logits + slot * vocab, singles[sIdx].logits, vocab)
                #expect(d <= Self.logitTolerance, "stream \(sIdx) step \(stepIndex): \(d)")
            }
            stepIndex += 1
            active.removeAll { lengths[$0] <= stepIndex }
        }
        #expect(root.position == prompt.count)
        #expect(streams.map(\.position) == lengths.map { prompt.count + $0 })
    }

    @Test func streamsFromDifferentPromptsAtDifferentDepths() throws {
        let tm = try LlamaTestModel(config: LlamaTestModel.smallConfig())
        let model = tm.model
        let vocab = model.config.vocabSize
        let a = model.makeState(maxContext: 64), b = model.makeState(maxContext: 64)
        let a1 = model.makeState(maxContext: 64), b1 = model.makeState(maxContext: 64)
        try model.forward([1, 2, 3, 4, 5, 6, 7, 8, 9], state: a, logits: .none)
        try model.forward([1, 2, 3, 4, 5, 6, 7, 8, 9], state: a1, logits: .none)
        try model.forward([40, 41], state: b, logits: .none)
        try model.forward([40, 41], state: b1, logits: .none)
        let decoder = BatchDecoder(model: model, maxStreams: 2)
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: 2 * vocab)
        defer { logits.deallocate() }
        try decoder.step(tokens: [10, 42], states: [a, b], logits: logits)
        try model.forward([10], state: a1)
        #expect(Self.maxAbsDiff(logits, a1.logits, vocab) <= Self.logitTolerance)
        try model.forward([42], state: b1)
        #expect(Self.maxAbsDiff(logits + vocab, b1.logits, vocab) <= Self.logitTolerance)
    }

    @Test func rejectsMisuse() throws {
        let tm = try LlamaTestModel(config: LlamaTestModel.smallConfig())
        let model = tm.model
        let decoder = BatchDecoder(model: model, maxStreams: 2)
        let s = model.makeState(maxContext: 2), t = model.makeState(maxContext: 8)
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: 3 * model.config.vocabSize)
        defer { logits.deallocate() }
        #expect(throws: BatchDecoderError.duplicateState(index: 1)) {
            try decoder.step(tokens: [1, 2], states: [s, s], logits: logits)
        }
        #expect(throws: BatchDecoderError.tooManyStreams(3, max: 2)) {
            try decoder.step(tokens: [1, 2, 3], states: [s, t, model.makeState()], logits: logits)
        }
        #expect(throws: LlamaModelError.tokenOutOfRange(token: 999, vocabSize: model.config.vocabSize)) {
            try decoder.step(tokens: [999], states: [t], logits: logits)
        }
        try decoder.step(tokens: [1], states: [s], logits: logits)
        try decoder.step(tokens: [1], states: [s], logits: logits)
        #expect(throws: LlamaModelError.contextFull(position: 2, capacity: 2)) {
            try decoder.step(tokens: [1], states: [s], logits: logits)
        }
    }
}
