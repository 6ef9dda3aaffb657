import Foundation

/// The SoT-R trained router's loss (Ning et al., ICLR'24, App. "SoT-R"):
/// `ceWeight · CE + tverskyWeight · (1 − TI)` with the Tversky index
/// `TI = TP / (TP + α·FP + β·FN)` over soft counts (`TP = Σ p·y`, `FP = Σ p·(1−y)`,
/// `FN = Σ (1−p)·y`), α = 0.7 on false positives and β = 0.3 on false negatives so that
/// spurious SoT triggering costs more, and positive labels smoothed to 0.9. Plus an L2
/// penalty `l2/2 · |w|²` on the weights (not the bias), since our set is ~126 rows of
/// 576 features and separable.
public struct RouterLoss: Sendable, Equatable, Codable {
    public var ceWeight = 0.25
    public var tverskyWeight = 0.75
    /// Tversky weight on false positives (α).
    public var falsePositiveWeight = 0.7
    /// Tversky weight on false negatives (β).
    public var falseNegativeWeight = 0.3
    /// Target for label 1 (label smoothing); label 0 targets 0.
    public var positiveTarget = 0.9
    public var l2 = 0.01
    public init() {}

    public func target(_ label: Bool) -> Double { label ? positiveTarget : 0 }

    /// The loss (without L2) and its gradient with respect to each row's logit.
    public func evaluate(logits: [Double], labels: [Bool]) -> (loss: Double, dLogits: [Double]) {
        let n = Double(max(1, logits.count))
        let p = logits.map(RouterMath.sigmoid)
        let y = labels.map(target)
        var ce = 0.0, tp = 0.0, fp = 0.0, fn = 0.0
        for i in p.indices {
            let pi = min(max(p[i], 1e-12), 1 - 1e-12)
            ce -= (y[i] * log(pi) + (1 - y[i]) * log(1 - pi)) / n
            tp += p[i] * y[i]
            fp += p[i] * (1 - y[i])
            fn += (1 - p[i]) * y[i]
        }
        let eps = 1e-6
        let a = falsePositiveWeight, b = falseNegativeWeight
        let num = tp + eps
        let den = tp + a * fp + b * fn + eps
        let ti = num / den
        var grad = [Double](repeating: 0, count: p.count)
        for i in p.indices {
            // dTI/dp_i = (y_i·den − num·dden/dp_i) / den², dden/dp_i = y_i + α(1−y_i) − β·y_i.
            let dden = y[i] + a * (1 - y[i]) - b * y[i]
            let dti = (y[i] * den - num * dden) / (den * den)
            // d/dz: CE with a sigmoid is (p − y)/n; the Tversky term goes through p(1−p).
            grad[i] = ceWeight * (p[i] - y[i]) / n - tverskyWeight * dti * p[i] * (1 - p[i])
        }
        return (ceWeight * ce + tverskyWeight * (1 - ti), grad)
    }
}

/// Full-batch training and model selection for the router heads. Deterministic: weights
/// start at zero, folds are assigned by position within each group, no random numbers.
public enum RouterTraining {
    public struct Adam: Sendable, Equatable, Codable {
        public var learningRate = 0.02
        public var steps = 600
        public var beta1 = 0.9, beta2 = 0.999, eps = 1e-8
        public init() {}
    }

    /// Total objective of a logistic head on standardized rows `z` (n, dim): the loss plus
    /// L2, and its gradient with respect to the weights and the bias.
    public static func objective(_ head: LogisticHead, rows z: [[Double]], labels: [Bool], loss: RouterLoss)
        -> (value: Double, dWeights: [Double], dBias: Double) {
        let logits = z.map(head.logit)
        let (value, dz) = loss.evaluate(logits: logits, labels: labels)
        var dw = head.weights.map { loss.l2 * $0 }
        var db = 0.0
        for i in z.indices {
            db += dz[i]
            for j in dw.indices { dw[j] += dz[i] * z[i][j] }
        }
        let penalty = 0.5 * loss.l2 * head.weights.reduce(0) { $0 + $1 * $1 }
        return (value + penalty, dw, db)
    }

    /// Trains a logistic head with Adam from zero on standardized rows.
    public static func trainLogistic(rows z: [[Double]], labels: [Bool], loss: RouterLoss = RouterLoss(),
                                     optimizer: Adam = Adam()) -> LogisticHead {
        let dim = z.first?.count ?? 0
        var head = LogisticHead.zero(dim: dim)
        var m = [Double](repeating: 0, count: dim + 1), v = m
        for step in 1...max(1, optimizer.steps) {
            let (_, dw, db) = objective(head, rows: z, labels: labels, loss: loss)
            let g = dw + [db]
            var update = [Double](repeating: 0, count: dim + 1)
            adamStep(g: g, m: &m, v: &v, step: step, optimizer: optimizer, update: &update)
            for j in 0..<dim { head.weights[j] -= update[j] }
            head.bias -= update[dim]
        }
        return head
    }

    /// Trains a K-way softmax head with cross-entropy plus `l2/2 · |W|²`, Adam from zero.
    public static func trainSoftmax(rows z: [[Double]], classes: [Int], labels: [String], l2: Double,
                                    optimizer: Adam = Adam()) -> SoftmaxHead {
        let dim = z.first?.count ?? 0, k = labels.count, n = Double(max(1, z.count))
        var head = SoftmaxHead(labels: labels, weights: .init(repeating: .init(repeating: 0, count: dim), count: k),
                               bias: .init(repeating: 0, count: k))
        let size = k * (dim + 1)
        var m = [Double](repeating: 0, count: size), v = m, update = m
        for step in 1...max(1, optimizer.steps) {
            var g = [Double](repeating: 0, count: size)  // row c: dW[c] (dim), then db[c]
            for c in 0..<k { for j in 0..<dim { g[c * (dim + 1) + j] = l2 * head.weights[c][j] } }
            for i in z.indices {
                let p = head.probabilities(z[i])
                for c in 0..<k {
                    let d = (p[c] - (classes[i] == c ? 1 : 0)) / n  // dCE/dlogit_c
                    for j in 0..<dim { g[c * (dim + 1) + j] += d * z[i][j] }
                    g[c * (dim + 1) + dim] += d
                }
            }
            adamStep(g: g, m: &m, v: &v, step: step, optimizer: optimizer, update: &update)
            for c in 0..<k {
                for j in 0..<dim { head.weights[c][j] -= update[c * (dim + 1) + j] }
                head.bias[c] -= update[c * (dim + 1) + dim]
            }
        }
        return head
    }

    static func adamStep(g: [Double], m: inout [Double], v: inout [Double], step: Int, optimizer o: Adam,
                         update: inout [Double]) {
        let c1 = 1 - pow(o.beta1, Double(step)), c2 = 1 - pow(o.beta2, Double(step))
        for j in g.indices {
            m[j] = o.beta1 * m[j] + (1 - o.beta1) * g[j]
            v[j] = o.beta2 * v[j] + (1 - o.beta2) * g[j] * g[j]
            update[j] = o.learningRate * (m[j] / c1) / ((v[j] / c2).squareRoot() + o.eps)
        }
    }

    /// Fold of each row for k-fold cross-validation: rows of each group (category) are
    /// dealt to folds in turn, so every fold sees every category.
    public static func folds(groups: [String], k: Int) -> [Int] {
        var seen: [String: Int] = [:]
        return groups.map { g in
            let i = seen[g, default: 0]
            seen[g] = i + 1
            return i % k
        }
    }

    /// Out-of-fold P(suitable) for every row: standardizer and head are fitted on the other
    /// folds only, so the scores are honest estimates for threshold choice.
    public static func outOfFoldScores(rows x: [[Double]], labels: [Bool], folds: [Int], loss: RouterLoss,
                                       optimizer: Adam = Adam()) -> [Double] {
        var scores = [Double](repeating: 0, count: x.count)
        for f in Set(folds).sorted() {
            let train = x.indices.filter { folds[$0] != f }
            let test = x.indices.filter { folds[$0] == f }
            let standardizer = FeatureStandardizer.fit(train.map { x[$0] })
            let head = trainLogistic(rows: train.map { standardizer.apply(x[$0]) }, labels: train.map { labels[$0] },
                                     loss: loss, optimizer: optimizer)
            for i in test { scores[i] = head.probability(standardizer.apply(x[i])) }
        }
        return scores
    }

    /// Precision and recall of "suitable" when `score >= threshold` means suitable; nil
    /// precision when nothing is predicted suitable, nil recall when nothing is suitable.
    public static func precisionRecall(scores: [Double], labels: [Bool], threshold: Double)
        -> (precision: Double?, recall: Double?) {
        var tp = 0, fp = 0, fn = 0
        for (s, y) in zip(scores, labels) {
            if s >= threshold { if y { tp += 1 } else { fp += 1 } } else if y { fn += 1 }
        }
        return (tp + fp == 0 ? nil : Double(tp) / Double(tp + fp),
                tp + fn == 0 ? nil : Double(tp) / Double(tp + fn))
    }

    /// The threshold with the highest recall whose precision reaches `minPrecision`
    /// (ties: the higher threshold), placed halfway to the next lower score so it is not
    /// balanced on one training row. Nil when no threshold reaches that precision.
    public static func chooseThreshold(scores: [Double], labels: [Bool], minPrecision: Double)
        -> (threshold: Double, precision: Double, recall: Double)? {
        let sorted = Array(Set(scores)).sorted(by: >)
        var best: (threshold: Double, precision: Double, recall: Double)?
        for (i, t) in sorted.enumerated() {
            let (p, r) = precisionRecall(scores: scores, labels: labels, threshold: t)
            guard let p, let r, p >= minPrecision else { continue }
            if best == nil || r > best!.recall {
                let lower = i + 1 < sorted.count ? sorted[i + 1] : max(0, t - 0.05)
                best = ((t + lower) / 2, p, r)
            }
        }
        return best
    }

    /// Area under the precision-recall curve (average precision), for model selection.
    public static func averagePrecision(scores: [Double], labels: [Bool]) -> Double {
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        let positives = labels.filter { $0 }.count
        guard positives > 0 else { return 0 }
        var tp = 0, sum = 0.0
        for (rank, i) in order.enumerated() where labels[i] {
            tp += 1
            sum += Double(tp) / Double(rank + 1)
        }
        return sum / Double(positives)
    }
}
