import EffCore
import Testing
@testable import EffLLM

/// The QLLM-Eval grid's simulated activation and KV quantization.
@Suite struct QuantStudyTests {
    static func values(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in Float(Double(rng.next() % 20001) / 10000 - 1) * 3 }
    }

    @Test(arguments: [8, 4, 2]) func perTokenActivationsAreOnTheirGridWithinHalfAStep(_ bits: Int) {
        let rows = 3, width = 96
        let x = Self.values(rows * width, seed: UInt64(bits))
        var q = x
        q.withUnsafeMutableBufferPointer { QuantStudy.quantizeTokens($0.baseAddress!, rows: rows, width: width, bits: bits) }
        let qmax = Float((1 << (bits - 1)) - 1)
        for r in 0..<rows {
            let amax = x[(r * width)..<((r + 1) * width)].map(abs).max()!
            let scale = amax / qmax
            for i in 0..<width {
                let j = r * width + i
                #expect(abs(q[j] - x[j]) <= scale / 2 * 1.0001)
                let code = q[j] / scale
                #expect(abs(code - code.rounded()) < 1e-3 && abs(code) <= qmax + 1e-3)
            }
        }
        // Quantizing again changes nothing (up to float rounding).
        var again = q
        again.withUnsafeMutableBufferPointer { QuantStudy.quantizeTokens($0.baseAddress!, rows: rows, width: width, bits: bits) }
        for j in q.indices { #expect(abs(again[j] - q[j]) <= 1e-5 * max(1, abs(q[j]))) }
    }

    @Test(arguments: [8, 4, 3, 2]) func kvGroupsKeepTheirRangeAndLevels(_ bits: Int) {
        let rows = 2, width = 192, group = 64
        let x = Self.values(rows * width, seed: 77 + UInt64(bits))
        var q = x
        q.withUnsafeMutableBufferPointer { QuantStudy.quantizeGroups($0.baseAddress!, rows: rows, width: width, bits: bits, group: group) }
        let levels = Float((1 << bits) - 1)
        for g in stride(from: 0, to: rows * width, by: group) {
            let xs = x[g..<(g + group)], qs = q[g..<(g + group)]
            let lo = xs.min()!, hi = xs.max()!, step = (hi - lo) / levels
            #expect(abs(qs.min()! - lo) < 1e-5 && abs(qs.max()! - hi) < 1e-4)
            #expect(Set(qs.map { Int(((($0 - lo) / step)).rounded()) }).count <= Int(levels) + 1)
            for (a, b) in zip(xs, qs) { #expect(abs(a - b) <= step / 2 * 1.001) }
        }
    }
}

@Suite struct RepetitionProbeTests {
    @Test func countsRepeatedFourGrams() {
        #expect(QuantEval.repetition([1, 2, 3, 4, 5, 6, 7]) == 0)
        #expect(QuantEval.repetition([1, 2, 3, 4, 1, 2, 3, 4]) == 0.2)  // 1234 again, of 5
        #expect(QuantEval.repetition(Array(repeating: 9, count: 12)) == 8.0 / 9.0)
        #expect(QuantEval.repetition([1, 2, 3]) == 0)
    }
}
