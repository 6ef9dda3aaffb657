import Foundation

/// MoA's plan search at this model's scale: the candidate rules, their loss from the
/// profiles, and an exact choice of one rule per KV head under mean-density budgets.
///
/// The problem is a multiple-choice knapsack with one constraint per constrained length:
/// minimise sum over heads of sum over profile lengths of `weight[L] * loss_L(rule)`
/// subject to `mean over heads of density_N(rule) <= budget` for every constrained `N`.
/// It is solved by branch and bound: dominated rules are dropped, a Lagrangian relaxation
/// (subgradient over the multipliers) gives both a starting plan (repaired to
/// feasibility, then improved one head at a time) and the bound that prunes the depth-first
/// search. When the search finishes within `nodeLimit` nodes the plan is optimal
/// (`gap == 0`); otherwise the best plan found is returned with its proven gap.
public enum MoASearch {
    /// The candidate set: alpha from -`alphaMin` to `alphaMax` in `alphaStep`, beta in
    /// 0, 1/8, ..., 1 (MoA's grid, alpha step scaled to this model), kept when the span
    /// is at least `minSpan` at the shortest length and fits in the longest ones.
    public static func candidates(shortest: Int, longest: Int, alphaMin: Int = 512, alphaMax: Int = 2048,
                                  alphaStep: Int = 128, minSpan: Int = 64) -> [MoARule] {
        var out: [MoARule] = []
        for b in 0...8 {
            let beta = Double(b) / 8
            var alpha = -alphaMin
            while alpha <= alphaMax {
                let short = alpha + Int(beta * Double(shortest))
                let long = alpha + Int(beta * Double(longest))
                if short >= minSpan && long <= longest { out.append(MoARule(alpha: alpha, beta: beta)) }
                alpha += alphaStep
            }
        }
        return out
    }

    /// One head's options: loss and density per constrained length for each rule.
    public struct Options: Sendable {
        public var rules: [MoARule]
        public var loss: [Double]
        /// densities[c][k] at constrained length k.
        public var densities: [[Double]]
    }

    /// The result of `solve`.
    public struct Solution: Sendable {
        /// Index into each head's `Options.rules`.
        public var choice: [Int]
        public var objective: Double
        /// Lower bound on the optimum (Lagrangian / search), and the relative gap.
        public var bound: Double
        public var gap: Double { objective <= 0 ? 0 : max(0, (objective - bound) / objective) }
        public var nodes: Int
        public var optimal: Bool
    }

    /// Loss and densities of every candidate for every head slot.
    public static func options(profiles: [MoAImportance], weights: [Double], candidates: [MoARule], lengths: [Int],
                               sinkTokens: Int, minSpan: Int) -> [Options] {
        guard let first = profiles.first else { return [] }
        let slots = first.layers * first.kvHeads
        return (0..<slots).map { slot in
            var loss: [Double] = [], dens: [[Double]] = []
            for rule in candidates {
                var l = 0.0
                for (p, w) in zip(profiles, weights) where w != 0 {
                    l += w * p.loss(slot: slot, rule: rule, minSpan: minSpan, sinkBlocks: max(1, sinkTokens / p.blockSize))
                }
                loss.append(l)
                dens.append(lengths.map { n in Double(min(n, rule.span(at: n, minimum: minSpan) + sinkTokens)) / Double(n) })
            }
            return Options(rules: candidates, loss: loss, densities: dens)
        }
    }

    /// Exact multiple-choice knapsack: one option per head, `sum densities[k] <= capacity[k]`.
    /// Returns nil when no choice fits.
    public static func solve(_ heads: [Options], capacity: [Double], nodeLimit: Int = 2_000_000) -> Solution? {
        let k = capacity.count
        let eps = 1e-9
        // Drop dominated options (no better loss, no lower density anywhere).
        let kept: [[Int]] = heads.map { o in
            let idx = Array(o.loss.indices)
            return idx.filter { c in
                !idx.contains { d in
                    d != c && o.loss[d] <= o.loss[c] + eps && (0..<k).allSatisfy { o.densities[d][$0] <= o.densities[c][$0] + eps }
                        && (o.loss[d] < o.loss[c] - eps || (0..<k).contains { o.densities[d][$0] < o.densities[c][$0] - eps }
                            || d < c)
                }
            }
        }
        // Feasibility: the lowest density of each head at each length must fit.
        for j in 0..<k {
            let least = zip(heads, kept).reduce(0.0) { acc, hk in acc + hk.1.map { hk.0.densities[$0][j] }.min()! }
            if least > capacity[j] + eps { return nil }
        }
        func lagrangian(_ lambda: [Double]) -> (value: Double, choice: [Int], use: [Double]) {
            var value = 0.0, use = [Double](repeating: 0, count: k), choice: [Int] = []
            for (o, opts) in zip(heads, kept) {
                var best = opts[0], bestV = Double.infinity
                for c in opts {
                    var v = o.loss[c]
                    for j in 0..<k { v += lambda[j] * o.densities[c][j] }
                    if v < bestV { bestV = v; best = c }
                }
                value += bestV; choice.append(best)
                for j in 0..<k { use[j] += o.densities[best][j] }
            }
            for j in 0..<k { value -= lambda[j] * capacity[j] }
            return (value, choice, use)
        }
        func objective(_ choice: [Int]) -> Double { zip(heads, choice).reduce(0) { $0 + $1.0.loss[$1.1] } }
        func usage(_ choice: [Int]) -> [Double] {
            var u = [Double](repeating: 0, count: k)
            for (o, c) in zip(heads, choice) { for j in 0..<k { u[j] += o.densities[c][j] } }
            return u
        }
        func feasible(_ u: [Double]) -> Bool { (0..<k).allSatisfy { u[$0] <= capacity[$0] + eps } }

        // Repair a choice to feasibility (each step the move that removes the most total
        // violation per unit of loss added; the violation strictly falls, so this ends),
        // then improve it one head at a time while that stays feasible.
        func violation(_ u: [Double]) -> Double { (0..<k).reduce(0.0) { $0 + max(0, u[$1] - capacity[$1]) } }
        func repairAndImprove(_ start: [Int]) -> [Int]? {
            var choice = start
            var u = usage(choice)
            while !feasible(u) {
                let now = violation(u)
                var best: (h: Int, c: Int, score: Double)?
                for (h, o) in heads.enumerated() {
                    let cur = choice[h]
                    for c in kept[h] where c != cur {
                        var after = 0.0
                        for j in 0..<k { after += max(0, u[j] + o.densities[c][j] - o.densities[cur][j] - capacity[j]) }
                        let relief = now - after
                        guard relief > eps else { continue }
                        let score = max(0, o.loss[c] - o.loss[cur]) / relief
                        if best == nil || score < best!.score { best = (h, c, score) }
                    }
                }
                guard let b = best else { return nil }
                for j in 0..<k { u[j] += heads[b.h].densities[b.c][j] - heads[b.h].densities[choice[b.h]][j] }
                choice[b.h] = b.c
            }
            guard feasible(u) else { return nil }
            var improved = true
            while improved {
                improved = false
                for (h, o) in heads.enumerated() {
                    let cur = choice[h]
                    var bestC = cur
                    for c in kept[h] where o.loss[c] < o.loss[bestC] - eps {
                        if (0..<k).allSatisfy({ u[$0] - o.densities[cur][$0] + o.densities[c][$0] <= capacity[$0] + eps }) { bestC = c }
                    }
                    if bestC != cur {
                        for j in 0..<k { u[j] += o.densities[bestC][j] - o.densities[cur][j] }
                        choice[h] = bestC
                        improved = true
                    }
                }
            }
            return choice
        }

        // Subgradient ascent on the multipliers.
        var lambda = [Double](repeating: 0, count: k)
        var bestBound = -Double.infinity, bestLambda = lambda
        var incumbent: [Int]?, incumbentValue = Double.infinity
        let scale = max(1e-6, heads.reduce(0.0) { acc, o in acc + (o.loss.max()! - o.loss.min()!) }) / Double(max(1, heads.count))
        var step = scale
        for iter in 0..<400 {
            let (value, choice, use) = lagrangian(lambda)
            if value > bestBound { bestBound = value; bestLambda = lambda }
            if iter % 20 == 0 || feasible(use), let fixed = repairAndImprove(choice) {
                let v = objective(fixed)
                if v < incumbentValue { incumbentValue = v; incumbent = fixed }
            }
            let g = (0..<k).map { use[$0] - capacity[$0] }
            let norm = g.reduce(0) { $0 + $1 * $1 }
            if norm < 1e-12 { break }
            for j in 0..<k { lambda[j] = max(0, lambda[j] + step * g[j] / norm.squareRoot()) }
            step *= 0.985
        }
        if incumbent == nil {
            // No repaired relaxation fits: start from the least-violating choice per head.
            incumbent = repairAndImprove(kept.map { $0[0] })
            if let i = incumbent { incumbentValue = objective(i) }
        }
        guard var best = incumbent else { return nil }

        // Branch and bound with the best multipliers' relaxation as the bound.
        let lam = bestLambda
        let order = Array(heads.indices)
        let sorted: [[Int]] = order.map { h in
            kept[h].sorted { a, b in
                let va = heads[h].loss[a] + (0..<k).reduce(0.0) { $0 + lam[$1] * heads[h].densities[a][$1] }
                let vb = heads[h].loss[b] + (0..<k).reduce(0.0) { $0 + lam[$1] * heads[h].densities[b][$1] }
                return va < vb
            }
        }
        // Suffix sums of each head's relaxed minimum and least density per length.
        var relaxedSuffix = [Double](repeating: 0, count: heads.count + 1)
        var leastSuffix = [[Double]](repeating: [Double](repeating: 0, count: k), count: heads.count + 1)
        for i in stride(from: heads.count - 1, through: 0, by: -1) {
            let h = order[i]
            let first = sorted[i][0]
            relaxedSuffix[i] = relaxedSuffix[i + 1] + heads[h].loss[first]
                + (0..<k).reduce(0.0) { $0 + lam[$1] * heads[h].densities[first][$1] }
            for j in 0..<k {
                leastSuffix[i][j] = leastSuffix[i + 1][j] + kept[h].map { heads[h].densities[$0][j] }.min()!
            }
        }
        var nodes = 0
        var complete = true
        var current = best
        var used = [Double](repeating: 0, count: k)
        func dfs(_ i: Int, _ lossSoFar: Double) {
            if nodes >= nodeLimit { complete = false; return }
            nodes += 1
            if i == heads.count {
                if lossSoFar < incumbentValue - eps { incumbentValue = lossSoFar; best = current }
                return
            }
            var bound = lossSoFar + relaxedSuffix[i]
            for j in 0..<k { bound -= lam[j] * (capacity[j] - used[j]) }
            if bound >= incumbentValue - eps { return }
            let h = order[i]
            for c in sorted[i] {
                nodes += 1
                if nodes >= nodeLimit { complete = false; return }
                var fits = true
                for j in 0..<k where used[j] + heads[h].densities[c][j] + leastSuffix[i + 1][j] > capacity[j] + eps { fits = false; break }
                guard fits else { continue }
                for j in 0..<k { used[j] += heads[h].densities[c][j] }
                current[h] = c
                dfs(i + 1, lossSoFar + heads[h].loss[c])
                for j in 0..<k { used[j] -= heads[h].densities[c][j] }
                if !complete { return }
            }
        }
        dfs(0, 0)
        let bound = complete ? incumbentValue : bestBound
        return Solution(choice: best, objective: incumbentValue, bound: bound, nodes: nodes, optimal: complete)
    }
}
