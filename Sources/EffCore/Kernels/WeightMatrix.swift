/// A read-only 2-D weight view in any computable format, the operand of `Kernels.matmul`.
///
/// Convention, written once for all of effterm: `W(rows = out, cols = in) · x(in) -> y(out)`,
/// row-major. Row `r` starts at `data + r * rowBytes` and holds `cols` elements stored in
/// `type` (a whole number of its blocks). The memory is owned elsewhere (usually a mapped
/// GGUF file) and must outlive the view.
public struct WeightMatrix: @unchecked Sendable {
    public let type: GGMLType
    public let data: UnsafeRawPointer
    /// Output features (`out`).
    public let rows: Int
    /// Input features (`in`), the length of each stored row.
    public let cols: Int
    /// Bytes per stored row, `type.rowBytes(cols)`.
    public let rowBytes: Int
    /// The fast kernels' repacked copy (quantized formats only), shared by copies of this
    /// view and built on first use; the reference kernels read `data`.
    public let packed: PackedWeights?

    /// A view of `rows x cols` elements at `data`; fails when the format has no kernels or
    /// `cols` is not a whole number of blocks.
    public init(type: GGMLType, data: UnsafeRawPointer, rows: Int, cols: Int) throws {
        _ = try type.checkedRowKernels(count: cols)
        guard rows >= 0, let rb = type.rowBytes(cols) else {
            throw QuantError.partialBlock(type: type, count: cols)
        }
        self.type = type
        self.data = data
        self.rows = rows
        self.cols = cols
        self.rowBytes = rb
        packed = PackedWeights.kind(type) != nil ? PackedWeights() : nil
    }

    /// Total bytes of the stored matrix.
    public var byteCount: Int { rows * rowBytes }

    /// Start of stored row `r`.
    @inline(__always)
    public func row(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }
}
