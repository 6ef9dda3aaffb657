/// A parsed GGUF file: metadata, tensor infos, and tensor data viewed in place.
///
/// Opening maps the file and parses only the header (metadata and tensor infos); tensor
/// bytes are never copied, `data(for:)` returns views into the mapping, valid while this
/// object lives. Everything the file claims is validated (see `GGUFParser`, `GGUFLimits`);
/// a malformed file throws a `GGUFError` naming the key or tensor at fault.
public final class GGUFFile: @unchecked Sendable {
    /// The path it was opened from; nil when parsed from bytes.
    public let path: String?
    /// Format version, 2 or 3.
    public let version: UInt32
    /// Data alignment: `general.alignment` (a power of two) or 32.
    public let alignment: Int
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    public let metadata: [String: GGUFValue]
    /// Tensor infos in file order.
    public let tensors: [GGUFTensorInfo]
    /// Absolute byte offset of the data section.
    public let dataOffset: Int
    /// Size of the whole file in bytes.
    public let fileSize: Int

    private let tensorIndex: [String: Int]
    private let bytes: UnsafeRawBufferPointer
    private let owner: AnyObject  // MappedFile or OwnedBytes: keeps `bytes` alive

    /// Maps and parses the file at `path`; errors are wrapped in `.inFile(path:error:)`.
    public convenience init(path: String, limits: GGUFLimits = GGUFLimits()) throws {
        let mapped = try MappedFile(path: path)
        do {
            try self.init(owner: mapped, bytes: mapped.bytes, path: path, limits: limits)
        } catch let error as GGUFError {
            throw GGUFError.inFile(path: path, error: error)
        }
    }

    /// Parses an in-memory file (tests, writers). The bytes are copied once, 64-byte aligned.
    public convenience init(bytes: [UInt8], limits: GGUFLimits = GGUFLimits()) throws {
        let owned = OwnedBytes(bytes)
        try self.init(owner: owned, bytes: owned.bytes, path: nil, limits: limits)
    }

    private init(owner: AnyObject, bytes: UnsafeRawBufferPointer, path: String?, limits: GGUFLimits) throws {
        var parser = GGUFParser(bytes: bytes, limits: limits)
        try parser.parse()
        self.owner = owner
        self.bytes = bytes
        self.path = path
        self.version = parser.version
        self.alignment = parser.alignment
        self.metadataKeys = parser.metadataKeys
        self.metadata = parser.metadata
        self.tensors = parser.tensors
        self.tensorIndex = parser.tensorIndex
        self.dataOffset = parser.dataOffset
        self.fileSize = bytes.count
    }

    /// The tensor info called `name`, or nil.
    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The tensor's bytes, a view into the mapping (no copy). `tensor` must come from this
    /// file (its range was checked against the file on parse).
    public func data(for tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        precondition(tensor.offset >= 0 && tensor.byteCount >= 0
                     && tensor.offset <= bytes.count && tensor.byteCount <= bytes.count - tensor.offset,
                     "GGUFFile.data(for:): tensor '\(tensor.name)' is not from this file")
        return UnsafeRawBufferPointer(rebasing: bytes[tensor.offset..<(tensor.offset + tensor.byteCount)])
    }

    /// The whole file, a view into the mapping.
    public var rawBytes: UnsafeRawBufferPointer { bytes }

    // MARK: typed accessors

    /// True when `key` is present.
    public func has(_ key: String) -> Bool { metadata[key] != nil }

    /// The value of `key`, or `.missingKey`.
    public func value(_ key: String) throws -> GGUFValue {
        guard let v = metadata[key] else { throw GGUFError.missingKey(key) }
        return v
    }

    public func string(_ key: String) throws -> String {
        let v = try value(key)
        guard case .string(let s) = v else { throw mismatch(key, "string", v) }
        return s
    }

    /// Any integer type, range-checked into Int.
    public func int(_ key: String) throws -> Int {
        let v = try value(key)
        if let i = v.intValue { return i }
        switch v {
        case .uint64(let u): throw GGUFError.valueOutOfRange(key: key, value: String(u), expected: "an Int")
        default: throw mismatch(key, "an integer", v)
        }
    }

    /// f32 or f64 (narrowed to Float).
    public func float(_ key: String) throws -> Float {
        let v = try value(key)
        switch v {
        case .float32(let f): return f
        case .float64(let d): return Float(d)
        default: throw mismatch(key, "f32 or f64", v)
        }
    }

    public func bool(_ key: String) throws -> Bool {
        let v = try value(key)
        guard case .bool(let b) = v else { throw mismatch(key, "bool", v) }
        return b
    }

    /// The array stored at `key`, or `.typeMismatch`.
    public func array(_ key: String) throws -> GGUFArray {
        let v = try value(key)
        guard case .array(let a) = v else { throw mismatch(key, "an array", v) }
        return a
    }

    public func stringArray(_ key: String) throws -> [String] {
        let a = try array(key)
        guard case .string(let s) = a else { throw GGUFError.typeMismatch(key: key, expected: "[string]", found: a.typeName) }
        return s
    }

    /// An array of any integer type, each element range-checked into Int.
    public func intArray(_ key: String) throws -> [Int] {
        let a = try array(key)
        func convert<T: BinaryInteger>(_ xs: [T]) throws -> [Int] {
            var out = [Int]()
            out.reserveCapacity(xs.count)
            for (i, x) in xs.enumerated() {
                guard let v = Int(exactly: x) else {
                    throw GGUFError.valueOutOfRange(key: key, value: "element \(i) = \(x)", expected: "an Int")
                }
                out.append(v)
            }
            return out
        }
        switch a {
        case .uint8(let xs): return try convert(xs)
        case .int8(let xs): return try convert(xs)
        case .uint16(let xs): return try convert(xs)
        case .int16(let xs): return try convert(xs)
        case .uint32(let xs): return try convert(xs)
        case .int32(let xs): return try convert(xs)
        case .uint64(let xs): return try convert(xs)
        case .int64(let xs): return try convert(xs)
        default: throw GGUFError.typeMismatch(key: key, expected: "an integer array", found: a.typeName)
        }
    }

    /// An f32 or f64 array (f64 narrowed to Float).
    public func floatArray(_ key: String) throws -> [Float] {
        let a = try array(key)
        switch a {
        case .float32(let xs): return xs
        case .float64(let xs): return xs.map { Float($0) }
        default: throw GGUFError.typeMismatch(key: key, expected: "[f32] or [f64]", found: a.typeName)
        }
    }

    private func mismatch(_ key: String, _ expected: String, _ found: GGUFValue) -> GGUFError {
        .typeMismatch(key: key, expected: expected, found: found.typeName)
    }
}

/// A private, 64-byte aligned copy of an in-memory file.
private final class OwnedBytes {
    let bytes: UnsafeRawBufferPointer
    private let storage: UnsafeMutableRawPointer

    init(_ source: [UInt8]) {
        let storage = UnsafeMutableRawPointer.allocate(byteCount: max(source.count, 1), alignment: 64)
        source.withUnsafeBytes { src in
            if let base = src.baseAddress { storage.copyMemory(from: base, byteCount: src.count) }
        }
        self.storage = storage
        bytes = UnsafeRawBufferPointer(start: storage, count: source.count)
    }

    deinit { storage.deallocate() }
}
