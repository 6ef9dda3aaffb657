import EffCore
import EffTestSupport
import Foundation
import Testing
@testable import EffLLM

/// Loads the real model's tokenizer once for the model-tier suites.
enum RealTokenizer {
    static let file: Result<GGUFFile, Error> = Result { try GGUFFile(path: TestPaths.model.path) }
    static let tokenizer: Result<Tokenizer, Error> = Result { try Tokenizer(gguf: try file.get()) }

    /// Lines of a fixture file, each parsed as a JSON object.
    static func fixture(_ name: String) throws -> [[String: Any]] {
        let url = TestPaths.fixtures.appendingPathComponent(name)
        let text = try String(contentsOf: url, encoding: .utf8)
        return try text.split(separator: "\n").map {
            guard let o = try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] else {
                throw FixtureError.notAnObject(name)
            }
            return o
        }
    }

    enum FixtureError: Error { case notAnObject(String), missingField(String, String) }

    static func ids(_ o: [String: Any], _ key: String) throws -> [Int32] {
        guard let a = o[key] as? [Int] else { throw FixtureError.missingField(key, "\(o)") }
        return a.map(Int32.init)
    }
}

/// Model tier: llama.cpp's tokenizations of the same GGUF file (`tokenizer.jsonl`).
@Suite("Tokenizer model tier", .enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
struct TokenizerModelTests {
    @Test("vocabulary facts of SmolLM2-135M-Instruct")
    func vocabulary() throws {
        let start = DispatchTime.now().uptimeNanoseconds
        let tok = try Tokenizer(gguf: try RealTokenizer.file.get())
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        print("tokenizer built from GGUF (49152 tokens, 48900 merges) in \(String(format: "%.1f", ms)) ms")
        #expect(tok.vocabSize == 49152)
        #expect(tok.bosID == 1 && tok.eosID == 2)
        #expect(tok.tokenText(1) == "<|im_start|>" && tok.tokenText(2) == "<|im_end|>")
        #expect(tok.isControl(2) && !tok.isControl(19556))
        #expect(tok.id(of: "<|im_end|>") == 2)
        #expect(tok.preTokenizer == .smollm)
    }

    @Test("100% of tokenizer.jsonl, plain and with specials parsed")
    func fixtures() throws {
        let tok = try RealTokenizer.tokenizer.get()
        let cases = try RealTokenizer.fixture("tokenizer.jsonl")
        var exact = 0, total = 0
        for c in cases {
            let text = try #require(c["text"] as? String)
            for (key, special) in [("ids", false), ("ids_parse_special", true)] {
                let want = try RealTokenizer.ids(c, key)
                let got = tok.encode(text, parseSpecial: special)
                total += 1
                if got == want { exact += 1 }
                #expect(got == want, "\(key) of \(text.debugDescription)")
            }
        }
        print("tokenizer.jsonl: \(exact)/\(total) exact (\(cases.count) texts x 2 modes)")
        #expect(total == 2 * cases.count && cases.count >= 30)
        #expect(exact == total)
    }

    @Test("the shared fidelity score (what `effterm eval fixtures` reports) is 1.0")
    func fidelityScore() throws {
        let tok = try RealTokenizer.tokenizer.get()
        let url = TestPaths.fixtures.appendingPathComponent("tokenizer.jsonl")
        let cases = try #require(try Fixtures.loadLines(Fixtures.TokenizerCase.self, at: url))
        let score = tok.fidelity(cases)
        #expect(score.fraction == 1.0, "\(score.mismatches)")
        #expect(score.total == 2 * cases.count)
    }

    @Test("decode(encode(x)) == x and streaming decode agrees, for every fixture text")
    func roundTrip() throws {
        let tok = try RealTokenizer.tokenizer.get()
        for c in try RealTokenizer.fixture("tokenizer.jsonl") {
            let text = try #require(c["text"] as? String)
            for special in [false, true] {
                let ids = tok.encode(text, parseSpecial: special)
                #expect(tok.decode(ids) == text)
                var stream = StreamingDetokenizer(tokenizer: tok)
                var out = ""
                for id in ids { out += stream.append(id) }
                out += stream.flush()
                #expect(out == text)
            }
        }
    }

    @Test("gpl-3.txt tokenizes to a stable count, round-trips, and is fast")
    func gpl3() throws {
        let tok = try RealTokenizer.tokenizer.get()
        let text = try String(contentsOf: TestPaths.fixtures.appendingPathComponent("gpl-3.txt"), encoding: .utf8)
        _ = tok.encode("warm up", parseSpecial: false)
        let start = DispatchTime.now().uptimeNanoseconds
        let ids = tok.encode(text, parseSpecial: false)
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        print("gpl-3.txt: \(text.utf8.count) bytes -> \(ids.count) tokens in \(String(format: "%.1f", ms)) ms")
        // 7639 tokens: llama.cpp's perplexity run cuts exactly 14 chunks of 512 from it, and
        // an independent HF `tokenizers` BPE with the same vocabulary gives the same ids.
        #expect(ids.count == 7639)
        #expect(tok.decode(ids) == text)
        #expect(tok.encode(text, parseSpecial: true) == ids)   // the license has no specials
        #expect(ms < 1000, "far slower than expected (target: well under 100 ms in release)")
    }

    @Test("splitting a multi-token emoji stream never emits half a character")
    func emojiStream() throws {
        let tok = try RealTokenizer.tokenizer.get()
        let text = "Emoji: 😀🚀🌍 👩\u{200D}💻 flags 🇨🇳"
        var stream = StreamingDetokenizer(tokenizer: tok)
        var pieces: [String] = []
        for id in tok.encode(text, parseSpecial: false) { pieces.append(stream.append(id)) }
        pieces.append(stream.flush())
        #expect(pieces.joined() == text)
        #expect(!pieces.contains { $0.unicodeScalars.contains("\u{FFFD}") })
    }
}
