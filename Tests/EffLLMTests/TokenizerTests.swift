import EffCore
import EffTestSupport
import Testing
@testable import EffLLM

/// A tiny byte-level vocabulary: optional specials first, then the 256 byte stand-ins (id
/// of byte b = `byteBase + b`), then the result of each merge (unless excluded), then extras.
struct TinyVocab {
    var specials: [(text: String, type: Int)] = []
    var merges: [String] = []
    var excludeMergeResults: Set<String> = []

    var byteBase: Int { specials.count }

    func tokens() -> [String] {
        var t = specials.map(\.text)
        t += (0..<256).map { ByteLevel.string(forByte: UInt8($0)) }
        for m in merges {
            let parts = m.split(separator: " ", maxSplits: 1).map(String.init)
            let joined = parts.joined()
            if !t.contains(joined) && !excludeMergeResults.contains(joined) { t.append(joined) }
        }
        return t
    }

    func make(pre: String = "smollm") throws -> Tokenizer {
        let t = tokens()
        let types = specials.map(\.type) + [Int](repeating: 1, count: t.count - specials.count)
        return try Tokenizer(tokens: t, merges: merges, tokenTypes: types, bosID: 0, eosID: 0, preTokenizer: pre)
    }

    /// Id of the token whose byte-level text encodes `plain` (e.g. "ab", " x").
    func id(_ plain: String, in tok: Tokenizer) -> Int32 {
        tok.id(of: String(plain.utf8.map { Character(ByteLevel.byteToScalar[Int($0)]) }))!
    }
}

@Suite("Tokenizer (synthetic vocabulary)")
struct TokenizerTests {
    @Test("byte stand-ins are a bijection with GPT-2's table")
    func byteLevelTable() {
        let scalars = ByteLevel.byteToScalar
        #expect(Set(scalars).count == 256)
        #expect(scalars[0x20] == "\u{0120}")      // space -> Ġ
        #expect(scalars[0x0A] == "\u{010A}")      // newline -> Ċ
        #expect(scalars[0x41] == "A")
        #expect(scalars[0xAD] == "\u{0143}")      // soft hyphen, the last remapped byte
        for b in 0..<256 { #expect(ByteLevel.byte(for: scalars[b]) == UInt8(b)) }
        #expect(ByteLevel.decode("Ġhello") == Array(" hello".utf8))
    }

    @Test("merges apply by rank, not by position")
    func mergeOrder() throws {
        // "b c" outranks "a b": "abc" -> a + bc, and no rule joins a with bc.
        var v = TinyVocab(merges: ["b c", "a b"])
        var tok = try v.make()
        #expect(tok.encode("abc", parseSpecial: false) == [v.id("a", in: tok), v.id("bc", in: tok)])
        // With "a b" first, then "ab c": the whole word becomes one token.
        v = TinyVocab(merges: ["a b", "b c", "ab c"])
        tok = try v.make()
        #expect(tok.encode("abc", parseSpecial: false) == [v.id("abc", in: tok)])
    }

    @Test("equal ranks merge leftmost first")
    func leftmostTie() throws {
        let v = TinyVocab(merges: ["a a"])
        let tok = try v.make()
        #expect(tok.encode("aaa", parseSpecial: false) == [v.id("aa", in: tok), v.id("a", in: tok)])
        #expect(tok.encode("aaaa", parseSpecial: false) == [v.id("aa", in: tok), v.id("aa", in: tok)])
    }

    @Test("heap merge loop equals the quadratic reference on random words")
    func heapMatchesReference() throws {
        var rng = SplitMix64(seed: 7)
        let alphabet = Array("abcd")
        // Random merges over a 4-letter alphabet, building up longer strings.
        var pieces = alphabet.map(String.init)
        var merges: [String] = []
        for _ in 0..<40 {
            let a = pieces[Int(rng.next() % UInt64(pieces.count))]
            let b = pieces[Int(rng.next() % UInt64(pieces.count))]
            merges.append("\(a) \(b)")
            if (a + b).count <= 6 { pieces.append(a + b) }
        }
        let tok = try TinyVocab(merges: merges).make()
        for _ in 0..<500 {
            let n = 1 + Int(rng.next() % 24)
            let word = String((0..<n).map { _ in alphabet[Int(rng.next() % 4)] })
            #expect(tok.encodeWord(word) == tok.encodeWordReference(word), "word \(word)")
        }
    }

    @Test("a merged string missing from the vocabulary falls back to its characters")
    func byteFallback() throws {
        let v = TinyVocab(merges: ["x y"], excludeMergeResults: ["xy"])
        let tok = try v.make()
        #expect(tok.id(of: "xy") == nil)
        #expect(tok.encode("xy", parseSpecial: false) == [v.id("x", in: tok), v.id("y", in: tok)])
    }

    @Test("multi-byte characters without merges become byte tokens and decode back")
    func multiByteBytes() throws {
        let v = TinyVocab()
        let tok = try v.make()
        let ids = tok.encode("é中", parseSpecial: false)
        #expect(ids == [0xC3, 0xA9, 0xE4, 0xB8, 0xAD].map { Int32(v.byteBase + $0) })
        #expect(tok.decode(ids) == "é中")
        #expect(tok.decode([Int32(v.byteBase + 0xE4)]) == "\u{FFFD}")   // lone lead byte
        #expect(tok.tokenBytes(Int32(v.byteBase + 0x20)) == [0x20])
        #expect(tok.tokenText(Int32(v.byteBase + 0x20)) == "Ġ")
        #expect(tok.tokenBytes(-1) == [] && tok.tokenBytes(Int32(tok.vocabSize)) == [])
    }

    @Test("control tokens are cut out only when parsing specials; user-defined always")
    func specialSplitting() throws {
        let v = TinyVocab(specials: [("<|s|>", 3), ("<|s|>!", 3), ("<u>", 4)])
        let tok = try v.make()
        let a = v.id("a", in: tok), b = v.id("b", in: tok)
        #expect(tok.encode("a<|s|>b", parseSpecial: true) == [a, 0, b])
        // Longest special first: "<|s|>!" wins over "<|s|>".
        #expect(tok.encode("<|s|>!<|s|>", parseSpecial: true) == [1, 0])
        // Not parsed: plain characters.
        let plain = tok.encode("a<|s|>b", parseSpecial: false)
        #expect(!plain.contains(0) && tok.decode(plain) == "a<|s|>b")
        // USER_DEFINED is split out either way (llama.cpp's tokenizer_st_partition).
        #expect(tok.encode("a<u>b", parseSpecial: false) == [a, 2, b])
        #expect(tok.isControl(0) && tok.isControl(1) && !tok.isControl(2) && !tok.isControl(a))
        #expect(tok.decode([a, 0, b]) == "a<|s|>b")    // control tokens render as their text
        #expect(tok.encode("", parseSpecial: true) == [])
    }

    @Test("invalid inputs give errors naming the key")
    func initErrors() throws {
        let good = TinyVocab().tokens()
        let types = [Int](repeating: 1, count: good.count)
        #expect(throws: TokenizerError.lengthMismatch(key: "tokenizer.ggml.token_type", count: 3, expected: good.count)) {
            try Tokenizer(tokens: good, merges: [], tokenTypes: [1, 1, 1], bosID: 0, eosID: 0, preTokenizer: "smollm")
        }
        #expect(throws: TokenizerError.unsupportedPreTokenizer(key: "tokenizer.ggml.pre", value: "llama-bpe")) {
            try Tokenizer(tokens: good, merges: [], tokenTypes: types, bosID: 0, eosID: 0, preTokenizer: "llama-bpe")
        }
        #expect(throws: TokenizerError.tokenIDOutOfRange(key: "tokenizer.ggml.eos_token_id", id: 999, vocabSize: 256)) {
            try Tokenizer(tokens: good, merges: [], tokenTypes: types, bosID: 0, eosID: 999, preTokenizer: "smollm")
        }
        var badTypes = types
        badTypes[5] = 9
        #expect(throws: TokenizerError.invalidTokenType(key: "tokenizer.ggml.token_type", index: 5, value: 9)) {
            try Tokenizer(tokens: good, merges: [], tokenTypes: badTypes, bosID: 0, eosID: 0, preTokenizer: "smollm")
        }
        #expect(throws: TokenizerError.emptyVocabulary(key: "tokenizer.ggml.tokens")) {
            try Tokenizer(tokens: [], merges: [], tokenTypes: [], bosID: 0, eosID: 0, preTokenizer: "smollm")
        }
    }

    /// A GGUF file holding only tokenizer keys, built by the test-support writer.
    private func ggufFile(model: String = "gpt2", pre: String? = "smollm", typesCount: Int? = nil,
                          bos: Int32 = 0, template: String? = nil) throws -> GGUFFile {
        let tokens = TinyVocab(merges: ["a b"]).tokens()
        var w = GGUFWriter()
        w.add("tokenizer.ggml.model", .string(model))
        if let pre { w.add("tokenizer.ggml.pre", .string(pre)) }
        w.add("tokenizer.ggml.tokens", .array(.string(tokens)))
        w.add("tokenizer.ggml.token_type", .array(.int32([Int32](repeating: 1, count: typesCount ?? tokens.count))))
        w.add("tokenizer.ggml.merges", .array(.string(["a b"])))
        w.add("tokenizer.ggml.bos_token_id", .uint32(UInt32(bitPattern: bos)))
        w.add("tokenizer.ggml.eos_token_id", .uint32(1))
        if let template { w.add("tokenizer.chat_template", .string(template)) }
        return try GGUFFile(bytes: w.bytes())
    }

    @Test("init(gguf:) reads the tokenizer keys and rejects bad ones by name")
    func fromGGUF() throws {
        let tok = try Tokenizer(gguf: try ggufFile())
        #expect(tok.vocabSize == 257 && tok.bosID == 0 && tok.eosID == 1)
        #expect(tok.encode("ab", parseSpecial: false) == [256])
        #expect(throws: TokenizerError.unsupportedModel(key: "tokenizer.ggml.model", value: "llama")) {
            try Tokenizer(gguf: try ggufFile(model: "llama"))
        }
        #expect(throws: TokenizerError.unsupportedPreTokenizer(key: "tokenizer.ggml.pre", value: "weird")) {
            try Tokenizer(gguf: try ggufFile(pre: "weird"))
        }
        #expect(throws: TokenizerError.missingKey("tokenizer.ggml.pre")) {
            try Tokenizer(gguf: try ggufFile(pre: nil))
        }
        #expect(throws: TokenizerError.lengthMismatch(key: "tokenizer.ggml.token_type", count: 10, expected: 257)) {
            try Tokenizer(gguf: try ggufFile(typesCount: 10))
        }
        #expect(throws: TokenizerError.tokenIDOutOfRange(key: "tokenizer.ggml.bos_token_id", id: 5000, vocabSize: 257)) {
            try Tokenizer(gguf: try ggufFile(bos: 5000))
        }
    }

    @Test("fixture scores count exact matches and describe mismatches")
    func fixtureScore() throws {
        let v = TinyVocab(merges: ["a b"])
        let tok = try v.make()
        let ab = v.id("ab", in: tok)
        let cases = [Fixtures.TokenizerCase(text: "ab", ids: [ab], ids_parse_special: [ab]),
                     Fixtures.TokenizerCase(text: "ab", ids: [ab], ids_parse_special: [0])]
        let score = tok.fidelity(cases)
        #expect(score.exact == 3 && score.total == 4 && score.fraction == 0.75)
        #expect(score.mismatches.count == 1 && score.mismatches[0].contains("parseSpecial=true"))
        let template = ChatTemplate.chatML
        let prompt = "<|im_start|>user\nab<|im_end|>\n"
        let good = Fixtures.TemplateCase(messages: [.init(role: "user", content: "ab")], add_generation_prompt: false,
                                         prompt: prompt, ids: tok.encode(prompt, parseSpecial: true))
        let badPrompt = Fixtures.TemplateCase(messages: [.init(role: "user", content: "ab")], add_generation_prompt: true,
                                              prompt: prompt, ids: good.ids)
        let t = template.fidelity([good, badPrompt], tokenizer: tok)
        #expect(t.exact == 1 && t.total == 2)
        #expect(t.mismatches.first?.hasPrefix("case 2: prompt") == true)
    }

    @Test("fromModel uses the file's template, or ChatML with a reason")
    func templateFromModel() throws {
        let own = ChatTemplate.fromModel(try ggufFile(template: "{{ messages[0]['content'] }}!"))
        #expect(own.fallbackReason == nil)
        #expect(try own.template.render([ChatMessage(role: "user", content: "hi")], addGenerationPrompt: false) == "hi!")
        let missing = ChatTemplate.fromModel(try ggufFile())
        #expect(missing.template.sourceHash == ChatTemplate.chatML.sourceHash)
        #expect(missing.fallbackReason?.contains("tokenizer.chat_template") == true)
        let unsupported = ChatTemplate.fromModel(try ggufFile(template: "{% macro m() %}{% endmacro %}"))
        #expect(unsupported.template.sourceHash == ChatTemplate.chatML.sourceHash)
        #expect(unsupported.fallbackReason?.contains("macro") == true)
        let failsToRender = ChatTemplate.fromModel(try ggufFile(template: "{{ nothing.here }}"))
        #expect(failsToRender.fallbackReason?.contains("undefined") == true)
    }
}

@Suite struct TokenPrefixTests {
    @Test func commonPrefixLengthCountsSharedLeadingTokens() {
        #expect([1, 2, 3].commonPrefixLength(with: [1, 2, 4, 5]) == 2)
        #expect([1, 2].commonPrefixLength(with: [1, 2, 3]) == 2)
        #expect([1, 2, 3].commonPrefixLength(with: [1, 2]) == 2)
        #expect([Int32]().commonPrefixLength(with: [1]) == 0)
        #expect([7].commonPrefixLength(with: [8]) == 0)
    }
}
