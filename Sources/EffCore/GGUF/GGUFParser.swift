/// The parse of a GGUF header: metadata, tensor infos and where the data section starts.
///
/// Layout (GGUF spec, versions 2 and 3, little-endian):
/// `magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv | n_kv x (string key, u32 type,
/// value) | n_tensors x (string name, u32 n_dims, u64 dims[n_dims], u32 ggml type,
/// u64 offset) | padding to alignment | data`. Strings are a u64 length then UTF-8 bytes;
/// arrays are a u32 element type, a u64 count, then the elements.
struct GGUFParser {
    static let magic: [UInt8] = [0x47, 0x47, 0x55, 0x46]  // "GGUF"
    static let defaultAlignment = 32
    static let alignmentKey = "general.alignment"

    let limits: GGUFLimits
    var cursor: GGUFCursor

    var version: UInt32 = 0
    var alignment = GGUFParser.defaultAlignment
    var metadataKeys: [String] = []
    var metadata: [String: GGUFValue] = [:]
    var tensors: [GGUFTensorInfo] = []
    var tensorIndex: [String: Int] = [:]
    var dataOffset = 0
    private var tensorCount = 0

    init(bytes: UnsafeRawBufferPointer, limits: GGUFLimits) {
        self.limits = limits
        self.cursor = GGUFCursor(bytes)
    }

    mutating func parse() throws {
        try parseHeaderAndMetadata()
        try parseTensorInfos()
    }

    // MARK: header and metadata

    private mutating func parseHeaderAndMetadata() throws {
        let fileMagic = (0..<min(4, cursor.remaining)).map { cursor.base[$0] }
        guard fileMagic == GGUFParser.magic else {
            throw fileMagic.count < 4
                ? GGUFError.truncated(what: "magic", offset: 0, needed: 4, available: fileMagic.count)
                : GGUFError.badMagic(found: fileMagic)
        }
        try cursor.skip(4, "magic")
        version = try cursor.read(UInt32.self, "version")
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(version) }

        let nTensors = try cursor.read(UInt64.self, "tensor count")
        let nKV = try cursor.read(UInt64.self, "metadata key count")
        guard nTensors <= UInt64(max(0, limits.maxTensors)) else {
            throw GGUFError.tooManyTensors(count: nTensors, limit: limits.maxTensors)
        }
        guard nKV <= UInt64(max(0, limits.maxKeys)) else {
            throw GGUFError.tooManyKeys(count: nKV, limit: limits.maxKeys)
        }
        // Each key/value needs >= 8 (key length) + 4 (type) + 1 bytes; never reserve more
        // than the rest of the file could hold.
        tensorCount = Int(nTensors)
        let kvCount = Int(nKV)
        try cursor.require(count: kvCount, size: 13, "\(kvCount) metadata entries")
        metadataKeys.reserveCapacity(kvCount)
        metadata.reserveCapacity(kvCount)

        for index in 0..<kvCount {
            let keyOffset = cursor.offset
            let key = try cursor.string(maxBytes: limits.maxKeyBytes, "metadata key #\(index)")
            guard !key.isEmpty else { throw GGUFError.emptyKey(index: index, offset: keyOffset) }
            guard metadata[key] == nil else { throw GGUFError.duplicateKey(key: key, offset: keyOffset) }
            let typeOffset = cursor.offset
            let rawType = try cursor.read(UInt32.self, "type of key '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw GGUFError.unknownValueType(key: key, offset: typeOffset, rawType: rawType)
            }
            let value = try readValue(type, key: key, depth: 0)
            metadataKeys.append(key)
            metadata[key] = value
        }

        if let value = metadata[GGUFParser.alignmentKey] {
            guard case .uint32(let a) = value else {
                throw GGUFError.alignmentWrongType(found: value.typeName)
            }
            guard a > 0, a & (a - 1) == 0 else { throw GGUFError.alignmentNotPowerOfTwo(UInt64(a)) }
            alignment = Int(a)
        }
    }

    private mutating func readValue(_ type: GGUFValueType, key: String, depth: Int) throws -> GGUFValue {
        let what = "value of key '\(key)'"
        switch type {
        case .uint8: return .uint8(try cursor.read(UInt8.self, what))
        case .int8: return .int8(try cursor.read(Int8.self, what))
        case .uint16: return .uint16(try cursor.read(UInt16.self, what))
        case .int16: return .int16(try cursor.read(Int16.self, what))
        case .uint32: return .uint32(try cursor.read(UInt32.self, what))
        case .int32: return .int32(try cursor.read(Int32.self, what))
        case .uint64: return .uint64(try cursor.read(UInt64.self, what))
        case .int64: return .int64(try cursor.read(Int64.self, what))
        case .float32: return .float32(Float(bitPattern: try cursor.read(UInt32.self, what)))
        case .float64: return .float64(Double(bitPattern: try cursor.read(UInt64.self, what)))
        case .bool: return .bool(try cursor.read(UInt8.self, what) != 0)
        case .string: return .string(try cursor.string(maxBytes: limits.maxStringBytes, what))
        case .array: return .array(try readArray(key: key, depth: depth + 1))
        }
    }

    /// Reads an array header and its elements; the claimed count is checked against the cap
    /// and against the bytes left (at the element type's minimum size) before allocating.
    private mutating func readArray(key: String, depth: Int) throws -> GGUFArray {
        let start = cursor.offset
        guard depth <= limits.maxArrayDepth else {
            throw GGUFError.arrayNestingTooDeep(key: key, offset: start, limit: limits.maxArrayDepth)
        }
        let rawType = try cursor.read(UInt32.self, "array type of key '\(key)'")
        guard let type = GGUFValueType(rawValue: rawType) else {
            throw GGUFError.unknownArrayType(key: key, offset: start, rawType: rawType)
        }
        let count64 = try cursor.read(UInt64.self, "array length of key '\(key)'")
        guard count64 <= UInt64(max(0, limits.maxArrayLength)) else {
            throw GGUFError.arrayTooLong(key: key, offset: start, count: count64, limit: limits.maxArrayLength)
        }
        let count = Int(count64)
        try cursor.require(count: count, size: type.minimumEncodedSize,
                           "\(count) \(type) elements of key '\(key)'")

        switch type {
        case .uint8: return .uint8(try readFixed(UInt8.self, count, key))
        case .int8: return .int8(try readFixed(Int8.self, count, key))
        case .uint16: return .uint16(try readFixed(UInt16.self, count, key))
        case .int16: return .int16(try readFixed(Int16.self, count, key))
        case .uint32: return .uint32(try readFixed(UInt32.self, count, key))
        case .int32: return .int32(try readFixed(Int32.self, count, key))
        case .uint64: return .uint64(try readFixed(UInt64.self, count, key))
        case .int64: return .int64(try readFixed(Int64.self, count, key))
        case .float32: return .float32(try readFixed(UInt32.self, count, key).map { Float(bitPattern: $0) })
        case .float64: return .float64(try readFixed(UInt64.self, count, key).map { Double(bitPattern: $0) })
        case .bool: return .bool(try readFixed(UInt8.self, count, key).map { $0 != 0 })
        case .string:
            var strings: [String] = []
            strings.reserveCapacity(count)
            for i in 0..<count {
                strings.append(try cursor.string(maxBytes: limits.maxStringBytes, "element \(i) of key '\(key)'"))
            }
            return .string(strings)
        case .array:
            var arrays: [GGUFArray] = []
            arrays.reserveCapacity(count)
            for _ in 0..<count {
                arrays.append(try readArray(key: key, depth: depth + 1))
            }
            return .array(arrays)
        }
    }

    /// `count` little-endian integers; the caller has already checked they are present.
    private mutating func readFixed<T: FixedWidthInteger>(_: T.Type, _ count: Int, _ key: String) throws -> [T] {
        let size = MemoryLayout<T>.size
        try cursor.require(count: count, size: size, "array of key '\(key)'")
        let start = cursor.offset
        let base = cursor.base
        let values = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            for i in 0..<count {
                buffer[i] = T(littleEndian: base.loadUnaligned(fromByteOffset: start + i * size, as: T.self))
            }
            initialized = count
        }
        try cursor.skip(count * size, "array of key '\(key)'")
        return values
    }

    // MARK: tensor infos

    private mutating func parseTensorInfos() throws {
        // The count was capped in the header; each info needs >= 8+4+8+4+8 bytes.
        let nTensors = tensorCount
        try cursor.require(count: nTensors, size: 32, "\(nTensors) tensor infos")
        tensors.reserveCapacity(nTensors)
        tensorIndex.reserveCapacity(nTensors)
        var relativeOffsets: [UInt64] = []
        relativeOffsets.reserveCapacity(nTensors)

        for index in 0..<nTensors {
            let infoOffset = cursor.offset
            let name = try cursor.string(maxBytes: limits.maxTensorNameBytes, "name of tensor #\(index)")
            guard !name.isEmpty else { throw GGUFError.emptyTensorName(index: index, offset: infoOffset) }
            guard tensorIndex[name] == nil else { throw GGUFError.duplicateTensor(name: name, offset: infoOffset) }

            let dimsOffset = cursor.offset
            let nDims = try cursor.read(UInt32.self, "dimension count of tensor '\(name)'")
            guard nDims >= 1, Int(nDims) <= limits.maxDims else {
                throw GGUFError.badDimensionCount(tensor: name, offset: dimsOffset, count: nDims, limit: limits.maxDims)
            }
            var dims: [Int] = []
            dims.reserveCapacity(Int(nDims))
            for d in 0..<Int(nDims) {
                let at = cursor.offset
                let raw = try cursor.read(UInt64.self, "dimension \(d) of tensor '\(name)'")
                let signed = Int64(bitPattern: raw)
                guard signed > 0, let dim = Int(exactly: signed) else {
                    throw GGUFError.badDimension(tensor: name, offset: at, index: d, value: signed)
                }
                dims.append(dim)
            }

            let typeOffset = cursor.offset
            let rawType = try cursor.read(UInt32.self, "type of tensor '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else {
                throw GGUFError.unknownTensorType(tensor: name, offset: typeOffset, rawType: rawType)
            }
            let relative = try cursor.read(UInt64.self, "data offset of tensor '\(name)'")

            // Sizes: elements = prod(dims), bytes = rowBytes(dims[0]) * prod(dims[1...]).
            var elements = 1
            for d in dims {
                let (p, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow else { throw GGUFError.elementCountOverflow(tensor: name, dims: dims) }
                elements = p
            }
            let traits = type.traits
            guard dims[0] % traits.blockSize == 0 else {
                throw GGUFError.rowNotBlockMultiple(tensor: name, type: traits.name, rowLength: dims[0],
                                                    blockSize: traits.blockSize)
            }
            guard let rowBytes = type.rowBytes(dims[0]) else {
                throw GGUFError.byteSizeOverflow(tensor: name, dims: dims, type: traits.name)
            }
            let (byteCount, overflow) = rowBytes.multipliedReportingOverflow(by: elements / dims[0])
            guard !overflow else { throw GGUFError.byteSizeOverflow(tensor: name, dims: dims, type: traits.name) }
            guard relative % UInt64(alignment) == 0 else {
                throw GGUFError.misalignedTensorOffset(tensor: name, offset: relative, alignment: alignment)
            }

            tensorIndex[name] = tensors.count
            relativeOffsets.append(relative)
            // Absolute offsets are filled in once the data section start is known.
            tensors.append(GGUFTensorInfo(name: name, dims: dims, type: type, offset: 0, byteCount: byteCount))
        }

        // The data section starts at the next multiple of the alignment.
        let fileSize = cursor.base.count
        let (padded, overflow) = cursor.offset.addingReportingOverflow(alignment - 1)
        dataOffset = overflow ? Int.max : padded / alignment * alignment

        for i in tensors.indices {
            let t = tensors[i]
            let absolute = UInt64(dataOffset).addingReportingOverflow(relativeOffsets[i])
            guard !overflow, !absolute.overflow,
                  absolute.partialValue <= UInt64(fileSize),
                  UInt64(t.byteCount) <= UInt64(fileSize) - absolute.partialValue else {
                throw GGUFError.tensorOutOfFile(tensor: t.name, offset: absolute.overflow ? UInt64.max : absolute.partialValue,
                                                byteCount: t.byteCount, fileSize: fileSize)
            }
            tensors[i] = GGUFTensorInfo(name: t.name, dims: t.dims, type: t.type,
                                        offset: Int(absolute.partialValue), byteCount: t.byteCount)
        }

        // No two tensors may share bytes (a writer bug or a crafted alias).
        let byStart = tensors.indices.sorted { tensors[$0].offset < tensors[$1].offset }
        for (a, b) in zip(byStart, byStart.dropFirst()) where tensors[a].offset + tensors[a].byteCount > tensors[b].offset {
            throw GGUFError.tensorsOverlap(first: tensors[a].name, second: tensors[b].name)
        }
    }
}
