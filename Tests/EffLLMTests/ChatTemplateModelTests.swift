import EffCore
import EffTestSupport
import Foundation
import Testing
@testable import EffLLM

/// Model tier: llama.cpp's `/apply-template` renderings of this file's template and their
/// tokens (`chat-template.jsonl`).
@Suite("Chat template model tier", .enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
struct ChatTemplateModelTests {
    @Test("the model's template is used (no fallback)")
    func fromModel() throws {
        let (template, reason) = ChatTemplate.fromModel(try RealTokenizer.file.get())
        #expect(reason == nil)
        #expect(template.source.contains("You are a helpful AI assistant named SmolLM"))
        #expect(template.sourceHash != ChatTemplate.chatML.sourceHash)
    }

    @Test("100% of chat-template.jsonl: prompt text and its tokens exact")
    func fixtures() throws {
        let template = ChatTemplate.fromModel(try RealTokenizer.file.get()).template
        let tok = try RealTokenizer.tokenizer.get()
        let cases = try RealTokenizer.fixture("chat-template.jsonl")
        var promptExact = 0, idsExact = 0
        for c in cases {
            let rawMessages = try #require(c["messages"] as? [[String: String]])
            let messages = rawMessages.map { ChatMessage(role: $0["role"] ?? "", content: $0["content"] ?? "") }
            let addGen = try #require(c["add_generation_prompt"] as? Bool)
            let want = try #require(c["prompt"] as? String)
            let got = try template.render(messages, addGenerationPrompt: addGen,
                                          bosToken: tok.tokenText(tok.bosID), eosToken: tok.tokenText(tok.eosID))
            #expect(got == want)
            if got == want { promptExact += 1 }
            let ids = tok.encode(got, parseSpecial: true)
            #expect(ids == (try RealTokenizer.ids(c, "ids")))
            if ids == (try RealTokenizer.ids(c, "ids")) { idsExact += 1 }
        }
        print("chat-template.jsonl: prompts \(promptExact)/\(cases.count) exact, ids \(idsExact)/\(cases.count) exact")
        #expect(cases.count >= 6)
        #expect(promptExact == cases.count && idsExact == cases.count)
    }

    @Test("the shared fidelity score (what `effterm eval fixtures` reports) is 1.0")
    func fidelityScore() throws {
        let template = ChatTemplate.fromModel(try RealTokenizer.file.get()).template
        let url = TestPaths.fixtures.appendingPathComponent("chat-template.jsonl")
        let cases = try #require(try Fixtures.loadLines(Fixtures.TemplateCase.self, at: url))
        let score = template.fidelity(cases, tokenizer: try RealTokenizer.tokenizer.get())
        #expect(score.fraction == 1.0, "\(score.mismatches)")
        #expect(score.total == cases.count)
    }
}
