import Foundation

/// A diffusion model as the DiTFastAttn search sees it: a sampler run over a fixed batch of
/// calibration inputs that can evaluate the current step under any per-block strategies,
/// either as a trial (caches and trajectory untouched) or committed (the trajectory moves on
/// and caches update, as at inference).
public protocol FastAttnCalibrationTarget {
    var layers: Int { get }
    var steps: Int { get }
    /// The model output for the whole calibration batch at `step` (the current step) under
    /// `strategies` (one per block). `commit` advances the sampler to the next step.
    mutating func output(step: Int, strategies: [FastAttnStrategy], commit: Bool) -> [Float]
}

/// The DiTFastAttn greedy plan search (arXiv 2406.08552, §3.4; TECHNIQUES.md §7).
///
/// Step 0 is full attention. At each later step the reference output is the step run with
/// full attention in every block (on the trajectory the plan so far produced); then block by
/// block, in order, the candidates AST, WA-RS+ASC, WA-RS, ASC are tried and the first whose
/// output error stays below δ·(l+1)/L is kept (else full attention). Choices for earlier blocks
/// stay applied while later ones are tried. One plan serves every sample.
public struct FastAttnSearch {
    public var delta: Double
    /// ε of the error metric.
    public var epsilon: Float = 1e-6

    public init(delta: Double) { self.delta = delta }

    /// The authors' output error: mean over elements of |a − b| / (max(|a|, |b|) + ε), each
    /// term clipped to [0, 10] as in the authors' code (with magnitudes in the denominator a
    /// term cannot pass 2, so the clip never binds here).
    public static func relativeError(_ a: [Float], _ b: [Float], epsilon: Float = 1e-6) -> Double {
        precondition(a.count == b.count && !a.isEmpty, "relativeError: shape mismatch")
        var sum = 0.0
        for i in a.indices {
            let d = abs(a[i] - b[i]) / (max(abs(a[i]), abs(b[i])) + epsilon)
            sum += Double(min(10, d))
        }
        return sum / Double(a.count)
    }

    /// What the search did: the plan grid, the error each accepted cell produced, and how many
    /// trial evaluations it ran.
    public struct Result: Sendable {
        public var strategies: [[FastAttnStrategy]]
        /// (steps, layers): output error after the block's choice (0 at full cells before any change).
        public var errors: [[Double]]
        public var trials: Int
    }

    public func run<T: FastAttnCalibrationTarget>(_ target: inout T, progress: (Int, Int) -> Void = { _, _ in }) -> Result {
        let L = target.layers, S = target.steps
        let allFull = Array(repeating: FastAttnStrategy.full, count: L)
        var plan: [[FastAttnStrategy]] = [], errors: [[Double]] = []
        var trials = 0
        for step in 0..<S {
            progress(step, S)
            var chosen = allFull
            var errRow = Array(repeating: 0.0, count: L)
            if step > 0 {
                let reference = target.output(step: step, strategies: allFull, commit: false)
                trials += 1
                for l in 0..<L {
                    let bound = delta * Double(l + 1) / Double(L)
                    for candidate in FastAttnStrategy.searchOrder {
                        chosen[l] = candidate
                        let err = Self.relativeError(target.output(step: step, strategies: chosen, commit: false),
                                                     reference, epsilon: epsilon)
                        trials += 1
                        if err < bound { errRow[l] = err; break }
                        chosen[l] = .full
                    }
                }
            }
            _ = target.output(step: step, strategies: chosen, commit: true)
            plan.append(chosen)
            errors.append(errRow)
        }
        return Result(strategies: plan, errors: errors, trials: trials)
    }
}
