/// Reference block codecs for the formats effterm computes with: F32, F16, Q8_0, Q4_0, Q4_1.
///
/// Layouts follow ggml's `ggml-common.h` (little-endian, blocks of 32 weights):
///
///     block_q8_0 { f16 d; i8 qs[32] }            34 bytes  x[j] = qs[j] * d
///     block_q4_0 { f16 d; u8 qs[16] }            18 bytes  x[j] = (nib(j) - 8) * d
///     block_q4_1 { f16 d; f16 m; u8 qs[16] }     20 bytes  x[j] = nib(j) * d + m
///
/// where for the 4-bit formats `nib(j) = qs[j] & 15` for j < 16 and `qs[j-16] >> 4` for
/// j >= 16 (low nibbles hold the first half of the block, high nibbles the second half).
/// Quantization rounds exactly as ggml's `quantize_row_*_ref` (`ggml-quants.c`): the scale
/// is computed in f32 and its reciprocal used for rounding, then the scale is stored as f16.
///
/// Every function here takes `count` elements, a whole number of blocks (callers check).
/// Dot products dequantize one block into a 32-float scratch and multiply it with SIMD8
/// accumulators, so the float reduction vectorizes without relying on fast-math.
enum QuantBlocks {
    static let blockSize = 32

    // MARK: f16 helpers

    @inline(__always)
    static func loadHalf(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    @inline(__always)
    static func storeHalf(_ v: Float, _ p: UnsafeMutableRawPointer, _ offset: Int) {
        p.storeBytes(of: Float16(v).bitPattern, toByteOffset: offset, as: UInt16.self)
    }

    /// Truncates toward zero like a C cast, after clamping into `lo...hi` (NaN -> lo), so
    /// no input can trap the conversion.
    @inline(__always)
    static func truncClamped(_ v: Float, _ lo: Float, _ hi: Float) -> Int32 {
        Int32(v >= lo ? (v <= hi ? v : hi) : lo)
    }

    // MARK: F32

    static func dequantizeF32(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        let s = src.assumingMemoryBound(to: Float.self)
        for i in 0..<count { dst[i] = s[i] }
    }

    static func dotF32(_ src: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ count: Int) -> Float {
        VectorOps.dot(src.assumingMemoryBound(to: Float.self), x, count)
    }

    static func quantizeF32(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ count: Int) {
        let d = dst.assumingMemoryBound(to: Float.self)
        for i in 0..<count { d[i] = src[i] }
    }

    // MARK: F16

    static func dequantizeF16(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        let s = src.assumingMemoryBound(to: Float16.self)
        for i in 0..<count { dst[i] = Float(s[i]) }
    }

    static func dotF16(_ src: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ count: Int) -> Float {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: blockSize) { tmp in
            let t = tmp.baseAddress!
            let s = src.assumingMemoryBound(to: Float16.self)
            var sum: Float = 0
            var i = 0
            while i + blockSize <= count {
                for j in 0..<blockSize { t[j] = Float(s[i + j]) }
                sum += VectorOps.dot32(t, x + i)
                i += blockSize
            }
            while i < count { sum += Float(s[i]) * x[i]; i += 1 }
            return sum
        }
    }

    static func quantizeF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ count: Int) {
        let d = dst.assumingMemoryBound(to: Float16.self)
        for i in 0..<count { d[i] = Float16(src[i]) }
    }

    // MARK: Q8_0 (34 bytes: f16 d, i8 qs[32])

    static let q8_0Bytes = 34

    @inline(__always)
    static func dequantizeBlockQ8_0(_ b: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = loadHalf(b, 0)
        let qs = (b + 2).assumingMemoryBound(to: Int8.self)
        for j in 0..<32 { out[j] = Float(qs[j]) * d }
    }

    static func dequantizeQ8_0(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        for b in 0..<(count / 32) { dequantizeBlockQ8_0(src + b * q8_0Bytes, dst + b * 32) }
    }

    static func dotQ8_0(_ src: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ count: Int) -> Float {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { tmp in
            let t = tmp.baseAddress!
            var sum: Float = 0
            for b in 0..<(count / 32) {
                let blk = src + b * q8_0Bytes
                let qs = (blk + 2).assumingMemoryBound(to: Int8.self)
                for j in 0..<32 { t[j] = Float(qs[j]) }
                sum += loadHalf(blk, 0) * VectorOps.dot32(t, x + b * 32)
            }
            return sum
        }
    }

    static func quantizeQ8_0(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ count: Int) {
        for b in 0..<(count / 32) {
            let x = src + b * 32
            let blk = dst + b * q8_0Bytes
            var amax: Float = 0
            for j in 0..<32 { amax = max(amax, abs(x[j])) }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            storeHalf(d, blk, 0)
            let qs = (blk + 2).assumingMemoryBound(to: Int8.self)
            // roundf: half away from zero, which is Swift's default rounding rule.
            for j in 0..<32 { qs[j] = Int8(truncatingIfNeeded: truncClamped((x[j] * id).rounded(), -127, 127)) }
        }
    }

    // MARK: Q4_0 (18 bytes: f16 d, u8 qs[16])

    static let q4_0Bytes = 18

    @inline(__always)
    static func unpackNibbles(_ qs: UnsafePointer<UInt8>, _ out: UnsafeMutablePointer<Float>, bias: Float) {
        for j in 0..<16 {
            out[j] = Float(qs[j] & 15) - bias
            out[j + 16] = Float(qs[j] >> 4) - bias
        }
    }

    static func dequantizeQ4_0(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        for b in 0..<(count / 32) {
            let blk = src + b * q4_0Bytes
            let out = dst + b * 32
            unpackNibbles((blk + 2).assumingMemoryBound(to: UInt8.self), out, bias: 8)
            let d = loadHalf(blk, 0)
            for j in 0..<32 { out[j] *= d }
        }
    }

    static func dotQ4_0(_ src: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ count: Int) -> Float {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { tmp in
            let t = tmp.baseAddress!
            var sum: Float = 0
            for b in 0..<(count / 32) {
                let blk = src + b * q4_0Bytes
                unpackNibbles((blk + 2).assumingMemoryBound(to: UInt8.self), t, bias: 8)
                sum += loadHalf(blk, 0) * VectorOps.dot32(t, x + b * 32)
            }
            return sum
        }
    }

    static func quantizeQ4_0(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ count: Int) {
        for b in 0..<(count / 32) {
            let x = src + b * 32
            let blk = dst + b * q4_0Bytes
            // The signed value of largest magnitude maps to -8, so the range is asymmetric.
            var amax: Float = 0, maxv: Float = 0
            for j in 0..<32 where amax < abs(x[j]) { amax = abs(x[j]); maxv = x[j] }
            let d = maxv / -8
            let id: Float = d != 0 ? 1 / d : 0
            storeHalf(d, blk, 0)
            let qs = (blk + 2).assumingMemoryBound(to: UInt8.self)
            for j in 0..<16 {
                let lo = min(15, truncClamped(x[j] * id + 8.5, 0, 255))
                let hi = min(15, truncClamped(x[j + 16] * id + 8.5, 0, 255))
                qs[j] = UInt8(lo) | UInt8(hi) << 4
            }
        }
    }

    // MARK: Q4_1 (20 bytes: f16 d, f16 m, u8 qs[16])

    static let q4_1Bytes = 20

    static func dequantizeQ4_1(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        for b in 0..<(count / 32) {
            let blk = src + b * q4_1Bytes
            let out = dst + b * 32
            unpackNibbles((blk + 4).assumingMemoryBound(to: UInt8.self), out, bias: 0)
            let d = loadHalf(blk, 0), m = loadHalf(blk, 2)
            for j in 0..<32 { out[j] = out[j] * d + m }
        }
    }

    /// sum_j (q_j d + m) x_j = d * (q . x) + m * sum(x), per block.
    static func dotQ4_1(_ src: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ count: Int) -> Float {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { tmp in
            let t = tmp.baseAddress!
            var sum: Float = 0
            for b in 0..<(count / 32) {
                let blk = src + b * q4_1Bytes
                let xb = x + b * 32
                unpackNibbles((blk + 4).assumingMemoryBound(to: UInt8.self), t, bias: 0)
                sum += loadHalf(blk, 0) * VectorOps.dot32(t, xb) + loadHalf(blk, 2) * VectorOps.sum32(xb)
            }
            return sum
        }
    }

    static func quantizeQ4_1(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ count: Int) {
        for b in 0..<(count / 32) {
            let x = src + b * 32
            let blk = dst + b * q4_1Bytes
            var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
            for j in 0..<32 {
                if x[j] < lo { lo = x[j] }
                if x[j] > hi { hi = x[j] }
            }
            let d = (hi - lo) / 15
            let id: Float = d != 0 ? 1 / d : 0
            storeHalf(d, blk, 0)
            storeHalf(lo, blk, 2)
            let qs = (blk + 4).assumingMemoryBound(to: UInt8.self)
            for j in 0..<16 {
                let q0 = min(15, truncClamped((x[j] - lo) * id + 0.5, 0, 255))
                let q1 = min(15, truncClamped((x[j + 16] - lo) * id + 0.5, 0, 255))
                qs[j] = UInt8(q0) | UInt8(q1) << 4
            }
        }
    }
}
