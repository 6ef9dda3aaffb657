import Foundation

/// Reductions over a logits vector shared by samplers and evaluation.
public enum LogitMath {
    /// Index of the largest logit (the first one on ties, as llama.cpp's greedy sampler).
    public static func argmax(_ logits: UnsafePointer<Float>, _ n: Int) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for i in 0..<n where logits[i] > bestValue {
            bestValue = logits[i]
            best = i
        }
        return best
    }

    /// `log(sum_i exp(logits[i]))`, stable, accumulated in f64.
    public static func logSumExp(_ logits: UnsafePointer<Float>, _ n: Int) -> Double {
        var m = -Float.infinity
        for i in 0..<n where logits[i] > m { m = logits[i] }
        guard m.isFinite else { return Double(m) }
        var sum = 0.0
        for i in 0..<n { sum += exp(Double(logits[i] - m)) }
        return Double(m) + log(sum)
    }

    /// Log-probability of `index` under the full softmax of `logits`.
    public static func logProbability(_ logits: UnsafePointer<Float>, _ n: Int, index: Int) -> Double {
        Double(logits[index]) - logSumExp(logits, n)
    }
}
