import Foundation
import Testing
@testable import EffCore

@Suite struct KernelReferenceTests {
    /// Matmul agreement tolerance relative to sum |w_ij x_j| (f32 reassociation only).
    static let matmulRelativeTolerance: Float = 1e-5

    @Test(arguments: [GGMLType.f32, .f16, .q8_0, .q4_0, .q4_1])
    func matmulMatchesNaiveDequantizedProduct(_ type: GGMLType) throws {
        let rows = 70, cols = 96, nTokens = 5
        let wValues = testValues(rows * cols, seed: 3, scale: 0.5)
        var stored: [UInt8] = []
        for r in 0..<rows { stored += try type.quantize(Array(wValues[(r * cols)..<((r + 1) * cols)])) }
        let wf = try type.dequantize(stored, count: rows * cols)
        let x = testValues(nTokens * cols, seed: 4, scale: 1.5)
        var yBatch = [Float](repeating: .nan, count: nTokens * rows)
        var ySingle = [Float](repeating: .nan, count: nTokens * rows)
        try stored.withUnsafeBytes { sb in
            let w = try WeightMatrix(type: type, data: sb.baseAddress!, rows: rows, cols: cols)
            x.withUnsafeBufferPointer { xb in
                yBatch.withUnsafeMutableBufferPointer { yb in
                    KernelsReference.matmul(w, x: xb.baseAddress!, nTokens: nTokens, y: yb.baseAddress!)
                }
                ySingle.withUnsafeMutableBufferPointer { yb in
                    for t in 0..<nTokens {
                        KernelsReference.matmul(w, x: xb.baseAddress! + t * cols, nTokens: 1, y: yb.baseAddress! + t * rows)
                    }
                }
            }
        }
        for t in 0..<nTokens {
            for r in 0..<rows {
                var ref: Float = 0, mag: Float = 0
                for c in 0..<cols {
                    ref += wf[r * cols + c] * x[t * cols + c]
                    mag += abs(wf[r * cols + c] * x[t * cols + c])
                }
                let tol = Self.matmulRelativeTolerance * mag
                #expect(abs(yBatch[t * rows + r] - ref) <= tol)
                #expect(abs(ySingle[t * rows + r] - ref) <= tol)
            }
        }
    }

    @Test func weightMatrixRejectsPartialBlocksAndUnsupportedTypes() {
        let buf = [UInt8](repeating: 0, count: 1024)
        buf.withUnsafeBytes { b in
            #expect(throws: QuantError.partialBlock(type: .q4_1, count: 40)) {
                try WeightMatrix(type: .q4_1, data: b.baseAddress!, rows: 2, cols: 40)
            }
            #expect(throws: QuantError.unsupportedType(.q6_K)) {
                try WeightMatrix(type: .q6_K, data: b.baseAddress!, rows: 1, cols: 256)
            }
        }
    }

    @Test func rmsNormSoftmaxSwigluRope() {
        var x: [Float] = [1, -2, 3, 0.5]
        let w: [Float] = [1, 2, 0.5, 1]
        var out = [Float](repeating: 0, count: 4)
        Kernels.rmsNorm(x, weight: w, eps: 1e-5, n: 4, nTokens: 1, out: &out)
        let rms = ((1 + 4 + 9 + 0.25) / 4 + 1e-5 as Float).squareRoot()
        for i in 0..<4 { #expect(abs(out[i] - x[i] / rms * w[i]) < 1e-6) }

        var s: [Float] = [1, 2, 3, 1000]
        Kernels.softmax(&s, 3)
        let z = exp(Float(1)) + exp(Float(2)) + exp(Float(3))
        #expect(abs(s[0] - exp(Float(1)) / z) < 1e-6 && abs(s[2] - exp(Float(3)) / z) < 1e-6)
        #expect(s[3] == 1000)

        var g: [Float] = [0, 1, -1]
        Kernels.swiglu(gate: &g, up: [2, 2, 2], n: 3)
        #expect(g[0] == 0 && abs(g[1] - 2 / (1 + exp(-1))) < 1e-6 && abs(g[2] - (-2) / (1 + exp(1))) < 1e-6)

        // One head of size 4: pairs (0,1) and (2,3) rotate by their own angles.
        x = [1, 0, 0, 1]
        let ang: [Float] = [.pi / 2, .pi]
        Kernels.ropeNormal(&x, nHeads: 1, headSize: 4, cos: ang.map { cos($0) }, sin: ang.map { sin($0) })
        #expect(abs(x[0]) < 1e-6 && abs(x[1] - 1) < 1e-6 && abs(x[2]) < 1e-6 && abs(x[3] + 1) < 1e-6)
    }
}
