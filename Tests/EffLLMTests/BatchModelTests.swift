import EffCore
import EffTestSupport
import Foundation
import Testing
@testable import EffLLM

/// Model tier: batched multi-stream decode on the real SmolLM2 file.
@Suite(.serialized, .enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
struct BatchModelTests {
    /// Batched and single steps run the same kernels on the same rows (see BatchDecoderTests).
    static let logitTolerance: Float = 1e-3

    @Test func forkedStreamsOnTheRealModelMatchSingleSteps() throws {
        let model = try LlamaModel(gguf: GGUFFile(path: TestPaths.model.path))
        let vocab = model.config.vocabSize
        let root = model.makeState(maxContext: 96)
        try model.forward(Array(Int32(100)..<Int32(140)), state: root, logits: .none)
        let streams = (0..<8).map { _ in root.fork() }
        let singles = (0..<8).map { _ in root.fork() }
        let decoder = BatchDecoder(model: model, maxStreams: 8)
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: 8 * vocab)
        defer { logits.deallocate() }
        for step in 0..<3 {
            let tokens = (0..<8).map { Int32(1000 + 37 * $0 + step) }
            try decoder.step(tokens: tokens, states: streams, logits: logits)
            for i in 0..<8 {
                try model.forward([tokens[i]], state: singles[i])
                var d: Float = 0
                for v in 0..<vocab { d = max(d, abs(logits[i * vocab + v] - singles[i].logits[v])) }
                #expect(d <= Self.logitTolerance, "stream \(i) step \(step): \(d)")
            }
        }
        #expect(streams.allSatisfy { $0.cache.ownBytesInUse == 3 * 2 * model.config.nLayers * model.config.kvDim * 4 })
    }

    @Test func benchReportsPositiveRatesAndRatios() throws {
        let model = try LlamaModel(gguf: GGUFFile(path: TestPaths.model.path))
        let bench = ModelBench(model: model, reps: 1)
        #expect(try bench.prefill(tokens: 64).tokPerSec > 0)
        #expect(try bench.decode(depth: 16, tokens: 4).tokPerSec > 0)
        let rows = try bench.batched(streams: [1, 4], steps: 2, prompt: 8)
        #expect(rows.map(\.streams) == [1, 4])
        #expect(rows[0].stepRatio == 1)
        #expect(rows[1].stepRatio > 0 && rows[1].tokPerSec > 0)
    }
}
