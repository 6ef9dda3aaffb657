import Foundation

/// Per-feature z-scoring, fitted on the training rows: `z_j = (x_j - mean_j) / std_j`.
public struct FeatureStandardizer: Sendable, Equatable, Codable {
    public var mean: [Double]  // (dim)
    public var std: [Double]   // (dim), floored so constant features map to 0
    public init(mean: [Double], std: [Double]) {
        self.mean = mean
        self.std = std
    }

    /// Fits mean and standard deviation per column of `rows` (n, dim).
    public static func fit(_ rows: [[Double]]) -> FeatureStandardizer {
        let dim = rows.first?.count ?? 0
        var mean = [Double](repeating: 0, count: dim)
        var std = [Double](repeating: 0, count: dim)
        let n = Double(max(1, rows.count))
        for r in rows { for j in 0..<dim { mean[j] += r[j] / n } }
        for r in rows { for j in 0..<dim { std[j] += (r[j] - mean[j]) * (r[j] - mean[j]) / n } }
        for j in 0..<dim { std[j] = max(std[j].squareRoot(), 1e-6) }
        return FeatureStandardizer(mean: mean, std: std)
    }

    public var dim: Int { mean.count }

    public func apply(_ x: [Double]) -> [Double] {
        (0..<dim).map { (x[$0] - mean[$0]) / std[$0] }
    }
}

/// A linear binary classifier on standardized features: `p = sigmoid(w · z + b)`.
public struct LogisticHead: Sendable, Equatable, Codable {
    public var weights: [Double]  // (dim)
    public var bias: Double
    public init(weights: [Double], bias: Double) {
        self.weights = weights
        self.bias = bias
    }

    public static func zero(dim: Int) -> LogisticHead { LogisticHead(weights: .init(repeating: 0, count: dim), bias: 0) }

    public func logit(_ z: [Double]) -> Double {
        var s = bias
        for j in 0..<weights.count { s += weights[j] * z[j] }
        return s
    }

    public func probability(_ z: [Double]) -> Double { RouterMath.sigmoid(logit(z)) }
}

/// A linear K-way classifier on standardized features: `p = softmax(W z + b)`.
public struct SoftmaxHead: Sendable, Equatable, Codable {
    public var labels: [String]      // (K)
    public var weights: [[Double]]   // (K, dim)
    public var bias: [Double]        // (K)
    public init(labels: [String], weights: [[Double]], bias: [Double]) {
        self.labels = labels
        self.weights = weights
        self.bias = bias
    }

    public func probabilities(_ z: [Double]) -> [Double] {
        let logits = zip(weights, bias).map { w, b in zip(w, z).reduce(b) { $0 + $1.0 * $1.1 } }
        return RouterMath.softmax(logits)
    }
}

/// The two squashing functions the router heads use, overflow-safe.
public enum RouterMath {
    @inline(__always)
    public static func sigmoid(_ x: Double) -> Double {
        x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))
    }

    public static func softmax(_ xs: [Double]) -> [Double] {
        guard let m = xs.max() else { return [] }
        let e = xs.map { exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }
}
