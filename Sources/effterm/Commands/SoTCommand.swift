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
        wall-clock on this machine. --mode auto first asks the router (a trained head on \
        SmolLM2's hidden states, bundled; it refuses a model other than the one it was \
        trained on) and prints its decision and reason.
        """,
        subcommands: [SoTTrainRouterCommand.self])

    /// Optional only so that `effterm sot train-router` parses; `run` requires it.
    @Option(name: .long, help: "The question (required unless a subcommand is given).")
    var prompt: String?

    @Option(help: "Skeleton-of-Thought mode: `on` (always SoT), `auto` (the router decides), `off` (normal decoding).")
    var mode: SoTMode = .on

    @Option(help: "The router for --mode auto: `hidden` (trained head on hidden states, bundled) or `prompt` (A/B/C prompting baseline).")
    var router: RouterChoice = .hidden

    @Option(help: "Router weights file for --router hidden instead of the bundled one.")
    var routerWeights: String?

    @Option(help: "Cap on skeleton tokens.")
    var skeletonTokens = 100

    @Option(help: "Cap on each point's expansion tokens.")
    var pointTokens = 64

    @Option(help: "Cap on normal decoding tokens (mode off, or auto routed to normal).")
    var normalTokens = 256

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Option(help: "A GGUF file to use instead of the cached model (else EFFTERM_MODEL, else the cache).")
    var model: String?

    @OptionGroup var compute: ComputeOptions
    @OptionGroup var kv: KVOption

    func run() throws {
        guard let prompt else { throw ValidationError("Missing expected argument '--prompt <prompt>'") }
        compute.apply()
        let loaded = try LoadedModel.load(explicitPath: model, command: "sot", kv: kv.format)
        InterruptFlag.install()
        let sot = LlamaSoTModel(model: loaded.model, tokenizer: loaded.tokenizer,
                                template: loaded.template, stopTokens: loaded.stopTokens)
        sot.isCancelled = { InterruptFlag.raised }

        var decision: SoTRouteDecision?
        if mode == .auto {
            let d: SoTRouteDecision
            do {
                d = try router.make(loaded, weightsPath: routerWeights).route(question: prompt)
            } catch let error as SoTRouterError {
                throw ValidationErrorParagraph("effterm sot --mode auto: \(error)")
            }
            decision = d
            if !json { print(String(format: "[router: %@ (%.0f ms)]", d.reason, d.seconds * 1000)) }
        }
        if mode == .off || decision?.useSoT == false {
            try runNormal(sot, prompt: prompt, decision: decision)
            return
        }

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
            var object: [String: Any] = [
                "question": prompt, "mode": mode.rawValue, "decoding": "sot",
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
            if let decision { object["router"] = try Self.jsonObject(decision) }
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

    /// Normal greedy decoding of the question (mode off, or the router said no).
    func runNormal(_ sot: LlamaSoTModel, prompt: String, decision: SoTRouteDecision?) throws {
        let c = try sot.complete(SoTRequest(user: prompt, prefill: ""), maxTokens: normalTokens,
                                 shouldStop: { _ in false },
                                 onText: { t in if !json { print(t, terminator: ""); fflush(stdout) } })
        let seconds = c.prefillSeconds + c.decodeSeconds
        if json {
            var object: [String: Any] = [
                "question": prompt, "mode": mode.rawValue, "decoding": "normal", "answer": c.text,
                "total_seconds": seconds, "prefill_seconds": c.prefillSeconds, "decode_seconds": c.decodeSeconds,
                "tokens_processed": c.promptTokens + c.generatedTokens, "generated_tokens": c.generatedTokens,
            ]
            if let decision { object["router"] = try Self.jsonObject(decision) }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print(String(format: "\n[normal decoding: %d tokens, total %.2f s]", c.generatedTokens, seconds))
    }

    static func jsonObject(_ decision: SoTRouteDecision) throws -> Any {
        try JSONSerialization.jsonObject(with: JSONEncoder().encode(decision))
    }
}

extension SoTMode: ExpressibleByArgument {}

/// Which router `--mode auto` and `bench sot` use.
enum RouterChoice: String, ExpressibleByArgument, CaseIterable {
    case hidden, prompt

    /// `weightsPath`: a trained weights file instead of the bundled one (hidden only).
    func make(_ loaded: LoadedModel, weightsPath: String? = nil) throws -> SoTRouting {
        switch self {
        case .hidden:
            if let weightsPath {
                let weights = try SoTRouterWeights.load(try Data(contentsOf: URL(fileURLWithPath: weightsPath)),
                                                        source: weightsPath)
                return try HiddenStateRouter(model: loaded.model, tokenizer: loaded.tokenizer,
                                             template: loaded.template, weights: weights)
            }
            return try HiddenStateRouter.bundled(model: loaded.model, tokenizer: loaded.tokenizer, template: loaded.template)
        case .prompt:
            return try PromptingRouter(model: loaded.model, tokenizer: loaded.tokenizer, template: loaded.template)
        }
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

    @Option(help: "Router scored on every question: `hidden` (bundled, trained), `prompt` (A/B/C baseline) or `none`.")
    var router: String = "hidden"

    @Option(help: "Router weights file for --router hidden instead of the bundled one.")
    var routerWeights: String?

    @Flag(help: "Only route the questions (router precision, recall, per-category SoT rate); no decoding.")
    var routerOnly = false

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @Flag(help: "Prefill every prompt from scratch (by default the common prefix of SoT's prompts, and the template's system turn, are computed once and forked).")
    var noPrefixCache = false

    @Flag(help: "Expand the points in waves sized by the calibrated r(B), as the chat does (default: one batch of all points, as in the paper).")
    var waves = false

    @Option(help: "A GGUF file to use instead of the cached model (else EFFTERM_MODEL, else the cache).")
    var model: String?

    @OptionGroup var compute: ComputeOptions
    @OptionGroup var kv: KVOption

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
        let routerChoice = router == "none" ? nil : RouterChoice(rawValue: router)
        guard router == "none" || routerChoice != nil else {
            throw ValidationError("--router \(router): expected hidden, prompt or none")
        }
        guard !(routerOnly && routerChoice == nil) else { throw ValidationError("--router-only needs a router") }
        let loaded = try LoadedModel.load(explicitPath: model, command: "bench sot", kv: kv.format)
        let log: (String) -> Void = { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
        var routing: SoTRouterEvaluation?
        if let routerChoice {
            let r: SoTRouting
            do { r = try routerChoice.make(loaded, weightsPath: routerWeights) } catch let error as SoTRouterError {
                throw ValidationErrorParagraph("effterm bench sot --router \(router): \(error) (or measure without a router: --router none)")
            }
            routing = try SoTRouterEvaluation.run(r, name: routerChoice.rawValue, questions: qs) { i, row in
                log(String(format: "[route %d/%d] %@ %@ %.2f %@", i + 1, qs.count, row.category,
                           row.router.useSoT ? "SoT   " : "normal", row.router.score, row.router.reason))
            }
        }
        if routerOnly, let routing {
            try printRouting(routing)
            return
        }
        log("calibrating the latency model (prefill, decode step, r(B) for B=1...10)...")
        let latency = try SoTBench.calibrate(model: loaded.model, maxStreams: 10)
        let sot = LlamaSoTModel(model: loaded.model, tokenizer: loaded.tokenizer,
                                template: loaded.template, stopTokens: loaded.stopTokens)
        sot.reusesPromptPrefixes = !noPrefixCache
        var config = SoTRunner.Config()
        if waves { config.stepRatios = latency.stepRatios }
        let bench = SoTBench(sot: sot, runner: SoTRunner(config: config), latency: latency, normalMaxTokens: normalTokens)
        var rows: [SoTBench.Row] = []
        for (i, q) in qs.enumerated() {
            let row = try bench.measure(q)
            rows.append(row)
            log(String(format: "[%d/%d] %@ ratio %.2f (normal %.2f s, SoT %.2f s, predicted %.2f s) points %d%@",
                       i + 1, qs.count, q.category, row.ratio, row.normal_seconds, row.sot_seconds,
                       row.predicted_seconds, row.points, row.fell_back ? " fallback" : ""))
        }
        let report = SoTBench.report(rows, latency: latency, router: routing)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print(String(format: "questions %d  parse rate %.2f  leakage %.3f  median T_SoT/T_normal (suitable) %@, at equal answer length %@",
                     report.questions, report.parse_rate, report.leakage_rate,
                     report.median_ratio_suitable.map { String(format: "%.2f", $0) } ?? "n/a",
                     report.median_ratio_same_length_suitable.map { String(format: "%.2f", $0) } ?? "n/a"))
        for (category, ratio) in report.median_ratio_by_category.sorted(by: { $0.key < $1.key }) {
            print(String(format: "  %-15@ median ratio %.2f", category, ratio))
        }
        print(String(format: "latency model within 15%%: %.0f%% of questions; r(B): %@", report.prediction_within_15pct * 100,
                     report.latency_model.stepRatios.map { String(format: "%.2f", $0) }.joined(separator: " ")))
        if let routing { printRouterSummary(routing) }
    }

    func printRouting(_ routing: SoTRouterEvaluation) throws {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(routing), as: UTF8.self))
            return
        }
        printRouterSummary(routing)
    }

    func printRouterSummary(_ r: SoTRouterEvaluation) {
        let f: (Double?) -> String = { $0.map { String(format: "%.3f", $0) } ?? "n/a" }
        print("router \(r.router) on \(r.questions) questions: precision \(f(r.router_precision)) recall \(f(r.router_recall)) "
              + "false-positive rate \(f(r.router_false_positive_rate)) mean \(String(format: "%.0f", r.router_mean_seconds * 1000)) ms")
        for (category, rate) in r.router_sot_rate_by_category.sorted(by: { $0.key < $1.key }) {
            let suitable = SoTQuestion.suitableCategories.contains(category) ? "suitable" : "not suitable"
            print("  " + category.padding(toLength: 15, withPad: " ", startingAt: 0)
                  + suitable.padding(toLength: 13, withPad: " ", startingAt: 0)
                  + String(format: "routed to SoT %.0f%%", rate * 100))
        }
    }
}
