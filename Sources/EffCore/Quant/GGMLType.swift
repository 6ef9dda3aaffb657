/// Tensor element formats of the GGUF/ggml family: the ids a GGUF file names.
///
/// Ids follow ggml's `enum ggml_type`; retired ids (4, 5, 31-33, 36-38) are absent, so a
/// file naming one is rejected before any table lookup. Everything else about a format
/// (block shape, bytes, kernels, packing) is its row in the weight-format table,
/// `WeightFormat.all`, reached through `traits`.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21
    case iq2_s = 22, iq4_xs = 23, i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28
    case iq1_m = 29, bf16 = 30, tq1_0 = 34, tq2_0 = 35, mxfp4 = 39

    /// A format's row of the table (name, block shape, bytes, kernels).
    public typealias Traits = WeightFormat

    /// This id's row of the weight-format table (every id has one; QuantTests checks).
    public var traits: WeightFormat { WeightFormat.byGGMLId[Int(rawValue)]! }

    /// Formats effterm can dequantize and multiply (reference and fast kernels).
    public var isComputable: Bool { traits.isComputable }

    /// Bytes needed for one row of `count` elements, or nil when `count` is not a whole
    /// number of blocks or the size overflows.
    public func rowBytes(_ count: Int) -> Int? { traits.rowBytes(count) }
}
