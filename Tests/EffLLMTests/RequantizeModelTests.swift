import EffCore
import EffTestSupport
import Foundation
import Testing
@testable import EffLLM

/// Model tier: requantizing the real SmolLM2 file's linear tensors (issue 11).
@Suite(.serialized, .enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
struct RequantizeModelTests {
    /// Requantizing the reference (the file's Q4_1 weights dequantized to f32) at 4 bits,
    /// group 32 with plain min/max gives back the file's Q4_1 blocks byte for byte.
    @Test func q4g32OfTheDequantizedFileIsTheFile() throws {
        let model = try LlamaModel(gguf: GGUFFile(path: TestPaths.model.path))
        let q4 = try #require(WeightFormat.named("Q4G32"))
        var tensors = 0, blocks = 0
        var differing: [String] = []
        for (l, lw) in model.weights.layers.enumerated() {
            for (name, m) in [("q", lw.wq), ("k", lw.wk), ("v", lw.wv), ("o", lw.wo),
                              ("gate", lw.wGate), ("up", lw.wUp), ("down", lw.wDown)] {
                try #require(m.format == .q4_1)
                let f32 = Requantizer.dequantize(m)
                let r = try f32.withUnsafeBufferPointer {
                    try Requantizer.quantize($0.baseAddress!, rows: m.rows, cols: m.cols, spec: WeightSpec(format: q4))
                }
                let a = UnsafeRawBufferPointer(start: m.data, count: m.byteCount)
                let b = UnsafeRawBufferPointer(start: r.linear.weight.data, count: r.linear.weight.byteCount)
                #expect(a.count == b.count)
                for blk in 0..<(a.count / 20) where !a[(blk * 20)..<(blk * 20 + 20)].elementsEqual(b[(blk * 20)..<(blk * 20 + 20)]) {
                    differing.append("blk.\(l).\(name) block \(blk)")
                }
                tensors += 1
                blocks += a.count / 20
            }
        }
        #expect(tensors == 210)
        #expect(differing.isEmpty, "\(differing.count) of \(blocks) blocks differ: \(differing.prefix(10))")
    }

    /// The requantized model runs through the same forward pass: Q4G32 (the file's bytes in
    /// effterm's own format and kernel) gives the file's logits, and a 3-bit variant with and
    /// without outliers stays close to them, the outliers bringing it closer.
    @Test func requantizedModelsRunAndOutliersHelp() throws {
        let model = try LlamaModel(gguf: GGUFFile(path: TestPaths.model.path))
        let vocab = model.config.vocabSize
        let tokens = Array(Int32(200)..<Int32(248))
        func logits(_ m: LlamaModel) throws -> [Float] {
            let s = m.makeState(maxContext: 64)
            let out = UnsafeMutablePointer<Float>.allocate(capacity: tokens.count * vocab)
            defer { out.deallocate() }
            try m.forward(tokens, state: s, logits: .all(out))
            return Array(UnsafeBufferPointer(start: out, count: tokens.count * vocab))
        }
        func kl(_ p: [Float], _ q: [Float]) -> Double {
            var total = 0.0
            for t in 0..<tokens.count {
                let a = p.withUnsafeBufferPointer { LogitMath.logSumExp($0.baseAddress! + t * vocab, vocab) }
                let b = q.withUnsafeBufferPointer { LogitMath.logSumExp($0.baseAddress! + t * vocab, vocab) }
                for v in 0..<vocab {
                    let lp = Double(p[t * vocab + v]) - a, lq = Double(q[t * vocab + v]) - b
                    total += exp(lp) * (lp - lq)
                }
            }
            return total / Double(tokens.count)
        }
        let file = try logits(model)
        let q4 = try logits(LlamaModel(weights: model.weights.requantized(WeightSpec(parsing: "Q4G32"))))
        let maxDiff = zip(file, q4).map { abs($0 - $1) }.max()!
        #expect(maxDiff <= 1e-3, "Q4G32 logits vs the file's: \(maxDiff)")
        let q3 = try LlamaModel(weights: model.weights.requantized(WeightSpec(parsing: "Q3G64")))
        let q3o = try LlamaModel(weights: model.weights.requantized(WeightSpec(parsing: "Q3G64+o0.5%")))
        #expect(q3o.weights.layers.allSatisfy { ($0.outliers?.q.count ?? 0) == Int((0.005 * 576 * 576).rounded()) })
        let klPlain = kl(file, try logits(q3)), klOut = kl(file, try logits(q3o))
        #expect(klPlain > 0 && klPlain.isFinite, "Q3G64 KL \(klPlain)")
        #expect(klOut < klPlain, "outliers should help: \(klOut) vs \(klPlain)")
        let (bytes, elements) = q3.weights.linearStorage
        #expect(Double(bytes * 8) / Double(elements) == 3.5)
    }
}
