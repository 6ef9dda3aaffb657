/// Metadata value types of the GGUF format (`enum gguf_type`, GGUF spec "Metadata").
public enum GGUFValueType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6
    case bool = 7, string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Encoded size of one value of a fixed-size type; nil for strings and arrays.
    public var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        case .string, .array: return nil
        }
    }

    /// Fewest bytes one encoded value can occupy: a string is at least its u64 length, an
    /// array at least its u32 element type and u64 count. Counts claimed by the file are
    /// checked against `remaining / minimumEncodedSize` before anything is allocated.
    public var minimumEncodedSize: Int {
        switch self {
        case .string: return 8
        case .array: return 12
        default: return fixedSize!
        }
    }

    /// Short name as GGUF tools print it: `u8`, `i32`, `f32`, `string`, ...
    public var description: String {
        switch self {
        case .uint8: return "u8"
        case .int8: return "i8"
        case .uint16: return "u16"
        case .int16: return "i16"
        case .uint32: return "u32"
        case .int32: return "i32"
        case .float32: return "f32"
        case .bool: return "bool"
        case .string: return "string"
        case .array: return "array"
        case .uint64: return "u64"
        case .int64: return "i64"
        case .float64: return "f64"
        }
    }
}

/// One metadata value of a GGUF file, exactly as stored (no widening).
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16)
    case uint32(UInt32), int32(Int32), uint64(UInt64), int64(Int64)
    case float32(Float), float64(Double), bool(Bool), string(String)
    case array(GGUFArray)

    /// The stored type.
    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .uint64: return .uint64
        case .int64: return .int64
        case .float32: return .float32
        case .float64: return .float64
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        }
    }

    /// Type as people read it: `u32`, `string`, `[string]`, `[[i32]]`.
    public var typeName: String {
        if case .array(let a) = self { return a.typeName }
        return type.description
    }

    /// The value as an Int when it is any integer type and fits; nil otherwise.
    public var intValue: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return Int(exactly: v)
        case .int64(let v): return Int(exactly: v)
        default: return nil
        }
    }

    /// One-line rendering; arrays longer than `maxItems` show type, length and first items.
    public func summary(maxItems: Int = 8, maxStringBytes: Int = 80) -> String {
        switch self {
        case .uint8(let v): return String(v)
        case .int8(let v): return String(v)
        case .uint16(let v): return String(v)
        case .int16(let v): return String(v)
        case .uint32(let v): return String(v)
        case .int32(let v): return String(v)
        case .uint64(let v): return String(v)
        case .int64(let v): return String(v)
        case .float32(let v): return String(v)
        case .float64(let v): return String(v)
        case .bool(let v): return String(v)
        case .string(let s): return GGUFValue.quoted(s, maxBytes: maxStringBytes)
        case .array(let a): return a.summary(maxItems: maxItems, maxStringBytes: maxStringBytes)
        }
    }

    /// `s` in double quotes with control characters escaped, cut after `maxBytes` UTF-8 bytes.
    static func quoted(_ s: String, maxBytes: Int) -> String {
        var out = "\""
        var used = 0
        for scalar in s.unicodeScalars {
            if used >= maxBytes {
                out += "...(\(s.utf8.count) bytes)"
                break
            }
            used += String(scalar).utf8.count
            switch scalar {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

/// A homogeneous GGUF array. Typed storage keeps a 49152-entry vocabulary one `[String]`
/// rather than 49152 boxed values; nested arrays carry their own element type each.
public enum GGUFArray: Sendable, Equatable {
    case uint8([UInt8]), int8([Int8]), uint16([UInt16]), int16([Int16])
    case uint32([UInt32]), int32([Int32]), uint64([UInt64]), int64([Int64])
    case float32([Float]), float64([Double]), bool([Bool]), string([String])
    case array([GGUFArray])

    /// Element type as stored in the file.
    public var elementType: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .uint64: return .uint64
        case .int64: return .int64
        case .float32: return .float32
        case .float64: return .float64
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        }
    }

    /// Number of elements.
    public var count: Int {
        switch self {
        case .uint8(let a): return a.count
        case .int8(let a): return a.count
        case .uint16(let a): return a.count
        case .int16(let a): return a.count
        case .uint32(let a): return a.count
        case .int32(let a): return a.count
        case .uint64(let a): return a.count
        case .int64(let a): return a.count
        case .float32(let a): return a.count
        case .float64(let a): return a.count
        case .bool(let a): return a.count
        case .string(let a): return a.count
        case .array(let a): return a.count
        }
    }

    /// `[string]`, `[i32]`; a nested array names its first element's type (`[[u8]]`).
    public var typeName: String {
        if case .array(let inner) = self {
            return "[" + (inner.first?.typeName ?? "[?]") + "]"
        }
        return "[\(elementType)]"
    }

    /// The elements as individual values (for display and generic code, not hot paths).
    public func element(at i: Int) -> GGUFValue {
        switch self {
        case .uint8(let a): return .uint8(a[i])
        case .int8(let a): return .int8(a[i])
        case .uint16(let a): return .uint16(a[i])
        case .int16(let a): return .int16(a[i])
        case .uint32(let a): return .uint32(a[i])
        case .int32(let a): return .int32(a[i])
        case .uint64(let a): return .uint64(a[i])
        case .int64(let a): return .int64(a[i])
        case .float32(let a): return .float32(a[i])
        case .float64(let a): return .float64(a[i])
        case .bool(let a): return .bool(a[i])
        case .string(let a): return .string(a[i])
        case .array(let a): return .array(a[i])
        }
    }

    /// `[string] x 49152: ["<|endoftext|>", "<|im_start|>", ...]`, or all items when short.
    public func summary(maxItems: Int = 8, maxStringBytes: Int = 80) -> String {
        "\(typeName) x \(count): " + itemsSummary(maxItems: maxItems, maxStringBytes: maxStringBytes)
    }

    /// The first `maxItems` elements in brackets, `...` marking the rest.
    public func itemsSummary(maxItems: Int = 8, maxStringBytes: Int = 80) -> String {
        let shown = Swift.min(count, maxItems)
        let items = (0..<shown).map {
            element(at: $0).summary(maxItems: maxItems, maxStringBytes: maxStringBytes)
        }
        let more = count > shown ? ", ..." : ""
        return "[" + items.joined(separator: ", ") + more + "]"
    }
}
