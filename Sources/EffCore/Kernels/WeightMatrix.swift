/// A read-only 2-D weight view in any computable format, the operand of `Kernels.matmul`.
///
/// Convention, written once for all of effterm: `W(rows = out, cols = in) · x(in) -> y(out)`,
/// row-major. Row `r` starts at `data + r * rowBytes` and holds `cols` elements stored in
/// `format` (a whole number of its blocks). The memory is owned elsewhere (usually a mapped
/// GGUF file) and must outlive the view.
public struct WeightMatrix: @unchecked Sendable {
    /// The storage format: its row of the weight-format table.
    public let format: WeightFormat
    public let data: UnsafeRawPointer
    /// Output features (`out`).
    public let rows: Int
    /// Input features (`in`), the length of each stored row.
    public let cols: Int
    /// Bytes per stored row, `format.rowBytes(cols)`.
    public let rowBytes: Int
    /// The fast kernels' repacked copy (formats whose fast path packs), shared by copies of
    /// this view and built on first use; the reference kernels read `data`.
    public let packed: PackedWeights?

    /// The format under the name the model code reads it by (`embd.type.rowKernels`).
    public var type: WeightFormat { format }

    /// A view of `rows x cols` elements at `data`; fails when the format has no kernels or
    /// `cols` is not a whole number of blocks.
    public init(format: WeightFormat, data: UnsafeRawPointer, rows: Int, cols: Int) throws {
        _ = try format.checkedRowKernels(count: cols)
        guard rows >= 0, let rb = format.rowBytes(cols) else {
            throw format.ggmlType.map { QuantError.partialBlock(type: $0, count: cols) }
                ?? QuantError.partialFormatBlock(format: format.name, blockSize: format.blockSize, count: cols)
        }
        self.format = format
        self.data = data
        self.rows = rows
        self.cols = cols
        self.rowBytes = rb
        packed = format.fast?.packs == true ? PackedWeights() : nil
    }

    /// A view of a tensor in a ggml format (see `init(format:data:rows:cols:)`).
    public init(type: GGMLType, data: UnsafeRawPointer, rows: Int, cols: Int) throws {
        try self.init(format: type.traits, data: data, rows: rows, cols: cols)
    }

    /// Total bytes of the stored matrix.
    public var byteCount: Int { rows * rowBytes }

    /// Start of stored row `r`.
    @inline(__always)
    public func row(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }
}
