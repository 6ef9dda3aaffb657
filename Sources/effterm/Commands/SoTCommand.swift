import ArgumentParser
import EffEngine
import EffLLM
import EffTechniques
import Foundation

/// `effterm sot`: answer one question with Skeleton-of-Thought, headless.
struct SoTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sot",
        abstract: "Answer a question with Skeleton-of-Thought: a skeleton first, then every point expanded in one batch.",
        discussion: """
        Greedy decoding throughout. The skeleton (capped at --skeleton-tokens) is parsed as \
        `N. text` lines; fewer than 2 points falls back to normal decoding and says so. The \
        points' prompts share a prefix that is prefilled once and forked into one KV cache per \
        point; all points then decode together, one token per stream per step. Timings are \
        wall-clock on this machine.
        """)

    @Option(name: .long, help: "The question.")
    var prompt: String

    @Option(help: "Skeleton-of-Thought mode: `on` (always SoT). The router for `auto` is not built yet.")
    var mode: String = "on"

    @Option(help: "Cap on skeleton tokens.")
    var skeletonTokens = 100

    @Option(help: "Cap on each point's expansion tokens.")
    var pointTokens = 64

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Option(help: "A GGUF file to use instead of the cached model (else EFFTERM_MODEL, else the cache).")
    var model: String?

    func validate() throws {
        guard mode == "on" else {
            throw ValidationError("--mode \(mode): only `on` exists today; the SoT router (`auto`) is not built yet.")
        }
    }

    @OptionGroup var compute: ComputeOptions

    func run() throws {
        compute.apply()
        let loaded = try LoadedModel.load(explicitPath: model, command: "sot")
        InterruptFlag.install()
        let sot = LlamaSoTModel(model: loaded.model, tokenizer: loaded.tokenizer,
                                template: loaded.template, stopTokens: loaded.stopTokens)
        sot.isCancelled = { InterruptFlag.raised }
        var config = SoTRunner.Config()
        config.skeletonMaxTokens = skeletonTokens
        config.pointMaxTokens = pointTokens
        let result = try SoTRunner(config: config).run(question: prompt, model: sot) { event in
            guard !json else { return }
            switch event {
            case .skeletonText(let t): print(t, terminator: ""); fflush(stdout)
            case .skeleton(let points): print("\n[skeleton: \(points.count) points; expanding in one batch]")
            case .fellBack(let reason): print("\n[fallback to normal decoding: \(reason)]")
            case .fallbackText(let t): print(t, terminator: ""); fflush(stdout)
            default: break
            }
        }
        if json {
            let object: [String: Any] = [
                "question": prompt, "mode": mode,
                "skeleton": result.skeletonText,
                "points": result.points.map { ["index": $0.index, "text": $0.text] },
                "expansions": result.expansions,
                "answer": result.answer,
                "fallback_reason": result.fallbackReason as Any,
                "leaked_points": result.leakedPoints,
                "streams": result.batch == nil ? 0 : result.points.count,
                "skeleton_seconds": result.skeletonSeconds,
                "expansion_seconds": result.expansionSeconds,
                "total_seconds": result.totalSeconds,
                "batch_steps": result.batch?.steps ?? 0,
                "line_break_stops": result.batch?.lineBreakStops ?? 0,
                "shared_prefix_tokens": result.batch?.sharedPrefixTokens ?? 0,
                "tokens_processed": result.tokensProcessed,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        if result.fallbackReason == nil {
            print("\n" + result.answer)
        }
        print(String(format: "\n[skeleton %.2f s, expansion %.2f s (B=%d, %d steps), total %.2f s, %d tokens processed]",
                     result.skeletonSeconds, result.expansionSeconds, result.points.count,
                     result.batch?.steps ?? 0, result.totalSeconds, result.tokensProcessed))
    }
}

/// `effterm bench sot`: normal decoding against SoT over a questions file.
struct SoTBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sot",
        abstract: "Measure Skeleton-of-Thought against normal decoding over a JSON Lines questions file.",
        discussion: """
        Each line: {"question": ..., "category": ...}. For each question: normal greedy \
        decoding and SoT with the same caps, stage timings, points parsed, leakage (an \
        expansion that starts another point or runs past three sentences), tokens processed, \
        and the latency model's prediction (calibrated first on this machine: prefill \
        throughput, one decode step, r(B) for B = 1...10). Tools/sot/questions.jsonl is \
        effterm's own labelled set.
        """)

    @Option(help: "JSON Lines questions file.")
    var questions: String

    @Option(help: "Only questions of this split (e.g. test), when the file has one.")
    var split: String?

    @Option(help: "Only the first N questions (after --split).")
    var limit: Int?

    @Option(help: "Cap on normal decoding tokens.")
    var normalTokens = 256

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @Option(help: "A GGUF file to use instead of the cached model (else EFFTERM_MODEL, else the cache).")
    var model: String?

    @OptionGroup var compute: ComputeOptions

    func run() throws {
        compute.apply()
        var qs: [SoTQuestion]
        do {
            qs = try SoTQuestion.load(URL(fileURLWithPath: questions))
        } catch {
            throw ValidationErrorParagraph("effterm bench sot: \(error)")
        }
        if let split { qs = qs.filter { $0.split == split } }
        if let limit { qs = Array(qs.prefix(limit)) }
        let loaded = try LoadedModel.load(explicitPath: model, command: "bench sot")
        let log: (String) -> Void = { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
        log("calibrating the latency model (prefill, decode step, r(B) for B=1...10)...")
        let latency = try SoTBench.calibrate(model: loaded.model, maxStreams: 10)
        let sot = LlamaSoTModel(model: loaded.model, tokenizer: loaded.tokenizer,
                                template: loaded.template, stopTokens: loaded.stopTokens)
        let bench = SoTBench(sot: sot, runner: SoTRunner(), latency: latency, normalMaxTokens: normalTokens)
        var rows: [SoTBench.Row] = []
        for (i, q) in qs.enumerated() {
            let row = try bench.measure(q)
            rows.append(row)
            log(String(format: "[%d/%d] %@ ratio %.2f (normal %.2f s, SoT %.2f s, predicted %.2f s) points %d%@",
                       i + 1, qs.count, q.category, row.ratio, row.normal_seconds, row.sot_seconds,
                       row.predicted_seconds, row.points, row.fell_back ? " fallback" : ""))
        }
        let report = SoTBench.report(rows, latency: latency)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print(String(format: "questions %d  parse rate %.2f  leakage %.3f  median T_SoT/T_normal (suitable) %@",
                     report.questions, report.parse_rate, report.leakage_rate,
                     report.median_ratio_suitable.map { String(format: "%.2f", $0) } ?? "n/a"))
        for (category, ratio) in report.median_ratio_by_category.sorted(by: { $0.key < $1.key }) {
            print(String(format: "  %-15@ median ratio %.2f", category, ratio))
        }
        print(String(format: "latency model within 15%%: %.0f%% of questions; r(B): %@", report.prediction_within_15pct * 100,
                     report.latency_model.stepRatios.map { String(format: "%.2f", $0) }.joined(separator: " ")))
    }
}
