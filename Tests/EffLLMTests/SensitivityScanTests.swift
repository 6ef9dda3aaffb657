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

    /// GPTQ specs need calibration Gram matrices; with them a plan applies GPTQ per tensor.
    /// The embedding / tied head can be planned too (no outliers, no GPTQ), is scanned from
    /// block 0, and joins the knapsack with its stored format as a zero-KL choice.
    @Test func gptqAndTheEmbeddingInScansAndPlans() throws {
        let tm = try LlamaTestModel(config: LlamaTestModel.smallConfig())
        let w = tm.model.weights
        let grams = try CalibrationGrams(model: tm.model, tokens: Self.tokens(100), ctx: 32)
        // 100 tokens in chunks of 32: the last 4 tokens are too few for a chunk of their own.
        #expect(grams.chunks == 3 && grams.tokenCount == 96)
        let g = grams.gram(layer: 1, site: .feedForwardHidden)
        #expect(g.count == 128 * 128)
        for i in 0..<128 {
            #expect(g[i * 128 + i] >= 0)
            for j in 0..<i { #expect(abs(g[i * 128 + j] - g[j * 128 + i]) <= 1e-4 * max(1, abs(g[i * 128 + j]))) }
        }

        var plan = Dictionary(uniqueKeysWithValues: w.linearTensors.map { ($0.name, try! WeightSpec(parsing: "Q3G32+mse+gptq")) })
        #expect(throws: WeightSpecError.needsCalibration("Q3G32+mse+gptq")) { try w.requantized(plan: plan) }
        let q4 = try WeightSpec(parsing: "Q4G32")
        plan[LlamaWeights.TensorName.tokenEmbedding] = q4
        let planned = try w.requantized(plan: plan, calibration: grams)
        #expect(planned.tokenEmbedding.format == q4.format)
        if w.tiedOutput { #expect(planned.output.format == q4.format) }
        // GPTQ moved errors: the codes differ from round-to-nearest with the same grid.
        let rtn = try w.requantized(WeightSpec(parsing: "Q3G32+mse"))
        let id = LinearTensorID(layer: 1, role: .down)
        #expect(Self.bytes(planned.linear(id)) != Self.bytes(rtn.linear(id)))
        let t = Self.tokens(20)
        #expect(try Self.logits(LlamaModel(weights: planned), t).allSatisfy(\.isFinite))
        #expect(throws: WeightPlanError.embeddingOption("Q4G32+gptq")) { try w.requantizedEmbedding(WeightSpec(parsing: "Q4G32+gptq")) }
        #expect(throws: WeightPlanError.embeddingOption("Q4G32+o1%")) { try w.requantizedEmbedding(WeightSpec(parsing: "Q4G32+o1%")) }

        // The scan measures the embedding after the linears; fewer bits cost more KL.
        let ref = LlamaModel(weights: try w.requantized(WeightSpec(format: .f32)))
        let scan = try SensitivityScan(reference: ref, tokens: Self.tokens(64), chunks: 2, ctx: 32)
        let ids = [LinearTensorID(layer: 0, role: .q)]
        let entries = try scan.run(tensors: ids, candidates: WeightSpec.list("Q3G32+gptq,Q4G32"),
                                   embedding: WeightSpec.list("Q8G32,Q2G32"), calibration: grams)
        #expect(entries.count == 4)
        let emb = entries.filter { $0.role == .embd }
        #expect(emb.count == 2 && emb.allSatisfy { $0.layer == -1 && $0.tensor == LlamaWeights.TensorName.tokenEmbedding })
        let kl8 = try #require(emb[0].kl), kl2 = try #require(emb[1].kl)
        #expect(kl8 > 0 && kl8 < kl2)
        #expect(throws: WeightSpecError.self) { _ = try scan.run(tensors: ids, candidates: WeightSpec.list("Q3G32+gptq")) }

        // The knapsack: a roomy budget keeps the stored embedding (KL 0); a tight one must shrink it.
        let report = ScanReport(modelFingerprint: "x", calibration: "c", calibrationHash: "h", chunks: 2, ctx: 32,
                                candidates: ["Q3G32+gptq", "Q4G32"], embeddingCandidates: ["Q8G32", "Q2G32"],
                                measuredKL: true, entries: entries, referenceSeconds: 0, seconds: 0)
        let stored = w.tokenEmbedding.byteCount
        let linearMin = entries.filter { $0.role != .embd }.map(\.bytes).min()!
        let roomy = try report.plan(name: "roomy", tensors: ids, linearBudget: 10 * stored, budgetKind: "size", budgetValue: 0,
                                    linearElements: 64 * 64, otherBytes: 7, scanPath: "s", embeddingBytes: stored)
        #expect(roomy.tensors.count == 2 && roomy.tensors.last?.spec == "file")
        let tight = try report.plan(name: "tight", tensors: ids, linearBudget: linearMin + emb[1].bytes, budgetKind: "size",
                                    budgetValue: 0, linearElements: 64 * 64, otherBytes: 7, scanPath: "s", embeddingBytes: stored)
        #expect(tight.tensors.last?.spec == "Q2G32" && tight.totalBytes == linearMin + emb[1].bytes + 7)
        #expect(tight.linearBytes == linearMin)
    }
}
