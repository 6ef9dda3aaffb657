import Testing
@testable import EffLLM

/// The pre-tokenizer split, checked against the regex semantics llama.cpp implements
/// (`unicode_regex_split_custom_gpt2` after the `\p{N}` pass for `smollm`).
@Suite("Tokenizer pre-tokenizer split")
struct TokenizerPreTokenizerTests {
    private func split(_ text: String, _ pre: String = "smollm") throws -> [String] {
        try TinyVocab().make(pre: pre).preTokenize(text)
    }

    @Test("words take one leading space; runs of spaces leave the last one to the next word")
    func spaces() throws {
        #expect(try split("Hello world") == ["Hello", " world"])
        #expect(try split("  leading") == [" ", " leading"])
        #expect(try split("a   b") == ["a", "  ", " b"])
        #expect(try split("trailing  ") == ["trailing", "  "])
        #expect(try split(" ") == [" "])
        #expect(try split("") == [])
    }

    @Test("newlines and tabs: \\s+(?!\\S) stops one short before a non-space")
    func newlines() throws {
        #expect(try split("x\n\n\ny") == ["x", "\n\n", "\n", "y"])
        #expect(try split("tabs\tand") == ["tabs", "\t", "and"])
        #expect(try split("a \n b") == ["a", " \n", " b"])
        #expect(try split("end\n") == ["end", "\n"])
    }

    @Test("contractions are case-sensitive, as in GPT-2's regex")
    func contractions() throws {
        #expect(try split("don't we'll they've I'm") == ["don", "'t", " we", "'ll", " they", "'ve", " I", "'m"])
        #expect(try split("DON'T") == ["DON", "'", "T"])
        #expect(try split("'re'") == ["'re", "'"])
    }

    @Test("smollm isolates every number scalar; gpt2 groups them")
    func digits() throws {
        #expect(try split("abc123") == ["abc", "1", "2", "3"])
        #expect(try split(" 42") == [" ", "4", "2"])
        #expect(try split("x½Ⅻ٣") == ["x", "½", "Ⅻ", "٣"])       // No, Nl, Nd (Arabic-Indic)
        #expect(try split("abc123 45", "gpt2") == ["abc", "123", " 45"])
    }

    @Test("punctuation and symbols group; letters are any script")
    func classes() throws {
        #expect(try split("!!! ???") == ["!!!", " ???"])
        #expect(try split("a.b") == ["a", ".", "b"])
        #expect(try split("😀🚀 ok") == ["😀🚀", " ok"])
        #expect(try split("中文测试：清华") == ["中文测试", "：", "清华"])
        #expect(try split("é\u{301}") == ["é", "\u{301}"])       // a combining mark is not \p{L}
        #expect(try split("a\u{00A0}b") == ["a", "\u{00A0}", "b"])  // NBSP is \s
        #expect(try split("zero\u{200B}width") == ["zero", "\u{200B}", "width"])  // ZWSP is Cf, not \s
    }

    @Test("pre-tokenizer names map as llama.cpp's")
    func names() {
        #expect(PreTokenizer(ggufName: "smollm") == .smollm)
        #expect(PreTokenizer(ggufName: "starcoder") == .smollm)
        #expect(PreTokenizer(ggufName: "gpt-2") == .gpt2)
        #expect(PreTokenizer(ggufName: "llama-bpe") == nil)
    }
}
