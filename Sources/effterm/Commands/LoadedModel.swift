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

    /// Loads the model; states it makes keep keys and values in `kv`. A `weights` spec other
    /// than `file` requantizes the 210 linear tensors after loading (progress on stderr).
    static func load(explicitPath: String?, command: String, kv: KVFormat = .f32,
                     weights: WeightSpec = .file) throws -> LoadedModel {
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
            var model = try LlamaModel(gguf: gguf)
            if !weights.isFile { model = try requantize(model, weights) }
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

/// `model` with its linear tensors requantized as `spec` says, progress on stderr.
func requantize(_ model: LlamaModel, _ spec: WeightSpec, calibration: CalibrationGrams? = nil) throws -> LlamaModel {
    let start = Date()
    let w = try model.weights.requantized(spec, calibration: calibration) { done, total in
        if done % 30 == 0 || done == total {
            FileHandle.standardError.write(Data("\rweights \(spec): \(done)/\(total) tensors".utf8))
        }
    }
    FileHandle.standardError.write(Data(String(format: " (%.1f s)\n", Date().timeIntervalSince(start)).utf8))
    return LlamaModel(weights: w)
}

/// Parses a `--weights` value into one spec, as a validation error a person can act on.
func parseWeightSpec(_ text: String) throws -> WeightSpec {
    do { return try WeightSpec(parsing: text) } catch { throw ValidationError("--\(error)") }
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

/// GPTQ's calibration: the Gram matrices of every block linear's inputs over the default
/// calibration texts (`CalibrationGrams.defaultTextPaths`), progress through `log`.
func gptqCalibration(_ loaded: LoadedModel, log: @escaping (String) -> Void) throws -> CalibrationGrams {
    let (tokens, files) = CalibrationGrams.defaultTokens(tokenizer: loaded.tokenizer)
    let start = Date()
    do {
        let grams = try CalibrationGrams(model: loaded.model, tokens: tokens) { done, total in
            log("GPTQ calibration: chunk \(done)/\(total)")
        }
        log(String(format: "GPTQ calibration: %d tokens from %@ (%.1f s)", grams.tokenCount,
                   files.map { ($0 as NSString).lastPathComponent }.joined(separator: ", "), Date().timeIntervalSince(start)))
        return grams
    } catch {
        throw ValidationErrorParagraph("GPTQ calibration failed: \(error) (it reads \(CalibrationGrams.defaultTextPaths.joined(separator: ", ")))")
    }
}
