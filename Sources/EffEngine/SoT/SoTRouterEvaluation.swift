import EffTechniques
import Foundation

/// A router run over labelled questions: precision and recall of "suitable", and how often
/// each category reaches SoT (for the unsuitable categories that is the false-positive rate).
public struct SoTRouterEvaluation: Sendable, Codable {
    public struct Row: Sendable, Codable {
        public var question: String
        public var category: String
        public var suitable: Bool
        public var split: String?
        public var router: SoTRouteDecision
    }

    public var router: String
    public var questions: Int
    /// TP / (TP + FP) with "use SoT" as the positive prediction; nil when nothing routed to SoT.
    public var router_precision: Double?
    /// TP / (TP + FN); nil when no question is suitable.
    public var router_recall: Double?
    /// Share of each category's questions routed to SoT.
    public var router_sot_rate_by_category: [String: Double]
    /// Share of unsuitable questions routed to SoT.
    public var router_false_positive_rate: Double?
    public var router_mean_seconds: Double
    public var results: [Row]

    /// Routes every question, in order; `progress(i, row)` after each.
    public static func run(_ router: SoTRouting, name: String, questions: [SoTQuestion],
                           progress: (Int, Row) -> Void = { _, _ in }) throws -> SoTRouterEvaluation {
        var rows: [Row] = []
        for (i, q) in questions.enumerated() {
            let row = Row(question: q.question, category: q.category, suitable: q.isSuitable, split: q.split,
                          router: try router.route(question: q.question))
            rows.append(row)
            progress(i, row)
        }
        return summarize(rows, router: name)
    }

    public static func summarize(_ rows: [Row], router: String) -> SoTRouterEvaluation {
        let pr = RouterTraining.precisionRecall(scores: rows.map { $0.router.useSoT ? 1 : 0 },
                                                labels: rows.map(\.suitable), threshold: 0.5)
        var rates: [String: Double] = [:]
        for c in Set(rows.map(\.category)) {
            let inC = rows.filter { $0.category == c }
            rates[c] = Double(inC.filter(\.router.useSoT).count) / Double(inC.count)
        }
        let negatives = rows.filter { !$0.suitable }
        return SoTRouterEvaluation(
            router: router, questions: rows.count, router_precision: pr.precision, router_recall: pr.recall,
            router_sot_rate_by_category: rates,
            router_false_positive_rate: negatives.isEmpty ? nil
                : Double(negatives.filter(\.router.useSoT).count) / Double(negatives.count),
            router_mean_seconds: rows.isEmpty ? 0 : rows.reduce(0) { $0 + $1.router.seconds } / Double(rows.count),
            results: rows)
    }
}
