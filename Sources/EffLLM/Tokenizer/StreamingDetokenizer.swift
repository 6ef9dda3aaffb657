/// Turns a stream of token ids into text without ever emitting half a UTF-8 character.
///
/// Byte-level BPE tokens may end inside a multi-byte character (an emoji is often two or
/// three tokens). Bytes that could still become a valid character are held back until the
/// next token completes them; bytes that can never become valid are emitted as U+FFFD at
/// once (the same replacement `String(decoding:as:)` applies), so one bad token cannot stall
/// the stream. Per-generation state: make one per answer.
public struct StreamingDetokenizer {
    private let tokenizer: Tokenizer
    private var pending: [UInt8] = []   // undecided tail: at most 3 bytes of one character

    public init(tokenizer: Tokenizer) {
        self.tokenizer = tokenizer
    }

    /// Adds one token; returns the complete characters now available (possibly "").
    public mutating func append(_ id: Int32) -> String {
        pending.append(contentsOf: tokenizer.tokenBytes(id))
        let keep = Self.incompleteSuffixLength(pending)
        let ready = pending.count - keep
        guard ready > 0 else { return "" }
        let text = String(decoding: pending[0..<ready], as: UTF8.self)
        pending.removeFirst(ready)
        return text
    }

    /// Returns whatever is still held back (invalid leftovers as U+FFFD) and resets.
    public mutating func flush() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Length of the longest suffix of `bytes` that is a proper prefix of a well-formed
    /// UTF-8 sequence (Unicode Table 3-7), i.e. may still be completed by later bytes.
    static func incompleteSuffixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        guard n > 0 else { return 0 }
        // A lead byte at most 3 bytes back whose sequence is not yet complete.
        for back in 1...min(3, n) {
            let lead = bytes[n - back]
            let need: Int
            switch lead {
            case 0xC2...0xDF: need = 2
            case 0xE0...0xEF: need = 3
            case 0xF0...0xF4: need = 4
            case 0x80...0xBF: continue            // continuation: keep looking for the lead
            default: return 0                     // ASCII or a byte that never starts a sequence
            }
            guard back < need else { return 0 }   // sequence already complete (or too long)
            // Every byte after the lead must be a valid continuation for this lead.
            for k in 1..<back {
                let b = bytes[n - back + k]
                let lo: UInt8, hi: UInt8
                if k == 1 {
                    switch lead {
                    case 0xE0: (lo, hi) = (0xA0, 0xBF)   // no overlongs
                    case 0xED: (lo, hi) = (0x80, 0x9F)   // no surrogates
                    case 0xF0: (lo, hi) = (0x90, 0xBF)   // no overlongs
                    case 0xF4: (lo, hi) = (0x80, 0x8F)   // <= U+10FFFF
                    default: (lo, hi) = (0x80, 0xBF)
                    }
                } else {
                    (lo, hi) = (0x80, 0xBF)
                }
                if b < lo || b > hi { return 0 }
            }
            return back
        }
        return 0
    }
}
