#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A bounds-checked little-endian reader over untrusted bytes.
///
/// Every read checks the bytes left first and throws `GGUFError.truncated` naming what
/// was being read; nothing here traps or allocates more than the input can back.
struct GGUFCursor {
    let base: UnsafeRawBufferPointer
    private(set) var offset: Int = 0

    init(_ base: UnsafeRawBufferPointer) {
        self.base = base
    }

    var remaining: Int { base.count - offset }

    /// Throws unless `count` more bytes are available.
    @inline(__always)
    func require(_ count: UInt64, _ what: @autoclosure () -> String) throws {
        guard count <= UInt64(remaining) else {
            throw GGUFError.truncated(what: what(), offset: offset, needed: count, available: remaining)
        }
    }

    /// Throws unless `count` items of at least `size` bytes each can still follow; the
    /// product saturates instead of overflowing (a claimed 2^60 items simply do not fit).
    func require(count: Int, size: Int, _ what: @autoclosure () -> String) throws {
        let (total, overflow) = UInt64(count).multipliedReportingOverflow(by: UInt64(size))
        try require(overflow ? UInt64.max : total, what())
    }

    @inline(__always)
    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        try require(UInt64(MemoryLayout<T>.size), what())
        let raw = base.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: raw)
    }

    /// Skips `count` bytes (already known to be available or checked here).
    mutating func skip(_ count: Int, _ what: @autoclosure () -> String) throws {
        try require(UInt64(max(count, 0)), what())
        offset += count
    }

    /// Reads a GGUF string: u64 byte length, then that many bytes of UTF-8 (no terminator).
    /// The length is checked against `maxBytes` and the bytes left before anything is read.
    mutating func string(maxBytes: Int, _ what: @autoclosure () -> String) throws -> String {
        let start = offset
        let length = try read(UInt64.self, what() + " length")
        guard length <= UInt64(max(0, maxBytes)) else {
            throw GGUFError.stringTooLong(what: what(), offset: start, length: length, limit: maxBytes)
        }
        try require(length, what())
        let n = Int(length)
        let slice = UnsafeRawBufferPointer(rebasing: base[offset..<(offset + n)])
        guard let s = GGUFCursor.decodeUTF8(slice) else {
            throw GGUFError.invalidUTF8(what: what(), offset: offset)
        }
        offset += n
        return s
    }

    /// Decodes `bytes` as UTF-8, or nil when they are not valid UTF-8.
    ///
    /// ASCII (the common case: keys, tensor names, most tokens) is accepted after one scan;
    /// anything else is decoded with repair and compared byte for byte with the input, so a
    /// replacement character anywhere means the input was invalid.
    static func decodeUTF8(_ bytes: UnsafeRawBufferPointer) -> String? {
        var ascii = true
        for b in bytes where b >= 0x80 {
            ascii = false
            break
        }
        let s = String(decoding: bytes, as: UTF8.self)
        if ascii { return s }
        var copy = s
        let same = copy.withUTF8 { utf8 -> Bool in
            utf8.count == bytes.count
                && (bytes.count == 0 || memcmp(utf8.baseAddress!, bytes.baseAddress!, bytes.count) == 0)
        }
        return same ? s : nil
    }
}
