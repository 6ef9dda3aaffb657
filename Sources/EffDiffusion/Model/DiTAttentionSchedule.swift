import Foundation

/// A DiTFastAttn plan bound to one model: the attention mode of every (step, block), the
/// window half-width, and where the window residual must be computed (TECHNIQUES.md §7).
///
/// Residuals are computed only at full (or sharedCFG) steps that a later window step of the
/// same block reads before that block's next full step, as in the authors' code.
public struct DiTAttentionSchedule: Equatable, Sendable {
    /// (steps, nLayers) modes.
    public let modes: [[DiTAttentionMode]]
    public let window: Int
    /// (steps, nLayers): compute and cache O_full − O_window at this step.
    public let storeResidual: [[Bool]]

    public var steps: Int { modes.count }
    public var layers: Int { modes.first?.count ?? 0 }

    /// Why a plan cannot run on a model; the message names the step and block.
    public enum Invalid: Error, Equatable, CustomStringConvertible {
        case empty
        case ragged(step: Int, count: Int, expected: Int)
        case needsPriorStep(step: Int, layer: Int, mode: String)
        case badWindow(Int)

        public var description: String {
            switch self {
            case .empty: return "the plan has no steps"
            case let .ragged(s, n, e): return "step \(s) has \(n) layer modes, the model has \(e) blocks"
            case let .needsPriorStep(s, l, m):
                return "step \(s) block \(l): '\(m)' reuses an earlier full-attention step of that block, and there is none"
            case let .badWindow(w): return "window \(w) must be at least 1"
            }
        }
    }

    /// Validates `modes` for a model with `layers` blocks: rectangular, and every sharedStep
    /// or window mode has an earlier step of its block that computed attention (full or
    /// sharedCFG for window; any computing mode for sharedStep).
    public init(modes: [[DiTAttentionMode]], window: Int, layers: Int) throws {
        guard !modes.isEmpty else { throw Invalid.empty }
        guard window >= 1 else { throw Invalid.badWindow(window) }
        for (s, row) in modes.enumerated() where row.count != layers {
            throw Invalid.ragged(step: s, count: row.count, expected: layers)
        }
        var store = Array(repeating: Array(repeating: false, count: layers), count: modes.count)
        for l in 0..<layers {
            var lastFull: Int? = nil
            for s in modes.indices {
                switch modes[s][l] {
                case .full, .sharedCFG: lastFull = s
                case .window, .windowSharedCFG:
                    guard let f = lastFull else { throw Invalid.needsPriorStep(step: s, layer: l, mode: "\(modes[s][l])") }
                    store[f][l] = true
                case .sharedStep:
                    if s == 0 { throw Invalid.needsPriorStep(step: s, layer: l, mode: "sharedStep") }
                }
            }
        }
        self.modes = modes
        self.window = window
        self.storeResidual = store
    }

    /// The same mode in every block at every step (full = the reference model).
    public static func uniform(_ mode: DiTAttentionMode, steps: Int, layers: Int, window: Int = 8) throws -> DiTAttentionSchedule {
        try DiTAttentionSchedule(modes: Array(repeating: Array(repeating: mode, count: layers), count: steps),
                                 window: window, layers: layers)
    }

    public func context(step: Int) -> DiTStepContext {
        DiTStepContext(step: step, modes: modes[step], storeResidual: storeResidual[step], window: window)
    }

    /// How often each mode occurs over all (step, block) cells.
    public var histogram: [DiTAttentionMode: Int] {
        var h: [DiTAttentionMode: Int] = [:]
        for row in modes { for m in row { h[m, default: 0] += 1 } }
        return h
    }

    /// Multiply-adds of the attention modules for one guided image (a CFG pair of rows) over
    /// the whole plan: `core` counts QKᵀ and PV only, `module` adds the qkv and output
    /// projections. Residual steps add the band attention they compute.
    public func attentionMACs(config c: DiTConfig) -> (core: Int, module: Int) {
        DiTAttentionSchedule.macs(modes: modes, storeResidual: storeResidual, window: window, config: c)
    }

    /// The same count for the reference (full attention at every one of `steps` steps).
    public static func fullAttentionMACs(steps: Int, config c: DiTConfig) -> (core: Int, module: Int) {
        let modes = Array(repeating: Array(repeating: DiTAttentionMode.full, count: c.nLayers), count: steps)
        let store = Array(repeating: Array(repeating: false, count: c.nLayers), count: steps)
        return macs(modes: modes, storeResidual: store, window: 1, config: c)
    }

    static func macs(modes: [[DiTAttentionMode]], storeResidual: [[Bool]], window: Int,
                     config c: DiTConfig) -> (core: Int, module: Int) {
        let N = c.nTokens, D = c.dim
        // Keys each query sees in the band, summed over queries (clipped at the image edges).
        let bandPairs = (0..<N).reduce(0) { $0 + min(N, $1 + window + 1) - max(0, $1 - window) }
        let fullCore = 2 * N * N * D, bandCore = 2 * bandPairs * D   // QKᵀ + PV, all heads, one row
        let proj = N * 4 * D * D                                    // qkv (3·D²) + output (D²) per token
        var core = 0, module = 0
        for (s, row) in modes.enumerated() {
            for (l, m) in row.enumerated() {
                let rows = m == .sharedCFG || m == .windowSharedCFG ? 1 : 2
                var k: Int
                switch m {
                case .full, .sharedCFG: k = fullCore + (storeResidual[s][l] ? bandCore : 0)
                case .window, .windowSharedCFG: k = bandCore
                case .sharedStep: k = 0
                }
                core += rows * k
                module += m == .sharedStep ? 0 : rows * (k + proj)
            }
        }
        return (core, module)
    }
}
