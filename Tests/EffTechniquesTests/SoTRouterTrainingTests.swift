import Foundation
import Testing
@testable import EffTechniques

/// The router's training math: analytic gradients against finite differences, separable
/// data learned exactly, the Tversky weights moving the decision boundary the right way,
/// threshold choice, and the weights file's checks and reason text.
@Suite struct SoTRouterTrainingTests {
    /// Deterministic values in [-1, 1).
    static func values(_ n: Int, seed: UInt64) -> [Double] {
        var s = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Double((s >> 11) & ((1 << 53) - 1)) / Double(1 << 53) * 2 - 1
        }
    }

    @Test func lossGradientMatchesFiniteDifferences() {
        let logits = Self.values(12, seed: 1).map { $0 * 3 }
        let labels = Self.values(12, seed: 2).map { $0 > 0 }
        let loss = RouterLoss()
        let (_, grad) = loss.evaluate(logits: logits, labels: labels)
        let h = 1e-6
        for i in logits.indices {
            var up = logits, down = logits
            up[i] += h
            down[i] -= h
            let numeric = (loss.evaluate(logits: up, labels: labels).loss - loss.evaluate(logits: down, labels: labels).loss) / (2 * h)
            #expect(abs(numeric - grad[i]) < 1e-6, "logit \(i): analytic \(grad[i]) numeric \(numeric)")
        }
    }

    @Test func objectiveGradientMatchesFiniteDifferences() {
        let dim = 5
        let rows = (0..<10).map { Self.values(dim, seed: UInt64(10 + $0)) }
        let labels = (0..<10).map { $0 % 3 != 0 }
        let head = LogisticHead(weights: Self.values(dim, seed: 99), bias: 0.3)
        var loss = RouterLoss()
        loss.l2 = 0.05
        let (_, dw, db) = RouterTraining.objective(head, rows: rows, labels: labels, loss: loss)
        let h = 1e-6
        for j in 0...dim {
            var up = head, down = head
            if j < dim { up.weights[j] += h; down.weights[j] -= h } else { up.bias += h; down.bias -= h }
            let numeric = (RouterTraining.objective(up, rows: rows, labels: labels, loss: loss).value
                - RouterTraining.objective(down, rows: rows, labels: labels, loss: loss).value) / (2 * h)
            let analytic = j < dim ? dw[j] : db
            #expect(abs(numeric - analytic) < 1e-6, "parameter \(j): analytic \(analytic) numeric \(numeric)")
        }
    }

    /// Two Gaussian-ish blobs apart along a random direction in 8 dimensions.
    static func blobs(n: Int, gap: Double, seed: UInt64) -> (rows: [[Double]], labels: [Bool], groups: [String]) {
        let direction = values(8, seed: seed)
        var rows: [[Double]] = [], labels: [Bool] = [], groups: [String] = []
        for i in 0..<n {
            let y = i % 2 == 0
            let noise = values(8, seed: seed &+ UInt64(i) &* 31 &+ 7)
            rows.append((0..<8).map { noise[$0] + (y ? gap : -gap) * direction[$0] })
            labels.append(y)
            groups.append(y ? "list" : "code")
        }
        return (rows, labels, groups)
    }

    @Test func separableDataIsLearnedExactly() {
        let (rows, labels, groups) = Self.blobs(n: 60, gap: 3, seed: 5)
        let s = FeatureStandardizer.fit(rows)
        let head = RouterTraining.trainLogistic(rows: rows.map(s.apply), labels: labels)
        let correct = zip(rows, labels).filter { (head.probability(s.apply($0)) >= 0.5) == $1 }.count
        #expect(correct == rows.count)
        // And cross-validated: every fold's held-out rows are separated too.
        let fit = SoTRouterFit()
        let best = SoTRouterFit.best(fit.evaluate(rows: rows, labels: labels, groups: groups))!
        #expect(best.averagePrecision == 1)
        #expect(best.precision == 1 && best.recall == 1)
    }

    @Test func tverskyWeightOnFalsePositivesMakesTheRouterMoreCautious() {
        // Overlapping 1-D classes: where the boundary goes is the loss's choice.
        let xs = Self.values(200, seed: 11)
        let rows = xs.enumerated().map { [$1 + ($0 % 2 == 0 ? 0.4 : -0.4)] }
        let labels = xs.indices.map { $0 % 2 == 0 }
        func boundary(fp: Double, fn: Double) -> (x: Double, positives: Int) {
            var loss = RouterLoss()
            loss.falsePositiveWeight = fp
            loss.falseNegativeWeight = fn
            loss.l2 = 0
            let head = RouterTraining.trainLogistic(rows: rows, labels: labels, loss: loss)
            return (-head.bias / head.weights[0], rows.filter { head.probability($0) >= 0.5 }.count)
        }
        let cautious = boundary(fp: 0.7, fn: 0.3), eager = boundary(fp: 0.3, fn: 0.7)
        #expect(cautious.x > eager.x + 0.05, "boundary \(cautious.x) vs \(eager.x)")
        #expect(cautious.positives < eager.positives)
    }

    @Test func thresholdIsHighestRecallAtThePrecisionTarget() {
        //            positives: 0.9 0.8      0.6      0.4;  negatives: 0.7 0.5 0.3 0.1
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.1]
        let labels = [true, true, false, true, false, true, false, false]
        let t = RouterTraining.chooseThreshold(scores: scores, labels: labels, minPrecision: 0.75)!
        // At 0.6: 3 TP, 1 FP (precision 0.75, recall 0.75); at 0.4: 4 TP, 2 FP (0.67). Halfway to 0.5.
        #expect(abs(t.threshold - 0.55) < 1e-12)
        #expect(t.precision == 0.75 && t.recall == 0.75)
        #expect(RouterTraining.chooseThreshold(scores: scores, labels: labels.map { !$0 }, minPrecision: 0.99) == nil)
    }

    @Test func foldsDealEachGroupInTurn() {
        let f = RouterTraining.folds(groups: ["a", "a", "b", "a", "b", "b", "a"], k: 2)
        #expect(f == [0, 1, 0, 0, 1, 0, 1])
    }

    static func weights(dim: Int = 2) -> SoTRouterWeights {
        SoTRouterWeights(
            model: RouterModelIdentity(name: "m.gguf", fileSHA256: nil, weightsFingerprint: "abc"),
            recipe: HiddenStateRecipe(input: .chat, layers: [1], pools: [.mean]),
            standardizer: FeatureStandardizer(mean: .init(repeating: 0, count: dim), std: .init(repeating: 1, count: dim)),
            head: LogisticHead(weights: [2, 0] + .init(repeating: 0, count: dim - 2), bias: 0), threshold: 0.7,
            categoryHead: SoftmaxHead(labels: ["knowledge", "math"], weights: [[1, 0], [-1, 0]], bias: [0, 0]),
            suitableCategories: ["knowledge"], training: nil)
    }

    @Test func weightsRoundTripAndDecide() throws {
        let w = Self.weights()
        let back = try SoTRouterWeights.load(try JSONEncoder().encode(w), source: "t")
        #expect(back == w)
        let yes = w.decide(features: [1, 0], seconds: 0.01)  // sigmoid(2) = 0.88
        #expect(yes.useSoT && yes.category == "knowledge")
        #expect(yes.reason.hasSuffix("- SoT"))
        let no = w.decide(features: [-1, 0], seconds: 0.01)
        #expect(!no.useSoT && no.category == "math")
        #expect(no.reason.hasPrefix("looks like math"))
        let unsure = w.decide(features: [0.2, 0], seconds: 0.01)  // 0.6 < 0.7, category knowledge
        #expect(!unsure.useSoT && unsure.reason.hasPrefix("not clearly list-like"))
    }

    @Test func malformedWeightsAreRejectedWithAReason() throws {
        var w = Self.weights()
        w.head.weights = [1]
        #expect(throws: SoTRouterError.self) { try SoTRouterWeights.load(try JSONEncoder().encode(w), source: "t") }
        w = Self.weights()
        w.format = "other/2"
        do {
            _ = try SoTRouterWeights.load(try JSONEncoder().encode(w), source: "x.json")
            Issue.record("accepted a foreign format")
        } catch let error as SoTRouterError {
            #expect(error.description.contains("x.json") && error.description.contains("other/2"))
        }
        #expect(throws: SoTRouterError.self) { try SoTRouterWeights.load(Data("{}".utf8), source: "t") }
    }
}
