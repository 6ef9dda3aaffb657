import EffCore
import Foundation

/// Attention density of the last answer, layers x heads, measured from the real attention
/// probabilities at every decode step.
///
/// Per head and step: `k95` = (smallest number of keys whose probabilities sum to >= 95%)
/// / (keys visible), and `sinkMass` = probability on the first `sinkTokens` positions;
/// both are averaged over the answer's steps. `pattern` is the last step's distribution
/// over key positions, folded into `patternBins` equal-width bins.
///
/// With a MoA plan to measure (`AttentionStatsCollector.keepPlan`), `keptMass` is the
/// probability mass per head and step inside the plan's read ranges (sinks + span) for
/// that head's KV head, averaged: what the plan would keep of the attention it ran with.
/// Measured under dense attention it is the plan's fidelity to the dense reference; under
/// the plan itself it is trivially 1.
public struct AttentionSummary: Hashable, Sendable {
    public var nLayers: Int
    public var nHeads: Int
    /// Decode steps averaged.
    public var steps: Int
    /// Keys visible at the last step.
    public var keys: Int
    /// (nLayers * nHeads), index layer * nHeads + head.
    public var k95: [Float]
    /// (nLayers * nHeads).
    public var sinkMass: [Float]
    /// (nLayers * nHeads, patternBins).
    public var pattern: [Float]
    public var patternBins: Int
    /// (nLayers * nHeads): mean mass inside `measuredPlan`'s read ranges; nil when no plan
    /// was measured.
    public var keptMass: [Float]?
    /// The plan `keptMass` refers to (the panel draws its spans from it).
    public var measuredPlan: MoAPlan?
    /// Name of the plan `keptMass` refers to.
    public var keptPlan: String? { measuredPlan?.name }

    public init(nLayers: Int, nHeads: Int, steps: Int, keys: Int, k95: [Float],
                sinkMass: [Float], pattern: [Float], patternBins: Int,
                keptMass: [Float]? = nil, measuredPlan: MoAPlan? = nil) {
        self.nLayers = nLayers; self.nHeads = nHeads; self.steps = steps; self.keys = keys
        self.k95 = k95; self.sinkMass = sinkMass; self.pattern = pattern; self.patternBins = patternBins
        self.keptMass = keptMass; self.measuredPlan = measuredPlan
    }

    public func k95(layer: Int, head: Int) -> Float { k95[layer * nHeads + head] }
    public func sinkMass(layer: Int, head: Int) -> Float { sinkMass[layer * nHeads + head] }
    /// Mass the measured plan keeps for (layer, head); nil when no plan was measured.
    public func keptMass(layer: Int, head: Int) -> Float? { keptMass?[layer * nHeads + head] }
    /// The last step's binned pattern of one head.
    public func pattern(layer: Int, head: Int) -> ArraySlice<Float> {
        let start = (layer * nHeads + head) * patternBins
        return pattern[start..<start + patternBins]
    }
}

/// Accumulates `AttentionSummary` statistics while a model decodes.
///
/// `observe` may be called concurrently for different (layer, head) slots (each slot is
/// written by one thread per step); it allocates nothing. The 95% key count is found by
/// bisection on a probability threshold (no sort, no scratch buffer).
public final class AttentionStatsCollector: @unchecked Sendable {
    public let nLayers: Int
    public let nHeads: Int
    public let patternBins: Int
    public let sinkTokens: Int
    private let k95Sum: UnsafeMutablePointer<Double>
    private let sinkSum: UnsafeMutablePointer<Double>
    private let counts: UnsafeMutablePointer<Int>
    private let pattern: UnsafeMutablePointer<Float>
    private let keys: UnsafeMutablePointer<Int>
    /// (nLayers * nHeads): summed mass inside the kept plan's ranges, and rows summed.
    private let keptSum: UnsafeMutablePointer<Double>
    private let keptCounts: UnsafeMutablePointer<Int>
    private var slots: Int { nLayers * nHeads }

    /// The MoA plan whose kept mass each observed row also measures (nil: not measured).
    /// Set between answers, never while one decodes; setting it clears the kept-mass sums.
    /// A plan made for another shape (layers, or KV heads not dividing `nHeads`) is ignored.
    public var keepPlan: MoAPlan? {
        didSet {
            keptSum.update(repeating: 0, count: slots)
            keptCounts.update(repeating: 0, count: slots)
            if let plan = keepPlan, plan.layers == nLayers, plan.kvHeads > 0, nHeads % plan.kvHeads == 0 {
                keepPolicy = MoAAttentionPolicy(plan: plan)
                keepGroup = nHeads / plan.kvHeads
            } else {
                keepPolicy = nil
            }
        }
    }
    /// `keepPlan`'s read pattern (the very ranges decode would read) and its query heads
    /// per KV head; built once when the plan is set.
    private var keepPolicy: MoAAttentionPolicy?
    private var keepGroup = 1

    public init(nLayers: Int, nHeads: Int, patternBins: Int = 48, sinkTokens: Int = 4) {
        self.nLayers = nLayers; self.nHeads = nHeads
        self.patternBins = patternBins; self.sinkTokens = sinkTokens
        let n = nLayers * nHeads
        k95Sum = .allocate(capacity: n); sinkSum = .allocate(capacity: n)
        counts = .allocate(capacity: n); keys = .allocate(capacity: n)
        pattern = .allocate(capacity: n * patternBins)
        keptSum = .allocate(capacity: n); keptCounts = .allocate(capacity: n)
        keptSum.initialize(repeating: 0, count: n); keptCounts.initialize(repeating: 0, count: n)
        reset()
    }

    deinit {
        k95Sum.deallocate(); sinkSum.deallocate(); counts.deallocate()
        keys.deallocate(); pattern.deallocate(); keptSum.deallocate(); keptCounts.deallocate()
    }

    /// Clears all statistics (start of an answer); the plan to measure stays.
    public func reset() {
        k95Sum.initialize(repeating: 0, count: slots)
        sinkSum.initialize(repeating: 0, count: slots)
        counts.initialize(repeating: 0, count: slots)
        keys.initialize(repeating: 0, count: slots)
        pattern.initialize(repeating: 0, count: slots * patternBins)
        keptSum.update(repeating: 0, count: slots)
        keptCounts.update(repeating: 0, count: slots)
    }

    /// Records one query's softmax probabilities over `probs.count` keys for (layer, head).
    public func observe(layer: Int, head: Int, probs: UnsafeBufferPointer<Float>) {
        guard layer >= 0, layer < nLayers, head >= 0, head < nHeads, !probs.isEmpty else { return }
        let slot = layer * nHeads + head
        let n = probs.count
        k95Sum[slot] += Double(Self.keysCovering(0.95, probs)) / Double(n)
        var sink: Float = 0
        for i in 0..<min(sinkTokens, n) { sink += probs[i] }
        sinkSum[slot] += Double(sink)
        counts[slot] += 1
        keys[slot] = n
        let bins = pattern + slot * patternBins
        bins.update(repeating: 0, count: patternBins)
        for i in 0..<n { bins[i * patternBins / n] += probs[i] }
        if let keepPolicy {
            keptSum[slot] += Double(Self.keptMass(keepPolicy, layer: layer, kvHead: head / keepGroup, probs))
            keptCounts[slot] += 1
        }
    }

    /// The share of `probs` (a row over positions 0..<n, query at n - 1) inside the ranges
    /// `policy` reads for (layer, kvHead): sum over the ranges / total. The ranges live on
    /// the stack (at most `AttentionPolicyLimits.maxRanges`), so nothing is allocated.
    public static func keptMass(_ policy: AttentionPolicy, layer: Int, kvHead: Int,
                                _ probs: UnsafeBufferPointer<Float>) -> Float {
        let n = probs.count
        guard n > 0 else { return 1 }
        var total: Float = 0
        for p in probs { total += p }
        guard total > 0 else { return 1 }
        return withUnsafeTemporaryAllocation(of: Range<Int>.self, capacity: AttentionPolicyLimits.maxRanges) { ranges in
            let nr = min(policy.keyRanges(layer: layer, kvHead: kvHead, queryPosition: n - 1, into: ranges), ranges.count)
            var kept: Float = 0, end = 0
            for r in 0..<nr {
                // Ranges come in order; a later one overlapping an earlier one counts once.
                let range = ranges[r].clamped(to: max(end, 0)..<n)
                for i in range { kept += probs[i] }
                end = max(end, range.upperBound)
            }
            return min(1, kept / total)
        }
    }

    /// The smallest number of entries of `probs` whose sum reaches `mass` (of the total):
    /// the top-k count, exact, ties included (a uniform row of n needs ceil(mass * n)).
    ///
    /// A bisection on the probability finds a band [lo, hi] that holds the k-th largest
    /// entry: everything above `hi` is in the set, and only the band (a few entries, or
    /// many equal ones) is sorted to finish the count, so no full sort is needed.
    public static func keysCovering(_ mass: Float, _ probs: UnsafeBufferPointer<Float>) -> Int {
        var total: Float = 0, maxP: Float = 0
        for p in probs { total += p; maxP = max(maxP, p) }
        let target = mass * total
        guard target > 0 else { return 1 }
        // Invariant: entries >= lo hold the target mass; entries > hi do not.
        var lo: Float = 0, hi = maxP
        for _ in 0..<24 {
            let mid = (lo + hi) / 2
            var s: Float = 0
            for p in probs where p >= mid { s += p }
            if s >= target { lo = mid } else { hi = mid }
        }
        var count = 0, above: Float = 0
        var band: [Float] = []
        for p in probs {
            if p > hi { count += 1; above += p } else if p >= lo { band.append(p) }
        }
        if above >= target { return max(1, count) }
        band.sort(by: >)
        for p in band {
            count += 1
            above += p
            if above >= target { break }
        }
        return max(1, count)
    }

    /// The averages so far.
    public func summary() -> AttentionSummary {
        var k = [Float](repeating: 0, count: slots), s = k
        var maxSteps = 0, maxKeys = 0
        for i in 0..<slots where counts[i] > 0 {
            k[i] = Float(k95Sum[i] / Double(counts[i]))
            s[i] = Float(sinkSum[i] / Double(counts[i]))
            maxSteps = max(maxSteps, counts[i]); maxKeys = max(maxKeys, keys[i])
        }
        let pat = Array(UnsafeBufferPointer(start: pattern, count: slots * patternBins))
        var kept: [Float]?
        if keepPolicy != nil, (0..<slots).contains(where: { keptCounts[$0] > 0 }) {
            kept = (0..<slots).map { keptCounts[$0] > 0 ? Float(keptSum[$0] / Double(keptCounts[$0])) : 0 }
        }
        return AttentionSummary(nLayers: nLayers, nHeads: nHeads, steps: maxSteps, keys: maxKeys,
                                k95: k, sinkMass: s, pattern: pat, patternBins: patternBins,
                                keptMass: kept, measuredPlan: kept == nil ? nil : keepPlan)
    }
}

extension AttentionStatsCollector: AttentionObserver {
    public func attention(layer: Int, head: Int, queryPosition: Int, probabilities: UnsafeBufferPointer<Float>) {
        observe(layer: layer, head: head, probs: probabilities)
    }
}
