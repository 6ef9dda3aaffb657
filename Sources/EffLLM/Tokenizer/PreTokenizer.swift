/// The pre-tokenizer split that runs before BPE, as llama.cpp applies it (`llm_tokenizer_bpe`
/// regex lists in `src/llama-vocab.cpp`, split functions in `src/unicode.cpp`).
///
/// llama.cpp runs a list of regexes in sequence; each one splits every piece left by the
/// previous one, keeping both the matches and the text between them. BPE then never merges
/// across a piece boundary. Implemented by hand over Unicode scalars (no regex engine):
///
/// - `gpt2`: one pass of GPT-2's
///   `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
///   following llama.cpp's `unicode_regex_split_custom_gpt2` exactly (contractions are
///   case-sensitive, the optional prefix is U+0020 only, lookahead stops at the piece end).
/// - `smollm` (also `starcoder`, `refact`, `command-r`, `codeshell`, `exaone`,
///   `minerva-7b`): first `\p{N}` (every number scalar becomes its own piece, so digits are
///   never grouped), then the GPT-2 pass over each remaining piece.
///
/// Categories: `\p{L}` = general categories Lu Ll Lt Lm Lo, `\p{N}` = Nd Nl No, `\s` = the
/// Unicode White_Space property (the same sets llama.cpp's generated tables encode).
public enum PreTokenizer: String, Sendable, CaseIterable {
    case smollm
    case gpt2

    /// Maps a `tokenizer.ggml.pre` value to the split llama.cpp uses for it.
    public init?(ggufName: String) {
        switch ggufName {
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b":
            self = .smollm
        case "gpt-2", "gpt2", "mpt", "olmo", "jais":
            self = .gpt2
        default:
            return nil
        }
    }

    /// Splits `scalars` (one text fragment) into pieces; returns the end index (exclusive)
    /// of each piece, in order. `classes[i]` is `CodepointClass.of(scalars[i])`.
    func pieceEnds(_ scalars: [UInt32], _ classes: [UInt8]) -> [Int] {
        var ends: [Int] = []
        ends.reserveCapacity(scalars.count / 3 + 1)
        switch self {
        case .gpt2:
            Self.splitGPT2(scalars, classes, 0, scalars.count, into: &ends)
        case .smollm:
            // Pass 1, `\p{N}`: isolate every number scalar; pass 2 runs on the gaps.
            var start = 0
            for i in 0..<scalars.count where classes[i] & CodepointClass.number != 0 {
                if start < i { Self.splitGPT2(scalars, classes, start, i, into: &ends) }
                ends.append(i + 1)
                start = i + 1
            }
            if start < scalars.count { Self.splitGPT2(scalars, classes, start, scalars.count, into: &ends) }
        }
        return ends
    }

    /// GPT-2's regex over `scalars[ini..<end]`, appending piece ends to `ends`.
    static func splitGPT2(_ s: [UInt32], _ c: [UInt8], _ ini: Int, _ end: Int, into ends: inout [Int]) {
        // Class of position p, 0 outside the piece (llama.cpp's empty flags): lookahead
        // never sees past the piece being split.
        @inline(__always) func cls(_ p: Int) -> UInt8 { p < end ? c[p] : 0 }
        let space: UInt32 = 0x20, apostrophe: UInt32 = 0x27
        var pos = ini
        while pos < end {
            let cpt = s[pos]
            // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive in GPT-2's regex)
            if cpt == apostrophe && pos + 1 < end {
                let n1 = s[pos + 1]
                if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 {  // s t m d
                    pos += 2; ends.append(pos); continue
                }
                if pos + 2 < end {
                    let n2 = s[pos + 2]
                    if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) {
                        pos += 3; ends.append(pos); continue  // re ve ll
                    }
                }
            }
            let c2 = cpt == space ? cls(pos + 1) : c[pos]
            // <space>?\p{L}+  |  <space>?\p{N}+  |  <space>?[^\s\p{L}\p{N}]+
            let group = c2 & (CodepointClass.letter | CodepointClass.number | CodepointClass.other)
            if group != 0 {
                if cpt == space { pos += 1 }
                while cls(pos) & group != 0 { pos += 1 }
                ends.append(pos); continue
            }
            var n = 0
            while cls(pos + n) & CodepointClass.whitespace != 0 { n += 1 }
            if n > 1 && pos + n < end {
                pos += n - 1            // \s+(?!\S): leave the last space to prefix the next word
            } else if n > 0 {
                pos += n                // \s+
            } else {
                pos += 1                // no alternative matched: one scalar alone
            }
            ends.append(pos)
        }
    }
}

/// Character classes the pre-tokenizer distinguishes, one bit each (exactly one is set for
/// any scalar; 0 means "outside the piece").
enum CodepointClass {
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let whitespace: UInt8 = 4
    static let other: UInt8 = 8

    private static let ascii: [UInt8] = (0..<128).map { classify(UInt32($0)) }

    /// The class of one scalar value.
    @inline(__always)
    static func of(_ v: UInt32) -> UInt8 {
        v < 128 ? ascii[Int(v)] : classify(v)
    }

    private static func classify(_ v: UInt32) -> UInt8 {
        guard let scalar = Unicode.Scalar(v) else { return other }
        let props = scalar.properties
        if props.isWhitespace { return whitespace }
        switch props.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return number
        default:
            return other
        }
    }
}
