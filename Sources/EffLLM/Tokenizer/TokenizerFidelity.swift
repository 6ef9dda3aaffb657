/// Exact-match scores of the tokenizer and chat template against llama.cpp's fixture files
/// (`tokenizer.jsonl`, `chat-template.jsonl`; issue 2's fidelity criteria, which ask 100%).
public struct FixtureScore: Sendable, Codable, Equatable {
    public var exact: Int
    public var total: Int
    /// Descriptions of the first few mismatches (for a person reading the report).
    public var mismatches: [String]

    /// `exact / total` (1 for an empty set: nothing disagreed).
    public var fraction: Double { total == 0 ? 1 : Double(exact) / Double(total) }

    public init(exact: Int = 0, total: Int = 0, mismatches: [String] = []) {
        self.exact = exact
        self.total = total
        self.mismatches = mismatches
    }

    mutating func record(_ ok: Bool, _ describe: @autoclosure () -> String) {
        total += 1
        if ok { exact += 1 } else if mismatches.count < 5 { mismatches.append(describe()) }
    }
}

extension Tokenizer {
    /// Scores `encode` against `tokenizer.jsonl` cases: each text counts twice, once for
    /// `ids` (specials as plain text) and once for `ids_parse_special`.
    public func fidelity(_ cases: [Fixtures.TokenizerCase]) -> FixtureScore {
        var score = FixtureScore()
        for c in cases {
            for (want, special) in [(c.ids, false), (c.ids_parse_special, true)] {
                let got = encode(c.text, parseSpecial: special)
                score.record(got == want, "\(c.text.debugDescription) parseSpecial=\(special): got \(got), want \(want)")
            }
        }
        return score
    }
}

extension ChatTemplate {
    /// Scores rendering against `chat-template.jsonl` cases: a case is exact when the prompt
    /// text equals `prompt` and its tokens (specials parsed) equal `ids`. BOS/EOS texts come
    /// from the tokenizer.
    public func fidelity(_ cases: [Fixtures.TemplateCase], tokenizer: Tokenizer) -> FixtureScore {
        var score = FixtureScore()
        for (i, c) in cases.enumerated() {
            let messages = c.messages.map { ChatMessage(role: $0.role, content: $0.content) }
            do {
                let prompt = try render(messages, addGenerationPrompt: c.add_generation_prompt,
                                        bosToken: tokenizer.tokenText(tokenizer.bosID),
                                        eosToken: tokenizer.tokenText(tokenizer.eosID))
                guard prompt == c.prompt else {
                    score.record(false, "case \(i + 1): prompt \(prompt.debugDescription), want \(c.prompt.debugDescription)")
                    continue
                }
                let ids = tokenizer.encode(prompt, parseSpecial: true)
                score.record(ids == c.ids, "case \(i + 1): ids \(ids), want \(c.ids)")
            } catch {
                score.record(false, "case \(i + 1): \(error)")
            }
        }
        return score
    }
}
