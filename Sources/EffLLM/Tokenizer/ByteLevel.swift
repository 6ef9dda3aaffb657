/// GPT-2's reversible byte <-> printable-character table ("bytes_to_unicode" in OpenAI's
/// `encoder.py`, `unicode_byte_to_utf8_map` in llama.cpp's `unicode.cpp`).
///
/// The printable Latin-1 ranges `!`...`~`, `¡`...`¬` and `®`...`ÿ` map to themselves; the
/// remaining 68 bytes map, in byte order, to U+0100, U+0101, ... so every byte has a visible
/// stand-in and BPE vocabularies never contain raw spaces or control bytes (space -> `Ġ`).
enum ByteLevel {
    /// The stand-in scalar of each byte value.
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The byte behind a stand-in scalar, or nil when the scalar is no stand-in.
    static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let v = scalar.value
        if v < 256 {
            let b = Int(v)
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
                return UInt8(b)
            }
            return nil
        }
        return scalarToByteHigh[v]
    }

    /// Stand-ins above U+00FF (the 68 remapped bytes).
    private static let scalarToByteHigh: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for b in 0..<256 where byteToScalar[b].value >= 256 {
            map[byteToScalar[b].value] = UInt8(b)
        }
        return map
    }()

    /// The stand-in string of one byte (what a vocabulary stores for it).
    static func string(forByte b: UInt8) -> String {
        String(Character(byteToScalar[Int(b)]))
    }

    /// Decodes a vocabulary string back to raw bytes. A scalar that is no stand-in (cannot
    /// occur in a well-formed GPT-2 vocabulary) contributes its own UTF-8 bytes.
    static func decode(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for s in text.unicodeScalars {
            if let b = byte(for: s) {
                out.append(b)
            } else {
                out.append(contentsOf: Array(String(s).utf8))
            }
        }
        return out
    }
}
