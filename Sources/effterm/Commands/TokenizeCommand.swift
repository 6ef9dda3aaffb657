import ArgumentParser
import EffCore
import EffEngine
import EffLLM
import Foundation

/// `effterm tokenize TEXT`: the model's token ids and pieces for a text, as the engine sees it.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Show the token ids and pieces the model's tokenizer gives a text.",
        discussion: """
            Uses the GGUF file's own vocabulary and merges (byte-level BPE with the file's \
            pre-tokenizer), exactly as prompts are tokenized for generation. No BOS is added. \
            With --special, control tokens written in the text (such as <|im_start|>) are \
            recognized; without it they are tokenized as plain characters. TEXT '-' reads \
            standard input.
            """
    )

    @Argument(help: "The text to tokenize ('-' reads standard input).")
    var text: String

    @Option(help: "A GGUF file to use instead of the cached model (else EFFTERM_MODEL, else the cache).")
    var model: String?

    @Flag(help: "Recognize control tokens such as <|im_start|> written in the text.")
    var special = false

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        let input: String
        if text == "-" {
            input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            input = text
        }
        let path: URL
        do {
            path = try ModelStore().resolve(explicitPath: model, pullIfMissing: false)
        } catch let error as ModelSupplyError {
            throw ValidationErrorParagraph(error.description)
        }
        let tokenizer: Tokenizer
        do {
            tokenizer = try Tokenizer(gguf: try GGUFFile(path: path.path))
        } catch {
            throw ValidationErrorParagraph("effterm tokenize: cannot load the tokenizer of \(path.path): \(error)")
        }
        let ids = tokenizer.encode(input, parseSpecial: special)
        if json {
            let tokens: [[String: Any]] = ids.map { id in
                ["id": Int(id), "text": tokenizer.tokenText(id),
                 "piece": String(decoding: tokenizer.tokenBytes(id), as: UTF8.self),
                 "bytes": tokenizer.tokenBytes(id).map(Int.init), "control": tokenizer.isControl(id)]
            }
            let object: [String: Any] = ["model": path.path, "parse_special": special, "count": ids.count,
                                         "ids": ids.map(Int.init), "tokens": tokens]
            let data = try JSONSerialization.data(withJSONObject: object,
                                                  options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("\(ids.count) tokens (specials \(special ? "parsed" : "as plain text"))")
            let width = String(tokenizer.vocabSize).count
            for id in ids {
                let idText = String(id)
                print(String(repeating: " ", count: max(0, width - idText.count)) + idText + "  "
                      + Self.show(tokenizer.tokenBytes(id)) + (tokenizer.isControl(id) ? "  (control)" : ""))
            }
        }
    }

    /// A piece as a quoted, escaped string; bytes that are not whole UTF-8 characters
    /// (a token ending mid-character) are shown as hex.
    static func show(_ bytes: [UInt8]) -> String {
        if let s = String(validating: bytes, as: UTF8.self) {
            return s.debugDescription
        }
        return "<" + bytes.map { "0x" + String($0, radix: 16, uppercase: true) }.joined(separator: " ") + ">"
    }
}
