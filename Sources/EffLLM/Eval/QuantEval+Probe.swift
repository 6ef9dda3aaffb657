extension QuantEval {
    /// Share of `tokens`' 4-grams that already occurred earlier in them: 0 for text that
    /// never repeats itself, near 1 for a loop (0 below 5 tokens). The QLLM-Eval grid's
    /// generation probe averages it over greedy chat answers.
    public static func repetition(_ tokens: [Int32]) -> Double {
        guard tokens.count >= 5 else { return 0 }
        var seen = Set<[Int32]>()
        var repeats = 0, total = 0
        for i in 0...(tokens.count - 4) {
            total += 1
            if !seen.insert(Array(tokens[i..<(i + 4)])).inserted { repeats += 1 }
        }
        return Double(repeats) / Double(total)
    }
}
