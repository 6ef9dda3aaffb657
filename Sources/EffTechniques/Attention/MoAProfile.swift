import EffCore
import Foundation

/// Block-level attention importance per (layer, KV head) at one sequence length: MoA's
/// profile, in its forward-only variant.
///
/// MoA scores each attention entry by the first-order loss change of masking it (attention
/// times gradient). This profile uses the **attention mass** itself instead (no backward
/// pass): entry (i, j) weighs A_ij, summed into `blockSize` x `blockSize` causal blocks,
/// max-reduced over the query heads that share a KV head (as MoA does for GQA), divided by
/// the rows so a map sums to about 1 (the row-averaged mass), and averaged over samples.
/// Only the response rows count (the model's own answer after the prompt), as MoA's loss
/// covers response tokens only: those are the rows that must reach back into the document.
/// Masking a block then loses exactly its share of the mass each query would have spent.
public struct MoAImportance: Codable, Sendable, Equatable {
    public var length: Int
    public var blockSize: Int
    public var layers: Int
    public var kvHeads: Int
    public var samples: Int
    /// Per (layer * kvHeads + kvHead): the lower triangle of the blocks x blocks map, row by
    /// row (query block qb holds key blocks 0...qb, offset qb * (qb + 1) / 2).
    public var maps: [[Float]]

    public var blocks: Int { (length + blockSize - 1) / blockSize }

    @inline(__always)
    static func offset(_ qb: Int) -> Int { qb * (qb + 1) / 2 }

    /// The importance of key block `kb` for query block `qb` in head slot `slot`.
    public func value(slot: Int, qb: Int, kb: Int) -> Float { maps[slot][Self.offset(qb) + kb] }

    /// Mass this head would lose under `rule` (sink block kept, band evaluated at each query
    /// block's end), as the runtime policy reads. `sinkBlocks` leading blocks are always kept.
    public func loss(slot: Int, rule: MoARule, minSpan: Int, sinkBlocks: Int = 1) -> Double {
        let map = maps[slot]
        var lost = 0.0
        for qb in 0..<blocks {
            let n = min(length, (qb + 1) * blockSize)
            let span = rule.span(at: n, minimum: minSpan)
            let width = (span + blockSize - 1) / blockSize
            let firstKept = max(sinkBlocks, qb + 1 - width)
            guard firstKept > sinkBlocks else { continue }
            let row = Self.offset(qb)
            for kb in sinkBlocks..<min(firstKept, qb + 1) { lost += Double(map[row + kb]) }
        }
        return lost
    }

    /// Total importance of a head (about 1).
    public func total(slot: Int) -> Double { maps[slot].reduce(0) { $0 + Double($1) } }
}

/// Collects `MoAImportance` from the attention probabilities a forward pass hands its
/// observer: call `beginSample(length:)`, run the prompt (prefill rows are observed too),
/// then `endSample()`. One sample at a time; observer calls for one layer arrive on one
/// thread, in order.
public final class MoAProfileCollector: AttentionObserver, @unchecked Sendable {
    public let layers: Int
    public let heads: Int
    public let kvHeads: Int
    public let blockSize: Int
    public let length: Int
    private let blocks: Int
    private let triangle: Int
    /// Per query head: block sums of the current sample.
    private var current: UnsafeMutablePointer<Double>
    /// Per KV head: the sum over samples of the normalized, group-max-reduced maps.
    private var sums: [[Double]]
    private var rows: Int = 0
    public private(set) var samples = 0

    public init(layers: Int, heads: Int, kvHeads: Int, length: Int, blockSize: Int = 32) {
        self.layers = layers; self.heads = heads; self.kvHeads = kvHeads
        self.blockSize = blockSize; self.length = length
        blocks = (length + blockSize - 1) / blockSize
        triangle = blocks * (blocks + 1) / 2
        current = .allocate(capacity: layers * heads * triangle)
        current.initialize(repeating: 0, count: layers * heads * triangle)
        sums = Array(repeating: Array(repeating: 0, count: triangle), count: layers * kvHeads)
    }

    deinit { current.deallocate() }

    /// Query rows before this position are not counted (MoA scores response tokens only).
    private var firstRow = 0

    /// Starts a sample: clears the per-head block sums. Rows at positions below
    /// `responseFrom` (the prompt) are ignored, as MoA's loss covers the response only.
    public func beginSample(responseFrom: Int = 0) {
        current.update(repeating: 0, count: layers * heads * triangle)
        rows = 0
        firstRow = responseFrom
    }

    public func attention(layer: Int, head: Int, queryPosition: Int, probabilities: UnsafeBufferPointer<Float>) {
        guard layer < layers, head < heads, queryPosition < length, queryPosition >= firstRow else { return }
        if layer == 0 && head == 0 { rows += 1 }
        let qb = queryPosition / blockSize
        let row = current + (layer * heads + head) * triangle + MoAImportance.offset(qb)
        let n = min(probabilities.count, queryPosition + 1)
        var kb = 0, start = 0
        while start < n {
            let end = min(n, start + blockSize)
            var s: Float = 0
            for j in start..<end { s += probabilities[j] }
            row[kb] += Double(s)
            kb += 1; start = end
        }
    }

    /// Ends a sample: max-reduces its maps over each KV head's query heads, divides by the
    /// rows observed, and adds them to the running sums.
    public func endSample() {
        guard rows > 0 else { return }
        let group = heads / kvHeads
        let inv = 1 / Double(rows)
        for l in 0..<layers {
            for g in 0..<kvHeads {
                let slot = l * kvHeads + g
                for i in 0..<triangle {
                    var m = 0.0
                    for h in (g * group)..<((g + 1) * group) { m = max(m, current[(l * heads + h) * triangle + i]) }
                    sums[slot][i] += m * inv
                }
            }
        }
        samples += 1
    }

    /// The average over the samples so far.
    public func importance() -> MoAImportance {
        let inv = samples == 0 ? 0 : 1 / Double(samples)
        return MoAImportance(length: length, blockSize: blockSize, layers: layers, kvHeads: kvHeads, samples: samples,
                             maps: sums.map { $0.map { Float($0 * inv) } })
    }
}
