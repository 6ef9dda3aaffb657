import Foundation

/// Reference fixture files produced by llama.cpp on the same GGUF (see fixtures/README.md).
///
/// Formats: `tokenizer.jsonl` `{text, ids, ids_parse_special}`, `chat-template.jsonl`
/// `{messages, add_generation_prompt, prompt, ids}`, `greedy.jsonl` `{prompt_ids,
/// greedy_ids, text, stop_type, steps[{id, logprob, top}]}`, `perplexity.json`
/// `{text_file, n_ctx, ppl_ref, chunks, method}`.
public enum Fixtures {
    public struct TokenizerCase: Codable, Sendable {
        public let text: String
        public let ids: [Int32]
        public let ids_parse_special: [Int32]
    }

    public struct Message: Codable, Sendable {
        public let role: String
        public let content: String
    }

    public struct TemplateCase: Codable, Sendable {
        public let messages: [Message]
        public let add_generation_prompt: Bool
        public let prompt: String
        public let ids: [Int32]
    }

    public struct GreedyStep: Codable, Sendable {
        public let id: Int32
        public let logprob: Double
    }

    public struct GreedyCase: Codable, Sendable {
        public let prompt_ids: [Int32]
        public let greedy_ids: [Int32]
        public let text: String
        public let stop_type: String
        public let steps: [GreedyStep]
    }

    public struct Perplexity: Codable, Sendable {
        public let text_file: String
        public let n_ctx: Int
        public let ppl_ref: Double
        public let chunks: Int?
        public let method: String?
    }

    /// Why a fixture file could not be read; names the file and line.
    public enum LoadError: Error, CustomStringConvertible {
        case unreadable(path: String, reason: String)
        case badLine(path: String, line: Int, reason: String)

        public var description: String {
            switch self {
            case .unreadable(let p, let r): return "cannot read fixture \(p): \(r)"
            case .badLine(let p, let l, let r): return "fixture \(p) line \(l): \(r)"
            }
        }
    }

    /// Decodes one JSON object per non-empty line; nil when the file does not exist.
    public static func loadLines<T: Decodable>(_ type: T.Type, at url: URL) throws -> [T]? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw LoadError.unreadable(path: url.path, reason: "\(error.localizedDescription)")
        }
        var out: [T] = []
        let decoder = JSONDecoder()
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            do { out.append(try decoder.decode(T.self, from: Data(trimmed.utf8))) } catch {
                throw LoadError.badLine(path: url.path, line: i + 1, reason: "\(error)")
            }
        }
        return out
    }

    /// Decodes a single JSON file; nil when it does not exist.
    public static func load<T: Decodable>(_ type: T.Type, at url: URL) throws -> T? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do { return try JSONDecoder().decode(T.self, from: try Data(contentsOf: url)) } catch {
            throw LoadError.unreadable(path: url.path, reason: "\(error)")
        }
    }
}
