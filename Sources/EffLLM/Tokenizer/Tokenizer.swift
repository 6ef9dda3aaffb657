/// GPT-2 style byte-level BPE tokenizer built from a GGUF vocabulary, token-for-token equal
/// to llama.cpp's `llama_tokenize` for the same file (`src/llama-vocab.cpp`).
///
/// Encoding: (1) when specials are parsed, CONTROL/UNKNOWN tokens are cut out of the text
/// first, longest text first (USER_DEFINED tokens are always cut out, as in llama.cpp);
/// (2) each remaining fragment is split by the pre-tokenizer; (3) each piece's UTF-8 bytes
/// are merged by BPE rank. No BOS is ever added. Immutable after `init`, so sharing one
/// instance across threads is safe.
public final class Tokenizer: @unchecked Sendable {
    /// `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
    public enum TokenType: Int, Sendable {
        case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    public let bosID: Int32
    public let eosID: Int32
    public let preTokenizer: PreTokenizer

    private let tokens: [String]            // (vocabSize) byte-level text as stored in the file
    private let types: [TokenType]          // (vocabSize)
    private let pieces: [[UInt8]]           // (vocabSize) bytes each token stands for
    private let textToID: [String: Int32]
    private let bpe: BPEMerges
    /// Token of each single ASCII character's text, or -1 (llama.cpp's byte fallback).
    private let asciiToken: [Int32]         // (128)
    /// Tokens cut out before BPE, longest text first: (id, UTF-8 text, cut even when
    /// specials are not parsed).
    private let specials: [(id: Int32, text: [UInt8], always: Bool)]

    /// Number of tokens in the vocabulary (`vocabSize`).
    public var vocabSize: Int { tokens.count }

    /// Builds a tokenizer from the vocabulary arrays of a GGUF file.
    /// - Parameters:
    ///   - tokens: `tokenizer.ggml.tokens`, byte-level text of each token.
    ///   - merges: `tokenizer.ggml.merges`, `"A B"` lines in rank order.
    ///   - tokenTypes: `tokenizer.ggml.token_type`, one per token (0...6).
    ///   - preTokenizer: `tokenizer.ggml.pre` (see `PreTokenizer.init(ggufName:)`).
    public init(tokens: [String], merges: [String], tokenTypes: [Int], bosID: Int32, eosID: Int32,
                preTokenizer: String) throws {
        guard !tokens.isEmpty else { throw TokenizerError.emptyVocabulary(key: GGUFTokenizerKey.tokens) }
        guard tokenTypes.count == tokens.count else {
            throw TokenizerError.lengthMismatch(key: GGUFTokenizerKey.tokenType, count: tokenTypes.count,
                                                expected: tokens.count)
        }
        guard let pre = PreTokenizer(ggufName: preTokenizer) else {
            throw TokenizerError.unsupportedPreTokenizer(key: GGUFTokenizerKey.pre, value: preTokenizer)
        }
        for (key, id) in [(GGUFTokenizerKey.bosID, bosID), (GGUFTokenizerKey.eosID, eosID)]
        where id < 0 || Int(id) >= tokens.count {
            throw TokenizerError.tokenIDOutOfRange(key: key, id: Int64(id), vocabSize: tokens.count)
        }
        var types: [TokenType] = []
        types.reserveCapacity(tokens.count)
        for (i, t) in tokenTypes.enumerated() {
            guard let type = TokenType(rawValue: t) else {
                throw TokenizerError.invalidTokenType(key: GGUFTokenizerKey.tokenType, index: i, value: t)
            }
            types.append(type)
        }
        var textToID: [String: Int32] = [:]
        textToID.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() { textToID[t] = Int32(i) }  // last duplicate wins

        self.tokens = tokens
        self.types = types
        self.textToID = textToID
        self.bosID = bosID
        self.eosID = eosID
        self.preTokenizer = pre
        self.pieces = zip(tokens, types).map { text, type in Self.piece(text: text, type: type) }
        self.bpe = BPEMerges(merges: merges, textToID: textToID, vocabSize: tokens.count)
        self.asciiToken = (0..<128).map { textToID[String(Character(Unicode.Scalar(UInt8($0))))] ?? -1 }
        var specials: [(id: Int32, text: [UInt8], always: Bool)] = []
        for (i, type) in types.enumerated() where type == .control || type == .unknown || type == .userDefined {
            let text = Array(tokens[i].utf8)
            if !text.isEmpty { specials.append((Int32(i), text, type == .userDefined)) }
        }
        // Longest first; equal lengths by id (llama.cpp's std::sort leaves their order open).
        specials.sort { $0.text.count != $1.text.count ? $0.text.count > $1.text.count : $0.id < $1.id }
        self.specials = specials
    }

    /// The bytes a token contributes to decoded text, as llama.cpp's `token_to_piece` with
    /// specials rendered: byte-level decoding for NORMAL, the literal text for CONTROL,
    /// UNKNOWN and USER_DEFINED, `<0xXX>` parsed for BYTE, nothing for UNUSED/UNDEFINED.
    private static func piece(text: String, type: TokenType) -> [UInt8] {
        switch type {
        case .normal:
            return ByteLevel.decode(text)
        case .control, .unknown, .userDefined:
            return Array(text.utf8)
        case .byte:
            let u = Array(text.utf8)
            if u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E,
               let b = UInt8(String(decoding: u[3...4], as: UTF8.self), radix: 16) {
                return [b]
            }
            return ByteLevel.decode(text)
        case .unused, .undefined:
            return []
        }
    }

    // MARK: - Encoding

    /// Token ids of `text`. `parseSpecial`: recognize CONTROL tokens such as `<|im_start|>`
    /// written in the text; otherwise they are tokenized as plain characters. Never adds BOS.
    public func encode(_ text: String, parseSpecial: Bool) -> [Int32] {
        let bytes = Array(text.utf8)
        var out: [Int32] = []
        out.reserveCapacity(bytes.count / 3 + 4)
        var cache: [ArraySlice<UInt8>: [Int32]] = [:]
        for fragment in partition(bytes, parseSpecial: parseSpecial) {
            switch fragment {
            case .token(let id):
                out.append(id)
            case .text(let range):
                encodeFragment(bytes[range], into: &out, cache: &cache)
            }
        }
        return out
    }

    private enum Fragment {
        case text(Range<Int>)
        case token(Int32)
    }

    /// Cuts special tokens out of the text (llama.cpp's `tokenizer_st_partition`): for each
    /// special, longest first, every remaining text fragment is split at each occurrence.
    private func partition(_ bytes: [UInt8], parseSpecial: Bool) -> [Fragment] {
        guard !bytes.isEmpty else { return [] }
        var fragments: [Fragment] = [.text(0..<bytes.count)]
        for special in specials where parseSpecial || special.always {
            var split: [Fragment] = []
            split.reserveCapacity(fragments.count)
            var changed = false
            for fragment in fragments {
                guard case .text(let range) = fragment else { split.append(fragment); continue }
                var start = range.lowerBound
                while let at = Self.find(special.text, in: bytes, from: start, to: range.upperBound) {
                    if at > start { split.append(.text(start..<at)) }
                    split.append(.token(special.id))
                    start = at + special.text.count
                    changed = true
                }
                if start < range.upperBound { split.append(.text(start..<range.upperBound)) }
            }
            if changed { fragments = split }
        }
        return fragments
    }

    /// First index >= `from` where `needle` occurs entirely inside `hay[from..<to]`.
    private static func find(_ needle: [UInt8], in hay: [UInt8], from: Int, to: Int) -> Int? {
        let n = needle.count
        guard n > 0, to - from >= n else { return nil }
        let first = needle[0]
        var i = from
        while i <= to - n {
            if hay[i] == first {
                var j = 1
                while j < n && hay[i + j] == needle[j] { j += 1 }
                if j == n { return i }
            }
            i += 1
        }
        return nil
    }

    /// Pre-tokenizes one text fragment (valid UTF-8) and BPE-merges each piece.
    private func encodeFragment(_ bytes: ArraySlice<UInt8>, into out: inout [Int32],
                                cache: inout [ArraySlice<UInt8>: [Int32]]) {
        // Decode scalars, remembering where each starts in `bytes`.
        var scalars: [UInt32] = []
        var starts: [Int] = []
        scalars.reserveCapacity(bytes.count)
        starts.reserveCapacity(bytes.count + 1)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let b0 = UInt32(bytes[i])
            starts.append(i)
            if b0 < 0x80 {
                scalars.append(b0); i += 1
            } else if b0 < 0xE0 {
                scalars.append((b0 & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F)); i += 2
            } else if b0 < 0xF0 {
                scalars.append((b0 & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F))
                i += 3
            } else {
                scalars.append((b0 & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12
                               | UInt32(bytes[i + 2] & 0x3F) << 6 | UInt32(bytes[i + 3] & 0x3F))
                i += 4
            }
        }
        starts.append(bytes.endIndex)
        let classes = scalars.map(CodepointClass.of)
        var pieceStart = 0
        for end in preTokenizer.pieceEnds(scalars, classes) {
            let word = bytes[starts[pieceStart]..<starts[end]]
            pieceStart = end
            if let hit = cache[word] { out.append(contentsOf: hit); continue }
            var ids: [Int32] = []
            for sym in bpe.merge(word) { appendSymbol(sym, to: &ids) }
            cache[word] = ids
            out.append(contentsOf: ids)
        }
    }

    /// Emits a final BPE symbol: its token, or (for a string outside the vocabulary) the
    /// tokens of its single ASCII characters, as llama.cpp's fallback does.
    @inline(__always)
    private func appendSymbol(_ sym: Int32, to out: inout [Int32]) {
        if Int(sym) < tokens.count { out.append(sym); return }
        for b in bpe.extraTexts[Int(sym) - tokens.count].utf8 where b < 0x80 && asciiToken[Int(b)] >= 0 {
            out.append(asciiToken[Int(b)])
        }
    }

    /// Pre-tokenizer pieces of `text` (no special-token handling), for inspection and tests.
    public func preTokenize(_ text: String) -> [String] {
        let scalars = text.unicodeScalars.map(\.value)
        var out: [String] = []
        var start = 0
        for end in preTokenizer.pieceEnds(scalars, scalars.map(CodepointClass.of)) {
            var s = String.UnicodeScalarView()
            s.append(contentsOf: scalars[start..<end].map { Unicode.Scalar($0)! })
            out.append(String(s))
            start = end
        }
        return out
    }

    /// BPE of one word with the reference (quadratic) merge loop, for oracle tests.
    func encodeWordReference(_ word: String) -> [Int32] {
        var ids: [Int32] = []
        for sym in bpe.mergeReference(ArraySlice(Array(word.utf8))) { appendSymbol(sym, to: &ids) }
        return ids
    }

    /// BPE of one word with the production merge loop (no pre-tokenization).
    func encodeWord(_ word: String) -> [Int32] {
        var ids: [Int32] = []
        for sym in bpe.merge(ArraySlice(Array(word.utf8))) { appendSymbol(sym, to: &ids) }
        return ids
    }

    // MARK: - Decoding and lookup

    /// Text of `ids`; control tokens render as their text; invalid UTF-8 becomes U+FFFD.
    /// Ids outside the vocabulary contribute nothing.
    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        for id in ids { bytes.append(contentsOf: tokenBytes(id)) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Raw bytes a token stands for (control tokens: their text). Empty for ids outside
    /// the vocabulary.
    public func tokenBytes(_ id: Int32) -> [UInt8] {
        guard id >= 0, Int(id) < pieces.count else { return [] }
        return pieces[Int(id)]
    }

    /// The token's text as stored in the file (byte-level alphabet, e.g. `Ġthe`).
    public func tokenText(_ id: Int32) -> String {
        guard id >= 0, Int(id) < tokens.count else { return "" }
        return tokens[Int(id)]
    }

    /// The id whose stored text is exactly `tokenText`, if any.
    public func id(of tokenText: String) -> Int32? { textToID[tokenText] }

    /// The token's type from `tokenizer.ggml.token_type` (nil outside the vocabulary).
    public func tokenType(_ id: Int32) -> TokenType? {
        guard id >= 0, Int(id) < types.count else { return nil }
        return types[Int(id)]
    }

    /// True for CONTROL (and UNKNOWN) tokens: markup such as `<|im_end|>` that llama.cpp
    /// hides when rendering text for people.
    public func isControl(_ id: Int32) -> Bool {
        guard let t = tokenType(id) else { return false }
        return t == .control || t == .unknown
    }

    /// Tokens that end an answer: EOS plus whichever end-of-turn / end-of-text control
    /// tokens the vocabulary has (ChatML's `<|im_end|>`, `<|endoftext|>`, Llama 3's `<|eot_id|>`).
    public var endOfTurnTokens: Set<Int32> {
        var stops: Set<Int32> = [eosID]
        for name in ["<|im_end|>", "<|endoftext|>", "<|eot_id|>"] {
            if let id = id(of: name), isControl(id) { stops.insert(id) }
        }
        return stops
    }
}

/// GGUF keys of the tokenizer, in one place (names as in llama.cpp's `LLM_KV_TOKENIZER_*`).
public enum GGUFTokenizerKey {
    public static let model = "tokenizer.ggml.model"
    public static let pre = "tokenizer.ggml.pre"
    public static let tokens = "tokenizer.ggml.tokens"
    public static let tokenType = "tokenizer.ggml.token_type"
    public static let merges = "tokenizer.ggml.merges"
    public static let bosID = "tokenizer.ggml.bos_token_id"
    public static let eosID = "tokenizer.ggml.eos_token_id"
    public static let chatTemplate = "tokenizer.chat_template"
}
