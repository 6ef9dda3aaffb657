import EffCore
import Testing
@testable import EffLLM

/// Observers on every path of the one forward pass: batched decode included, and observing
/// never changes an output bit.
@Suite struct ForwardObserverTests {
    final class Recorder: AttentionObserver, ResidualObserver {
        var calls: [(layer: Int, head: Int, query: Int, sum: Float, count: Int)] = []
        var residuals: [(layer: Int, position0: Int, nTokens: Int)] = []
        func attention(layer: Int, head: Int, queryPosition: Int, probabilities: UnsafeBufferPointer<Float>) {
            calls.append((layer, head, queryPosition, probabilities.reduce(0, +), probabilities.count))
        }
        func residual(layer: Int, position0: Int, rows: UnsafeBufferPointer<Float>, nTokens: Int) {
            residuals.append((layer, position0, nTokens))
        }
    }

    @Test(arguments: [KVFormat.f32, .f16, .q8])
    func batchedDecodeFeedsEveryObserverAndKeepsItsBits(_ format: KVFormat) throws {
        let tm = try LlamaTestModel(config: LlamaTestModel.smallConfig())
        let model = tm.model, c = model.config
        let vocab = c.vocabSize
        func streams() throws -> [LlamaState] {
            let root = model.makeState(maxContext: 64, kvFormat: format)
            try model.forward([3, 14, 15, 9, 26], state: root, logits: .none)
            return (0..<3).map { _ in root.fork(maxContext: 64) }
        }
        let plain = try streams(), watched = try streams()
        let recorders = (0..<3).map { _ in Recorder() }
        for (s, r) in zip(watched, recorders) { s.attentionObserver = r; s.residualObserver = r }
        let decoder = BatchDecoder(model: model, maxStreams: 3)
        let a = UnsafeMutablePointer<Float>.allocate(capacity: 3 * vocab), b = UnsafeMutablePointer<Float>.allocate(capacity: 3 * vocab)
        defer { a.deallocate(); b.deallocate() }
        for step in 0..<2 {
            let tokens: [Int32] = [Int32(7 + step), 40, 81]
            try decoder.step(tokens: tokens, states: plain, logits: a)
            try decoder.step(tokens: tokens, states: watched, logits: b)
            for i in 0..<(3 * vocab) { #expect(a[i] == b[i]) }
        }
        for r in recorders {
            // Two steps x layers x heads, each a full normalized row over positions 0...query.
            #expect(r.calls.count == 2 * c.nLayers * c.nHeads)
            #expect(r.calls.allSatisfy { abs($0.sum - 1) < 1e-5 && $0.count == $0.query + 1 })
            #expect(Set(r.calls.map(\.query)) == [5, 6])
            #expect(r.residuals.count == 2 * c.nLayers && r.residuals.allSatisfy { $0.nTokens == 1 })
        }
    }
}
