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
        // Room for the prompt (its tokens never outnumber its UTF-8 bytes) and the template.
        let promptBound = prompt.utf8.count + (system?.utf8.count ?? 0) + 64
        let (backend, url) = try ChatBackendLoader.open(explicitPath: model, command: "run",
                                                 maxContext: promptBound + maxTokens, attentionSampleEvery: 0,
                                                 kv: kv.format)
        let promptIDs: [Int32]
        if raw {
            promptIDs = backend.promptTokens(raw: prompt)
        } else {
            var messages: [TurnMessage] = []
            if let s = system { messages.append(TurnMessage(role: "system", content: s)) }
            messages.append(TurnMessage(role: "user", content: prompt))
            do {
                promptIDs = try backend.promptTokens(for: messages)
            } catch {
                throw ValidationErrorParagraph("effterm run: the chat template failed: \(error)")
            }
        }
        guard !promptIDs.isEmpty else { throw ValidationErrorParagraph("effterm run: the prompt is empty") }
        guard promptIDs.count < backend.info.contextMax else {
            throw ValidationErrorParagraph("effterm run: the prompt has \(promptIDs.count) tokens; the model's context is \(backend.info.contextMax)")
        }
        let config = samplerConfig
        InterruptFlag.install()
        let cancel = CancellationFlag()
        var text = ""
        let completion: LlamaChatBackend.Completion
        do {
            completion = try backend.complete(promptIDs, settings: GenerationSettings(sampler: config, maxTokens: maxTokens),
                                              cancel: cancel) { piece in
                text += piece
                if !json { FileHandle.standardOutput.write(Data(piece.utf8)) }
                if InterruptFlag.raised { cancel.cancel() }
            }
        } catch {
            throw ValidationErrorParagraph("effterm run: generation failed: \(error)")
        }
        let t = completion.timings
        if json {
            let object: [String: Any] = [
                "model": url.path, "prompt_tokens": promptIDs.count, "prompt_ids": promptIDs.map(Int.init),
                "generated_ids": completion.generated.map(Int.init), "generated_tokens": completion.generated.count,
                "text": text, "stop_reason": completion.stopReason.rawValue,
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
            FileHandle.standardOutput.write(Data("\n".utf8))
            let line = String(format: "[prefill %d tokens %.0f ms (%.1f tok/s) | decode %d tokens %.0f ms (%.1f tok/s) | stop: %@]\n",
                              t.promptTokens, t.prefillMs, t.prefillTokensPerSecond, t.decodeSteps, t.decodeMs,
                              t.decodeTokensPerSecond, completion.stopReason.rawValue)
            FileHandle.standardError.write(Data(line.utf8))
        }
    }
}
