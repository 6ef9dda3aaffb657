import Foundation

/// Fits a router on labelled feature rows: cross-validated model selection (L2 strength),
/// a precision-favouring threshold from out-of-fold scores, then the final standardizer,
/// SoT head and category head on all rows.
public struct SoTRouterFit: Sendable {
    public var loss = RouterLoss()
    public var optimizer = RouterTraining.Adam()
    public var folds = 5
    /// Threshold choice: highest out-of-fold recall at this precision or better.
    public var minPrecision = 0.9
    /// L2 strengths tried by cross-validation (best out-of-fold average precision wins).
    public var l2Grid: [Double] = [0.003, 0.01, 0.03, 0.1, 0.3]
    public var categoryL2 = 0.03
    public init() {}

    /// Cross-validation of one feature set at one L2 strength.
    public struct Evaluation: Sendable, Equatable {
        public var l2: Double
        public var averagePrecision: Double
        /// Threshold chosen on the out-of-fold scores and its out-of-fold precision/recall
        /// (nil when no threshold reaches `minPrecision`).
        public var threshold: Double?
        public var precision: Double?
        public var recall: Double?
        public var outOfFold: [Double]
        /// Mean binary cross-entropy of the out-of-fold scores against the 0/1 labels.
        public var logLoss: Double

        /// Ordering key of `best`: larger is better.
        public var rank: (Double, Double, Double, Double) {
            (recall ?? -1, precision ?? -1, (averagePrecision * 1e6).rounded() / 1e6, -logLoss)
        }
    }

    /// Out-of-fold evaluation for every L2 in the grid.
    public func evaluate(rows: [[Double]], labels: [Bool], groups: [String]) -> [Evaluation] {
        let f = RouterTraining.folds(groups: groups, k: folds)
        return l2Grid.map { l2 in
            var l = loss
            l.l2 = l2
            let oof = RouterTraining.outOfFoldScores(rows: rows, labels: labels, folds: f, loss: l, optimizer: optimizer)
            let t = RouterTraining.chooseThreshold(scores: oof, labels: labels, minPrecision: minPrecision)
            let logLoss = zip(oof, labels).reduce(0.0) { sum, pair in
                let p = min(max(pair.0, 1e-9), 1 - 1e-9)
                return sum - (pair.1 ? log(p) : log(1 - p))
            } / Double(max(1, oof.count))
            return Evaluation(l2: l2, averagePrecision: RouterTraining.averagePrecision(scores: oof, labels: labels),
                              threshold: t?.threshold, precision: t?.precision, recall: t?.recall, outOfFold: oof,
                              logLoss: logLoss)
        }
    }

    /// The best evaluation: highest out-of-fold recall at the precision target, then
    /// precision, then average precision, then the lowest out-of-fold log-loss (which still
    /// separates feature sets when the set is so easy that the first three tie).
    public static func best(_ evaluations: [Evaluation]) -> Evaluation? {
        evaluations.max { a, b in a.rank < b.rank }
    }

    /// The final heads on all rows, with `evaluation`'s L2 and threshold. Categories with
    /// their labels give the reason text's category head (nil: no category head).
    public func fit(rows: [[Double]], labels: [Bool], categories: [String]?, evaluation: Evaluation)
        -> (standardizer: FeatureStandardizer, head: LogisticHead, threshold: Double, categoryHead: SoftmaxHead?) {
        let standardizer = FeatureStandardizer.fit(rows)
        let z = rows.map(standardizer.apply)
        var l = loss
        l.l2 = evaluation.l2
        let head = RouterTraining.trainLogistic(rows: z, labels: labels, loss: l, optimizer: optimizer)
        var categoryHead: SoftmaxHead?
        if let categories {
            let names = Array(Set(categories)).sorted()
            let classes = categories.map { names.firstIndex(of: $0)! }
            categoryHead = RouterTraining.trainSoftmax(rows: z, classes: classes, labels: names, l2: categoryL2,
                                                       optimizer: optimizer)
        }
        // No threshold reached the precision target: the 0.5 default, reported as such.
        return (standardizer, head, evaluation.threshold ?? 0.5, categoryHead)
    }

    /// Out-of-fold accuracy of the category head (for the training record).
    public func categoryAccuracy(rows: [[Double]], categories: [String]) -> Double {
        let f = RouterTraining.folds(groups: categories, k: folds)
        let names = Array(Set(categories)).sorted()
        var correct = 0
        for fold in Set(f) {
            let train = rows.indices.filter { f[$0] != fold }
            let standardizer = FeatureStandardizer.fit(train.map { rows[$0] })
            let head = RouterTraining.trainSoftmax(rows: train.map { standardizer.apply(rows[$0]) },
                                                   classes: train.map { names.firstIndex(of: categories[$0])! },
                                                   labels: names, l2: categoryL2, optimizer: optimizer)
            for i in rows.indices where f[i] == fold {
                let p = head.probabilities(standardizer.apply(rows[i]))
                if names[p.indices.max(by: { p[$0] < p[$1] })!] == categories[i] { correct += 1 }
            }
        }
        return rows.isEmpty ? 0 : Double(correct) / Double(rows.count)
    }
}
