import CEffKernels
import EffCore
import Foundation

/// How one block computes its self-attention at one step (DiTFastAttn, TECHNIQUES.md §7).
///
/// "Attention module" means qkv projection, attention and output projection; the gate and
/// the residual add always run. Sharing across CFG needs the batch laid out as (conditional,
/// unconditional) pairs, as `GuidedDiT` does; in a batch of odd size it runs as full attention.
public enum DiTAttentionMode: UInt8, CaseIterable, Sendable {
    /// Full attention over all tokens.
    case full
    /// ASC: the attention module runs on the conditional rows only and is copied to the
    /// unconditional rows of each pair.
    case sharedCFG
    /// WA-RS: band attention (±window tokens in raster order) plus the residual
    /// O_full − O_window cached at this layer's last full step.
    case window
    /// WA-RS and ASC together.
    case windowSharedCFG
    /// AST: the previous step's attention module output, reused as is (no qkv, attention or
    /// projection at all).
    case sharedStep

    var sharesCFG: Bool { self == .sharedCFG || self == .windowSharedCFG }
    var isWindow: Bool { self == .window || self == .windowSharedCFG }
}

/// The per-step context of a forward pass: which step of the sampler this is and how each
/// block computes attention (nil = full attention everywhere, the reference model).
public struct DiTStepContext: Sendable {
    /// 0-based sampler step (model evaluation) index.
    public var step: Int
    /// One mode per block (`nLayers` entries), or nil for full attention in every block.
    public var modes: [DiTAttentionMode]?
    /// Per block: at a full (or sharedCFG) step, also compute the window output and cache
    /// the residual O_full − O_window for later window steps. Nil = never.
    public var storeResidual: [Bool]?
    /// Half-width of the attention band for window modes (tokens each side).
    public var window: Int
    /// False runs the step without touching the per-layer caches (calibration trials).
    public var updateCaches: Bool

    public init(step: Int = 0, modes: [DiTAttentionMode]? = nil, storeResidual: [Bool]? = nil, window: Int = 8,
                updateCaches: Bool = true) {
        self.step = step; self.modes = modes; self.storeResidual = storeResidual; self.window = window
        self.updateCaches = updateCaches
    }
}

/// Which kernels the forward pass uses: `.dit` (CEffKernels/dit_kernels.c: packed-panel GEMM,
/// vectorized GELU/SiLU, whole-head attention) or `.surface` (EffCore's general `Kernels`
/// surface and Swift loops, the implementation before the DiT kernels; kept for A/B runs).
public enum DiTKernelPath: String, CaseIterable, Sendable {
    case dit, surface
}

/// Scratch buffers and per-layer caches for forward passes over `batch` images, allocated
/// once (llama2.c's RunState).
public final class DiTState {
    public let batch: Int
    let x: UnsafeMutablePointer<Float>        // (batch·nTokens, dim) residual stream
    let h: UnsafeMutablePointer<Float>        // (batch·nTokens, dim) normed + modulated
    let qkv: UnsafeMutablePointer<Float>      // (batch·nTokens, 3·dim)
    let att: UnsafeMutablePointer<Float>      // (batch·nTokens, dim) attention output (pre-projection)
    let mlp: UnsafeMutablePointer<Float>      // (batch·nTokens, hiddenDim)
    let patches: UnsafeMutablePointer<Float>  // (batch·nTokens, patchDim)
    let scores: UnsafeMutablePointer<Float>   // (nTokens)
    let tFeat: UnsafeMutablePointer<Float>    // (batch, freqDim)
    let c: UnsafeMutablePointer<Float>        // (batch, dim) conditioning, then silu(c)
    let tmp: UnsafeMutablePointer<Float>      // (batch, dim)
    let ada: UnsafeMutablePointer<Float>      // (batch, 6·dim)
    let half: UnsafeMutablePointer<Float>     // (batch·nTokens, dim) conditional rows gathered (ASC)
    let proj: UnsafeMutablePointer<Float>     // (batch·nTokens, dim) attention module output
    let win: UnsafeMutablePointer<Float>      // (batch·nTokens, dim) window output at residual steps
    let attnScratch: UnsafeMutablePointer<Float>  // (batch·nHeads, scratch per head)
    let attnScratchStride: Int
    /// Per block: the last attention module output (post-projection; AST) and the residual
    /// O_full − O_window (pre-projection; WA-RS), each (batch·nTokens, dim).
    let prevAttn: [UnsafeMutablePointer<Float>]
    let residual: [UnsafeMutablePointer<Float>]
    /// Whether each block's caches hold a value (set by forward passes that update caches).
    public internal(set) var hasPrevAttn: [Bool]
    public internal(set) var hasResidual: [Bool]
    /// Steps that asked for a cache the state did not hold and ran full attention instead.
    public internal(set) var fallbacks = 0
    private let all: UnsafeMutableBufferPointer<Float>

    public init(config c: DiTConfig, batch: Int) {
        self.batch = batch
        let bt = batch * c.nTokens
        attnScratchStride = (eff_dit_attention_scratch_floats(Int32(c.nTokens), Int32(c.headSize)) + 15) / 16 * 16
        var sizes = [bt * c.dim, bt * c.dim, bt * 3 * c.dim, bt * c.dim, bt * c.hiddenDim, bt * c.patchDim,
                     c.nTokens, batch * c.freqDim, batch * c.dim, batch * c.dim, batch * 6 * c.dim,
                     bt * c.dim, bt * c.dim, bt * c.dim, batch * c.nHeads * attnScratchStride]
        sizes += Array(repeating: bt * c.dim, count: 2 * c.nLayers)
        all = .allocate(capacity: sizes.reduce(0, +))
        all.initialize(repeating: 0)
        var p = all.baseAddress!
        var ptrs: [UnsafeMutablePointer<Float>] = []
        for s in sizes { ptrs.append(p); p += s }
        (x, h, qkv, att, mlp, patches, scores) = (ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], ptrs[5], ptrs[6])
        (tFeat, self.c, tmp, ada) = (ptrs[7], ptrs[8], ptrs[9], ptrs[10])
        (half, proj, win, attnScratch) = (ptrs[11], ptrs[12], ptrs[13], ptrs[14])
        prevAttn = Array(ptrs[15..<(15 + c.nLayers)])
        residual = Array(ptrs[(15 + c.nLayers)...])
        hasPrevAttn = Array(repeating: false, count: c.nLayers)
        hasResidual = Array(repeating: false, count: c.nLayers)
    }

    /// Forgets every per-layer cache (a new image starts).
    public func resetCaches() {
        for l in hasPrevAttn.indices { hasPrevAttn[l] = false; hasResidual[l] = false }
        fallbacks = 0
    }

    deinit { all.deallocate() }
}

/// The class-conditional diffusion transformer (Peebles & Xie 2023, "DiT", adaLN-Zero blocks).
///
/// `forward` maps noisy images, time indices and class ids to the network output (v or ε,
/// per `config.prediction`) for a whole batch; classifier-free guidance runs the conditional
/// and unconditional rows as one batch of 2.
public struct DiT: Sendable {
    public let weights: DiTWeights
    public var config: DiTConfig { weights.config }
    /// The kernels the forward pass runs on.
    public var kernels: DiTKernelPath = .dit
    /// Integer block linears, W8A8 or mixed (nil: f32).
    public var quant: DiTQuant?
    /// Records the input range of every block linear (static W8A8 calibration).
    public var rangeRecorder: DiTActivationRanges?

    public init(weights: DiTWeights, kernels: DiTKernelPath = .dit, quant: DiTQuant? = nil) {
        self.weights = weights
        self.kernels = kernels
        self.quant = quant
    }

    /// x: (batch, channels, S, S) in [-1, 1]-ish; tau: (batch); labels: (batch), `numClasses` = null.
    /// Writes the output (batch, channels, S, S) to `out`. `context` names the step and the
    /// attention mode of every block (default: full attention, caches updated).
    public func forward(x: UnsafePointer<Float>, tau: [Double], labels: [Int], state s: DiTState,
                        out: UnsafeMutablePointer<Float>, context: DiTStepContext = DiTStepContext()) {
        let c = config, w = weights
        let B = s.batch, N = c.nTokens, D = c.dim, BT = B * N
        precondition(tau.count == B && labels.count == B, "DiT.forward: batch mismatch")
        precondition(context.modes.map { $0.count == c.nLayers } ?? true, "DiT.forward: one mode per block")

        // 1. Patchify and embed: tok = W_pe · patch + b + pos.
        patchify(x, into: s.patches, batch: B)
        linear(w.patchEmbed, s.patches, BT, s.x)
        for t in 0..<BT { VectorOps.add(w.posEmbed + (t % N) * D, into: s.x + t * D, D) }

        // 2. Conditioning c = MLP(sinusoid(τ)) + E[y]; the blocks consume silu(c).
        timestepFeatures(tau, into: s.tFeat)
        linear(w.tFc1, s.tFeat, B, s.tmp)
        silu(s.tmp, B * D)
        linear(w.tFc2, s.tmp, B, s.c)
        for b in 0..<B {
            let y = min(max(labels[b], 0), c.numClasses)
            VectorOps.add(w.classEmbed + y * D, into: s.c + b * D, D)
        }
        silu(s.c, B * D)

        // 3. Blocks: x += gate1 · Attn(mod(LN(x), shift1, scale1)); x += gate2 · MLP(mod(LN(x), ...)).
        for (l, blk) in w.blocks.enumerated() {
            linear(blk.ada, s.c, B, s.ada, block: (l, .ada))  // (B, 6·D)
            layerNormModulate(s.x, shiftChunk: 0, scaleChunk: 1, chunks: 6, mod: s.ada, out: s.h, batch: B)
            attentionModule(layer: l, blk, s, context: context)  // s.proj = Attn(s.h)
            gatedAdd(s.proj, gateChunk: 2, chunks: 6, mod: s.ada, into: s.x, batch: B)
            layerNormModulate(s.x, shiftChunk: 3, scaleChunk: 4, chunks: 6, mod: s.ada, out: s.h, batch: B)
            linear(blk.fc1, s.h, BT, s.mlp, block: (l, .fc1))
            geluTanh(s.mlp, BT * c.hiddenDim)
            linear(blk.fc2, s.mlp, BT, s.h, block: (l, .fc2))
            gatedAdd(s.h, gateChunk: 5, chunks: 6, mod: s.ada, into: s.x, batch: B)
        }

        // 4. Final layer: mod(LN(x), shift, scale) → W_f (patchDim) → unpatchify.
        linear(w.finalAda, s.c, B, s.ada)                      // (B, 2·D)
        layerNormModulate(s.x, shiftChunk: 0, scaleChunk: 1, chunks: 2, mod: s.ada, out: s.h, batch: B)
        linear(w.final, s.h, BT, s.patches)
        unpatchify(s.patches, into: out, batch: B)
    }

    // MARK: - The attention module under a DiTFastAttn mode

    /// s.proj = W_o · Attn(W_qkv · s.h) for block `l` under the context's mode for it:
    /// - full: attention over all tokens; with `storeResidual`, also the band output, caching
    ///   R = O_full − O_window (pre-projection).
    /// - window: O_window + R (R from the last full step of this block).
    /// - sharedCFG variants: the module runs on the conditional rows gathered into `s.half`
    ///   and its output is written to both rows of every pair.
    /// - sharedStep: the cached output of the previous step.
    /// With `updateCaches`, the output is cached for a later sharedStep.
    func attentionModule(layer l: Int, _ blk: DiTWeights.Block, _ s: DiTState, context: DiTStepContext) {
        let c = config, N = c.nTokens, D = c.dim, B = s.batch
        var mode = context.modes?[l] ?? .full
        if mode.sharesCFG && B % 2 != 0 { mode = mode == .sharedCFG ? .full : .window }
        if mode == .sharedStep && !s.hasPrevAttn[l] || mode.isWindow && !s.hasResidual[l] {
            s.fallbacks += 1
            mode = .full
        }
        let rowBytes = N * D
        if mode == .sharedStep {
            s.proj.update(from: s.prevAttn[l], count: B * rowBytes)
            return
        }
        let storeResidual = context.updateCaches && !mode.isWindow && (context.storeResidual?[l] ?? false)
        // Rows the module runs on: all B, or the conditional row of each pair gathered.
        let rows = mode.sharesCFG ? B / 2 : B
        let input: UnsafeMutablePointer<Float>
        if mode.sharesCFG {
            for p in 0..<rows { (s.half + p * rowBytes).update(from: s.h + 2 * p * rowBytes, count: rowBytes) }
            input = s.half
        } else {
            input = s.h
        }
        let batchRow = { (r: Int) -> Int in mode.sharesCFG ? 2 * r : r }
        linear(blk.qkv, input, rows * N, s.qkv, block: (l, .qkv))
        if mode.isWindow {
            attention(s, rows: rows, window: context.window, into: s.att)
            for r in 0..<rows {
                VectorOps.add(s.residual[l] + batchRow(r) * rowBytes, into: s.att + r * rowBytes, rowBytes)
            }
        } else {
            attention(s, rows: rows, window: -1, into: s.att)
            if storeResidual {
                attention(s, rows: rows, window: context.window, into: s.win)
                for r in 0..<rows {
                    let res = s.residual[l] + batchRow(r) * rowBytes
                    let full = s.att + r * rowBytes, win = s.win + r * rowBytes
                    for i in 0..<rowBytes { res[i] = full[i] - win[i] }
                    if mode.sharesCFG { (res + rowBytes).update(from: res, count: rowBytes) }
                }
                s.hasResidual[l] = true
            }
        }
        if mode.sharesCFG {
            linear(blk.proj, s.att, rows * N, s.half, block: (l, .proj))
            for p in 0..<rows {
                (s.proj + 2 * p * rowBytes).update(from: s.half + p * rowBytes, count: rowBytes)
                (s.proj + (2 * p + 1) * rowBytes).update(from: s.half + p * rowBytes, count: rowBytes)
            }
        } else {
            linear(blk.proj, s.att, B * N, s.proj, block: (l, .proj))
        }
        if context.updateCaches {
            s.prevAttn[l].update(from: s.proj, count: B * rowBytes)
            s.hasPrevAttn[l] = true
        }
    }

    // MARK: - Pieces, in the order the forward pass uses them

    /// (B, C, S, S) → (B·N, C·p·p), token = gy·grid + gx, features in (c, py, px) order.
    func patchify(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, batch: Int) {
        let c = config, p = c.patch, g = c.grid, S = c.imageSize, C = c.channels
        for b in 0..<batch {
            for gy in 0..<g { for gx in 0..<g {
                var o = out + ((b * g + gy) * g + gx) * c.patchDim
                for ch in 0..<C { for py in 0..<p { for px in 0..<p {
                    o.pointee = x[((b * C + ch) * S + gy * p + py) * S + gx * p + px]
                    o += 1
                } } }
            } }
        }
    }

    /// Inverse of `patchify`.
    func unpatchify(_ y: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, batch: Int) {
        let c = config, p = c.patch, g = c.grid, S = c.imageSize, C = c.channels
        for b in 0..<batch {
            for gy in 0..<g { for gx in 0..<g {
                var i = y + ((b * g + gy) * g + gx) * c.patchDim
                for ch in 0..<C { for py in 0..<p { for px in 0..<p {
                    out[((b * C + ch) * S + gy * p + py) * S + gx * p + px] = i.pointee
                    i += 1
                } } }
            } }
        }
    }

    /// `y(n, out) = x(n, in) · W^T + b`: the packed-panel GEMM split over the pool's threads
    /// by 16-row panels, or EffCore's kernel surface plus a bias loop (`.surface`).
    /// `y = W x + b` for `n` tokens; `block` names a transformer block's matrix, which the
    /// integer weights (when set) replace and the range recorder watches.
    func linear(_ l: DiTWeights.Linear, _ x: UnsafePointer<Float>, _ n: Int, _ y: UnsafeMutablePointer<Float>,
                block: (layer: Int, matrix: DiTBlockMatrix)? = nil) {
        if let block {
            rangeRecorder?.observe(layer: block.layer, block.matrix, x: x, count: n * l.cols)
            if let quant, quant.apply(layer: block.layer, block.matrix, bias: l.b, x: x, n: n, y: y) { return }
        }
        guard kernels == .dit else {
            Kernels.matmul(l.w, x: x, nTokens: n, y: y)
            for t in 0..<n { VectorOps.add(l.b, into: y + t * l.rows, l.rows) }
            return
        }
        let panels = (l.rows + 15) / 16
        let rows = Int32(l.rows), cols = Int32(l.cols)
        let pool = ComputePool.shared
        // Below ~64k multiply-adds a fork-join costs more than it saves.
        if n * l.rows * l.cols < 65_536 || pool.threadCount == 1 || panels == 1 {
            eff_dit_gemm_f32(l.packed, l.b, rows, cols, 0, Int32(panels), x, cols, Int32(n), y, rows)
            return
        }
        pool.exclusive {
            pool.forEachChunk(panels, chunksPerThread: 2) { r in
                eff_dit_gemm_f32(l.packed, l.b, rows, cols, Int32(r.lowerBound), Int32(r.upperBound),
                                 x, cols, Int32(n), y, rows)
            }
        }
    }

    /// [cos(τ·f_i), sin(τ·f_i)], f_i = 10000^(−i/half), computed in f32 like the PyTorch model.
    func timestepFeatures(_ tau: [Double], into out: UnsafeMutablePointer<Float>) {
        let half = config.freqDim / 2
        let lnMax = Float(log(10000.0))
        for (b, t) in tau.enumerated() {
            for i in 0..<half {
                let f = Foundation.exp(-lnMax * Float(i) / Float(half))
                let a = Float(t) * f
                out[b * config.freqDim + i] = Foundation.cos(a)
                out[b * config.freqDim + half + i] = Foundation.sin(a)
            }
        }
    }

    func silu(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        if kernels == .dit { eff_dit_silu_f32(x, Int32(n)); return }
        for i in 0..<n { x[i] = x[i] / (1 + Foundation.exp(-x[i])) }
    }

    /// GELU, tanh approximation: ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
    func geluTanh(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        if kernels == .dit { eff_dit_gelu_tanh_f32(x, Int32(n)); return }
        let k: Float = 0.797_884_560_8
        for i in 0..<n {
            let v = x[i]
            x[i] = 0.5 * v * (1 + Foundation.tanh(k * (v + 0.044715 * v * v * v)))
        }
    }

    /// out = LN(x)·(1 + scale_b) + shift_b per token, LN without affine; shift/scale are
    /// chunks of the per-image modulation vector `mod` (batch, chunks·dim).
    func layerNormModulate(_ x: UnsafePointer<Float>, shiftChunk: Int, scaleChunk: Int, chunks: Int,
                           mod: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, batch: Int) {
        let D = config.dim, N = config.nTokens, eps = config.layerNormEps
        for b in 0..<batch {
            let shift = mod + (b * chunks + shiftChunk) * D, scale = mod + (b * chunks + scaleChunk) * D
            for t in 0..<N {
                let row = x + (b * N + t) * D, o = out + (b * N + t) * D
                var mean: Float = 0
                for i in 0..<D { mean += row[i] }
                mean /= Float(D)
                var v: Float = 0
                for i in 0..<D { let d = row[i] - mean; v += d * d }
                let r = 1 / (v / Float(D) + eps).squareRoot()
                for i in 0..<D { o[i] = (row[i] - mean) * r * (1 + scale[i]) + shift[i] }
            }
        }
    }

    /// x += gate_b ⊙ y per token.
    func gatedAdd(_ y: UnsafePointer<Float>, gateChunk: Int, chunks: Int, mod: UnsafePointer<Float>,
                  into x: UnsafeMutablePointer<Float>, batch: Int) {
        let D = config.dim, N = config.nTokens
        for b in 0..<batch {
            let gate = mod + (b * chunks + gateChunk) * D
            for t in 0..<N {
                let yr = y + (b * N + t) * D, xr = x + (b * N + t) * D
                for i in 0..<D { xr[i] += gate[i] * yr[i] }
            }
        }
    }

    /// Multi-head self-attention within each of the first `rows` images of `s.qkv`:
    /// out[q] = Σ_k softmax_k(q·k/√headSize) v[k] per head, heads concatenated; keys limited
    /// to |k − q| ≤ window when window ≥ 0 (1-D band over raster order).
    func attention(_ s: DiTState, rows: Int, window: Int, into out: UnsafeMutablePointer<Float>) {
        let c = config, N = c.nTokens, D = c.dim, hs = c.headSize, H = c.nHeads
        let scale = 1 / Float(hs).squareRoot()
        if kernels == .surface && window < 0 { return attentionSurface(s, rows: rows, into: out) }
        let qkv = s.qkv, scratch = s.attnScratch, stride = s.attnScratchStride
        let task = { (i: Int) in
            let b = i / H, head = i % H
            eff_dit_attention_head(qkv + b * N * 3 * D, Int32(N), Int32(D), Int32(hs), Int32(head), scale,
                                   Int32(window), out + b * N * D, Int32(D), scratch + i * stride)
        }
        let pool = ComputePool.shared
        if pool.threadCount == 1 || rows * H == 1 {
            for i in 0..<(rows * H) { task(i) }
        } else {
            pool.exclusive { pool.run(chunks: rows * H) { i, _ in task(i) } }
        }
    }

    /// Full attention through EffCore's kernel surface, one query at a time (`.surface`).
    func attentionSurface(_ s: DiTState, rows: Int, into out: UnsafeMutablePointer<Float>) {
        let c = config, N = c.nTokens, D = c.dim, hs = c.headSize, stride = 3 * D
        let scale = 1 / Float(hs).squareRoot()
        for b in 0..<rows {
            let base = s.qkv + b * N * stride
            for head in 0..<c.nHeads {
                let keys = base + D + head * hs, values = base + 2 * D + head * hs
                for q in 0..<N {
                    Kernels.attentionScores(q: base + q * stride + head * hs, keys: keys, stride: stride,
                                            n: N, headSize: hs, scale: scale, scores: s.scores)
                    Kernels.softmax(s.scores, N)
                    let o = out + (b * N + q) * D + head * hs
                    o.initialize(repeating: 0, count: hs)
                    Kernels.attentionMix(probs: s.scores, values: values, stride: stride, n: N, headSize: hs, out: o)
                }
            }
        }
    }
}
