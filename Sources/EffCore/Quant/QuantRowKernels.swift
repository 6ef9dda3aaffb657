/// The per-format row operations, chosen once per call from a format's table row.
///
/// `WeightFormat.reference` is the kernel column of the weight-format table (ggml's
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

    public init(dequantizeRow: @escaping @Sendable (UnsafeRawPointer, UnsafeMutablePointer<Float>, Int) -> Void,
                dotRow: @escaping @Sendable (UnsafeRawPointer, UnsafePointer<Float>, Int) -> Float,
                quantizeRow: @escaping @Sendable (UnsafePointer<Float>, UnsafeMutableRawPointer, Int) -> Void) {
        self.dequantizeRow = dequantizeRow
        self.dotRow = dotRow
        self.quantizeRow = quantizeRow
    }
}

/// Why a row operation was refused.
public enum QuantError: Error, Equatable, CustomStringConvertible {
    /// The ggml format has no kernels in effterm (see `WeightFormat.isComputable`).
    case unsupportedType(GGMLType)
    /// `count` is not a whole number of the ggml format's blocks.
    case partialBlock(type: GGMLType, count: Int)
    /// A format outside ggml's ids that has no kernels.
    case unsupportedFormat(String)
    /// `count` is not a whole number of a non-ggml format's blocks.
    case partialFormatBlock(format: String, blockSize: Int, count: Int)

    public var description: String {
        switch self {
        case .unsupportedType(let t):
            return "tensor format \(t.traits.name) has no kernels in effterm (computable: \(WeightFormat.computableNames))"
        case .unsupportedFormat(let name):
            return "tensor format \(name) has no kernels in effterm (computable: \(WeightFormat.computableNames))"
        case .partialBlock(let t, let count):
            return "\(count) elements is not a whole number of \(t.traits.name) blocks of \(t.traits.blockSize)"
        case .partialFormatBlock(let name, let blockSize, let count):
            return "\(count) elements is not a whole number of \(name) blocks of \(blockSize)"
        }
    }
}

extension WeightFormat {
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
        let k = try checkedRowKernels(count: values.count)
        if values.isEmpty { return [] }
        var out = [UInt8](repeating: 0, count: rowBytes(values.count)!)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBytes { dst in k.quantizeRow(src.baseAddress!, dst.baseAddress!, values.count) }
        }
        return out
    }

    /// Convenience for tests and tools: dequantizes `count` elements from a byte array.
    public func dequantize(_ bytes: [UInt8], count: Int) throws -> [Float] {
        let k = try checkedRowKernels(count: count)
        guard bytes.count >= rowBytes(count)! else {
            throw ggmlType.map { QuantError.partialBlock(type: $0, count: count) }
                ?? QuantError.partialFormatBlock(format: name, blockSize: blockSize, count: count)
        }
        if count == 0 { return [] }
        var out = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { src in
            out.withUnsafeMutableBufferPointer { dst in k.dequantizeRow(src.baseAddress!, dst.baseAddress!, count) }
        }
        return out
    }
}

extension GGMLType {
    /// Reference row kernels for this format, or nil when it is not computable.
    public var rowKernels: QuantRowKernels? { traits.reference }

    /// The kernels for a row of `count` elements, or a typed error naming why not.
    public func checkedRowKernels(count: Int) throws -> QuantRowKernels { try traits.checkedRowKernels(count: count) }

    /// Dequantizes one row of `count` elements from `src` into `dst`.
    public func dequantizeRow(_ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) throws {
        try traits.dequantizeRow(src, into: dst, count: count)
    }

    /// The dot product of one stored row with an f32 vector of `count` elements.
    public func dotRow(_ src: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) throws -> Float {
        try traits.dotRow(src, x, count: count)
    }

    /// Quantizes `count` f32 values into `dst` (`rowBytes(count)` bytes) as ggml rounds.
    public func quantizeRow(_ src: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer, count: Int) throws {
        try traits.quantizeRow(src, into: dst, count: count)
    }

    /// Convenience for tests and tools: quantizes an array into a fresh byte array.
    public func quantize(_ values: [Float]) throws -> [UInt8] { try traits.quantize(values) }

    /// Convenience for tests and tools: dequantizes `count` elements from a byte array.
    public func dequantize(_ bytes: [UInt8], count: Int) throws -> [Float] { try traits.dequantize(bytes, count: count) }
}
