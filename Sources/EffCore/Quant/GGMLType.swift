/// Tensor element formats of the GGUF/ggml family, with the traits table every other piece
/// (the GGUF reader's size checks, the kernels, the bitwidth panel) reads from.
///
/// Ids follow ggml's `enum ggml_type`; retired ids (4, 5, 31-33, 36-38) are absent, so a
/// file naming one is rejected before any table lookup. Only the formats marked
/// `isComputable` have kernels in effterm; the others are known so a file can be described.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21
    case iq2_s = 22, iq4_xs = 23, i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28
    case iq1_m = 29, bf16 = 30, tq1_0 = 34, tq2_0 = 35, mxfp4 = 39

    /// Block shape of one format: `blockSize` weights stored in `bytesPerBlock` bytes.
    public struct Traits: Sendable {
        public let name: String
        public let blockSize: Int
        public let bytesPerBlock: Int
        /// Storage bits per weight, scales and mins included (Q4_1: 160 bits / 32 = 5.0).
        public var bitsPerWeight: Double { Double(bytesPerBlock * 8) / Double(blockSize) }
    }

    public var traits: Traits {
        switch self {
        case .f32: return Traits(name: "F32", blockSize: 1, bytesPerBlock: 4)
        case .f16: return Traits(name: "F16", blockSize: 1, bytesPerBlock: 2)
        case .q4_0: return Traits(name: "Q4_0", blockSize: 32, bytesPerBlock: 18)
        case .q4_1: return Traits(name: "Q4_1", blockSize: 32, bytesPerBlock: 20)
        case .q5_0: return Traits(name: "Q5_0", blockSize: 32, bytesPerBlock: 22)
        case .q5_1: return Traits(name: "Q5_1", blockSize: 32, bytesPerBlock: 24)
        case .q8_0: return Traits(name: "Q8_0", blockSize: 32, bytesPerBlock: 34)
        case .q8_1: return Traits(name: "Q8_1", blockSize: 32, bytesPerBlock: 36)
        case .q2_K: return Traits(name: "Q2_K", blockSize: 256, bytesPerBlock: 84)
        case .q3_K: return Traits(name: "Q3_K", blockSize: 256, bytesPerBlock: 110)
        case .q4_K: return Traits(name: "Q4_K", blockSize: 256, bytesPerBlock: 144)
        case .q5_K: return Traits(name: "Q5_K", blockSize: 256, bytesPerBlock: 176)
        case .q6_K: return Traits(name: "Q6_K", blockSize: 256, bytesPerBlock: 210)
        case .q8_K: return Traits(name: "Q8_K", blockSize: 256, bytesPerBlock: 292)
        case .iq2_xxs: return Traits(name: "IQ2_XXS", blockSize: 256, bytesPerBlock: 66)
        case .iq2_xs: return Traits(name: "IQ2_XS", blockSize: 256, bytesPerBlock: 74)
        case .iq3_xxs: return Traits(name: "IQ3_XXS", blockSize: 256, bytesPerBlock: 98)
        case .iq1_s: return Traits(name: "IQ1_S", blockSize: 256, bytesPerBlock: 50)
        case .iq4_nl: return Traits(name: "IQ4_NL", blockSize: 32, bytesPerBlock: 18)
        case .iq3_s: return Traits(name: "IQ3_S", blockSize: 256, bytesPerBlock: 110)
        case .iq2_s: return Traits(name: "IQ2_S", blockSize: 256, bytesPerBlock: 82)
        case .iq4_xs: return Traits(name: "IQ4_XS", blockSize: 256, bytesPerBlock: 136)
        case .i8: return Traits(name: "I8", blockSize: 1, bytesPerBlock: 1)
        case .i16: return Traits(name: "I16", blockSize: 1, bytesPerBlock: 2)
        case .i32: return Traits(name: "I32", blockSize: 1, bytesPerBlock: 4)
        case .i64: return Traits(name: "I64", blockSize: 1, bytesPerBlock: 8)
        case .f64: return Traits(name: "F64", blockSize: 1, bytesPerBlock: 8)
        case .iq1_m: return Traits(name: "IQ1_M", blockSize: 256, bytesPerBlock: 56)
        case .bf16: return Traits(name: "BF16", blockSize: 1, bytesPerBlock: 2)
        case .tq1_0: return Traits(name: "TQ1_0", blockSize: 256, bytesPerBlock: 54)
        case .tq2_0: return Traits(name: "TQ2_0", blockSize: 256, bytesPerBlock: 66)
        case .mxfp4: return Traits(name: "MXFP4", blockSize: 32, bytesPerBlock: 17)
        }
    }

    /// Formats effterm can dequantize and multiply (reference and fast kernels).
    public var isComputable: Bool {
        switch self {
        case .f32, .f16, .q4_0, .q4_1, .q8_0: return true
        default: return false
        }
    }

    /// Bytes needed for one row of `count` elements, or nil when `count` is not a whole
    /// number of blocks or the size overflows.
    public func rowBytes(_ count: Int) -> Int? {
        let t = traits
        guard count >= 0, count % t.blockSize == 0 else { return nil }
        let (bytes, overflow) = (count / t.blockSize).multipliedReportingOverflow(by: t.bytesPerBlock)
        return overflow ? nil : bytes
    }
}
