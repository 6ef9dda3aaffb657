import CEffKernels
import Foundation
import Testing
@testable import EffCore

/// effterm's own Q<bits>G<group> formats: bit planes, the reference codecs (the oracle),
/// Q4G32 = ggml's Q4_1, the AVX2 kernel against the oracle, clip search, outliers, specs.
@Suite struct LowBitFormatTests {
    static let codecs: [LowBitCodec] = LowBitCodec.bitWidths.flatMap { b in
        LowBitCodec.groupSizes.map { LowBitCodec(bits: b, group: $0)! }
    }

    @Test func tableRowsAndNames() throws {
        #expect(WeightFormat.lowBit.count == 18)
        let q3 = try #require(WeightFormat.named("Q3G64"))
        #expect(q3.blockSize == 64 && q3.bytesPerBlock == 4 + 24 && q3.ggmlType == nil && q3.isComputable)
        #expect(q3.bitsPerWeight == 3.5)
        #expect(WeightFormat.named("Q4G32")!.bitsPerWeight == 5.0)
        #expect(WeightFormat.named("Q2G128")!.bitsPerWeight == 2.25)
        #expect(q3.fast == .lowBit(bits: 3, group: 64) && q3.lowBitCodec == LowBitCodec(bits: 3, group: 64))
        #expect(LowBitCodec(bits: 7, group: 32) == nil && LowBitCodec(bits: 4, group: 48) == nil)
        // The x8 copy the kernels read takes exactly the tensor's bytes (rows padded to 8).
        for c in Self.codecs {
            #expect(eff_qg_x8_bytes(Int32(c.bits), Int32(c.group), 16, 384) == 16 * (384 / c.group) * c.blockBytes)
            #expect(eff_qg_x8_bytes(Int32(c.bits), Int32(c.group), 13, 384) == 16 * (384 / c.group) * c.blockBytes)
        }
        #expect(eff_qg_x8_bytes(7, 32, 8, 64) == 0 && eff_qg_x8_bytes(4, 32, 8, 48) == 0)
    }

    @Test func bitPlanesRoundTripEveryCode() {
        for bits in LowBitCodec.bitWidths {
            let c = LowBitCodec(bits: bits, group: 32)!
            for seed in 0..<20 {
                var state = UInt64(seed * 31 + bits)
                let codes: [UInt8] = (0..<32).map { _ in
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    return UInt8((state >> 33) % UInt64(c.maxCode + 1))
                }
                var packed = [UInt8](repeating: 0xAA, count: 4 * bits)
                var back = [UInt8](repeating: 0, count: 32)
                codes.withUnsafeBufferPointer { cp in
                    packed.withUnsafeMutableBufferPointer { c.pack32(cp.baseAddress!, $0.baseAddress!) }
                }
                packed.withUnsafeBufferPointer { pp in
                    back.withUnsafeMutableBufferPointer { c.unpack32(pp.baseAddress!, $0.baseAddress!) }
                }
                #expect(back == codes, "bits \(bits) seed \(seed)")
            }
        }
    }

    @Test func q4g32IsByteForByteQ4_1() throws {
        let q4 = try #require(WeightFormat.named("Q4G32"))
        for seed in UInt64(0)..<8 {
            var values = testValues(576 * 4, seed: seed, scale: 0.3)
            values[5] = 2.5  // an outlier, and a constant block
            for j in 64..<96 { values[j] = 0.125 }
            let mine = try q4.quantize(values)
            let ggml = try GGMLType.q4_1.quantize(values)
            #expect(mine == ggml)
            #expect(try q4.dequantize(mine, count: values.count) == GGMLType.q4_1.dequantize(ggml, count: values.count))
        }
    }

    /// Round-to-nearest error per weight is at most d/2, plus the f16 rounding of d and m.
    @Test func quantizationErrorWithinHalfAStep() throws {
        for c in Self.codecs {
            let f = c.format
            let values = testValues(1152, seed: UInt64(c.bits * 1000 + c.group), scale: 0.4)
            let back = try f.dequantize(try f.quantize(values), count: values.count)
            for g in 0..<(values.count / c.group) {
                let xs = values[(g * c.group)..<((g + 1) * c.group)]
                let lo = xs.min()!, hi = xs.max()!
                let step = (hi - lo) / Float(c.maxCode)
                // code * d16 + m16: |code| * |d - d16| + |m - m16| on top of step / 2.
                let bound = step / 2 + Float(c.maxCode) * step * f16Relative + abs(lo) * f16Relative + 1e-6
                for j in (g * c.group)..<((g + 1) * c.group) {
                    #expect(abs(back[j] - values[j]) <= bound, "\(c.name) group \(g) index \(j)")
                }
            }
        }
    }

    @Test func referenceDotIsTheDequantizedProduct() throws {
        for c in Self.codecs {
            let f = c.format
            let values = testValues(768, seed: UInt64(c.bits + c.group), scale: 0.5)
            let x = testValues(768, seed: 99, scale: 1.5)
            let stored = try f.quantize(values)
            let deq = try f.dequantize(stored, count: 768)
            var exact: Float = 0, mag: Float = 0
            for j in 0..<768 { exact += deq[j] * x[j]; mag += abs(deq[j] * x[j]) }
            let dot = try stored.withUnsafeBytes { s in try x.withUnsafeBufferPointer { try f.dotRow(s.baseAddress!, $0.baseAddress!, count: 768) } }
            #expect(abs(dot - exact) <= 2e-5 * mag, "\(c.name)")
        }
    }

    /// The AVX2 kernel against the f32 product of the dequantized weights: the only error is
    /// the activations' 8-bit rounding (bound as KernelFastTests.activationBound) plus float
    /// reassociation.
    @Test(.enabled(if: FastKernels.isAvailable, "no AVX2 + FMA"), arguments: [2, 3, 4, 5, 6, 8])
    func fastKernelMatchesTheOracle(_ bits: Int) throws {
        let pool = ComputePool(threads: 2)
        for group in LowBitCodec.groupSizes {
            let f = LowBitCodec(bits: bits, group: group)!.format
            for (rows, cols, nTokens) in [(13, 384, 1), (8, 128, 3), (33, 576 - 576 % group, 4), (21, 256, 7), (5, 128, 70)] {
                guard cols % group == 0 else { continue }
                let values = testValues(rows * cols, seed: UInt64(rows * 3 + bits), scale: 0.5)
                var stored: [UInt8] = []
                for r in 0..<rows { stored += try f.quantize(Array(values[(r * cols)..<((r + 1) * cols)])) }
                let deq = try f.dequantize(stored, count: rows * cols)
                let x = testValues(nTokens * cols, seed: UInt64(cols + nTokens), scale: 1.5)
                var y = [Float](repeating: .nan, count: nTokens * rows)
                try stored.withUnsafeBytes { sb in
                    let w = try WeightMatrix(format: f, data: sb.baseAddress!, rows: rows, cols: cols)
                    x.withUnsafeBufferPointer { xb in
                        y.withUnsafeMutableBufferPointer { FastKernels.matmul(w, x: xb.baseAddress!, nTokens: nTokens, y: $0.baseAddress!, pool: pool) }
                    }
                }
                for t in 0..<nTokens {
                    for r in 0..<rows {
                        var exact: Float = 0, mag: Float = 0, bound: Float = 0
                        for b in 0..<(cols / 32) {
                            var amax: Float = 0, wsum: Float = 0
                            for j in (b * 32)..<(b * 32 + 32) {
                                let wv = deq[r * cols + j], xv = x[t * cols + j]
                                exact += wv * xv; mag += abs(wv * xv)
                                amax = max(amax, abs(xv)); wsum += abs(wv)
                            }
                            bound += amax / 127 / 2 * wsum
                        }
                        let got = y[t * rows + r]
                        #expect(abs(got - exact) <= bound * 1.02 + 2e-5 * mag,
                                "\(f.name) \(rows)x\(cols) token \(t) row \(r): \(got) vs \(exact)")
                    }
                }
            }
        }
    }

    /// Q, K, V (or gate, up) in low-bit formats, alike or mixed with the int8-tile ones, run
    /// as one fused pass that quantizes the activations once: every output bit-identical to
    /// one call per matrix.
    @Test(.enabled(if: FastKernels.isAvailable, "no AVX2 + FMA"),
          arguments: [["Q3G64", "Q3G64", "Q3G64"], ["Q4G32", "Q2S", "Q4_1"], ["Q8G64", "Q5G32", "Q8_0"]])
    func fusedLowBitMatmulEqualsSeparateCalls(_ names: [String]) throws {
        let cols = 576, pool = ComputePool(threads: 2)
        let formats = try names.map { try #require(WeightFormat.named($0)) }
        // Row counts off the 16-row chunks, so chunks straddle matrices.
        let rows = [40, 17, 9]
        var stored: [[UInt8]] = []
        for (i, f) in formats.enumerated() {
            let values = testValues(rows[i] * cols, seed: UInt64(60 + i), scale: 0.5)
            var bytes: [UInt8] = []
            for r in 0..<rows[i] { bytes += try f.quantize(Array(values[(r * cols)..<((r + 1) * cols)])) }
            stored.append(bytes)
        }
        for nTokens in [1, 4, 9] {
            let x = testValues(nTokens * cols, seed: UInt64(70 + nTokens), scale: 1.5)
            var separate: [[Float]] = []
            var ya = [Float](repeating: .nan, count: nTokens * rows[0])
            var yb = [Float](repeating: .nan, count: nTokens * rows[1])
            var yc = [Float](repeating: .nan, count: nTokens * rows[2])
            try stored[0].withUnsafeBytes { s0 in
                try stored[1].withUnsafeBytes { s1 in
                    try stored[2].withUnsafeBytes { s2 in
                        let w = try zip([s0, s1, s2], formats.indices).map { s, i in
                            try WeightMatrix(format: formats[i], data: s.baseAddress!, rows: rows[i], cols: cols)
                        }
                        for m in w {
                            var y = [Float](repeating: .nan, count: nTokens * m.rows)
                            FastKernels.matmul(m, x: x, nTokens: nTokens, y: &y, pool: pool)
                            separate.append(y)
                        }
                        ya.withUnsafeMutableBufferPointer { a in
                            yb.withUnsafeMutableBufferPointer { b in
                                yc.withUnsafeMutableBufferPointer { c in
                                    FastKernels.matmul(x: x, nTokens: nTokens, (w[0], a.baseAddress!), (w[1], b.baseAddress!),
                                                       (w[2], c.baseAddress!), pool: pool)
                                }
                            }
                        }
                    }
                }
            }
            #expect(!separate[0].contains { $0.isNaN })
            #expect([ya, yb, yc] == separate, "\(names) \(nTokens) tokens")
        }
    }

    /// Super-blocks: 0.29 bit per weight of scales, error close to Q<bits>G64's, and the
    /// kernel (over the Q<bits>G64 expansion) against the oracle.
    @Test func superBlocksAreSmallCloseAndComputedRight() throws {
        #expect(WeightFormat.superBlock.map(\.name) == ["Q2S", "Q3S", "Q4S"])
        let q3s = try #require(WeightFormat.named("Q3S"))
        #expect(q3s.blockSize == 192 && q3s.bytesPerBlock == 79 && abs(q3s.bitsPerWeight - 3.2917) < 1e-3)
        #expect(q3s.rowBytes(576) == 3 * 79 && q3s.rowBytes(1536) == 8 * 79)
        let pool = ComputePool(threads: 2)
        for codec in SuperBlockCodec.bitWidths.map({ SuperBlockCodec(bits: $0)! }) {
            let f = codec.format, g64 = codec.inner.format
            let values = testValues(576 * 8, seed: UInt64(codec.bits), scale: 0.3)
            func sse(_ f: WeightFormat) throws -> Float {
                let d = try f.dequantize(try f.quantize(values), count: values.count)
                return zip(d, values).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            }
            let (es, eg) = (try sse(f), try sse(g64))
            #expect(es <= eg * 1.6, "\(f.name): squared error \(es) vs \(g64.name) \(eg)")
            for (rows, cols, nTokens) in [(13, 576, 1), (8, 1536, 3), (19, 192, 5)] {
                let w = testValues(rows * cols, seed: UInt64(rows + cols), scale: 0.5)
                var stored: [UInt8] = []
                for r in 0..<rows { stored += try f.quantize(Array(w[(r * cols)..<((r + 1) * cols)])) }
                let deq = try f.dequantize(stored, count: rows * cols)
                let x = testValues(nTokens * cols, seed: 77, scale: 1.5)
                var y = [Float](repeating: .nan, count: nTokens * rows)
                try stored.withUnsafeBytes { sb in
                    let m = try WeightMatrix(format: f, data: sb.baseAddress!, rows: rows, cols: cols)
                    x.withUnsafeBufferPointer { xb in
                        y.withUnsafeMutableBufferPointer { FastKernels.matmul(m, x: xb.baseAddress!, nTokens: nTokens, y: $0.baseAddress!, pool: pool) }
                    }
                }
                for t in 0..<nTokens {
                    for r in 0..<rows {
                        var exact: Float = 0, mag: Float = 0, bound: Float = 0
                        for b in 0..<(cols / 32) {
                            var amax: Float = 0, wsum: Float = 0
                            for j in (b * 32)..<(b * 32 + 32) {
                                let wv = deq[r * cols + j], xv = x[t * cols + j]
                                exact += wv * xv; mag += abs(wv * xv)
                                amax = max(amax, abs(xv)); wsum += abs(wv)
                            }
                            bound += amax / 127 / 2 * wsum
                        }
                        #expect(abs(y[t * rows + r] - exact) <= bound * 1.02 + 2e-5 * mag, "\(f.name) \(rows)x\(cols) t \(t) r \(r)")
                    }
                }
            }
        }
        #expect(try WeightSpec(parsing: "Q3S+o0.5%").format == q3s)
        #expect(throws: WeightSpecError.self) { try WeightSpec(parsing: "Q3S+mse") }
    }

    @Test func clipSearchNeverLosesToMinMax() throws {
        for c in Self.codecs where c.bits <= 4 {
            var values = testValues(576 * 2, seed: UInt64(c.group + c.bits), scale: 0.2)
            for j in stride(from: 7, to: values.count, by: 97) { values[j] *= 9 }  // heavy tails
            let plain = try c.format.quantize(values)
            var searched = [UInt8](repeating: 0, count: plain.count)
            values.withUnsafeBufferPointer { v in searched.withUnsafeMutableBytes { c.quantizeSearch(v.baseAddress!, $0.baseAddress!, values.count) } }
            func sse(_ q: [UInt8]) throws -> Float {
                let d = try c.format.dequantize(q, count: values.count)
                return zip(d, values).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            }
            // Plain min/max computes codes with the f32 scale; the search scores f16 ones: a
            // hair of slack.
            #expect(try sse(searched) <= sse(plain) * 1.001, "\(c.name)")
            #expect(try sse(searched) < sse(plain), "\(c.name): the search should find a better range on heavy tails")
        }
    }

    @Test func outliersAreCarriedExactlyAndLowerTheError() throws {
        let (rows, cols) = (24, 192)
        var w = testValues(rows * cols, seed: 5, scale: 0.1)
        for j in stride(from: 3, to: w.count, by: 211) { w[j] = w[j] > 0 ? 1.5 : -1.2 }
        let plain = try w.withUnsafeBufferPointer {
            try Requantizer.quantize($0.baseAddress!, rows: rows, cols: cols, spec: WeightSpec(parsing: "Q3G64"))
        }
        let split = try w.withUnsafeBufferPointer {
            try Requantizer.quantize($0.baseAddress!, rows: rows, cols: cols, spec: WeightSpec(parsing: "Q3G64+o1%"))
        }
        let k = Int((0.01 * Double(rows * cols)).rounded())
        #expect(split.linear.outliers.count == k && plain.linear.outliers.isEmpty)
        #expect(split.linear.byteCount == split.linear.weight.byteCount + (rows + 1) * 4 + k * 6)
        // Dense reference of Q(W') + S.
        func dense(_ m: RequantizedMatrix) throws -> [Float] {
            var d = Requantizer.dequantize(m.linear.weight)
            try m.linear.outliers.addTo(dense: &d)
            return d
        }
        let dp = try dense(plain), ds = try dense(split)
        let big = Set(Requantizer.largestMagnitudes(w, w.count, k))
        #expect(big.count == k)
        for i in big { #expect(abs(ds[i] - w[i]) <= abs(w[i]) * f16Relative + 1e-3, "outlier \(i)") }
        let errPlain = zip(dp, w).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        let errSplit = zip(ds, w).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        #expect(errSplit < errPlain / 4, "outliers should cut the squared error: \(errSplit) vs \(errPlain)")

        // Linear.apply (fast or reference kernel + sparse product) against the dense reference.
        let nTokens = 3
        let x = testValues(nTokens * cols, seed: 8, scale: 1)
        var y = [Float](repeating: .nan, count: nTokens * rows)
        x.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { split.linear.apply(x: xb.baseAddress!, nTokens: nTokens, y: $0.baseAddress!) } }
        for t in 0..<nTokens {
            for r in 0..<rows {
                var exact: Float = 0, mag: Float = 0, xmax: Float = 0
                for c in 0..<cols {
                    exact += ds[r * cols + c] * x[t * cols + c]
                    mag += abs(ds[r * cols + c])
                    xmax = max(xmax, abs(x[t * cols + c]))
                }
                // 8-bit activations: at most xmax / 254 per unit of |w|.
                #expect(abs(y[t * rows + r] - exact) <= mag * xmax / 254 * 1.02 + 1e-4, "token \(t) row \(r)")
            }
        }
    }

    @Test func weightSpecsParseAndRefuse() throws {
        #expect(try WeightSpec(parsing: "file").isFile)
        let s = try WeightSpec(parsing: "Q3G64+o0.5%")
        #expect(s.format?.name == "Q3G64" && abs(s.outlierFraction - 0.005) < 1e-12 && !s.search)
        #expect(s.description == "Q3G64+o0.5%")
        #expect(try WeightSpec(parsing: "q2g32+mse").description == "Q2G32+mse")
        #expect(try WeightSpec(parsing: "Q8_0").format == .q8_0)
        #expect(try WeightSpec.list("file,Q4G32,Q3G64").map(\.description) == ["file", "Q4G32", "Q3G64"])
        #expect(throws: WeightSpecError.self) { try WeightSpec(parsing: "Q7G32") }
        #expect(throws: WeightSpecError.self) { try WeightSpec(parsing: "Q6_K") }
        #expect(throws: WeightSpecError.self) { try WeightSpec(parsing: "Q4_1+mse") }
        #expect(throws: WeightSpecError.self) { try WeightSpec(parsing: "Q4G32+o5") }
        #expect(throws: WeightSpecError.self) { try WeightSpec(parsing: "file+o1%") }
        #expect(throws: WeightSpecError.self) { try WeightSpec(parsing: "") }
    }
}
