import ArgumentParser
import EffCore
import EffEngine
import EffLLM
import EffTechniques
import Foundation

/// `effterm eval longctx`: passkey retrieval and streaming perplexity per attention policy.
struct EvalLongContextCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "longctx",
        abstract: "Passkey retrieval and long-text perplexity for dense attention and StreamingLLM.",
        discussion: """
            passkey: a five-digit number hidden once in repeated filler ("The grass is green. \
            The sky is blue. ...") at --needles depths from 0% to 100%, asked for at the end in \
            the chat template with the answer started as "The pass key is"; greedy answer of \
            up to 8 tokens, correct when it contains the number. perplexity: teacher-forced \
            over --text (default shared/fixtures/gpl-3.txt, repeated --repeat times) in chunks \
            of --chunk tokens, overall and per --segment tokens; a policy without eviction \
            stops at the model's context. Policies: dense, sinkS+winW (read mask, nothing \
            evicted), sinkS+winW+evict (StreamingLLM's bounded cache; sink0 is window-only), \
            moa:NAME (a plan from `effterm attn plan`, by name or path). \
            Progress goes to stderr, results to stdout. The reference is the GGUF's Q4_1 \
            weights dequantized to f32.
            """
    )

    @Option(help: "Attention policies, comma-separated.")
    var policies = "dense,sink4+win1020+evict,sink0+win1024+evict"

    @Option(help: "Passkey prompt lengths in tokens, comma-separated (clamped to the context).")
    var lengths = "1024,2048,4096,8192"

    @Option(help: "Needle depths per length, spread evenly over 0%...100%.")
    var needles = 5

    @Option(help: "Text for perplexity (default: shared/fixtures/gpl-3.txt when found).")
    var text: String?

    @Option(help: "Feed the perplexity text this many times in a row (to run past the context).")
    var repeatText = 1

    @Option(help: "Score at most this many perplexity tokens (0: all).")
    var maxTokens = 4096

    @Option(help: "Perplexity segment length for the per-segment curve.")
    var segment = 512

    @Option(help: "Tokens per forward call while scoring perplexity.")
    var chunk = 32

    @Option(help: "Only these sections: passkey, perplexity (comma-separated).")
    var only = "passkey,perplexity"

    @Option(help: "Seed of the passkeys.")
    var seed: UInt64 = 12

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Option(help: "A GGUF file to use instead of the cached model (else EFFTERM_MODEL, else the cache).")
    var model: String?

    @OptionGroup var compute: ComputeOptions
    @OptionGroup var kv: KVOption

    func validate() throws {
        do { _ = try AttentionPolicyCatalog.parseList(policies, resolve: AttnStore.syntaxOnly) } catch { throw ValidationError("--policies: \(error)") }
        guard !LLMBenchCommand.ints(lengths).isEmpty, LLMBenchCommand.ints(lengths).allSatisfy({ $0 >= 64 }) else {
            throw ValidationError("--lengths \(lengths): give token counts of at least 64, comma-separated.")
        }
        guard (1...100).contains(needles) else { throw ValidationError("--needles \(needles): use 1 to 100.") }
        guard repeatText >= 1, segment >= 1, chunk >= 1, maxTokens >= 0 else {
            throw ValidationError("--repeat-text, --segment and --chunk must be at least 1, --max-tokens at least 0.")
        }
    }

    /// shared/fixtures/gpl-3.txt above the working directory or the binary, if present.
    static func defaultText() -> String? {
        var candidates: [URL] = []
        for start in [URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
                      URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()] {
            var dir = start.standardizedFileURL
            for _ in 0..<6 {
                candidates.append(dir.appendingPathComponent("shared/fixtures/gpl-3.txt"))
                candidates.append(dir.appendingPathComponent("../shared/fixtures/gpl-3.txt"))
                dir = dir.deletingLastPathComponent()
            }
        }
        candidates.append(URL(fileURLWithPath: "/work/shared/fixtures/gpl-3.txt"))
        return candidates.first { FileManager.default.fileExists(atPath: $0.path) }?.standardizedFileURL.path
    }

    func run() throws {
        compute.apply()
        let sections = Set(only.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        let loaded = try LoadedModel.load(explicitPath: model, command: "eval longctx", kv: kv.format)
        let specs = try AttnStore.specs(policies, option: "--policies", modelPath: loaded.path, config: loaded.model.config)
        let log: (String) -> Void = { FileHandle.standardError.write(Data(("longctx: " + $0 + "\n").utf8)) }
        var result: [String: Any] = [
            "model": loaded.path, "kv_format": kv.format.name, "policies": specs.map(\.description),
            "machine": LLMBenchCommand.machine(threads: ComputePool.shared.threadCount),
            "reference": "GGUF Q4_1 weights dequantized to f32",
        ]
        var textOut: [String] = []
        if sections.contains("passkey") {
            let rows = try LongContextEval.passkey(model: loaded.model, tokenizer: loaded.tokenizer, template: loaded.template,
                                                   stopTokens: loaded.stopTokens, policies: specs.map(\.configuration),
                                                   lengths: LLMBenchCommand.ints(lengths), needles: needles, seed: seed,
                                                   progress: log)
            result["passkey"] = rows.map { r in
                [
                    "policy": r.policy, "length": r.length, "correct": r.correct, "total": r.total,
                    "accuracy": r.accuracy, "seconds": r.seconds,
                    "cases": r.cases.map { c in
                        ["depth": c.depth, "passkey": c.passkey, "prompt_tokens": c.promptTokens, "answer": c.answer,
                         "correct": c.correct, "kv_bytes": c.kvBytes, "evicted": c.evicted] as [String: Any]
                    },
                ] as [String: Any]
            }
            textOut.append("passkey retrieval (accuracy over \(needles) depths)")
            let lens = LLMBenchCommand.ints(lengths)
            textOut.append(Self.pad("policy", 24) + lens.map { Self.pad(String($0), 8) }.joined())
            for spec in specs {
                let cells = lens.map { len -> String in
                    guard let r = rows.first(where: { $0.policy == spec.description && $0.length == len }) else { return "-" }
                    return String(format: "%.0f%%", r.accuracy * 100)
                }
                textOut.append(Self.pad(spec.description, 24) + cells.map { Self.pad($0, 8) }.joined())
            }
        }
        if sections.contains("perplexity") {
            guard let path = text ?? Self.defaultText() else {
                throw ValidationErrorParagraph("effterm eval longctx: no perplexity text; pass --text FILE "
                                               + "(or --only passkey)")
            }
            guard let body = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ValidationErrorParagraph("effterm eval longctx: cannot read --text \(path) as UTF-8")
            }
            var ids: [Int32] = []
            let once = loaded.tokenizer.encode(body, parseSpecial: false)
            for _ in 0..<repeatText { ids += once }
            if maxTokens > 0 && ids.count > maxTokens + 1 { ids = Array(ids[0...maxTokens]) }
            log("perplexity over \(ids.count) tokens of \(path)")
            let rows = try LongContextEval.perplexity(model: loaded.model, tokens: ids, policies: specs.map(\.configuration),
                                                      segment: segment, chunk: chunk, progress: log)
            result["perplexity"] = [
                "text": path, "tokens": ids.count, "segment": segment, "chunk": chunk,
                "rows": rows.map { r in
                    var e: [String: Any] = ["policy": r.policy, "scored": r.scored, "ppl": r.ppl, "segments": r.segments,
                                            "kv_bytes_max": r.kvBytesMax, "evicted": r.evicted, "seconds": r.seconds]
                    if let s = r.stoppedAt { e["stopped"] = s }
                    return e
                },
            ] as [String: Any]
            textOut.append("perplexity over \(ids.count) tokens (per \(segment)-token segment)")
            for r in rows {
                let segs = r.segments.map { String(format: "%.1f", $0) }.joined(separator: " ")
                textOut.append(Self.pad(r.policy, 24) + String(format: "%8.3f  KV max %.1f MiB  [%@]", r.ppl,
                                                                Double(r.kvBytesMax) / 1_048_576, segs) + (r.stoppedAt.map { " (stopped: \($0))" } ?? ""))
            }
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: Self.finite(result),
                                                  options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(textOut.joined(separator: "\n"))
        }
    }

    static func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(1, w - s.count)) }

    /// JSON has no NaN or infinity: those become null.
    static func finite(_ v: Any) -> Any {
        switch v {
        case let d as Double: return d.isFinite ? d : NSNull()
        case let a as [Any]: return a.map(finite)
        case let m as [String: Any]: return m.mapValues(finite)
        default: return v
        }
    }
}
