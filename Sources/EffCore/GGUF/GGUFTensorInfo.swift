/// Where one tensor lives in a GGUF file and what shape and format it has.
///
/// Validated on parse: 1...4 positive dims, a known type, row length a whole number of
/// blocks, no size overflow, aligned and inside the file.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// ggml order: `dims[0]` is the row length (fastest axis). `W(out, in)` is `[in, out]`.
    public let dims: [Int]
    public let type: GGMLType
    /// Absolute byte offset in the file (data section start + the stored relative offset).
    public let offset: Int
    /// Bytes of tensor data: `rowBytes(dims[0]) * rowCount`.
    public let byteCount: Int

    public init(name: String, dims: [Int], type: GGMLType, offset: Int, byteCount: Int) {
        self.name = name
        self.dims = dims
        self.type = type
        self.offset = offset
        self.byteCount = byteCount
    }

    /// Product of all dims.
    public var elementCount: Int { dims.reduce(1, *) }
    /// `dims[0]`: elements per row.
    public var rowLength: Int { dims[0] }
    /// Product of `dims[1...]` (1 for a vector).
    public var rowCount: Int { dims.dropFirst().reduce(1, *) }
    /// Bytes per row in this tensor's format.
    public var rowBytes: Int { rowCount == 0 ? 0 : byteCount / rowCount }
}
