import EffCore
import Foundation

/// The rules of each sampler stage, as small functions over `TokenCandidates`.
public enum SamplerStages {
    /// CTRL-style repetition penalty as llama.cpp applies it: each distinct token among the
    /// recent ones has its logit divided by `penalty` when positive, multiplied when not.
    public static func repetitionPenalty(_ c: TokenCandidates, penalty: Float, recent: UnsafeBufferPointer<Int32>) {
        guard penalty != 1, !recent.isEmpty else { return }
        func penalize(_ i: Int) {
            let l = c.storage[i].logit
            c.storage[i].logit = l > 0 ? l / penalty : l * penalty
        }
        for (k, tok) in recent.enumerated() {
            // Distinct tokens only: skip a token seen earlier in the window.
            var seen = false
            for j in 0..<k where recent[j] == tok { seen = true; break }
            if seen { continue }
            if c.isIdentityOrder {
                if tok >= 0 && Int(tok) < c.count { penalize(Int(tok)) }
            } else {
                for i in 0..<c.count where c.storage[i].id == tok { penalize(i); break }
            }
        }
        c.isSortedDescending = false
    }

    /// Keeps the `k` most likely candidates, sorted largest first.
    public static func topK(_ c: TokenCandidates, k: Int) {
        guard k > 0 else { return }
        c.keepTop(max(1, k))
    }

    /// Nucleus: keeps the smallest most-likely prefix whose probability mass reaches `p`
    /// (at least one token). Probabilities are the softmax of the current logits.
    public static func topP(_ c: TokenCandidates, p: Float) {
        guard p < 1, c.count > 1 else { return }
        c.sortDescending()
        let m = c.storage[0].logit
        var total = 0.0
        for i in 0..<c.count { total += exp(Double(c.storage[i].logit - m)) }
        var cum = 0.0
        for i in 0..<c.count {
            cum += exp(Double(c.storage[i].logit - m)) / total
            if cum >= Double(p) {
                c.count = i + 1
                return
            }
        }
    }

    /// Keeps candidates whose probability is at least `p` times the largest one's
    /// (`logit >= maxLogit + ln p`), order preserved.
    public static func minP(_ c: TokenCandidates, p: Float) {
        guard p > 0, c.count > 1 else { return }
        var m = -Float.infinity
        for i in 0..<c.count where c.storage[i].logit > m { m = c.storage[i].logit }
        let threshold = m + logf(p)
        var kept = 0
        for i in 0..<c.count where c.storage[i].logit >= threshold {
            c.storage[kept] = c.storage[i]
            kept += 1
        }
        if kept < c.count { c.isIdentityOrder = false }
        c.count = max(kept, 1)
    }

    /// Divides every logit by `t` (> 0); order is unchanged.
    public static func temperature(_ c: TokenCandidates, t: Float) {
        guard t > 0 else { return }
        let inv = 1 / t
        for i in 0..<c.count { c.storage[i].logit *= inv }
    }

    /// The candidate with the largest logit (lowest id on ties).
    public static func argmax(_ c: TokenCandidates) -> Int32 {
        var best = c.storage[0]
        for i in 1..<max(1, c.count) where TokenCandidates.before(c.storage[i], best) { best = c.storage[i] }
        return best.id
    }

    /// Draws from the softmax of the live candidates with uniform `u` in [0, 1).
    public static func draw(_ c: TokenCandidates, u: Double) -> Int32 {
        var m = -Float.infinity
        for i in 0..<c.count where c.storage[i].logit > m { m = c.storage[i].logit }
        var total = 0.0
        for i in 0..<c.count { total += exp(Double(c.storage[i].logit - m)) }
        let target = u * total
        var cum = 0.0
        for i in 0..<c.count {
            cum += exp(Double(c.storage[i].logit - m))
            if target < cum { return c.storage[i].id }
        }
        return c.storage[c.count - 1].id
    }
}

/// A seeded sampler chain: same config, seed, history and logits give the same tokens.
///
/// Buffers (candidates, recent-token window) are allocated once; `sample` allocates nothing.
public final class Sampler {
    public let config: SamplerConfig
    public let vocabSize: Int
    private let stages: [SamplerStage]
    private var rng: SplitMix64
    private let candidates: TokenCandidates
    // Ring buffer of the last `repeatLastN` accepted tokens, flattened in `window` before use.
    private let ring: UnsafeMutablePointer<Int32>
    private let window: UnsafeMutablePointer<Int32>
    private let ringCapacity: Int
    private var ringCount = 0, ringHead = 0

    public init(config: SamplerConfig, vocabSize: Int) {
        self.config = config
        self.vocabSize = vocabSize
        stages = config.stages
        rng = SplitMix64(seed: config.seed)
        candidates = TokenCandidates(capacity: vocabSize)
        ringCapacity = max(1, config.repeatLastN)
        ring = .allocate(capacity: ringCapacity)
        window = .allocate(capacity: ringCapacity)
    }

    deinit {
        ring.deallocate()
        window.deallocate()
    }

    /// Records a token as part of the history the repetition penalty sees (prompt included).
    public func accept(_ token: Int32) {
        ring[ringHead] = token
        ringHead = (ringHead + 1) % ringCapacity
        ringCount = min(ringCount + 1, ringCapacity)
    }

    /// Forgets the history and restarts the random stream from the seed.
    public func reset() {
        ringCount = 0
        ringHead = 0
        rng = SplitMix64(seed: config.seed)
    }

    /// Chooses the next token from `logits` (vocabSize floats, left unchanged).
    public func sample(_ logits: UnsafePointer<Float>) -> Int32 {
        if stages.isEmpty && config.isGreedy {
            return Int32(LogitMath.argmax(logits, vocabSize))
        }
        candidates.load(logits, vocabSize)
        for stage in stages {
            switch stage {
            case .repetitionPenalty(let p, let lastN):
                let n = min(lastN, ringCount)
                for i in 0..<n { window[i] = ring[(ringHead - n + i + ringCapacity) % ringCapacity] }
                SamplerStages.repetitionPenalty(candidates, penalty: p, recent: UnsafeBufferPointer(start: window, count: n))
            case .topK(let k): SamplerStages.topK(candidates, k: k)
            case .topP(let p): SamplerStages.topP(candidates, p: p)
            case .minP(let p): SamplerStages.minP(candidates, p: p)
            case .temperature(let t): SamplerStages.temperature(candidates, t: t)
            }
        }
        if config.isGreedy { return SamplerStages.argmax(candidates) }
        return SamplerStages.draw(candidates, u: rng.nextUnit())
    }
}
