import EffCore
import EffEngine
import EffLLM
import EffTUI
import Foundation

/// The parsers that read files a person (or a download) hands to effterm, each as one
/// function from arbitrary bytes to "no crash": the libFuzzer driver (`Tools/fuzz`) and the
/// corpus replay in the tests call the same code.
///
/// A harness returns normally for any input, whether the parser accepts it or throws a clear
/// error; a crash, a trap (index out of range, overflow, precondition), a hang or runaway
/// memory is a bug. Where a parser accepts an input, the harness also uses what it returned
/// (tensor views, typed accessors, rendering, round-trips), so bad bookkeeping surfaces too.
public enum FuzzHarness: String, CaseIterable, Sendable {
    case gguf, safetensors, template, transcript, theme, keymap

    /// Folder names under Fuzz/Corpus and Fuzz/Regressions.
    public var name: String { rawValue }

    /// Runs the harness on one input; returns whether the parser accepted it (for themes
    /// and keymaps: without a diagnostic).
    @discardableResult
    public func run(_ data: Data) -> Bool {
        switch self {
        case .gguf: return Self.gguf(data)
        case .safetensors: return Self.safetensors(data)
        case .template: return Self.template(data)
        case .transcript: return Self.transcript(data)
        case .theme: return Self.theme(data)
        case .keymap: return Self.keymap(data)
        }
    }

    /// A GGUF file: header, metadata, tensor infos; then every typed accessor on every key,
    /// a read of every tensor's first and last byte, and the chat template it carries.
    static func gguf(_ data: Data) -> Bool {
        guard let file = try? GGUFFile(bytes: [UInt8](data)) else { return false }
        var sink = 0
        for key in file.metadataKeys {
            sink &+= (try? file.string(key))?.utf8.count ?? 0
            sink &+= (try? file.int(key)) ?? 0
            sink &+= Int((try? file.float(key))?.isFinite == true ? 1 : 0)
            sink &+= (try? file.bool(key)) == true ? 1 : 0
            sink &+= (try? file.stringArray(key))?.count ?? 0
            sink &+= (try? file.intArray(key))?.count ?? 0
            sink &+= (try? file.floatArray(key))?.count ?? 0
        }
        for tensor in file.tensors {
            guard let same = file.tensor(named: tensor.name) else { fatalError("tensor \(tensor.name) not found by name") }
            let bytes = file.data(for: same)
            if let first = bytes.first, let last = bytes.last { sink &+= Int(first) &+ Int(last) }
        }
        let (template, _) = ChatTemplate.fromModel(file)
        sink &+= (try? template.render([ChatMessage(role: "user", content: "hi")], addGenerationPrompt: true))?.count ?? 0
        blackHole(sink)
        return true
    }

    /// A safetensors file: header JSON, then every tensor's info, bytes and (for float
    /// dtypes) its values.
    static func safetensors(_ data: Data) -> Bool {
        guard let file = try? SafeTensorsFile(data: data) else { return false }
        var sink = file.metadata.count
        for name in file.names {
            guard let info = try? file.info(name) else { fatalError("listed tensor \(name) has no info") }
            sink &+= info.count
            sink &+= (try? file.bytes(name))?.count ?? 0
            sink &+= (try? file.floats(name))?.count ?? 0
        }
        blackHole(sink)
        return true
    }

    /// A chat template: bytes up to the first NUL are the template source, the rest is the
    /// user's message. Parsed, then rendered with and without the generation prompt.
    static func template(_ data: Data) -> Bool {
        let bytes = [UInt8](data)
        let cut = bytes.firstIndex(of: 0) ?? bytes.count
        let source = String(decoding: bytes[..<cut], as: UTF8.self)
        let message = cut < bytes.count ? String(decoding: bytes[(cut + 1)...], as: UTF8.self) : "hello"
        guard let template = try? ChatTemplate(source: source) else { return false }
        let messages = [ChatMessage(role: "system", content: "be brief"), ChatMessage(role: "user", content: message),
                        ChatMessage(role: "assistant", content: "ok"), ChatMessage(role: "user", content: message)]
        var rendered = 0
        for generation in [true, false] {
            if let text = try? template.render(messages, addGenerationPrompt: generation, bosToken: "<s>", eosToken: "</s>") {
                rendered += 1; blackHole(text.utf8.count)
            }
        }
        return rendered > 0
    }

    /// A session transcript as `--resume` reads it (cut last lines included). What loads
    /// must survive a save and reload unchanged, and render as Markdown.
    static func transcript(_ data: Data) -> Bool {
        guard let t = try? Transcript.parse(data, file: "fuzz.jsonl") else { return false }
        guard let saved = try? t.jsonLines() else { fatalError("a loaded transcript could not be encoded") }
        guard let again = try? Transcript.parse(saved, file: "saved.jsonl") else {
            fatalError("a saved transcript does not load:\n\(String(decoding: saved, as: UTF8.self))")
        }
        var expected = t
        expected.cutLine = nil
        // Compare records are written after the turn they belong to, so order can change.
        guard again.header == expected.header, again.turns == expected.turns,
              again.compares.count == expected.compares.count, Set(again.compares) == Set(expected.compares) else {
            fatalError("a transcript changed across save and reload")
        }
        blackHole(t.markdown().utf8.count)
        return true
    }

    /// A btop-style theme file.
    static func theme(_ data: Data) -> Bool {
        let (theme, diagnostics) = ThemeParser.parse(String(decoding: data, as: UTF8.self), name: "fuzz", file: "fuzz.theme")
        blackHole(theme.colors.count)
        return diagnostics.isEmpty
    }

    /// A keymap file (`action = key, key`), applied over the defaults.
    static func keymap(_ data: Data) -> Bool {
        var keymap = Keymap()
        let problems = keymap.apply(String(decoding: data, as: UTF8.self), file: "keymap")
        var sink = problems.count
        for action in Action.allCases { sink &+= keymap.keyNames(action).count }
        // Every binding is one of its action's keys (a rejected line changes nothing).
        for (key, action) in keymap.bindings where !(keymap.keys[action] ?? []).contains(key) {
            fatalError("\(key.name) is bound to \(action.rawValue) but not among its keys")
        }
        blackHole(sink)
        return problems.isEmpty
    }

    @inline(never) static func blackHole(_ x: Int) { if x == Int.min { print("") } }
}
