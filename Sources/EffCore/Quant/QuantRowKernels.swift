/// The per-format row operations, chosen once per call from a type's traits.
///
/// `GGMLType.rowKernels` is the kernel column of the traits table (ggml's
/// `type_traits[type].to_float / vec_dot / from_float_ref`): nil for formats effterm can
/// describe but not compute. Callers look the table up once per row or per matrix, never
/// per element. These are the reference codecs, kept forever as the oracle for fast paths.
public struct QuantRowKernels: Sendable {
    /// `dst[0..<count] = dequantize(src)`; `count` is a whole number of blocks.
    public let dequantizeRow: @Sendable (_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ count: Int) -> Void
    /// `sum_j dequantize(src)[j] * x[j]` over `count` elements.
    public let dotRow: @Sendable (_ src: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ count: Int) -> Float
    /// `dst = quantize(src[0..<count])`, rounding as ggml's `quantize_row_*_ref`.
    public let quantizeRow: @Sendable (_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ count: Int) -> Void
}

/// Why a row operation was refused.
public enum QuantError: Error, Equatable, CustomStringConvertible {
    /// The format has no kernels in effterm (see `GGMLType.isComputable`).
    case unsupportedType(GGMLType)
    /// `count` is not a whole number of the format's blocks.
    case partialBlock(type: GGMLType, count: Int)

    public var description: String {
        switch self {
        case .unsupportedType(let t):
            return "tensor format \(t.traits.name) has no kernels in effterm (computable: F32, F16, Q8_0, Q4_0, Q4_1)"
        case .partialBlock(let t, let count):
            return "\(count) elements is not a whole number of \(t.traits.name) blocks of \(t.traits.blockSize)"
        }
    }
}

extension GGMLType {
    /// Reference row kernels for this format, or nil when it is not computable.
    public var rowKernels: QuantRowKernels? {
        switch self {
        case .f32:
            return QuantRowKernels(dequantizeRow: { QuantBlocks.dequantizeF32($0, $1, $2) },
                                   dotRow: { QuantBlocks.dotF32($0, $1, $2) },
                                   quantizeRow: { QuantBlocks.quantizeF32($0, $1, $2) })
        case .f16:
            return QuantRowKernels(dequantizeRow: { QuantBlocks.dequantizeF16($0, $1, $2) },
                                   dotRow: { QuantBlocks.dotF16($0, $1, $2) },
                                   quantizeRow: { QuantBlocks.quantizeF16($0, $1, $2) })
        case .q8_0:
            return QuantRowKernels(dequantizeRow: { QuantBlocks.dequantizeQ8_0($0, $1, $2) },
                                   dotRow: { QuantBlocks.dotQ8_0($0, $1, $2) },
                                   quantizeRow: { QuantBlocks.quantizeQ8_0($0, $1, $2) })
        case .q4_0:
            return QuantRowKernels(dequantizeRow: { QuantBlocks.dequantizeQ4_0($0, $1, $2) },
                                   dotRow: { QuantBlocks.dotQ4_0($0, $1, $2) },
                                   quantizeRow: { QuantBlocks.quantizeQ4_0($0, $1, $2) })
        case .q4_1:
            return QuantRowKernels(dequantizeRow: { QuantBlocks.dequantizeQ4_1($0, $1, $2) },
                                   dotRow: { QuantBlocks.dotQ4_1($0, $1, $2) },
                                   quantizeRow: { QuantBlocks.quantizeQ4_1($0, $1, $2) })
        default:
            return nil
        }
    }

    /// The kernels for a row of `count` elements, or a typed error naming why not.
    public func checkedRowKernels(count: Int) throws -> QuantRowKernels {
        guard let k = rowKernels else { throw QuantError.unsupportedType(self) }
        guard rowBytes(count) != nil else { throw QuantError.partialBlock(type: self, count: count) }
        return k
    }

    /// Dequantizes one row of `count` elements from `src` into `dst`.
    public func dequantizeRow(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) throws {
        try checkedRowKernels(count: count).dequantizeRow(src, dst, count)
    }

    /// The dot product of one stored row with an f32 vector of `count` elements.
    public func dotRow(_ src: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) throws -> Float {
        try checkedRowKernels(count: count).dotRow(src, x, count)
    }

    /// Quantizes `count` f32 values into `dst` (`rowBytes(count)` bytes) as ggml rounds.
    public func quantizeRow(_ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer, count: Int) throws {
        try checkedRowKernels(count: count).quantizeRow(src, dst, count)
    }

    /// Convenience for tests and tools: quantizes an array into a fresh byte array.
    public func quantize(_ values: [Float]) throws -> [UInt8] {
        _ = try checkedRowKernels(count: values.count)
        if values.isEmpty { return [] }
        var out = [UInt8](repeating: 0, count: rowBytes(values.count)!)
        try values.withUnsafeBufferPointer { src in
            try out.withUnsafeMutableBytes { dst in
                try quantizeRow(src.baseAddress!, into: dst.baseAddress!, count: values.count)
            }
        }
        return out
    }

    /// Convenience for tests and tools: dequantizes `count` elements from a byte array.
    public func dequantize(_ bytes: [UInt8], count: Int) throws -> [Float] {
        let k = try checkedRowKernels(count: count)
        guard bytes.count >= rowBytes(count)! else { throw QuantError.partialBlock(type: self, count: count) }
        if count == 0 { return [] }
        var out = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { src in
            out.withUnsafeMutableBufferPointer { dst in k.dequantizeRow(src.baseAddress!, dst.baseAddress!, count) }
        }
        return out
    }
}
