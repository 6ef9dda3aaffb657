import Foundation

/// A JSON value parsed from a safetensors header by a strict, duplicate-detecting parser.
///
/// Foundation's `JSONSerialization` silently keeps one of two duplicate keys; a loader that
/// trusts nothing must see them, so the header is parsed here (RFC 8259 subset: no
/// surrogate-pair validation beyond decoding, numbers as Double plus an exact UInt64 path).
public indirect enum HeaderJSON: Equatable, Sendable {
    case object([(String, HeaderJSON)])
    case array([HeaderJSON])
    case string(String)
    case number(Double, exactUInt: UInt64?)
    case bool(Bool)
    case null

    public static func == (a: HeaderJSON, b: HeaderJSON) -> Bool {
        switch (a, b) {
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case let (.array(x), .array(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.number(x, _), .number(y, _)): return x == y
        case let (.bool(x), .bool(y)): return x == y
        case (.null, .null): return true
        default: return false
        }
    }
}

/// Why a header failed to parse as JSON; `offset` is the byte position in the header.
public struct HeaderJSONError: Error, Equatable, CustomStringConvertible {
    public var offset: Int
    public var reason: String
    public var description: String { "JSON error at header byte \(offset): \(reason)" }
}

/// Strict recursive-descent JSON parser over UTF-8 bytes; rejects duplicate object keys.
struct HeaderJSONParser {
    private let bytes: [UInt8]
    private var pos = 0
    private var depth = 0
    private static let maxDepth = 64

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    static func parse(_ bytes: [UInt8]) throws -> HeaderJSON {
        var p = HeaderJSONParser(bytes)
        let value = try p.parseValue()
        p.skipSpace()
        guard p.pos == p.bytes.count else { throw p.error("trailing bytes after the JSON value") }
        return value
    }

    private func error(_ reason: String) -> HeaderJSONError { HeaderJSONError(offset: pos, reason: reason) }

    private mutating func skipSpace() {
        while pos < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[pos]) { pos += 1 }
    }

    private mutating func expect(_ byte: UInt8) throws {
        skipSpace()
        guard pos < bytes.count, bytes[pos] == byte else {
            throw error("expected '\(Character(UnicodeScalar(byte)))'")
        }
        pos += 1
    }

    private mutating func parseValue() throws -> HeaderJSON {
        skipSpace()
        guard pos < bytes.count else { throw error("unexpected end of header") }
        switch bytes[pos] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default: return try parseNumber()
        }
    }

    private mutating func literal(_ word: String) throws {
        let w = Array(word.utf8)
        guard pos + w.count <= bytes.count, Array(bytes[pos..<pos + w.count]) == w else {
            throw error("invalid literal")
        }
        pos += w.count
    }

    private mutating func enter() throws {
        depth += 1
        guard depth <= Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth)") }
    }

    private mutating func parseObject() throws -> HeaderJSON {
        try enter(); defer { depth -= 1 }
        pos += 1
        var members: [(String, HeaderJSON)] = []
        var seen = Set<String>()
        skipSpace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(members) }
        while true {
            skipSpace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw error("expected a key string") }
            let keyStart = pos
            let key = try parseString()
            guard seen.insert(key).inserted else {
                throw HeaderJSONError(offset: keyStart, reason: "duplicate key \"\(key)\"")
            }
            try expect(UInt8(ascii: ":"))
            members.append((key, try parseValue()))
            skipSpace()
            guard pos < bytes.count else { throw error("unterminated object") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(members) }
            throw error("expected ',' or '}'")
        }
    }

    private mutating func parseArray() throws -> HeaderJSON {
        try enter(); defer { depth -= 1 }
        pos += 1
        var items: [HeaderJSON] = []
        skipSpace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
        while true {
            items.append(try parseValue())
            skipSpace()
            guard pos < bytes.count else { throw error("unterminated array") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
            throw error("expected ',' or ']'")
        }
    }

    private mutating func parseString() throws -> String {
        pos += 1  // opening quote
        var out: [UInt8] = []
        while true {
            guard pos < bytes.count else { throw error("unterminated string") }
            let c = bytes[pos]; pos += 1
            if c == UInt8(ascii: "\"") { break }
            if c < 0x20 { throw error("control character in string") }
            if c != UInt8(ascii: "\\") { out.append(c); continue }
            guard pos < bytes.count else { throw error("unterminated escape") }
            let e = bytes[pos]; pos += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xD800..<0xDC00).contains(code), pos + 1 < bytes.count,
                   bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") {
                    pos += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw error("bad surrogate pair") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(code) else { throw error("invalid \\u escape") }
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            default: throw error("invalid escape")
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw error("string is not valid UTF-8") }
        return s
    }

    private mutating func hex4() throws -> UInt32 {
        guard pos + 4 <= bytes.count else { throw error("short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[pos]; pos += 1
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw error("bad hex digit in \\u escape")
            }
            v = v << 4 | d
        }
        return v
    }

    private mutating func parseNumber() throws -> HeaderJSON {
        let start = pos
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "-") { pos += 1 }
        var integral = true
        while pos < bytes.count {
            let c = bytes[pos]
            if (0x30...0x39).contains(c) { pos += 1; continue }
            if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E")
                || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") { integral = false; pos += 1; continue }
            break
        }
        guard pos > start, let text = String(bytes: bytes[start..<pos], encoding: .ascii),
              let value = Double(text), value.isFinite else {
            pos = start
            throw error("invalid value")
        }
        let exact = integral && bytes[start] != UInt8(ascii: "-") ? UInt64(text) : nil
        return .number(value, exactUInt: exact)
    }
}
