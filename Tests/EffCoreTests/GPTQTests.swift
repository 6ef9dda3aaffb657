import Foundation
import Testing
@testable import EffCore

/// GPTQ: the inverse Cholesky factor, the Gram accumulation, equality with round-to-nearest
/// when inputs are uncorrelated, and a smaller output error than round-to-nearest when they
/// are correlated (what GPTQ is for).
@Suite struct GPTQTests {
    /// Inputs X(n, width) with correlated columns: x = z A, z standard normal-ish, A random.
    static func correlatedInputs(n: Int, width: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        func u() -> Float { Float(rng.nextUnit() * 2 - 1) }
        let a = (0..<(width * width)).map { _ in u() * 0.3 }
        var x = [Float](repeating: 0, count: n * width)
        for t in 0..<n {
            let z = (0..<width).map { _ in u() }
            for j in 0..<width {
                var s: Float = z[j]
                for k in 0..<width { s += z[k] * a[k * width + j] }
                x[t * width + j] = s * (j % 7 == 0 ? 4 : 1)  // a few louder channels
            }
        }
        return x
    }

    static func gram(_ x: [Float], n: Int, width: Int) -> [Float] {
        var g = [Float](repeating: 0, count: width * width)
        x.withUnsafeBufferPointer { xb in
            g.withUnsafeMutableBufferPointer { GPTQ.accumulateGram(xb.baseAddress!, nTokens: n, width: width, into: $0.baseAddress!) }
        }
        return g
    }

    @Test func gramMatchesTheDefinition() {
        let n = 48, w = 40
        let x = Self.correlatedInputs(n: n, width: w, seed: 1)
        let g = Self.gram(x, n: n, width: w)
        for i in 0..<w {
            for j in 0..<w {
                var s = 0.0
                for t in 0..<n { s += Double(x[t * w + i]) * Double(x[t * w + j]) }
                #expect(abs(Double(g[i * w + j]) - s) <= 1e-3 * max(1, abs(s)))
            }
        }
    }

    @Test func factorIsTheUpperCholeskyOfTheDampedInverse() throws {
        let n = 200, w = 48
        let g = Self.gram(Self.correlatedInputs(n: n, width: w, seed: 2), n: n, width: w)
        let damp = 0.01
        let u = try g.withUnsafeBufferPointer { try GPTQ.inverseFactor(gram: $0.baseAddress!, n: w, damp: damp) }
        var mean = 0.0
        for i in 0..<w { mean += Double(g[i * w + i]) }
        mean /= Double(w)
        // Upper triangular, positive diagonal, and (H + lambda I) U^T U = I.
        for i in 0..<w {
            #expect(u[i * w + i] > 0)
            for j in 0..<i { #expect(u[i * w + j] == 0) }
        }
        for i in 0..<w {
            for j in 0..<w {
                var s = 0.0
                for k in 0..<w {
                    var uu = 0.0  // (U^T U)_kj
                    for m in 0...min(k, j) { uu += Double(u[m * w + k]) * Double(u[m * w + j]) }
                    let h = Double(g[i * w + k]) + (i == k ? damp * mean : 0)
                    s += h * uu
                }
                #expect(abs(s - (i == j ? 1 : 0)) < 1e-3)
            }
        }
    }

    @Test func notPositiveDefiniteIsAnError() {
        // Indefinite (eigenvalues 3 and -1) beyond what 1% damping repairs.
        let g: [Float] = [1, 2, 2, 1]
        #expect(throws: GPTQ.GPTQError.self) {
            _ = try g.withUnsafeBufferPointer { try GPTQ.inverseFactor(gram: $0.baseAddress!, n: 2, damp: 0.01) }
        }
    }

    /// Squared output error sum_t ||(W - Q) x_t||^2 of codec blocks `q` against `w`.
    static func outputError(_ w: [Float], _ q: UnsafeRawPointer, codec: LowBitCodec, rows: Int, cols: Int,
                            x: [Float], n: Int) -> Double {
        var dq = [Float](repeating: 0, count: rows * cols)
        dq.withUnsafeMutableBufferPointer { codec.dequantize(q, $0.baseAddress!, rows * cols) }
        var total = 0.0
        for t in 0..<n {
            for r in 0..<rows {
                var s = 0.0
                for j in 0..<cols { s += Double(w[r * cols + j] - dq[r * cols + j]) * Double(x[t * cols + j]) }
                total += s * s
            }
        }
        return total
    }

    @Test func uncorrelatedInputsGiveRoundToNearest() throws {
        let rows = 8, cols = 64
        var rng = SplitMix64(seed: 3)
        let w = (0..<(rows * cols)).map { _ in Float(rng.nextUnit() * 2 - 1) }
        // H diagonal: U diagonal, no error moves.
        var g = [Float](repeating: 0, count: cols * cols)
        for i in 0..<cols { g[i * cols + i] = Float(1 + i % 5) }
        let u = try g.withUnsafeBufferPointer { try GPTQ.inverseFactor(gram: $0.baseAddress!, n: cols) }
        for codec in [LowBitCodec(bits: 3, group: 32)!, LowBitCodec(bits: 4, group: 64)!, LowBitCodec(bits: 2, group: 32)!] {
            let bytes = rows * cols / codec.group * codec.blockBytes
            var a = [UInt8](repeating: 0, count: bytes)
            try w.withUnsafeBufferPointer { wb in
                try a.withUnsafeMutableBytes {
                    try GPTQ.quantize(wb.baseAddress!, rows: rows, cols: cols, codec: codec, factor: GPTQ.Factor(u: u), search: false, dst: $0.baseAddress!)
                }
            }
            // Each group's stored scale and min are its min/max ones, and every code is the
            // nearest for them: no error was moved.
            var dq = [Float](repeating: 0, count: rows * cols)
            a.withUnsafeBytes { ab in dq.withUnsafeMutableBufferPointer { codec.dequantize(ab.baseAddress!, $0.baseAddress!, rows * cols) } }
            for b in 0..<(rows * cols / codec.group) {
                let (d, m) = w.withUnsafeBufferPointer { codec.groupParameters($0.baseAddress! + b * codec.group, search: false) }
                let stored = a.withUnsafeBytes { (QuantBlocks.loadHalf($0.baseAddress! + b * codec.blockBytes, 0),
                                                  QuantBlocks.loadHalf($0.baseAddress! + b * codec.blockBytes, 2)) }
                #expect(stored.0 == d && stored.1 == m, "\(codec.name) group \(b)")
                for j in (b * codec.group)..<((b + 1) * codec.group) {
                    let c = min(Float(codec.maxCode), max(0, ((w[j] - m) * (1 / d)).rounded()))
                    #expect(abs(dq[j] - (c * d + m)) <= 1e-6 * max(1, abs(dq[j])), "\(codec.name) weight \(j)")
                }
            }
        }
    }

    @Test func correlatedInputsLoseLessOutputThanRoundToNearest() throws {
        let rows = 16, cols = 128, n = 256
        var rng = SplitMix64(seed: 4)
        let w = (0..<(rows * cols)).map { _ in Float(rng.nextUnit() * 2 - 1) * 0.1 }
        let x = Self.correlatedInputs(n: n, width: cols, seed: 5)
        let g = Self.gram(x, n: n, width: cols)
        let u = try g.withUnsafeBufferPointer { try GPTQ.inverseFactor(gram: $0.baseAddress!, n: cols) }
        for codec in [LowBitCodec(bits: 3, group: 32)!, LowBitCodec(bits: 2, group: 64)!, LowBitCodec(bits: 4, group: 32)!] {
            let bytes = rows * cols / codec.group * codec.blockBytes
            var gq = [UInt8](repeating: 0, count: bytes), rq = gq
            try w.withUnsafeBufferPointer { wb in
                try gq.withUnsafeMutableBytes {
                    try GPTQ.quantize(wb.baseAddress!, rows: rows, cols: cols, codec: codec, factor: GPTQ.Factor(u: u), search: false, dst: $0.baseAddress!)
                }
                rq.withUnsafeMutableBytes { codec.quantize(wb.baseAddress!, $0.baseAddress!, rows * cols) }
            }
            let act = try g.withUnsafeBufferPointer { try GPTQ.Factor.make(gram: $0.baseAddress!, n: cols, actOrder: true) }
            #expect(act.order != nil && Set(act.order!) == Set(0..<cols))
            var aq = gq
            try w.withUnsafeBufferPointer { wb in
                try aq.withUnsafeMutableBytes {
                    try GPTQ.quantize(wb.baseAddress!, rows: rows, cols: cols, codec: codec, factor: act, search: false, dst: $0.baseAddress!)
                }
            }
            let eg = gq.withUnsafeBytes { Self.outputError(w, $0.baseAddress!, codec: codec, rows: rows, cols: cols, x: x, n: n) }
            let ea = aq.withUnsafeBytes { Self.outputError(w, $0.baseAddress!, codec: codec, rows: rows, cols: cols, x: x, n: n) }
            let er = rq.withUnsafeBytes { Self.outputError(w, $0.baseAddress!, codec: codec, rows: rows, cols: cols, x: x, n: n) }
            #expect(eg < 0.8 * er, "\(codec.name): GPTQ \(eg) vs RTN \(er)")
            #expect(ea < 0.8 * er, "\(codec.name): GPTQ in act order \(ea) vs RTN \(er)")
        }
    }

    @Test func specsParseAndNeedCalibration() throws {
        let s = try WeightSpec(parsing: "Q3G64+mse+gptq")
        #expect(s.gptq && s.search && s.description == "Q3G64+mse+gptq")
        #expect(throws: WeightSpecError.self) { try WeightSpec(parsing: "Q4_1+gptq") }
        let w = [Float](repeating: 0.5, count: 64)
        #expect(throws: WeightSpecError.needsCalibration("Q3G32+gptq")) {
            _ = try w.withUnsafeBufferPointer {
                try Requantizer.quantize($0.baseAddress!, rows: 1, cols: 64, spec: WeightSpec(parsing: "Q3G32+gptq"))
            }
        }
    }
}
