/// Bit allocation as an exact multiple-choice knapsack (LLM-MQ's ILP, solved by dynamic
/// programming over a byte grid): pick one choice per item (one format per tensor) to
/// minimize the summed cost (scanned KL) subject to the summed bytes <= a budget.
///
/// Bytes are counted in units of `grid` bytes, each choice's size rounded UP to whole
/// units, so every plan the solver returns truly fits the budget. With `grid` the greatest
/// common divisor of all sizes nothing is rounded and the optimum is exact; a coarser grid
/// (used when the budget would need more than `maxCells` units) is exact for the rounded
/// sizes and can only miss plans within `items * grid` bytes of the budget.
public enum BitAllocator {
    /// One option for an item.
    public struct Choice: Sendable, Equatable {
        public var bytes: Int
        public var cost: Double
        public init(bytes: Int, cost: Double) { self.bytes = bytes; self.cost = cost }
    }

    /// The chosen index per item, their total bytes and cost, and the grid used.
    public struct Solution: Sendable, Equatable {
        public var picks: [Int]
        public var bytes: Int
        public var cost: Double
        public var grid: Int
        /// True when the grid rounded no size (the optimum is exact in bytes).
        public var exact: Bool
    }

    public enum AllocationError: Error, Equatable, CustomStringConvertible {
        case noChoices(item: Int)
        case tooManyChoices(item: Int, count: Int)
        case budgetTooSmall(budget: Int, smallest: Int)

        public var description: String {
            switch self {
            case .noChoices(let i): return "item \(i) has no choices"
            case .tooManyChoices(let i, let n): return "item \(i) has \(n) choices (at most 255)"
            case .budgetTooSmall(let b, let s):
                return "the budget of \(b) bytes is below the smallest possible size, \(s) bytes (every tensor at its smallest candidate)"
            }
        }
    }

    /// Default upper bound on grid cells (DP columns): 2^19 cells x 210 items of 1-byte
    /// back-pointers is 110 MB at worst.
    public static let defaultMaxCells = 1 << 19

    /// Solves the knapsack; `grid` nil picks the gcd of the sizes, coarsened to fit `maxCells`.
    public static func solve(_ items: [[Choice]], budget: Int, grid: Int? = nil,
                             maxCells: Int = defaultMaxCells) throws -> Solution {
        for (i, c) in items.enumerated() {
            if c.isEmpty { throw AllocationError.noChoices(item: i) }
            if c.count > 255 { throw AllocationError.tooManyChoices(item: i, count: c.count) }
        }
        let smallest = items.reduce(0) { $0 + $1.map(\.bytes).min()! }
        guard smallest <= budget else { throw AllocationError.budgetTooSmall(budget: budget, smallest: smallest) }
        var g = grid ?? items.joined().reduce(0) { gcd($0, $1.bytes) }
        g = max(1, g)
        let exactGrid = items.joined().allSatisfy { $0.bytes % g == 0 }
        if grid == nil, budget / g > maxCells { g *= (budget / g + maxCells - 1) / maxCells }
        let exact = items.joined().allSatisfy { $0.bytes % g == 0 } && exactGrid
        let cap = budget / g
        let units = items.map { $0.map { ($0.bytes + g - 1) / g } }

        // best[c]: least cost of the items so far within c units; pick[i][c]: item i's choice there.
        let inf = Double.infinity
        var best = [Double](repeating: 0, count: cap + 1)
        var next = [Double](repeating: inf, count: cap + 1)
        var pick = [[UInt8]](repeating: [], count: items.count)
        for (i, choices) in items.enumerated() {
            var p = [UInt8](repeating: 255, count: cap + 1)
            for c in 0...cap { next[c] = inf }
            for (k, ch) in choices.enumerated() {
                let u = units[i][k]
                guard u <= cap else { continue }
                best.withUnsafeBufferPointer { b in
                    next.withUnsafeMutableBufferPointer { n in
                        for c in u...cap {
                            let v = b[c - u] + ch.cost
                            if v < n[c] { n[c] = v; p[c] = UInt8(k) }
                        }
                    }
                }
            }
            pick[i] = p
            swap(&best, &next)
        }
        // Rounding sizes up to the grid can leave no plan even when the true sizes fit.
        guard best[cap].isFinite else {
            throw AllocationError.budgetTooSmall(budget: budget, smallest: units.reduce(0) { $0 + $1.min()! } * g)
        }
        // Walk back from the full budget (every finite cell was reached through a pick).
        var picks = [Int](repeating: 0, count: items.count)
        var c = cap
        for i in stride(from: items.count - 1, through: 0, by: -1) {
            let k = Int(pick[i][c])
            picks[i] = k
            c -= units[i][k]
        }
        let bytes = zip(items, picks).reduce(0) { $0 + $1.0[$1.1].bytes }
        let cost = zip(items, picks).reduce(0.0) { $0 + $1.0[$1.1].cost }
        return Solution(picks: picks, bytes: bytes, cost: cost, grid: g, exact: exact)
    }

    static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
}
