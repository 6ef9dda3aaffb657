import ArgumentParser
import EffCore
import EffLLM
import Foundation

/// `effterm eval`: quality checks of the engine against references.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Check the engine against reference outputs.",
        subcommands: [EvalFixturesCommand.self, EvalLongContextCommand.self, EvalQuantCommand.self]
    )
}

/// `effterm eval fixtures DIR`: every fidelity check over a directory of llama.cpp fixtures.
struct EvalFixturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fixtures",
        abstract: "Compare tokenizer, chat template, logits and perplexity with llama.cpp's fixture files.",
        discussion: """
            DIR holds files in the formats of shared/fixtures (see its README.md): \
            tokenizer.jsonl, chat-template.jsonl, greedy.jsonl, perplexity.json (+ its text \
            file). Checks whose file is missing report null. tokenizer_exact and \
            template_exact are fractions of exact matches; top1_agreement is the fraction of \
            teacher-forced positions (along greedy_ids) where our argmax equals llama.cpp's \
            token; mean_abs_logprob_diff is the mean |log-softmax(ours)[ref] - logprob| in \
            nats; greedy_prefix_ok counts prompts whose first 8 free-running greedy tokens \
            (or the whole answer when shorter) match; ppl follows perplexity.json's method \
            (about 15 minutes of CPU on 2 cores for 14 chunks; --ppl-chunks limits it). \
            Targets (issue 2): top-1 >= 0.95, mean |dlogprob| <= 0.1, prefix ok on all \
            prompts but one, ppl within 1% of ppl_ref.
            """
    )

    @Argument(help: "The directory of fixture files.")
    var directory: String

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @Option(name: .customLong("ppl-chunks"), help: "Evaluate at most this many perplexity chunks (default: all).")
    var pplChunks: Int?

    @Option(help: "A GGUF file to use instead of the cached model (else EFFTERM_MODEL, else the cache).")
    var model: String?

    @Option(help: "Weights: file (default), or a format to requantize the 210 linear tensors to, e.g. Q4G32, Q3G64+o0.5%, Q2G32+mse, Q8_0.")
    var weights = "file"

    @OptionGroup var compute: ComputeOptions
    @OptionGroup var kv: KVOption

    func validate() throws { _ = try parseWeightSpec(weights) }

    func run() throws {
        compute.apply()
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw ValidationErrorParagraph("effterm eval fixtures: \(directory) is not a directory of fixture files")
        }
        let loaded = try LoadedModel.load(explicitPath: model, command: "eval fixtures", kv: kv.format,
                                          weights: try parseWeightSpec(weights))
        let report: FixtureSuite.Report
        do {
            report = try FixtureSuite.run(directory: URL(fileURLWithPath: directory), model: loaded.model,
                                          tokenizer: loaded.tokenizer, template: loaded.template,
                                          maxPerplexityChunks: pplChunks) { line in
                FileHandle.standardError.write(Data(("eval: " + line + "\n").utf8))
            }
        } catch {
            throw ValidationErrorParagraph("effterm eval fixtures: \(error)")
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            FileHandle.standardOutput.write(try encoder.encode(report) + Data("\n".utf8))
            return
        }
        print(Self.table(report))
    }

    static func table(_ r: FixtureSuite.Report) -> String {
        func pct(_ v: Double?) -> String { v.map { String(format: "%.1f%%", $0 * 100) } ?? "-" }
        func mark(_ ok: Bool?) -> String { ok.map { $0 ? "ok" : "FAIL" } ?? "-" }
        var rows: [(String, String, String, String)] = []
        rows.append(("tokenizer exact", pct(r.tokenizerExact), "100%", mark(r.tokenizerExact.map { $0 == 1 })))
        rows.append(("template exact", pct(r.templateExact), "100%", mark(r.templateExact.map { $0 == 1 })))
        rows.append(("top-1 agreement", pct(r.top1Agreement) + (r.greedyPositions.map { " of \($0)" } ?? ""),
                     ">= 95%", mark(r.top1Agreement.map { $0 >= 0.95 })))
        rows.append(("mean |dlogprob|", r.meanAbsLogprobDiff.map { String(format: "%.4f nats", $0) } ?? "-",
                     "<= 0.1", mark(r.meanAbsLogprobDiff.map { $0 <= 0.1 })))
        let prefix = r.greedyPrefixOk.flatMap { ok in r.greedyPrompts.map { "\(ok)/\($0)" } } ?? "-"
        rows.append(("greedy first 8 ok", prefix, "all but one",
                     mark(r.greedyPrefixOk.flatMap { ok in r.greedyPrompts.map { ok >= $0 - 1 } })))
        let pplText = r.ppl.map { p in String(format: "%.4f", p) + (r.pplRef.map { String(format: " (ref %.4f, %+.2f%%)", $0, (p / $0 - 1) * 100) } ?? "") } ?? "-"
        rows.append(("perplexity", pplText, "within 1%", mark(r.ppl.flatMap { p in r.pplRef.map { abs(p / $0 - 1) <= 0.01 } })))
        let w0 = rows.map(\.0.count).max()!, w1 = rows.map(\.1.count).max()!, w2 = rows.map(\.2.count).max()!
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
        var out = pad("check", w0) + "  " + pad("value", w1) + "  " + pad("target", w2) + "  result\n"
        for row in rows {
            out += pad(row.0, w0) + "  " + pad(row.1, w1) + "  " + pad(row.2, w2) + "  " + row.3 + "\n"
        }
        out += String(format: "(%.0f s)", r.seconds)
        return out
    }
}
