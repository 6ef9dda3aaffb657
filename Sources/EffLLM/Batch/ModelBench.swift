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

    /// Decode of `n` single-token steps at each depth for several models (weight variants
    /// of one architecture: the file's weights, requantized ones), interleaved as
    /// `decodeFormats` does so their ratios come from the same machine conditions. Each
    /// model prefills its own context (the same tokens); depths are clamped as there.
    /// Returns, per model, the rate at each depth in the order asked.
    public static func decodeModels(_ models: [LlamaModel], reps: Int, depths: [Int], tokens n: Int,
                                    log: (String) -> Void = { _ in }) throws -> [[(depth: Int, rate: Rate)]] {
        guard let first = models.first else { return [] }
        let bench = ModelBench(model: first, reps: reps)
        let limit = first.config.seqLen - n
        let depths = depths.map { min($0, limit) }
        let maxDepth = depths.max() ?? 0
        let context = bench.tokens(maxDepth, seed: 2), toks = bench.tokens(n, seed: 3)
        let states = try models.map { m in
            let s = m.makeState(maxContext: maxDepth + n, maxBatch: 512)
            if maxDepth > 0 { try m.forward(context, state: s, logits: .none) }
            return s
        }
        var rates: [[Int: Rate]] = models.map { _ in [:] }
        for depth in Set(depths).sorted(by: >) {
            var times: [[Double]] = models.map { _ in [] }
            for rep in 0...bench.reps {
                for (i, m) in models.enumerated() {
                    states[i].rewind(to: depth)
                    let t0 = MonotonicClock.seconds()
                    for t in toks { try m.forward([t], state: states[i], logits: .last) }
                    if rep > 0 { times[i].append(MonotonicClock.seconds() - t0) }
                }
            }
            for i in models.indices {
                let t = bench.median(times[i])
                log(String(format: "decode %4d tokens at depth %5d: %8.1f tok/s", n, depth, Double(n) / t) + " (weights #\(i + 1))")
                rates[i][depth] = Rate(seconds: t, tokPerSec: Double(n) / t)
            }
        }
        return models.indices.map { i in depths.map { (depth: $0, rate: rates[i][$0]!) } }
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

    /// One attention configuration's row of the interleaved decode table.
    public struct PolicyRow {
        public let name: String
        /// Per depth, in the order asked: decode rate and the KV bytes the state held after
        /// the timed tokens.
        public let decode: [(depth: Int, rate: Rate, kvBytes: Int)]
    }

    /// Decode of `n` single-token steps at each depth under every attention configuration,
    /// interleaved per repetition like `decodeFormats`. Each configuration streams the same
    /// pseudo-random context through its own state, shallowest depth first (an evicting one
    /// keeps only its budget); before each timed run a non-evicting state rewinds to the
    /// depth and an evicting one restarts from a copy of its cache at the depth (eviction
    /// cannot be rewound), copied outside the timing.
    public func decodePolicies(_ policies: [AttentionConfiguration], depths: [Int], tokens n: Int) throws -> [PolicyRow] {
        let limit = model.config.seqLen - n
        let asked = depths
        let maxDepth = depths.max() ?? 0
        let context = tokens(maxDepth, seed: 2)
        let roots = policies.map { $0.makeState(model, tokens: maxDepth + n, maxBatch: 512) }
        let work = policies.map { p -> LlamaState? in
            p.eviction == nil ? nil : p.makeState(model, tokens: maxDepth + n, maxBatch: 1)
        }
        let toks = tokens(n, seed: 3)
        var rates: [[Int: (Rate, Int)]] = policies.map { _ in [:] }
        var filled = 0
        for depth in Set(asked).sorted() {
            if depth > filled {
                for (i, root) in roots.enumerated() where policies[i].eviction != nil || depth <= limit {
                    try model.forward(Array(context[filled..<depth]), state: root, logits: .none)
                }
                filled = depth
            }
            var times: [[Double]] = policies.map { _ in [] }
            var bytes = policies.map { _ in 0 }
            for rep in 0...reps {
                for i in policies.indices {
                    let state: LlamaState
                    if let w = work[i] {
                        w.rewind(to: 0)
                        w.cache.copyPositions(from: roots[i].cache, length: roots[i].position)
                        state = w
                    } else {
                        guard depth <= limit else { continue }  // dense past its context: no figure
                        roots[i].rewind(to: depth)
                        state = roots[i]
                    }
                    let t0 = MonotonicClock.seconds()
                    for t in toks { try model.forward([t], state: state, logits: .last) }
                    if rep > 0 { times[i].append(MonotonicClock.seconds() - t0) }
                    bytes[i] = state.cache.ownBytesInUse
                }
            }
            for i in policies.indices {
                if work[i] == nil { if depth <= limit { roots[i].rewind(to: depth) } else { continue } }
                let t = median(times[i])
                log(String(format: "decode %4d tokens at depth %5d: %8.1f tok/s, %6.2f ms/token, KV %.1f MiB (%@)", n, depth,
                           Double(n) / t, t / Double(n) * 1000, Double(bytes[i]) / 1_048_576, policies[i].name))
                rates[i][depth] = (Rate(seconds: t, tokPerSec: Double(n) / t), bytes[i])
            }
        }
        return policies.indices.map { i in
            PolicyRow(name: policies[i].name, decode: asked.compactMap { d in
                rates[i][d].map { (depth: d, rate: $0.0, kvBytes: $0.1) }
            })
        }
    }

    /// ms per token at one point of a long generation.
    public struct StreamPoint {
        /// Tokens generated when the figure was taken.
        public let generated: Int
        /// Mean ms per token over the `window` tokens before it.
        public let msPerToken: Double
        public let kvBytes: Int
    }

    /// One long single-token decode stream of `total` tokens under `policy` (evicting, or it
    /// stops at the context), reporting the mean ms per token over the `window` tokens
    /// before each checkpoint: constant cost is what StreamingLLM promises.
    public func stream(_ policy: AttentionConfiguration, checkpoints: [Int], window: Int = 128) throws -> [StreamPoint] {
        let total = checkpoints.max() ?? 0
        let state = policy.makeState(model, tokens: total + 1, maxBatch: 1)
        let toks = tokens(4096, seed: 5)
        var points: [StreamPoint] = []
        var windowSeconds = 0.0, windowTokens = 0
        var marks = Set(checkpoints).sorted()[...]
        for i in 0..<total {
            guard let next = marks.first else { break }
            if policy.eviction == nil && state.position >= state.cache.maxLength { break }
            let t0 = MonotonicClock.seconds()
            try model.forward([toks[i % toks.count]], state: state, logits: .last)
            if i >= next - window { windowSeconds += MonotonicClock.seconds() - t0; windowTokens += 1 }
            if i + 1 == next {
                // Checkpoints closer than `window` share tokens: average what was timed.
                let p = StreamPoint(generated: next, msPerToken: windowSeconds / Double(max(1, windowTokens)) * 1000,
                                    kvBytes: state.cache.ownBytesInUse)
                log(String(format: "stream %@: %6d tokens, %6.2f ms/token, KV %.1f MiB", policy.name, p.generated,
                           p.msPerToken, Double(p.kvBytes) / 1_048_576))
                points.append(p)
                windowSeconds = 0; windowTokens = 0
                marks.removeFirst()
            }
        }
        return points
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
