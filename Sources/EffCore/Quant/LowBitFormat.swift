import CEffKernels

/// effterm's own asymmetric low-bit weight formats, "Q<bits>G<group>" (`Q3G64`): codes of
/// 2, 3, 4, 5, 6 or 8 bits, one f16 scale `d` and one f16 min `m` per group of 32, 64 or
/// 128 weights, `x = code * d + m` (QLLM-Eval's per-group asymmetric round-to-nearest;
/// LLM-MQ's candidate widths). ggml's K-quants need rows divisible by 256 and every
/// q/k/v/o/gate/up tensor of SmolLM2-135M has 576 columns, so sub-4-bit work needs these.
///
/// Layout (one block per group, little-endian; CEffKernels.h has the byte map):
///
///     block { f16 d; f16 m; sub[group / 32] }    sub = 32 codes in 4 * bits bytes
///
/// A sub-block is bit planes, low bits first: 8 = raw bytes, 6 = p4 + p2, 5 = p4 + p1,
/// 4 = p4, 3 = p2 + p1, 2 = p2, where p4 holds code j's low nibble in byte j (j < 16) or
/// the high nibble of byte j - 16 (ggml's Q4_1 order, so Q4G32 is `block_q4_1` byte for
/// byte), p2 two bits of byte j % 8 at bit 2 (j / 8), p1 bit j % 8 of byte j / 8. The
/// planes let the AVX2 kernel (CEffKernels/lowbit.c) unpack with shifts and masks.
///
/// Quantization rounds as ggml's `quantize_row_q4_1_ref`: per group lo = min, hi = max,
/// d = (hi - lo) / (2^bits - 1) in f32, code = min(2^bits - 1, trunc((x - lo) / d + 0.5))
/// with the f32 reciprocal, then d and lo stored as f16 (`quantizeRow`); `quantizeSearch`
/// also tries narrower clip ranges and keeps the one with the least squared error.
public struct LowBitCodec: Sendable, Hashable {
    public let bits: Int
    public let group: Int

    /// The widths and group sizes the table has rows for.
    public static let bitWidths = [2, 3, 4, 5, 6, 8]
    public static let groupSizes = [32, 64, 128]

    public init?(bits: Int, group: Int) {
        guard Self.bitWidths.contains(bits), Self.groupSizes.contains(group) else { return nil }
        self.bits = bits
        self.group = group
    }

    /// "Q3G64".
    public var name: String { "Q\(bits)G\(group)" }
    /// Bytes of one group's block: 4 bytes of scale and min plus the codes.
    public var blockBytes: Int { 4 + group * bits / 8 }
    public var maxCode: Int { (1 << bits) - 1 }

    // MARK: Bit planes of one sub-block (32 codes)

    /// Reads the 32 codes of the sub-block at `s`.
    @inline(__always)
    func unpack32(_ s: UnsafePointer<UInt8>, _ c: UnsafeMutablePointer<UInt8>) {
        switch bits {
        case 8:
            for j in 0..<32 { c[j] = s[j] }
        case 4, 5, 6:
            for j in 0..<16 {
                c[j] = s[j] & 15
                c[j + 16] = s[j] >> 4
            }
            if bits == 6 { for j in 0..<32 { c[j] |= ((s[16 + j % 8] >> (2 * (j / 8))) & 3) << 4 } }
            if bits == 5 { for j in 0..<32 { c[j] |= ((s[16 + j / 8] >> (j % 8)) & 1) << 4 } }
        default:  // 2, 3
            for j in 0..<32 { c[j] = (s[j % 8] >> (2 * (j / 8))) & 3 }
            if bits == 3 { for j in 0..<32 { c[j] |= ((s[8 + j / 8] >> (j % 8)) & 1) << 2 } }
        }
    }

    /// Writes 32 codes (each < 2^bits) as the sub-block at `s` (4 * bits bytes).
    @inline(__always)
    func pack32(_ c: UnsafePointer<UInt8>, _ s: UnsafeMutablePointer<UInt8>) {
        for i in 0..<(4 * bits) { s[i] = 0 }
        switch bits {
        case 8:
            for j in 0..<32 { s[j] = c[j] }
        case 4, 5, 6:
            for j in 0..<16 { s[j] = (c[j] & 15) | (c[j + 16] & 15) << 4 }
            if bits == 6 { for j in 0..<32 { s[16 + j % 8] |= ((c[j] >> 4) & 3) << (2 * (j / 8)) } }
            if bits == 5 { for j in 0..<32 { s[16 + j / 8] |= ((c[j] >> 4) & 1) << (j % 8) } }
        default:
            for j in 0..<32 { s[j % 8] |= (c[j] & 3) << (2 * (j / 8)) }
            if bits == 3 { for j in 0..<32 { s[8 + j / 8] |= ((c[j] >> 2) & 1) << (j % 8) } }
        }
    }

    // MARK: Reference row codecs (the oracle)

    /// Dequantizes one group's block into `out[0..<group]`.
    @inline(__always)
    func dequantizeBlock(_ blk: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = QuantBlocks.loadHalf(blk, 0), m = QuantBlocks.loadHalf(blk, 2)
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { tmp in
            let c = tmp.baseAddress!
            let q = (blk + 4).assumingMemoryBound(to: UInt8.self)
            for k in 0..<(group / 32) {
                unpack32(q + k * 4 * bits, c)
                for j in 0..<32 { out[k * 32 + j] = Float(c[j]) * d + m }
            }
        }
    }

    func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        for b in 0..<(count / group) { dequantizeBlock(src + b * blockBytes, dst + b * group) }
    }

    /// sum_j (c_j d + m) x_j = d * (c . x) + m * sum(x), per group.
    func dot(_ src: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ count: Int) -> Float {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { ctmp in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { ftmp in
                let c = ctmp.baseAddress!, t = ftmp.baseAddress!
                var sum: Float = 0
                for b in 0..<(count / group) {
                    let blk = src + b * blockBytes
                    let q = (blk + 4).assumingMemoryBound(to: UInt8.self)
                    var cx: Float = 0, sx: Float = 0
                    for k in 0..<(group / 32) {
                        unpack32(q + k * 4 * bits, c)
                        for j in 0..<32 { t[j] = Float(c[j]) }
                        let xb = x + b * group + k * 32
                        cx += VectorOps.dot32(t, xb)
                        sx += VectorOps.sum32(xb)
                    }
                    sum += QuantBlocks.loadHalf(blk, 0) * cx + QuantBlocks.loadHalf(blk, 2) * sx
                }
                return sum
            }
        }
    }

    /// Round-to-nearest with the group's min and max, exactly as ggml rounds Q4_1.
    func quantize(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ count: Int) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: group) { ctmp in
            let c = ctmp.baseAddress!
            let maxq = Float(maxCode)
            for b in 0..<(count / group) {
                let x = src + b * group
                let blk = dst + b * blockBytes
                var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
                for j in 0..<group {
                    if x[j] < lo { lo = x[j] }
                    if x[j] > hi { hi = x[j] }
                }
                let d = (hi - lo) / maxq
                let id: Float = d != 0 ? 1 / d : 0
                QuantBlocks.storeHalf(d, blk, 0)
                QuantBlocks.storeHalf(lo, blk, 2)
                for j in 0..<group {
                    c[j] = UInt8(min(Int32(maxCode), QuantBlocks.truncClamped((x[j] - lo) * id + 0.5, 0, 255)))
                }
                storeCodes(c, blk)
            }
        }
    }

    /// Clip fractions tried at each end of a group's range by `quantizeSearch`.
    public static let clipSteps: [Float] = [0, 0.04, 0.08, 0.12, 0.18, 0.25]

    /// Like `quantize`, but per group tries ranges [lo + a (hi - lo), hi - b (hi - lo)] for
    /// a, b in `clipSteps`, with d and m rounded to f16 first and each code the nearest for
    /// them, and keeps the range with the least squared error (ties: the wider range).
    func quantizeSearch(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ count: Int) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: group) { ctmp in
            let c = ctmp.baseAddress!
            let maxq = Float(maxCode)
            for b in 0..<(count / group) {
                let x = src + b * group
                let blk = dst + b * blockBytes
                let (d, m) = groupParameters(x, search: true)
                QuantBlocks.storeHalf(d, blk, 0)
                QuantBlocks.storeHalf(m, blk, 2)
                let id: Float = d != 0 ? 1 / d : 0
                for j in 0..<group { c[j] = UInt8(min(maxq, max(0, ((x[j] - m) * id).rounded()))) }
                storeCodes(c, blk)
            }
        }
    }

    @inline(__always)
    func storeCodes(_ c: UnsafePointer<UInt8>, _ blk: UnsafeMutableRawPointer) {
        let q = (blk + 4).assumingMemoryBound(to: UInt8.self)
        for k in 0..<(group / 32) { pack32(c + k * 32, q + k * 4 * bits) }
    }

    /// This codec's row of the weight-format table.
    public var format: WeightFormat {
        let codec = self
        return WeightFormat(
            name: name, ggmlType: nil, blockSize: group, bytesPerBlock: blockBytes,
            reference: QuantRowKernels(dequantizeRow: { codec.dequantize($0, $1, $2) },
                                       dotRow: { codec.dot($0, $1, $2) },
                                       quantizeRow: { codec.quantize($0, $1, $2) }),
            fast: .lowBit(bits: Int32(bits), group: Int32(group)))
    }
}

extension WeightFormat {
    /// The rows of effterm's own low-bit formats, Q2G32 ... Q8G128 (bits-major).
    public static let lowBit: [WeightFormat] = LowBitCodec.bitWidths.flatMap { b in
        LowBitCodec.groupSizes.map { g in LowBitCodec(bits: b, group: g)!.format }
    }

    /// The low-bit codec of this row, nil for other formats.
    public var lowBitCodec: LowBitCodec? {
        if case .lowBit(let b, let g) = fast { return LowBitCodec(bits: Int(b), group: Int(g)) }
        return nil
    }
}

/// Super-block variants "Q<bits>S" (bits 2, 3, 4): the group scales and mins of Q<bits>G64
/// stored in 4 bits each under one f16 scale-of-scales `D` and one f16 scale-of-mins `M` per
/// super-block of 192 weights (192 divides both 576 and 1536), ggml's K-quant idea on rows
/// K-quants cannot take. Overhead: (2 + 2 + 3) bytes per 192 weights = 0.29 bit per weight
/// (Q3S: 3.29 bits per weight, Q3G64: 3.5).
///
///     block { f16 D; f16 M; u8 sm[3]; sub[6] }   sm[g] = sc | mn << 4, sub as Q<bits>G64's
///
/// Group g's scale is `f16(D * sc)` and its min `-f16(M * mn)` (mins are taken <= 0, as in
/// K-quants), so a super-block expands exactly into three Q<bits>G64 blocks: the kernels
/// multiply that expansion (repacked once, `eff_qg_x8_pack`), which streams Q<bits>G64's
/// bytes; the storage is smaller, the decode speed is Q<bits>G64's.
public struct SuperBlockCodec: Sendable, Hashable {
    public let bits: Int
    public static let superSize = 192
    public static let group = 64
    public static let bitWidths = [2, 3, 4]

    public init?(bits: Int) {
        guard Self.bitWidths.contains(bits) else { return nil }
        self.bits = bits
    }

    public var name: String { "Q\(bits)S" }
    public var blockBytes: Int { 7 + Self.superSize * bits / 8 }
    /// The group format a super-block expands into.
    public var inner: LowBitCodec { LowBitCodec(bits: bits, group: Self.group)! }

    /// Expands one super-block into three Q<bits>G64 blocks at `dst`.
    @inline(__always)
    func expand(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer) {
        let bigD = QuantBlocks.loadHalf(src, 0), bigM = QuantBlocks.loadHalf(src, 2)
        let sm = (src + 4).assumingMemoryBound(to: UInt8.self)
        let codeBytes = Self.group * bits / 8
        let ib = inner.blockBytes
        for g in 0..<3 {
            let blk = dst + g * ib
            QuantBlocks.storeHalf(bigD * Float(sm[g] & 15), blk, 0)
            QuantBlocks.storeHalf(-Float(Float16(bigM * Float(sm[g] >> 4))), blk, 2)
            (blk + 4).copyMemory(from: src + 7 + g * codeBytes, byteCount: codeBytes)
        }
    }

    /// Expands rows of super-blocks into rows of Q<bits>G64 blocks.
    func expandRows(_ src: UnsafeRawPointer, rowBytes: Int, rows: Int, cols: Int, into dst: UnsafeMutableRawPointer) {
        let n = cols / Self.superSize, ob = 3 * inner.blockBytes
        for r in 0..<rows {
            for b in 0..<n { expand(src + r * rowBytes + b * blockBytes, dst + (r * n + b) * ob) }
        }
    }

    func withExpanded<R>(_ src: UnsafeRawPointer, _ count: Int, _ body: (UnsafeRawPointer) -> R) -> R {
        let n = count / Self.superSize
        return withUnsafeTemporaryAllocation(byteCount: max(1, n * 3 * inner.blockBytes), alignment: 16) { tmp in
            for b in 0..<n { expand(src + b * blockBytes, tmp.baseAddress! + b * 3 * inner.blockBytes) }
            return body(UnsafeRawPointer(tmp.baseAddress!))
        }
    }

    func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        withExpanded(src, count) { inner.dequantize($0, dst, count) }
    }

    func dot(_ src: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ count: Int) -> Float {
        withExpanded(src, count) { inner.dot($0, x, count) }
    }

    /// Per group lo = min(min, 0), hi = max; m = -lo and d = (hi - lo) / (2^bits - 1); per
    /// super-block M = max m / 15, D = max d / 15; mn = ceil(m / M) (the range's bottom stays
    /// covered), sc = round(d / D); codes nearest for the stored scale and min, clamped.
    func quantize(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ count: Int) {
        let maxq = Float(inner.maxCode)
        let codeBytes = Self.group * bits / 8
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.group) { ctmp in
            let c = ctmp.baseAddress!
            for b in 0..<(count / Self.superSize) {
                let x = src + b * Self.superSize
                let blk = dst + b * blockBytes
                var ds: [Float] = [0, 0, 0], ms: [Float] = [0, 0, 0]
                for g in 0..<3 {
                    var lo: Float = 0, hi = -Float.greatestFiniteMagnitude
                    for j in (g * Self.group)..<((g + 1) * Self.group) { lo = min(lo, x[j]); hi = max(hi, x[j]) }
                    ms[g] = -lo
                    ds[g] = max(0, hi - lo) / maxq
                }
                let bigD = Float(Float16(ds.max()! / 15)), bigM = Float(Float16(ms.max()! / 15))
                QuantBlocks.storeHalf(bigD, blk, 0)
                QuantBlocks.storeHalf(bigM, blk, 2)
                let sm = (blk + 4).assumingMemoryBound(to: UInt8.self)
                for g in 0..<3 {
                    let mn = bigM > 0 ? min(15, (ms[g] / bigM).rounded(.up)) : 0
                    let sc = bigD > 0 ? min(15, (ds[g] / bigD).rounded()) : 0
                    sm[g] = UInt8(sc) | UInt8(mn) << 4
                    let d = Float(Float16(bigD * sc)), m = -Float(Float16(bigM * mn))
                    let id: Float = d != 0 ? 1 / d : 0
                    for j in 0..<Self.group {
                        c[j] = UInt8(min(maxq, max(0, ((x[g * Self.group + j] - m) * id).rounded())))
                    }
                    let q = (blk + 7 + g * codeBytes).assumingMemoryBound(to: UInt8.self)
                    for k in 0..<2 { inner.pack32(c + k * 32, q + k * 4 * bits) }
                }
            }
        }
    }

    /// This codec's row of the weight-format table.
    public var format: WeightFormat {
        let codec = self
        return WeightFormat(
            name: name, ggmlType: nil, blockSize: Self.superSize, bytesPerBlock: blockBytes,
            reference: QuantRowKernels(dequantizeRow: { codec.dequantize($0, $1, $2) },
                                       dotRow: { codec.dot($0, $1, $2) },
                                       quantizeRow: { codec.quantize($0, $1, $2) }),
            fast: .superBlock(bits: Int32(bits)))
    }
}

extension WeightFormat {
    /// The super-block rows, Q2S, Q3S, Q4S.
    public static let superBlock: [WeightFormat] = SuperBlockCodec.bitWidths.map { SuperBlockCodec(bits: $0)!.format }
}
