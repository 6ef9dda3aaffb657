import ArgumentParser
import EffCore
import EffEngine
import EffLLM
import Foundation

/// `effterm run`: one headless generation, streamed to standard output.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Generate an answer to one prompt, streamed to standard output.",
        discussion: """
            The prompt goes through the model's chat template (with --system as the system \
            message, else the template's default) unless --raw is given, then the model \
            prefills it as one batch and decodes until <|im_end|>, EOS or --max-tokens. \
            Defaults sample at temperature 0.2, top-k 40, top-p 0.9, min-p 0.05 and \
            repetition penalty 1.1 (SmolLM2's recommended low temperature; a 135M model \
            wanders at 0.7+). --temp 0 is greedy decoding (argmax, no repetition penalty \
            unless --repeat-penalty is given), token for token what llama.cpp produces on \
            the same file. Timings go to standard error; --json prints one object instead. \
            Ctrl-C stops between tokens and keeps what was generated.
            """
    )

    @Option(help: "The user's message (or, with --raw, the exact prompt text).")
    var prompt: String

    @Option(help: "A system message (default: the chat template's own).")
    var system: String?

    @Option(name: .customLong("max-tokens"), help: "Stop after this many generated tokens.")
    var maxTokens = 512

    @Option(name: .customLong("temp"), help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = SamplerConfig.chat.temperature

    @Option(name: .customLong("top-k"), help: "Keep the K most likely tokens (0: off).")
    var topK: Int = SamplerConfig.chat.topK

    @Option(name: .customLong("top-p"), help: "Nucleus: keep the most likely tokens up to this mass (1: off).")
    var topP: Float = SamplerConfig.chat.topP

    @Option(name: .customLong("min-p"), help: "Drop tokens below this fraction of the best one's probability (0: off).")
    var minP: Float = SamplerConfig.chat.minP

    @Option(name: .customLong("repeat-penalty"), help: "Penalty on the last 64 tokens (1: off; default 1.1, or 1 with --temp 0).")
    var repeatPenalty: Float?

    @Option(help: "Random seed of the sampler.")
    var seed: UInt64 = SamplerConfig.chat.seed

    @Flag(help: "Use the prompt text as is (no chat template); control tokens in it are recognized.")
    var raw = false

    @Flag(help: "Print one JSON object (ids, text, timings) instead of streaming text.")
    var json = false

    @Option(help: "A GGUF file to use instead of the cached model (else EFFTERM_MODEL, else the cache).")
    var model: String?

    func validate() throws {
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be positive") }
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temp must be 0 or more") }
        guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        guard minP >= 0, minP < 1 else { throw ValidationError("--min-p must be in [0, 1)") }
        if let r = repeatPenalty, !(r > 0 && r.isFinite) { throw ValidationError("--repeat-penalty must be positive") }
    }

    var samplerConfig: SamplerConfig {
        SamplerConfig(temperature: temperature, topK: topK, topP: topP, minP: minP,
                      repeatPenalty: repeatPenalty ?? (temperature == 0 ? 1 : SamplerConfig.chat.repeatPenalty),
                      repeatLastN: 64, seed: seed)
    }


    @OptionGroup var compute: ComputeOptions
    @OptionGroup var kv: KVOption

    func run() throws {
        compute.apply()
        let loaded = try LoadedModel.load(explicitPath: model, command: "run", kv: kv.format)
        let tokenizer = loaded.tokenizer
        let promptText: String
        if raw {
            promptText = prompt
        } else {
            var messages: [ChatMessage] = []
            if let s = system { messages.append(ChatMessage(role: "system", content: s)) }
            messages.append(ChatMessage(role: "user", content: prompt))
            do {
                promptText = try loaded.template.render(messages, addGenerationPrompt: true,
                                                        bosToken: tokenizer.tokenText(tokenizer.bosID),
                                                        eosToken: tokenizer.tokenText(tokenizer.eosID))
            } catch {
                throw ValidationErrorParagraph("effterm run: the chat template failed: \(error)")
            }
        }
        let promptIDs = tokenizer.encode(promptText, parseSpecial: true)
        guard !promptIDs.isEmpty else { throw ValidationErrorParagraph("effterm run: the prompt is empty") }
        let llm = loaded.model
        let context = min(llm.config.seqLen, promptIDs.count + maxTokens)
        guard promptIDs.count < context else {
            throw ValidationErrorParagraph("effterm run: the prompt has \(promptIDs.count) tokens; the model's context is \(llm.config.seqLen)")
        }
        let config = samplerConfig
        InterruptFlag.install()
        let generator = TokenGenerator(model: llm, state: llm.makeState(maxContext: context, maxBatch: 64),
                                       sampler: Sampler(config: config, vocabSize: llm.config.vocabSize),
                                       prompt: promptIDs, maxTokens: maxTokens, stopTokens: loaded.stopTokens,
                                       shouldCancel: { InterruptFlag.raised })
        var detok = StreamingDetokenizer(tokenizer: tokenizer)
        var text = ""
        for id in generator {
            let piece = detok.append(id)
            text += piece
            if !json { FileHandle.standardOutput.write(Data(piece.utf8)) }
        }
        let tail = detok.flush()
        text += tail
        if let error = generator.error {
            throw ValidationErrorParagraph("effterm run: generation failed: \(error)")
        }
        let t = generator.timings
        if json {
            let object: [String: Any] = [
                "model": loaded.path, "prompt_tokens": promptIDs.count, "prompt_ids": promptIDs.map(Int.init),
                "generated_ids": generator.generated.map(Int.init), "generated_tokens": generator.generated.count,
                "text": text, "stop_reason": generator.stopReason?.rawValue ?? "",
                "prefill_ms": t.prefillMs, "prefill_tok_s": t.prefillTokensPerSecond,
                "decode_ms": t.decodeMs, "decode_steps": t.decodeSteps, "decode_tok_s": t.decodeTokensPerSecond,
                "mean_step_ms": t.meanStepMs, "step_ms": t.stepMs,
                "sampler": ["temperature": shortDecimal(config.temperature), "top_k": config.topK,
                            "top_p": shortDecimal(config.topP), "min_p": shortDecimal(config.minP),
                            "repeat_penalty": shortDecimal(config.repeatPenalty),
                            "repeat_last_n": config.repeatLastN, "seed": config.seed] as [String: Any],
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        } else {
            FileHandle.standardOutput.write(Data((tail + "\n").utf8))
            let line = String(format: "[prefill %d tokens %.0f ms (%.1f tok/s) | decode %d tokens %.0f ms (%.1f tok/s) | stop: %@]\n",
                              t.promptTokens, t.prefillMs, t.prefillTokensPerSecond, t.decodeSteps, t.decodeMs,
                              t.decodeTokensPerSecond, generator.stopReason?.rawValue ?? "?")
            FileHandle.standardError.write(Data(line.utf8))
        }
    }
}

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

/// Ctrl-C as a flag checked between tokens (the first press stops generation cleanly).
enum InterruptFlag {
    nonisolated(unsafe) static var raised = false

    static func install() {
        signal(SIGINT) { _ in
            if InterruptFlag.raised { _exit(130) }
            InterruptFlag.raised = true
        }
    }
}
