import EffCore
import Foundation

/// Timed runs of prefill, decode and batched decode for `effterm bench`.
///
/// Every figure is the median of `reps` timed runs after one untimed warm-up run; the
/// model's states are allocated before timing starts, so only the forward pass is timed.
public struct ModelBench {
    public let model: LlamaModel
    public let reps: Int
    /// Progress lines (one per figure), e.g. `print` for text output.
    public let log: (String) -> Void

    public init(model: LlamaModel, reps: Int, log: @escaping (String) -> Void = { _ in }) {
        self.model = model
        self.reps = max(1, reps)
        self.log = log
    }

    /// A median time and the rate it gives.
    public struct Rate {
        public let seconds: Double
        public let tokPerSec: Double
    }

    /// One row of the batched table.
    public struct BatchedRow {
        public let streams: Int
        public let stepSeconds: Double
        /// t_B / t_1.
        public let stepRatio: Double
        /// Aggregate tokens per second over all streams.
        public let tokPerSec: Double
    }

    /// Pseudo-random token ids (a fixed LCG), like llama-bench's random prompts.
    public func tokens(_ n: Int, seed: UInt64 = 1) -> [Int32] {
        var s = seed &* 0x9E37_79B9_7F4A_7C15 &+ 7
        let vocab = UInt64(model.config.vocabSize)
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Int32((s >> 33) % vocab)
        }
    }

    func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// Prompt processing of `n` tokens from an empty context (llama-bench `pp n`).
    public func prefill(tokens n: Int, maxBatch: Int = 512) throws -> Rate {
        let state = model.makeState(maxContext: n, maxBatch: maxBatch)
        let toks = tokens(n)
        var times: [Double] = []
        for rep in 0...reps {
            state.rewind(to: 0)
            let t0 = MonotonicClock.seconds()
            try model.forward(toks, state: state, logits: .last)
            if rep > 0 { times.append(MonotonicClock.seconds() - t0) }  // rep 0 warms up
        }
        let t = median(times)
        log(String(format: "prefill %5d tokens: %8.1f tok/s", n, Double(n) / t))
        return Rate(seconds: t, tokPerSec: Double(n) / t)
    }

    /// `n` single-token steps after a context of `depth` tokens (llama-bench `tg n -d depth`).
    public func decode(depth: Int, tokens n: Int) throws -> Rate {
        let state = model.makeState(maxContext: depth + n, maxBatch: 512)
        if depth > 0 { try model.forward(tokens(depth, seed: 2), state: state, logits: .none) }
        let toks = tokens(n, seed: 3)
        var times: [Double] = []
        for rep in 0...reps {
            state.rewind(to: depth)
            let t0 = MonotonicClock.seconds()
            for t in toks { try model.forward([t], state: state, logits: .last) }
            if rep > 0 { times.append(MonotonicClock.seconds() - t0) }
        }
        let t = median(times)
        log(String(format: "decode %4d tokens at depth %5d: %8.1f tok/s", n, depth, Double(n) / t))
        return Rate(seconds: t, tokPerSec: Double(n) / t)
    }

    /// One KV format's row of the interleaved decode table.
    public struct FormatRow {
        public let format: KVFormat
        /// KV bytes one position takes (keys and values, all layers).
        public let bytesPerToken: Int
        /// Seconds to convert the f32 store at the deepest depth into this format (one call).
        public let convertSeconds: Double
        /// Decode rate per depth, in the order asked.
        public let decode: [(depth: Int, rate: Rate)]
    }

    /// Decode of `n` single-token steps at each depth for every KV format, interleaved (one
    /// timed run of each format in turn per repetition) so their ratios come from the same
    /// machine conditions. The context is prefilled once in f32 and copied into each format
    /// (`KVCache.copyPositions` converts); depths past the trained context less `n` are
    /// clamped to it.
    public func decodeFormats(_ formats: [KVFormat], depths: [Int], tokens n: Int) throws -> [FormatRow] {
        let limit = model.config.seqLen - n
        let depths = depths.map { min($0, limit) }
        let maxDepth = depths.max() ?? 0
        let root = model.makeState(maxContext: maxDepth + n, maxBatch: 512, kvFormat: .f32)
        if maxDepth > 0 { try model.forward(tokens(maxDepth, seed: 2), state: root, logits: .none) }
        var states: [LlamaState] = []
        var convert: [Double] = []
        for f in formats {
            let t0 = MonotonicClock.seconds()
            _ = root.cache.converted(to: f)
            convert.append(MonotonicClock.seconds() - t0)
            let s = model.makeState(maxContext: maxDepth + n, maxBatch: 1, kvFormat: f)
            s.cache.copyPositions(from: root.cache, length: maxDepth)
            states.append(s)
        }
        let toks = tokens(n, seed: 3)
        var rates: [[Int: Rate]] = formats.map { _ in [:] }
        // Deepest first: a rewind only drops positions, so each shallower depth is still held.
        for depth in Set(depths).sorted(by: >) {
            var times: [[Double]] = formats.map { _ in [] }
            for rep in 0...reps {
                for (i, state) in states.enumerated() {
                    state.rewind(to: depth)
                    let t0 = MonotonicClock.seconds()
                    for t in toks { try model.forward([t], state: state, logits: .last) }
                    if rep > 0 { times[i].append(MonotonicClock.seconds() - t0) }
                }
            }
            for (i, f) in formats.enumerated() {
                let t = median(times[i])
                log(String(format: "decode %4d tokens at depth %5d: %8.1f tok/s", n, depth, Double(n) / t) + " (kv \(f.name))")
                rates[i][depth] = Rate(seconds: t, tokPerSec: Double(n) / t)
            }
        }
        return formats.indices.map { i in
            FormatRow(format: formats[i], bytesPerToken: states[i].cache.bytesPerPosition, convertSeconds: convert[i],
                      decode: depths.map { (depth: $0, rate: rates[i][$0]!) })
        }
    }

    /// B streams forked from one shared `prompt`-token prefix, `steps` batched steps each.
    public func batched(streams: [Int], steps: Int, prompt: Int = 64) throws -> [BatchedRow] {
        let maxB = streams.max() ?? 1
        let root = model.makeState(maxContext: prompt, maxBatch: 512)
        try model.forward(tokens(prompt, seed: 4), state: root, logits: .none)
        let forks = (0..<maxB).map { _ in root.fork(maxContext: prompt + steps) }
        let decoder = BatchDecoder(model: model, maxStreams: maxB)
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: maxB * model.config.vocabSize)
        defer { logits.deallocate() }
        var stepTimes: [Int: Double] = [:]
        for b in Set(streams + [1]).sorted() {
            let states = Array(forks[0..<b])
            var times: [Double] = []
            for rep in 0...reps {
                for s in states { s.rewind(to: prompt) }
                let t0 = MonotonicClock.seconds()
                for i in 0..<steps {
                    let toks = (0..<b).map { Int32(($0 * 31 + i * 7 + 11) % model.config.vocabSize) }
                    try decoder.step(tokens: toks, states: states, logits: logits)
                }
                if rep > 0 { times.append((MonotonicClock.seconds() - t0) / Double(steps)) }
            }
            stepTimes[b] = median(times)
        }
        let t1 = stepTimes[1]!
        return streams.map { b in
            let t = stepTimes[b]!
            log(String(format: "batched %d streams: step %.2f ms, r = %.2f, %8.1f tok/s", b, t * 1000, t / t1, Double(b) / t))
            return BatchedRow(streams: b, stepSeconds: t, stepRatio: t / t1, tokPerSec: Double(b) / t)
        }
    }
}
