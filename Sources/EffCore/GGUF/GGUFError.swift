/// Why a GGUF file (or a metadata lookup) was rejected; each case names the key or tensor
/// at fault and, where it helps, the byte offset in the file.
public enum GGUFError: Error, CustomStringConvertible, Equatable {
    // File access
    case cannotOpen(path: String, reason: String)
    /// `error` raised while reading `path`; the path is added by `GGUFFile(path:)`.
    indirect case inFile(path: String, error: GGUFError)

    // Header
    case badMagic(found: [UInt8])
    case unsupportedVersion(UInt32)
    case tooManyTensors(count: UInt64, limit: Int)
    case tooManyKeys(count: UInt64, limit: Int)
    /// The file ends before `needed` bytes of `what` (at `offset`; `available` remain).
    case truncated(what: String, offset: Int, needed: UInt64, available: Int)

    // Metadata
    case stringTooLong(what: String, offset: Int, length: UInt64, limit: Int)
    case invalidUTF8(what: String, offset: Int)
    case emptyKey(index: Int, offset: Int)
    case duplicateKey(key: String, offset: Int)
    case unknownValueType(key: String, offset: Int, rawType: UInt32)
    case unknownArrayType(key: String, offset: Int, rawType: UInt32)
    case arrayTooLong(key: String, offset: Int, count: UInt64, limit: Int)
    case arrayNestingTooDeep(key: String, offset: Int, limit: Int)
    case alignmentWrongType(found: String)
    case alignmentNotPowerOfTwo(UInt64)

    // Tensor infos
    case emptyTensorName(index: Int, offset: Int)
    case duplicateTensor(name: String, offset: Int)
    case badDimensionCount(tensor: String, offset: Int, count: UInt32, limit: Int)
    case badDimension(tensor: String, offset: Int, index: Int, value: Int64)
    case elementCountOverflow(tensor: String, dims: [Int])
    case unknownTensorType(tensor: String, offset: Int, rawType: UInt32)
    case rowNotBlockMultiple(tensor: String, type: String, rowLength: Int, blockSize: Int)
    case byteSizeOverflow(tensor: String, dims: [Int], type: String)
    case misalignedTensorOffset(tensor: String, offset: UInt64, alignment: Int)
    case tensorOutOfFile(tensor: String, offset: UInt64, byteCount: Int, fileSize: Int)
    case tensorsOverlap(first: String, second: String)

    // Typed accessors
    case missingKey(String)
    case typeMismatch(key: String, expected: String, found: String)
    case valueOutOfRange(key: String, value: String, expected: String)

    /// The innermost error, without any `inFile` wrapper (what tests usually match on).
    public var underlying: GGUFError {
        if case .inFile(_, let e) = self { return e.underlying }
        return self
    }

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            return "cannot open '\(path)': \(reason)"
        case .inFile(let path, let error):
            return "\(path): \(error)"
        case .badMagic(let found):
            let hex = found.map { String($0, radix: 16) }.joined(separator: " ")
            return "not a GGUF file: the first bytes are [\(hex)], expected \"GGUF\" (47 47 55 46)"
        case .unsupportedVersion(let v):
            if v == 1 {
                return "GGUF version 1 is not supported (it used 32-bit counts); convert the file with a current llama.cpp"
            }
            if v.byteSwapped == 2 || v.byteSwapped == 3 {
                return "GGUF version \(v) looks like a big-endian file; only little-endian files are supported"
            }
            return "unsupported GGUF version \(v): this reader accepts versions 2 and 3"
        case .tooManyTensors(let count, let limit):
            return "header claims \(count) tensors; the limit is \(limit) (file corrupt, or raise GGUFLimits.maxTensors)"
        case .tooManyKeys(let count, let limit):
            return "header claims \(count) metadata keys; the limit is \(limit) (file corrupt, or raise GGUFLimits.maxKeys)"
        case .truncated(let what, let offset, let needed, let available):
            return "file truncated: \(what) at byte \(offset) needs \(needed) bytes but only \(available) remain (incomplete download?)"
        case .stringTooLong(let what, let offset, let length, let limit):
            return "\(what) at byte \(offset) claims a length of \(length) bytes; the limit is \(limit)"
        case .invalidUTF8(let what, let offset):
            return "\(what) at byte \(offset) is not valid UTF-8"
        case .emptyKey(let index, let offset):
            return "metadata key #\(index) at byte \(offset) is empty"
        case .duplicateKey(let key, let offset):
            return "metadata key '\(key)' appears twice (second at byte \(offset))"
        case .unknownValueType(let key, let offset, let raw):
            return "metadata key '\(key)' has unknown value type \(raw) at byte \(offset) (known: 0...12)"
        case .unknownArrayType(let key, let offset, let raw):
            return "metadata key '\(key)' is an array of unknown element type \(raw) at byte \(offset) (known: 0...12)"
        case .arrayTooLong(let key, let offset, let count, let limit):
            return "metadata key '\(key)' claims an array of \(count) elements at byte \(offset); the limit is \(limit)"
        case .arrayNestingTooDeep(let key, let offset, let limit):
            return "metadata key '\(key)' nests arrays deeper than \(limit) levels at byte \(offset)"
        case .alignmentWrongType(let found):
            return "'general.alignment' must be a u32, found \(found)"
        case .alignmentNotPowerOfTwo(let v):
            return "'general.alignment' is \(v); it must be a power of two greater than 0"
        case .emptyTensorName(let index, let offset):
            return "tensor #\(index) at byte \(offset) has an empty name"
        case .duplicateTensor(let name, let offset):
            return "tensor '\(name)' appears twice (second at byte \(offset))"
        case .badDimensionCount(let tensor, let offset, let count, let limit):
            return "tensor '\(tensor)' claims \(count) dimensions at byte \(offset); expected 1...\(limit)"
        case .badDimension(let tensor, let offset, let index, let value):
            return "tensor '\(tensor)' has dimension \(index) = \(value) at byte \(offset); dimensions must be positive"
        case .elementCountOverflow(let tensor, let dims):
            return "tensor '\(tensor)' has shape \(dims) whose element count overflows"
        case .unknownTensorType(let tensor, let offset, let raw):
            return "tensor '\(tensor)' has unknown or retired ggml type id \(raw) at byte \(offset)"
        case .rowNotBlockMultiple(let tensor, let type, let rowLength, let blockSize):
            return "tensor '\(tensor)' of type \(type) has row length \(rowLength), not a multiple of its block size \(blockSize)"
        case .byteSizeOverflow(let tensor, let dims, let type):
            return "tensor '\(tensor)' (\(type), shape \(dims)) has a byte size that overflows"
        case .misalignedTensorOffset(let tensor, let offset, let alignment):
            return "tensor '\(tensor)' starts at data offset \(offset), not a multiple of the alignment \(alignment)"
        case .tensorOutOfFile(let tensor, let offset, let byteCount, let fileSize):
            return "tensor '\(tensor)' spans bytes \(offset)..<\(offset &+ UInt64(byteCount)) but the file has \(fileSize) bytes (truncated download?)"
        case .tensorsOverlap(let first, let second):
            return "tensors '\(first)' and '\(second)' overlap in the data section"
        case .missingKey(let key):
            return "metadata key '\(key)' is missing"
        case .typeMismatch(let key, let expected, let found):
            return "metadata key '\(key)' is \(found), expected \(expected)"
        case .valueOutOfRange(let key, let value, let expected):
            return "metadata key '\(key)' = \(value) is out of range (expected \(expected))"
        }
    }
}

/// Caps that bound what a file can make the reader allocate; every count and length the
/// file claims is compared with these (and with the bytes actually left) before allocation.
public struct GGUFLimits: Sendable {
    /// Most tensor infos (the real model has 272).
    public var maxTensors: Int = 65_536
    /// Most metadata key/value pairs.
    public var maxKeys: Int = 65_536
    /// Longest metadata key in bytes.
    public var maxKeyBytes: Int = 65_535
    /// Longest string value in bytes (chat templates are a few KiB).
    public var maxStringBytes: Int = 16 << 20
    /// Longest tensor name in bytes: ggml's GGML_MAX_NAME (64) less the terminator, so
    /// anything accepted here also loads in llama.cpp.
    public var maxTensorNameBytes: Int = 63
    /// Most elements in one array (the vocabulary has 49152, merges 48900).
    public var maxArrayLength: Int = 16 << 20
    /// Deepest array nesting (1 = arrays of scalars or strings only).
    public var maxArrayDepth: Int = 4
    /// Most dimensions of a tensor (ggml's GGML_MAX_DIMS).
    public var maxDims: Int = 4

    public init() {}
}
