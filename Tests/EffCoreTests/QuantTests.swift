import Testing
@testable import EffCore

/// Deterministic pseudo-random values in roughly [-scale, scale] (no RNG dependency).
func testValues(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var s = seed &+ 0x9E37_79B9_7F4A_7C15
    return (0..<n).map { _ in
        s = s &* 6364136223846793005 &+ 1442695040888963407
        let u = Float((s >> 40) & 0xFFFFFF) / Float(1 << 24)  // [0, 1)
        return (u * 2 - 1) * scale
    }
}

/// Relative rounding of an f16 value (half an ulp at 11 significant bits).
let f16Relative: Float = 1.0 / 2048

@Suite struct QuantTests {
    static let computable: [GGMLType] = [.f32, .f16, .q8_0, .q4_0, .q4_1]

    @Test func computableTypesHaveKernelsOthersRefuse() throws {
        for t in GGMLType.allCases {
            #expect((t.rowKernels != nil) == t.isComputable, "\(t.traits.name)")
        }
        #expect(throws: QuantError.unsupportedType(.q4_K)) { try GGMLType.q4_K.quantize([Float](repeating: 0, count: 256)) }
        #expect(throws: QuantError.partialBlock(type: .q4_1, count: 33)) { try GGMLType.q4_1.quantize([Float](repeating: 0, count: 33)) }
    }

    /// Q4_1 block layout: d, m as f16, low nibbles = elements 0..<16, high = 16..<32.
    @Test func q4_1GoldenBlock() throws {
        var bytes = [UInt8](repeating: 0, count: 20)
        bytes[0] = 0x00; bytes[1] = 0x38  // f16 0.5
        bytes[2] = 0x00; bytes[3] = 0xBC  // f16 -1.0
        for j in 0..<16 { bytes[4 + j] = UInt8(j) | UInt8(15 - j) << 4 }
        let x = try GGMLType.q4_1.dequantize(bytes, count: 32)
        for j in 0..<16 {
            #expect(x[j] == Float(j) * 0.5 - 1)
            #expect(x[j + 16] == Float(15 - j) * 0.5 - 1)
        }
    }

    /// Q4_0: value = (nibble - 8) * d.
    @Test func q4_0GoldenBlock() throws {
        var bytes = [UInt8](repeating: 0, count: 18)
        bytes[0] = 0x00; bytes[1] = 0x40  // f16 2.0
        for j in 0..<16 { bytes[2 + j] = UInt8(j) | UInt8(j) << 4 }
        let x = try GGMLType.q4_0.dequantize(bytes, count: 32)
        for j in 0..<16 {
            #expect(x[j] == Float(j - 8) * 2)
            #expect(x[j + 16] == Float(j - 8) * 2)
        }
    }

    /// Q8_0 quantization of 0...31: d = 31/127, q = round(j * 127 / 31), as ggml computes.
    @Test func q8_0MatchesGgmlRounding() throws {
        let values = (0..<32).map { Float($0) }
        let bytes = try GGMLType.q8_0.quantize(values)
        #expect(bytes.count == 34)
        let d = Float(31) / 127
        let storedD = UInt16(bytes[0]) | UInt16(bytes[1]) << 8
        #expect(storedD == Float16(d).bitPattern)
        let id = 1 / d
        for j in 0..<32 {
            #expect(Int8(bitPattern: bytes[2 + j]) == Int8((Float(j) * id).rounded()))
        }
        #expect(Int8(bitPattern: bytes[2 + 31]) == 127)
    }

    /// Q4_0 maps the signed value of largest magnitude to nibble 0 (d = max / -8); the
    /// opposite extreme saturates at 15.
    @Test func q4_0AsymmetricRange() throws {
        var values = [Float](repeating: 0, count: 32)
        values[0] = -4; values[1] = 4; values[2] = 1
        let bytes = try GGMLType.q4_0.quantize(values)
        #expect(bytes[0] == 0x00 && bytes[1] == 0x38)  // d = -4 / -8 = 0.5
        #expect(bytes[2] & 15 == 0)                    // -4 -> 0
        #expect(bytes[3] & 15 == 15)                   // +4 -> 16 clamped to 15
        #expect(bytes[4] & 15 == 10)                   // 1 / 0.5 + 8.5 = 10.5 -> 10
        #expect(bytes[5] & 15 == 8)                    // 0 -> 8
    }

    /// quantize -> dequantize error stays under each format's bound, per element.
    @Test(arguments: computable)
    func roundTripErrorBound(_ type: GGMLType) throws {
        let n = 32 * 64
        for seed: UInt64 in 1...4 {
            let x = testValues(n, seed: seed, scale: Float(seed) * 0.7)
            let back = try type.dequantize(try type.quantize(x), count: n)
            for b in 0..<(n / 32) {
                let blk = Array(x[(b * 32)..<(b * 32 + 32)])
                let amax = blk.map(abs).max()!
                let lo = blk.min()!, hi = blk.max()!
                let bound: Float
                switch type {
                case .f32: bound = 0
                case .f16: bound = amax * f16Relative
                // Half a step of amax/127, plus the f16 rounding of the scale times |q| <= 127.
                case .q8_0: bound = amax / 254 + amax * f16Relative
                // A full step (the positive extreme saturates at 15), plus f16 scale rounding.
                case .q4_0: bound = amax / 8 + amax * f16Relative * 2
                // Half a step of (max-min)/15, plus f16 rounding of d (times 15) and of m.
                case .q4_1: bound = (hi - lo) / 30 + (hi - lo) * f16Relative + abs(lo) * f16Relative
                default: bound = 0
                }
                for j in 0..<32 {
                    let err = abs(back[b * 32 + j] - x[b * 32 + j])
                    #expect(err <= bound * 1.001 + 1e-7, "\(type.traits.name) block \(b) elem \(j): \(err) > \(bound)")
                }
            }
        }
    }

    /// The fused dot equals dequantize-then-dot within float reassociation error.
    @Test(arguments: computable)
    func dotEqualsDequantizeThenDot(_ type: GGMLType) throws {
        let n = 32 * 48
        let w = try type.quantize(testValues(n, seed: 11, scale: 0.3))
        let x = testValues(n, seed: 12, scale: 2)
        let wf = try type.dequantize(w, count: n)
        var naive: Double = 0, magnitude: Double = 0
        for i in 0..<n {
            naive += Double(wf[i]) * Double(x[i])
            magnitude += abs(Double(wf[i]) * Double(x[i]))
        }
        let fused = try w.withUnsafeBytes { wb in
            try x.withUnsafeBufferPointer { xb in try type.dotRow(wb.baseAddress!, xb.baseAddress!, count: n) }
        }
        // Tolerance: f32 accumulation error relative to the sum of |terms|.
        let dotRelativeTolerance = 1e-5
        #expect(abs(Double(fused) - naive) <= dotRelativeTolerance * magnitude)
    }

    @Test func bitsPerWeightOfComputableFormats() {
        #expect(GGMLType.q4_1.traits.bitsPerWeight == 5.0)
        #expect(GGMLType.q4_0.traits.bitsPerWeight == 4.5)
        #expect(GGMLType.q8_0.traits.bitsPerWeight == 8.5)
        #expect(GGMLType.f16.traits.bitsPerWeight == 16)
    }
}
