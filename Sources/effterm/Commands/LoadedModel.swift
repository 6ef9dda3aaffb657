import ArgumentParser
import EffCore
import EffEngine
import EffLLM
import Foundation

/// The model file, tokenizer, template and bound weights a headless command works with.
struct LoadedModel {
    let path: String
    let gguf: GGUFFile
    let model: LlamaModel
    let tokenizer: Tokenizer
    let template: ChatTemplate
    /// Tokens that end an answer (`Tokenizer.endOfTurnTokens`).
    let stopTokens: Set<Int32>

    /// Loads the model; states it makes keep keys and values in `kv`.
    static func load(explicitPath: String?, command: String, kv: KVFormat = .f32) throws -> LoadedModel {
        let progress = ProgressLine()
        let url: URL
        do {
            url = try ModelStore().resolve(explicitPath: explicitPath, pullIfMissing: true) { progress.update($0) }
            progress.finish()
        } catch let error as ModelSupplyError {
            throw ValidationErrorParagraph(error.description)
        }
        do {
            let gguf = try GGUFFile(path: url.path)
            let model = try LlamaModel(gguf: gguf)
            model.kvFormat = kv
            let tokenizer = try Tokenizer(gguf: gguf)
            let template = ChatTemplate.fromModel(gguf).template
            return LoadedModel(path: url.path, gguf: gguf, model: model, tokenizer: tokenizer, template: template,
                               stopTokens: tokenizer.endOfTurnTokens)
        } catch {
            throw ValidationErrorParagraph("effterm \(command): cannot load the model \(url.path): \(error)")
        }
    }
}

/// The chat backend over the model a command names (`--model`, else EFFTERM_MODEL, else the
/// cache, pulled with a progress line when missing): what `effterm chat` and `effterm run`
/// generate through, so both render the template and sample the same way.
enum ChatBackendLoader {
    static func open(explicitPath: String?, command: String, maxContext: Int? = nil, attentionSampleEvery: Int = 8,
                     kv: KVFormat = .f32) throws -> (backend: LlamaChatBackend, url: URL) {
        let progress = ProgressLine()
        let url: URL
        do {
            url = try ModelStore().resolve(explicitPath: explicitPath, pullIfMissing: true) { progress.update($0) }
            progress.finish()
        } catch let error as ModelSupplyError {
            progress.finish()
            throw ValidationErrorParagraph(error.description)
        }
        // The cached default was just verified against the pinned digest; other files are hashed.
        let store = ModelStore()
        let known = ModelSpec.known.first { store.path(of: $0).standardizedFileURL == url.standardizedFileURL }
        do {
            return (try LlamaChatBackend(modelURL: url, sha256: known?.sha256, name: known?.name, maxContext: maxContext,
                                         attentionSampleEvery: attentionSampleEvery, kvFormat: kv), url)
        } catch {
            throw ValidationErrorParagraph("effterm \(command): cannot load the model \(url.path): \(error)")
        }
    }
}
