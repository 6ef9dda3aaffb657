import Foundation

/// Element types a safetensors file may declare (the format's `dtype` strings).
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }
}

/// Why a safetensors file was rejected; every case names the tensor or field at fault.
public enum SafeTensorsError: Error, Equatable, CustomStringConvertible {
    case fileTooSmall(bytes: Int)
    case headerLengthOutOfRange(declared: UInt64, fileBytes: Int)
    case headerNotJSON(HeaderJSONError)
    case headerNotObject
    case badMetadata(String)
    case badEntry(tensor: String, reason: String)
    case unknownDType(tensor: String, dtype: String)
    case shapeOverflow(tensor: String, shape: [Int])
    case sizeMismatch(tensor: String, expectedBytes: Int, declaredBytes: Int)
    case offsetsOutOfBounds(tensor: String, begin: Int, end: Int, dataBytes: Int)
    case overlapping(tensor: String, other: String)
    case missingTensor(String)
    case wrongShape(tensor: String, expected: [Int], found: [Int])
    case unsupportedDType(tensor: String, dtype: SafeTensorsDType)

    public var description: String {
        switch self {
        case let .fileTooSmall(n): return "safetensors: file has \(n) bytes, less than the 8-byte header length"
        case let .headerLengthOutOfRange(d, n): return "safetensors: header length \(d) does not fit a file of \(n) bytes"
        case let .headerNotJSON(e): return "safetensors: \(e)"
        case .headerNotObject: return "safetensors: header is not a JSON object"
        case let .badMetadata(r): return "safetensors: __metadata__ \(r)"
        case let .badEntry(t, r): return "safetensors: tensor '\(t)': \(r)"
        case let .unknownDType(t, d): return "safetensors: tensor '\(t)': unknown dtype '\(d)'"
        case let .shapeOverflow(t, s): return "safetensors: tensor '\(t)': shape \(s) overflows"
        case let .sizeMismatch(t, e, d): return "safetensors: tensor '\(t)': shape and dtype need \(e) bytes, offsets give \(d)"
        case let .offsetsOutOfBounds(t, b, e, n): return "safetensors: tensor '\(t)': offsets [\(b), \(e)) outside the \(n)-byte data section"
        case let .overlapping(t, o): return "safetensors: tensor '\(t)' overlaps tensor '\(o)'"
        case let .missingTensor(t): return "safetensors: tensor '\(t)' is missing"
        case let .wrongShape(t, e, f): return "safetensors: tensor '\(t)' has shape \(f), expected \(e)"
        case let .unsupportedDType(t, d): return "safetensors: tensor '\(t)' has dtype \(d.rawValue), which cannot be read as float"
        }
    }
}

/// One tensor's entry in the header: type, shape and byte range within the data section.
public struct SafeTensorsInfo: Equatable, Sendable {
    public var name: String
    public var dtype: SafeTensorsDType
    public var shape: [Int]
    public var byteRange: Range<Int>   // relative to the start of the data section
    public var count: Int { shape.reduce(1, *) }
}

/// A parsed, validated safetensors file (https://github.com/huggingface/safetensors format).
///
/// Layout: u64 little-endian header length N, N bytes of JSON header, then the data section.
/// Validation trusts nothing: header length bounds, strict JSON with duplicate-key rejection,
/// known dtypes, non-negative shapes without overflow, byte counts that match shape x dtype,
/// offsets inside the data section, and no two tensors sharing bytes.
public struct SafeTensorsFile: Sendable {
    /// Header JSON larger than this is rejected before parsing (the reference loader uses 100 MB).
    public static let maxHeaderBytes: UInt64 = 100_000_000

    public let tensors: [String: SafeTensorsInfo]
    /// Names in header order.
    public let names: [String]
    public let metadata: [String: String]
    private let data: Data
    private let dataStart: Int

    public init(contentsOf url: URL) throws {
        try self.init(data: try Data(contentsOf: url, options: .mappedIfSafe))
    }

    public init(data: Data) throws {
        let n = data.count
        guard n >= 8 else { throw SafeTensorsError.fileTooSmall(bytes: n) }
        var headerLength: UInt64 = 0
        data.withUnsafeBytes { raw in
            for i in 0..<8 { headerLength |= UInt64(raw[i]) << (8 * UInt64(i)) }
        }
        guard headerLength <= Self.maxHeaderBytes, headerLength <= UInt64(n - 8) else {
            throw SafeTensorsError.headerLengthOutOfRange(declared: headerLength, fileBytes: n)
        }
        let start = data.startIndex
        let headerBytes = [UInt8](data[(start + 8)..<(start + 8 + Int(headerLength))])
        let json: HeaderJSON
        do { json = try HeaderJSONParser.parse(headerBytes) } catch let e as HeaderJSONError {
            throw SafeTensorsError.headerNotJSON(e)
        }
        guard case let .object(members) = json else { throw SafeTensorsError.headerNotObject }
        let dataBytes = n - 8 - Int(headerLength)
        var infos: [String: SafeTensorsInfo] = [:]
        var order: [String] = []
        var meta: [String: String] = [:]
        for (name, value) in members {
            if name == "__metadata__" {
                guard case let .object(pairs) = value else { throw SafeTensorsError.badMetadata("is not an object") }
                for (k, v) in pairs {
                    guard case let .string(s) = v else { throw SafeTensorsError.badMetadata("value of '\(k)' is not a string") }
                    meta[k] = s
                }
                continue
            }
            let info = try Self.parseEntry(name: name, value: value, dataBytes: dataBytes)
            infos[name] = info
            order.append(name)
        }
        // No two tensors may share bytes: sort by start and compare neighbours.
        let sorted = order.compactMap { infos[$0] }.filter { !$0.byteRange.isEmpty }
            .sorted { $0.byteRange.lowerBound < $1.byteRange.lowerBound }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.byteRange.lowerBound < a.byteRange.upperBound {
            throw SafeTensorsError.overlapping(tensor: b.name, other: a.name)
        }
        self.tensors = infos
        self.names = order
        self.metadata = meta
        self.data = data
        self.dataStart = 8 + Int(headerLength)
    }

    private static func parseEntry(name: String, value: HeaderJSON, dataBytes: Int) throws -> SafeTensorsInfo {
        guard case let .object(fields) = value else { throw SafeTensorsError.badEntry(tensor: name, reason: "entry is not an object") }
        var dtypeText: String?
        var shape: [Int]?
        var offsets: [Int]?
        func ints(_ v: HeaderJSON, _ field: String) throws -> [Int] {
            guard case let .array(items) = v else { throw SafeTensorsError.badEntry(tensor: name, reason: "\(field) is not an array") }
            return try items.map { item in
                guard case let .number(_, exact) = item, let u = exact, u <= UInt64(Int.max) else {
                    throw SafeTensorsError.badEntry(tensor: name, reason: "\(field) holds a value that is not a non-negative integer")
                }
                return Int(u)
            }
        }
        for (key, v) in fields {
            switch key {
            case "dtype":
                guard case let .string(s) = v else { throw SafeTensorsError.badEntry(tensor: name, reason: "dtype is not a string") }
                dtypeText = s
            case "shape": shape = try ints(v, "shape")
            case "data_offsets": offsets = try ints(v, "data_offsets")
            default: throw SafeTensorsError.badEntry(tensor: name, reason: "unknown field '\(key)'")
            }
        }
        guard let dtypeText else { throw SafeTensorsError.badEntry(tensor: name, reason: "no dtype") }
        guard let dtype = SafeTensorsDType(rawValue: dtypeText) else { throw SafeTensorsError.unknownDType(tensor: name, dtype: dtypeText) }
        guard let shape else { throw SafeTensorsError.badEntry(tensor: name, reason: "no shape") }
        guard let offsets, offsets.count == 2 else { throw SafeTensorsError.badEntry(tensor: name, reason: "data_offsets must be [begin, end]") }
        var bytes = dtype.size
        for d in shape {
            let (p, o) = bytes.multipliedReportingOverflow(by: d)
            guard !o else { throw SafeTensorsError.shapeOverflow(tensor: name, shape: shape) }
            bytes = p
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin <= end, end <= dataBytes else {
            throw SafeTensorsError.offsetsOutOfBounds(tensor: name, begin: begin, end: end, dataBytes: dataBytes)
        }
        guard end - begin == bytes else {
            throw SafeTensorsError.sizeMismatch(tensor: name, expectedBytes: bytes, declaredBytes: end - begin)
        }
        return SafeTensorsInfo(name: name, dtype: dtype, shape: shape, byteRange: begin..<end)
    }

    /// The tensor's info, checking its shape when `shape` is given.
    public func info(_ name: String, shape expected: [Int]? = nil) throws -> SafeTensorsInfo {
        guard let info = tensors[name] else { throw SafeTensorsError.missingTensor(name) }
        if let expected, expected != info.shape {
            throw SafeTensorsError.wrongShape(tensor: name, expected: expected, found: info.shape)
        }
        return info
    }

    /// The tensor converted to Float32 (F32, F16 and BF16 are supported), row-major.
    public func floats(_ name: String, shape expected: [Int]? = nil) throws -> [Float] {
        let info = try self.info(name, shape: expected)
        let count = info.count
        let offset = dataStart + info.byteRange.lowerBound
        return try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> [Float] in
            let base = raw.baseAddress!.advanced(by: offset)
            switch info.dtype {
            case .f32:
                return (0..<count).map { Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            case .f16:
                return (0..<count).map { HalfFloat.toFloat(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
            case .bf16:
                return (0..<count).map { Float(bitPattern: UInt32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16) }
            default:
                throw SafeTensorsError.unsupportedDType(tensor: name, dtype: info.dtype)
            }
        }
    }

    /// The tensor's raw little-endian bytes.
    public func bytes(_ name: String) throws -> Data {
        let info = try self.info(name)
        let s = data.startIndex + dataStart
        return data[(s + info.byteRange.lowerBound)..<(s + info.byteRange.upperBound)]
    }
}

/// IEEE 754 binary16 <-> binary32 conversion by bit manipulation (portable, exact).
public enum HalfFloat {
    /// binary16 bits -> Float (subnormals, infinities and NaN preserved).
    @inlinable public static func toFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = Int32((h >> 10) & 0x1F)
        let man = UInt32(h & 0x3FF)
        if exp == 0 {
            if man == 0 { return Float(bitPattern: sign) }
            let v = Float(man) * 0x1p-24                      // subnormal: man * 2^-24
            return sign != 0 ? -v : v
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (man << 13)) }
        return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (man << 13))
    }

    /// Float -> binary16 bits, round to nearest even, overflow to infinity.
    public static func fromFloat(_ f: Float) -> UInt16 {
        let bits = f.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exp = Int32((bits >> 23) & 0xFF)
        var man = bits & 0x7F_FFFF
        if exp == 0xFF { return sign | 0x7C00 | (man != 0 ? 0x200 : 0) }
        var e = exp - 127 + 15
        if e >= 31 { return sign | 0x7C00 }
        if e <= 0 {
            if e < -10 { return sign }
            man |= 0x80_0000
            let shift = UInt32(14 - e)
            var half = man >> shift
            let rem = man & ((1 << shift) - 1), mid = UInt32(1) << (shift - 1)
            if rem > mid || (rem == mid && half & 1 == 1) { half += 1 }
            return sign | UInt16(half)
        }
        var half = UInt32(e) << 10 | (man >> 13)
        let rem = man & 0x1FFF
        if rem > 0x1000 || (rem == 0x1000 && half & 1 == 1) { half += 1 }
        e = 0
        return sign | UInt16(truncatingIfNeeded: half)
    }
}
