import EffLLM
import EffTechniques
import Foundation

/// One line of a questions file (JSON Lines): `{"question": ..., "category": ...}`, with
/// optional `suitable` (defaults to the category being generic, knowledge, common-sense or
/// counterfactual, as in the SoT authors' Vicuna-80 labels) and `split`.
public struct SoTQuestion: Sendable, Codable, Equatable {
    public var question: String
    public var category: String
    public var suitable: Bool?
    public var split: String?

    public static let suitableCategories: Set<String> =
        ["generic", "knowledge", "common-sense", "counterfactual"]
    public var isSuitable: Bool { suitable ?? Self.suitableCategories.contains(category) }

    /// Reads a JSON Lines file; errors name the line.
    public static func load(_ url: URL) throws -> [SoTQuestion] {
        let text = try String(contentsOf: url, encoding: .utf8)
        var out: [SoTQuestion] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            do {
                out.append(try JSONDecoder().decode(SoTQuestion.self, from: Data(trimmed.utf8)))
            } catch {
                throw SoTBenchError.badLine(file: url.path, line: n + 1, reason: "\(error)")
            }
        }
        return out
    }
}

public enum SoTBenchError: Error, CustomStringConvertible {
    case badLine(file: String, line: Int, reason: String)
    public var description: String {
        switch self {
        case let .badLine(file, line, reason):
            return "\(file):\(line): not a {\"question\", \"category\"} JSON object (\(reason))"
        }
    }
}

/// `effterm bench sot`: for each question, normal greedy decoding against SoT with the same
/// caps, stage timings, parse and leakage checks, and the latency model's prediction.
public struct SoTBench {
    public struct Row: Sendable, Codable {
        public var question: String
        public var category: String
        public var suitable: Bool
        public var normal_seconds: Double
        public var normal_tokens: Int
        public var normal_tokens_processed: Int
        public var sot_seconds: Double
        public var ratio: Double
        /// Tokens of the SoT answer (points with their expansions).
        public var sot_answer_tokens: Int
        /// T_SoT over what normal decoding of an answer as long as SoT's would take, from this
        /// question's own normal run (its prefill plus its per-token decode time).
        public var ratio_same_length: Double
        public var skeleton_seconds: Double
        public var expansion_seconds: Double
        public var points: Int
        /// At least 3 unique numbered points parsed (TECHNIQUES.md §1).
        public var parse_ok: Bool
        public var fell_back: Bool
        public var leaked_points: Int
        /// Point streams that ended at a line break (SoTRunner.Config.stopPointAtLineBreak).
        public var line_break_stops: Int
        public var streams: Int
        public var longest_point_tokens: Int
        public var sot_tokens_processed: Int
        /// Prompt tokens SoT reused from earlier prompts' caches (skeleton + shared prefix).
        public var sot_reused_prompt_tokens: Int
        /// Prompt tokens normal decoding reused (the template's system turn).
        public var normal_reused_prompt_tokens: Int
        public var predicted_seconds: Double
        public var prediction_error: Double
        public var skeleton: [String]
        /// The router's decision for this question (bench routes every question, then
        /// measures both decodings regardless, so the router is scored on every row).
        public var router: SoTRouteDecision?
    }

    public struct Report: Sendable, Codable {
        public var questions: Int
        public var parse_rate: Double
        public var leakage_rate: Double
        public var median_ratio_suitable: Double?
        /// The same at equal answer length (see `Row.ratio_same_length`).
        public var median_ratio_same_length_suitable: Double?
        public var median_ratio_by_category: [String: Double]
        public var router_precision: Double?
        public var router_recall: Double?
        public var router_note: String
        /// Share of each category's questions the router sends to SoT; for math, coding,
        /// fermi, writing and roleplay that is the false-positive rate.
        public var router_sot_rate_by_category: [String: Double]?
        public var router_false_positive_rate: Double?
        public var router_mean_seconds: Double?
        public var prediction_within_15pct: Double
        public var latency_model: SoTLatencyModel
        public var results: [Row]
    }

    public let sot: LlamaSoTModel
    public let runner: SoTRunner
    public let latency: SoTLatencyModel
    public let normalMaxTokens: Int

    public init(sot: LlamaSoTModel, runner: SoTRunner, latency: SoTLatencyModel, normalMaxTokens: Int) {
        self.sot = sot
        self.runner = runner
        self.latency = latency
        self.normalMaxTokens = normalMaxTokens
    }

    /// Measures the latency model's inputs on this machine: prefill throughput at a
    /// SoT-sized prompt, one decode step at that depth, and r(B) for B = 1...maxStreams.
    /// Depths match SoT's: the skeleton decodes after a ~220-token prompt, the points after
    /// a ~110-token shared prefix plus their own tails.
    public static func calibrate(model: LlamaModel, maxStreams: Int, reps: Int = 5) throws -> SoTLatencyModel {
        let bench = ModelBench(model: model, reps: reps)
        let prefill = try bench.prefill(tokens: 256)
        let step = try bench.decode(depth: 224, tokens: 64)
        let rows = try bench.batched(streams: Array(1...maxStreams), steps: 32, prompt: 144)
        return SoTLatencyModel(prefillTokensPerSecond: prefill.tokPerSec,
                               stepSeconds: step.seconds / 64,
                               stepRatios: rows.map(\.stepRatio))
    }

    public func measure(_ q: SoTQuestion) throws -> Row {
        let normal = try sot.complete(SoTRequest(user: q.question, prefill: ""),
                                      maxTokens: normalMaxTokens, shouldStop: { _ in false },
                                      onText: { _ in })
        let normalSeconds = normal.prefillSeconds + normal.decodeSeconds
        let r = try runner.run(question: q.question, model: sot)
        let lengths = r.batch?.completions.map(\.generatedTokens) ?? []
        // Prompt tokens actually prefilled: a prefix reused from an earlier prompt costs nothing.
        let prefilled = r.batch.map { b in
            b.sharedPrefixTokens - b.reusedPrefixTokens
                + b.completions.reduce(0) { $0 + $1.promptTokens - b.sharedPrefixTokens }
        } ?? 0
        // Points in waves: each wave decodes as long as its longest point at r(its size).
        let wave = max(1, r.waveSize ?? lengths.count)
        var predicted = latency.predict(skeletonPromptTokens: r.skeleton.promptTokens - r.skeleton.reusedPromptTokens,
                                        skeletonTokens: r.skeleton.generatedTokens,
                                        prefilledTokens: prefilled, longestPoint: 0, streams: 1).total
        for start in stride(from: 0, to: lengths.count, by: wave) {
            let part = lengths[start..<min(lengths.count, start + wave)]
            predicted += Double(part.max() ?? 0) * latency.ratio(part.count) * latency.stepSeconds
        }
        if let fb = r.fallback {
            predicted += latency.predictNormal(promptTokens: fb.promptTokens - fb.reusedPromptTokens,
                                               answerTokens: fb.generatedTokens)
        }
        let answerTokens = sot.tokenizer.encode(r.answer, parseSpecial: false).count
        let perToken = normal.generatedTokens > 0 ? normal.decodeSeconds / Double(normal.generatedTokens) : 0
        let sameLength = normal.prefillSeconds + Double(answerTokens) * perToken
        return Row(question: q.question, category: q.category, suitable: q.isSuitable,
                   normal_seconds: normalSeconds, normal_tokens: normal.generatedTokens,
                   normal_tokens_processed: normal.promptTokens - normal.reusedPromptTokens + normal.generatedTokens,
                   sot_seconds: r.totalSeconds, ratio: r.totalSeconds / normalSeconds,
                   sot_answer_tokens: answerTokens,
                   ratio_same_length: sameLength > 0 ? r.totalSeconds / sameLength : .nan,
                   skeleton_seconds: r.skeletonSeconds, expansion_seconds: r.expansionSeconds,
                   points: r.points.count, parse_ok: Set(r.points.map(\.index)).count >= 3,
                   fell_back: r.fallbackReason != nil, leaked_points: r.leakedPoints.count,
                   line_break_stops: r.batch?.lineBreakStops ?? 0,
                   streams: r.batch == nil ? 0 : r.points.count, longest_point_tokens: lengths.max() ?? 0,
                   sot_tokens_processed: r.tokensProcessed,
                   sot_reused_prompt_tokens: r.skeleton.reusedPromptTokens + (r.batch?.reusedPrefixTokens ?? 0),
                   normal_reused_prompt_tokens: normal.reusedPromptTokens,
                   predicted_seconds: predicted,
                   prediction_error: (r.totalSeconds - predicted) / predicted,
                   skeleton: r.points.map { "\($0.index). \($0.text)" }, router: nil)
    }

    /// `router`: the same questions' routing (by position); nil when no router ran.
    public static func report(_ rows: [Row], latency: SoTLatencyModel, router: SoTRouterEvaluation? = nil) -> Report {
        var rows = rows
        if let router, router.results.count == rows.count {
            for i in rows.indices { rows[i].router = router.results[i].router }
        }
        let suitable = rows.filter(\.suitable)
        let parse = suitable.isEmpty ? 0 : Double(suitable.filter(\.parse_ok).count) / Double(suitable.count)
        let expanded = suitable.filter { !$0.fell_back }
        let points = expanded.reduce(0) { $0 + $1.points }
        let leaked = expanded.reduce(0) { $0 + $1.leaked_points }
        var byCategory: [String: Double] = [:]
        for category in Set(rows.map(\.category)) {
            byCategory[category] = median(rows.filter { $0.category == category }.map(\.ratio))
        }
        let within = rows.isEmpty ? 0
            : Double(rows.filter { abs($0.prediction_error) <= 0.15 }.count) / Double(rows.count)
        return Report(questions: rows.count, parse_rate: parse,
                      leakage_rate: points == 0 ? 0 : Double(leaked) / Double(points),
                      median_ratio_suitable: suitable.isEmpty ? nil : median(suitable.map(\.ratio)),
                      median_ratio_same_length_suitable: suitable.isEmpty ? nil : median(suitable.map(\.ratio_same_length)),
                      median_ratio_by_category: byCategory,
                      router_precision: router?.router_precision, router_recall: router?.router_recall,
                      router_note: router.map { "router \($0.router) over these \($0.questions) questions; "
                          + "precision/recall of 'suitable' (both decodings are measured for every question)" }
                          ?? "no router run (--router none): every question ran SoT (mode on)",
                      router_sot_rate_by_category: router?.router_sot_rate_by_category,
                      router_false_positive_rate: router?.router_false_positive_rate,
                      router_mean_seconds: router?.router_mean_seconds,
                      prediction_within_15pct: within, latency_model: latency, results: rows)
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
