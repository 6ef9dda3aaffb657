import EffCore

/// Builds GGUF files in memory for tests, well-formed by default and deliberately broken
/// on request (every field the reader validates can be overridden with raw values).
///
/// Layout written (GGUF v2/v3): magic, version, n_tensors, n_kv, key/values, tensor infos,
/// zero padding to `layoutAlignment`, then each tensor's data padded to `layoutAlignment`.
/// Relative offsets are computed from that layout unless a tensor overrides its own.
public struct GGUFWriter {
    /// One metadata entry. `value` is encoded normally unless the raw overrides are set.
    public struct Entry {
        public var keyBytes: [UInt8]
        public var value: GGUFValue
        /// Written instead of the key's true byte length.
        public var rawKeyLength: UInt64?
        /// Written instead of the value's type id.
        public var rawType: UInt32?
        /// Written instead of the encoded value (after the type id).
        public var rawValue: [UInt8]?

        public init(_ key: String, _ value: GGUFValue) {
            self.keyBytes = Array(key.utf8)
            self.value = value
        }
    }

    /// One tensor: its info fields and its data bytes.
    public struct Tensor {
        public var nameBytes: [UInt8]
        /// Raw dims as written (u64 each; negative values via `UInt64(bitPattern:)`).
        public var dims: [UInt64]
        public var type: UInt32
        public var data: [UInt8]
        /// Written instead of `dims.count`.
        public var rawDimCount: UInt32?
        /// Written instead of the computed relative data offset.
        public var rawOffset: UInt64?

        public init(name: String, dims: [Int], type: GGMLType, data: [UInt8]) {
            self.nameBytes = Array(name.utf8)
            self.dims = dims.map { UInt64(bitPattern: Int64($0)) }
            self.type = type.rawValue
            self.data = data
        }

        /// An F32 tensor holding `values` (row-major, `dims[0]` fastest).
        public static func f32(_ name: String, dims: [Int], values: [Float]) -> Tensor {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(values.count * 4)
            for v in values { GGUFWriter.append(v.bitPattern, to: &bytes) }
            return Tensor(name: name, dims: dims, type: .f32, data: bytes)
        }

        /// A tensor of `type` whose data is `count` bytes counting 0, 1, 2, ... (mod 256).
        public static func pattern(_ name: String, dims: [Int], type: GGMLType, seed: Int = 0) -> Tensor {
            let elements = dims.reduce(1, *)
            let count = type.rowBytes(dims[0]).map { $0 * (elements / dims[0]) } ?? 0
            return Tensor(name: name, dims: dims, type: type,
                          data: (0..<count).map { UInt8(truncatingIfNeeded: $0 + seed) })
        }
    }

    public var magic: [UInt8] = Array("GGUF".utf8)
    public var version: UInt32 = 3
    public var entries: [Entry] = []
    public var tensors: [Tensor] = []
    /// Written instead of `tensors.count` / `entries.count`.
    public var rawTensorCount: UInt64?
    public var rawKeyCount: UInt64?
    /// Alignment used for padding and offsets: `general.alignment` when an entry sets it as
    /// a u32, else 32; set this to lay the file out with a different one than it declares.
    public var layoutAlignment: Int?

    public init() {}

    /// Appends a metadata entry.
    public mutating func add(_ key: String, _ value: GGUFValue) {
        entries.append(Entry(key, value))
    }

    /// The alignment padding and offsets follow.
    public var effectiveAlignment: Int {
        if let a = layoutAlignment { return a }
        for e in entries where e.keyBytes == Array("general.alignment".utf8) {
            if case .uint32(let a) = e.value, a > 0 { return Int(a) }
        }
        return 32
    }

    /// Relative data offsets the writer lays tensors at (before any `rawOffset`).
    public var layoutOffsets: [UInt64] {
        let align = effectiveAlignment
        var offsets: [UInt64] = []
        var next = 0
        for t in tensors {
            offsets.append(UInt64(next))
            next += GGUFWriter.padded(t.data.count, align)
        }
        return offsets
    }

    /// The encoded file.
    public func bytes() -> [UInt8] {
        var out: [UInt8] = []
        out += magic
        GGUFWriter.append(version, to: &out)
        GGUFWriter.append(rawTensorCount ?? UInt64(tensors.count), to: &out)
        GGUFWriter.append(rawKeyCount ?? UInt64(entries.count), to: &out)
        for e in entries {
            GGUFWriter.append(e.rawKeyLength ?? UInt64(e.keyBytes.count), to: &out)
            out += e.keyBytes
            GGUFWriter.append(e.rawType ?? e.value.type.rawValue, to: &out)
            if let raw = e.rawValue { out += raw } else { GGUFWriter.encode(e.value, to: &out) }
        }
        let offsets = layoutOffsets
        for (t, offset) in zip(tensors, offsets) {
            GGUFWriter.append(UInt64(t.nameBytes.count), to: &out)
            out += t.nameBytes
            GGUFWriter.append(t.rawDimCount ?? UInt32(t.dims.count), to: &out)
            for d in t.dims { GGUFWriter.append(d, to: &out) }
            GGUFWriter.append(t.type, to: &out)
            GGUFWriter.append(t.rawOffset ?? offset, to: &out)
        }
        let align = effectiveAlignment
        out += [UInt8](repeating: 0, count: GGUFWriter.padded(out.count, align) - out.count)
        for t in tensors {
            out += t.data
            out += [UInt8](repeating: 0, count: GGUFWriter.padded(t.data.count, align) - t.data.count)
        }
        return out
    }

    // MARK: encoding helpers

    public static func padded(_ n: Int, _ align: Int) -> Int { (n + align - 1) / align * align }

    public static func append<T: FixedWidthInteger>(_ v: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out += $0 }
    }

    /// A GGUF string: u64 length then the bytes (which need not be valid UTF-8).
    public static func encodeString(_ bytes: [UInt8], to out: inout [UInt8]) {
        append(UInt64(bytes.count), to: &out)
        out += bytes
    }

    /// The value without its type id.
    public static func encode(_ value: GGUFValue, to out: inout [UInt8]) {
        switch value {
        case .uint8(let v): append(v, to: &out)
        case .int8(let v): append(v, to: &out)
        case .uint16(let v): append(v, to: &out)
        case .int16(let v): append(v, to: &out)
        case .uint32(let v): append(v, to: &out)
        case .int32(let v): append(v, to: &out)
        case .uint64(let v): append(v, to: &out)
        case .int64(let v): append(v, to: &out)
        case .float32(let v): append(v.bitPattern, to: &out)
        case .float64(let v): append(v.bitPattern, to: &out)
        case .bool(let v): append(UInt8(v ? 1 : 0), to: &out)
        case .string(let s): encodeString(Array(s.utf8), to: &out)
        case .array(let a): encode(a, to: &out)
        }
    }

    /// An array: u32 element type, u64 count, elements.
    public static func encode(_ array: GGUFArray, to out: inout [UInt8]) {
        append(array.elementType.rawValue, to: &out)
        append(UInt64(array.count), to: &out)
        if case .array(let inner) = array {
            for a in inner { encode(a, to: &out) }
            return
        }
        for i in 0..<array.count { encode(array.element(at: i), to: &out) }
    }
}
