import EffCore
import Testing
@testable import EffLLM

@Suite("Tokenizer streaming detokenizer")
struct TokenizerStreamingTests {
    /// A vocabulary of single bytes plus a few multi-byte pieces; `id(bytes)` finds them.
    private struct ByteVocab {
        let v = TinyVocab(merges: [])
        let tok: Tokenizer
        init() throws { tok = try v.make() }
        func byte(_ b: UInt8) -> Int32 { Int32(v.byteBase + Int(b)) }
    }

    @Test("an emoji split over three tokens is emitted once complete")
    func emojiAcrossTokens() throws {
        let bv = try ByteVocab()
        var d = StreamingDetokenizer(tokenizer: bv.tok)
        // 😀 = F0 9F 98 80
        #expect(d.append(bv.byte(0x68)) == "h")
        #expect(d.append(bv.byte(0xF0)) == "")
        #expect(d.append(bv.byte(0x9F)) == "")
        #expect(d.append(bv.byte(0x98)) == "")
        #expect(d.append(bv.byte(0x80)) == "😀")
        #expect(d.flush() == "")
    }

    @Test("CJK split mid-character, then ASCII")
    func cjk() throws {
        let bv = try ByteVocab()
        var d = StreamingDetokenizer(tokenizer: bv.tok)
        // 中 = E4 B8 AD, 文 = E6 96 87
        var out = ""
        for b: UInt8 in [0xE4, 0xB8, 0xAD, 0xE6, 0x96, 0x87, 0x21] { out += d.append(bv.byte(b)) }
        #expect(out == "中文!")
    }

    @Test("invalid bytes become U+FFFD immediately instead of stalling")
    func invalid() throws {
        let bv = try ByteVocab()
        var d = StreamingDetokenizer(tokenizer: bv.tok)
        #expect(d.append(bv.byte(0xFF)) == "\u{FFFD}")          // never valid in UTF-8
        #expect(d.append(bv.byte(0xE2)) == "")                  // could start a character
        #expect(d.append(bv.byte(0x41)) == "\u{FFFD}A")         // ...but did not
        #expect(d.append(bv.byte(0xED)) == "")
        #expect(d.append(bv.byte(0xA0)) == "\u{FFFD}\u{FFFD}")  // surrogate range: invalid
        #expect(d.append(bv.byte(0xF0)) == "")
        #expect(d.append(bv.byte(0x9F)) == "")
        #expect(d.flush() == "\u{FFFD}")                        // truncated at the end
    }

    @Test("streaming output equals whole-sequence decoding for random byte streams")
    func matchesWholeDecode() throws {
        let bv = try ByteVocab()
        var rng = SplitMix64(seed: 42)
        let interesting: [UInt8] = [0x41, 0x20, 0xC3, 0xA9, 0xE4, 0xB8, 0xAD, 0xF0, 0x9F, 0x98, 0x80, 0xFF, 0xED, 0xA0, 0xC0, 0x80]
        for _ in 0..<300 {
            let n = Int(rng.next() % 20)
            let bytes = (0..<n).map { _ in interesting[Int(rng.next() % UInt64(interesting.count))] }
            var d = StreamingDetokenizer(tokenizer: bv.tok)
            var out = ""
            for b in bytes { out += d.append(bv.byte(b)) }
            out += d.flush()
            #expect(out == String(decoding: bytes, as: UTF8.self), "bytes \(bytes)")
        }
    }

    @Test("incomplete-suffix detection follows UTF-8's well-formed table")
    func suffixRule() {
        #expect(StreamingDetokenizer.incompleteSuffixLength([]) == 0)
        #expect(StreamingDetokenizer.incompleteSuffixLength([0x41]) == 0)
        #expect(StreamingDetokenizer.incompleteSuffixLength([0x41, 0xF0, 0x9F, 0x98]) == 3)
        #expect(StreamingDetokenizer.incompleteSuffixLength([0xF0, 0x9F, 0x98, 0x80]) == 0)
        #expect(StreamingDetokenizer.incompleteSuffixLength([0xE0, 0x80]) == 0)   // overlong
        #expect(StreamingDetokenizer.incompleteSuffixLength([0xF4, 0x90]) == 0)   // > U+10FFFF
        #expect(StreamingDetokenizer.incompleteSuffixLength([0xC1]) == 0)         // never a lead
        #expect(StreamingDetokenizer.incompleteSuffixLength([0x80, 0x80]) == 0)   // no lead
    }
}
