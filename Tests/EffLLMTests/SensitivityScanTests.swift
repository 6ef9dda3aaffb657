import EffCore
import Foundation
import Testing
@testable import EffLLM

/// Per-tensor requantization, the forward pass from a cached residual stream and the scan,
/// on the tiny random model (no file).
@Suite struct SensitivityScanTests {
    static func tokens(_ n: Int) -> [Int32] { (0..<n).map { Int32(($0 * 37 + 11) % 96) } }

    static func logits(_ m: LlamaModel, _ tokens: [Int32]) throws -> [Float] {
        let s = m.makeState(maxContext: tokens.count, maxBatch: tokens.count)
        var out = [Float](repeating: 0, count: tokens.count * m.config.vocabSize)
        try out.withUnsafeMutableBufferPointer { try m.forward(tokens, state: s, logits: .all($0.baseAddress!)) }
        return out
    }

    static func bytes(_ l: Linear) -> [UInt8] { Array(UnsafeRawBufferPointer(start: l.weight.data, count: l.weight.byteCount)) }

    /// A plan giving every tensor the same spec is the uniform requantization, byte for byte;
    /// a mixed plan applies each tensor's own spec and keeps `file` tensors as they are.
    @Test func perTensorPlanEqualsUniformWhenAllSpecsAreEqual() throws {
        let tm = try LlamaTestModel(config: LlamaTestModel.smallConfig())
        let w = tm.model.weights
        let spec = try WeightSpec(parsing: "Q3G32+o1%")
        let uniform = try w.requantized(spec)
        let plan = Dictionary(uniqueKeysWithValues: w.linearTensors.map { ($0.name, spec) })
        let planned = try w.requantized(plan: plan)
        for id in w.linearTensors {
            #expect(Self.bytes(uniform.linear(id)) == Self.bytes(planned.linear(id)), "\(id)")
            #expect(uniform.linear(id).outliers == planned.linear(id).outliers)
            #expect(!planned.linear(id).outliers.isEmpty)
        }
        let t = Self.tokens(20)
        #expect(try Self.logits(LlamaModel(weights: uniform), t) == Self.logits(LlamaModel(weights: planned), t))

        var mixed = plan
        let q8 = try WeightSpec(parsing: "Q8G32")
        mixed["blk.1.ffn_down.weight"] = q8
        mixed["blk.0.attn_v.weight"] = .file
        let m = try w.requantized(plan: mixed)
        #expect(m.linear(LinearTensorID(layer: 1, role: .down)).weight.format == q8.format)
        #expect(m.linear(LinearTensorID(layer: 0, role: .v)).weight.data == w.linear(LinearTensorID(layer: 0, role: .v)).weight.data)
        #expect(m.linear(LinearTensorID(layer: 0, role: .q)).weight.format == spec.format)
    }

    @Test func plansForAnotherModelAreRefused() throws {
        let tm = try LlamaTestModel(config: LlamaTestModel.smallConfig())
        let w = tm.model.weights
        var plan = Dictionary(uniqueKeysWithValues: w.linearTensors.map { ($0.name, WeightSpec.file) })
        plan["blk.7.attn_q.weight"] = .file
        #expect(throws: WeightPlanError.unknownTensor("blk.7.attn_q.weight")) { try w.requantized(plan: plan) }
        plan["blk.7.attn_q.weight"] = nil
        plan["blk.1.ffn_up.weight"] = nil
        #expect(throws: WeightPlanError.missingTensor("blk.1.ffn_up.weight")) { try w.requantized(plan: plan) }
    }

    /// Running blocks l... from the residual stream that entered block l gives the full
    /// forward pass's logits exactly (same kernels, same order).
    @Test func forwardFromACachedResidualEqualsTheFullPass() throws {
        final class Keep: ResidualObserver {
            var after: [[Float]] = []
            func residual(layer: Int, position0: Int, rows: UnsafeBufferPointer<Float>, nTokens: Int) { after.append(Array(rows)) }
        }
        let tm = try LlamaTestModel(config: LlamaTestModel.smallConfig())  // owns the weights' memory
        let m = tm.model
        let t = Self.tokens(24)
        let full = try Self.logits(m, t)
        let s = m.makeState(maxContext: 24, maxBatch: 24)
        let keep = Keep()
        s.residualObserver = keep
        var out = [Float](repeating: 0, count: full.count)
        try t.withUnsafeBufferPointer { tb in
            try out.withUnsafeMutableBufferPointer {
                try m.forward(tb, fromLayer: 0, residual: nil, state: s, logits: $0.baseAddress!)
            }
        }
        #expect(out == full)
        #expect(keep.after.count == 2)
        let s2 = m.makeState(maxContext: 24, maxBatch: 24)
        try t.withUnsafeBufferPointer { tb in
            try out.withUnsafeMutableBufferPointer { o in
                try keep.after[0].withUnsafeBufferPointer { r in
                    try m.forward(tb, fromLayer: 1, residual: r.baseAddress!, state: s2, logits: o.baseAddress!)
                }
            }
        }
        #expect(out == full)
        #expect(throws: LlamaModelError.self) {
            try t.withUnsafeBufferPointer { tb in
                try out.withUnsafeMutableBufferPointer { try m.forward(tb, fromLayer: 1, residual: nil, state: s2, logits: $0.baseAddress!) }
            }
        }
    }

    /// On the tiny model: an f32 candidate (no change) scores KL 0 and proxy 0; 8 bits beat
    /// 2 bits on both; the proxy equals the weighted error computed by hand.
    @Test func scanOnTheTinyModel() throws {
        let tm = try LlamaTestModel(config: LlamaTestModel.smallConfig())
        let ref = LlamaModel(weights: try tm.model.weights.requantized(WeightSpec(format: .f32)))
        let scan = try SensitivityScan(reference: ref, tokens: Self.tokens(64), chunks: 2, ctx: 32)
        let ids = [LinearTensorID(layer: 0, role: .gate), LinearTensorID(layer: 1, role: .o)]
        let specs = try WeightSpec.list("F32,Q8G32,Q2G32")
        let entries = try scan.run(tensors: ids, candidates: specs)
        #expect(entries.count == 6)
        for id in ids {
            let e = entries.filter { $0.tensor == id.name }
            #expect(e[0].kl == 0 && e[0].proxy == 0)
            let kl8 = try #require(e[1].kl), kl2 = try #require(e[2].kl)
            #expect(kl8 > 0 && kl8 < kl2, "\(id): Q8 \(kl8) Q2 \(kl2)")
            #expect(e[1].proxy < e[2].proxy)
        }
        // Proxy by hand for the second tensor at Q2G32.
        let w = Requantizer.dequantize(ref.weights.linear(ids[1]).weight)
        let q = try w.withUnsafeBufferPointer { try Requantizer.quantize($0.baseAddress!, rows: 64, cols: 64, spec: specs[2]) }
        let dq = Requantizer.dequantize(q.linear.weight)
        let m2 = scan.inputMoments(ids[1])
        var expected = 0.0
        for r in 0..<64 { for j in 0..<64 { let d = Double(w[r * 64 + j] - dq[r * 64 + j]); expected += m2[j] * d * d } }
        #expect(abs(entries[5].proxy - expected) <= 1e-6 * expected)
        // Cancelling stops between pairs.
        var polls = 0
        #expect(throws: SensitivityScan.ScanError.self) {
            _ = try scan.run(tensors: ids, candidates: specs, isCancelled: { polls += 1; return polls > 2 })
        }
    }
}
