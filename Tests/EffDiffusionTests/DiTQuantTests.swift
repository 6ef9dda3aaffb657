import EffCore
import Foundation
import Testing
@testable import EffDiffusion

/// W8A8 block linears: the static-activation kernel against a plain Swift oracle, and the
/// quantized DiT against the f32 one on the PyTorch fixture's inputs.
@Suite struct DiTQuantTests {
    /// `FastKernels.matmul(activationStep:)` rounds every activation at the one step d and
    /// clips at ±127 d; the oracle does the same in Double over the dequantized Q8_0 rows.
    @Test func staticActivationsRoundAtOneStepAndClip() throws {
        let rows = 24, cols = 96, tokens = 5
        var rng = SplitMix64(seed: 7)
        let w = (0..<(rows * cols)).map { _ in Float(rng.nextUnit() * 2 - 1) }
        // Some activations far beyond 127 d so the clip matters.
        let x = (0..<(tokens * cols)).map { i in Float(rng.nextUnit() * 2 - 1) * (i % 17 == 0 ? 40 : 3) }
        let d: Float = 0.05
        let q = try w.withUnsafeBufferPointer {
            try Requantizer.quantize($0.baseAddress!, rows: rows, cols: cols, spec: WeightSpec(format: .q8_0))
        }
        var deq = [Float](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            try deq.withUnsafeMutableBufferPointer {
                try WeightFormat.q8_0.dequantizeRow(q.linear.weight.data + r * q.linear.weight.rowBytes,
                                                    into: $0.baseAddress! + r * cols, count: cols)
            }
        }
        var y = [Float](repeating: 0, count: tokens * rows)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                FastKernels.matmul(q.linear.weight, x: xp.baseAddress!, nTokens: tokens, y: yp.baseAddress!, activationStep: d)
            }
        }
        var clipped = 0
        for t in 0..<tokens {
            for r in 0..<rows {
                var ref = 0.0
                for c in 0..<cols {
                    let k = (x[t * cols + c] / d).rounded(.toNearestOrEven)
                    if abs(k) > 127 { clipped += 1 }
                    ref += Double(deq[r * cols + c]) * Double(d) * Double(min(127, max(-127, k)))
                }
                #expect(abs(Double(y[t * rows + r]) - ref) <= 1e-3 * max(1, abs(ref)), "token \(t) row \(r): \(y[t * rows + r]) vs \(ref)")
            }
        }
        #expect(clipped > 0, "the inputs exercise the clip")
    }

    /// Relative RMS error of the network output against f32 PyTorch: W8A8 adds a small,
    /// nonzero error; static scales calibrated on these very inputs stay in the same range.
    @Test func w8a8ForwardStaysCloseToF32() throws {
        let b = try DiTBundle.bundled()
        func relRMS(_ a: [Float], _ ref: [Float]) -> Double {
            let num = zip(a, ref).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }
            return (num / ref.reduce(0.0) { $0 + Double($1 * $1) }).squareRoot()
        }
        let f32 = try Fixtures.forward(b.model)
        let base = relRMS(f32.out, f32.expected)

        let dynamic = try DiTQuant.w8a8(weights: b.weights, activations: .dynamic)
        #expect(dynamic.blockBytes * 3 < dynamic.floatBytes, "\(dynamic.blockBytes) vs \(dynamic.floatBytes) bytes")
        let dyn = try Fixtures.forward(DiT(weights: b.weights, quant: dynamic))
        let dynErr = relRMS(dyn.out, dyn.expected)
        #expect(dynErr > base && dynErr < 0.02, "dynamic W8A8 relative RMS \(dynErr) (f32 \(base))")

        var recording = b.model
        let ranges = DiTActivationRanges(layers: b.config.nLayers)
        recording.rangeRecorder = ranges
        _ = try Fixtures.forward(recording)
        #expect(ranges.maxAbs.allSatisfy { $0.allSatisfy { $0 > 0 && $0.isFinite } })
        let stat = try Fixtures.forward(DiT(weights: b.weights, quant: try DiTQuant.w8a8(weights: b.weights, activations: .static, ranges: ranges)))
        let statErr = relRMS(stat.out, stat.expected)
        #expect(statErr > base && statErr < 0.1, "static W8A8 relative RMS \(statErr)")
        #expect(throws: DiTQuant.Error.self) { try DiTQuant.w8a8(weights: b.weights, activations: .static) }
        #expect(throws: DiTQuant.Error.self) {
            try DiTQuant.w8a8(weights: b.weights, activations: .static, ranges: DiTActivationRanges(layers: 1))
        }
        #expect(throws: DiTQuant.Error.self) { try DiTQuant(weights: b.weights, formats: [[.q8_0]]) }
        #expect(throws: DiTQuant.Error.self) { try DiTQuant(weights: b.weights, formats: DiTQuant.uniform(b.weights, .f16)) }
    }
}
