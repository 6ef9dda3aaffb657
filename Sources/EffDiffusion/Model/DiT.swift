import EffCore
import Foundation

/// Scratch buffers for one forward pass over `batch` images, allocated once (llama2.c's RunState).
public final class DiTState {
    public let batch: Int
    let x: UnsafeMutablePointer<Float>        // (batch·nTokens, dim) residual stream
    let h: UnsafeMutablePointer<Float>        // (batch·nTokens, dim) normed + modulated
    let qkv: UnsafeMutablePointer<Float>      // (batch·nTokens, 3·dim)
    let att: UnsafeMutablePointer<Float>      // (batch·nTokens, dim) attention output
    let mlp: UnsafeMutablePointer<Float>      // (batch·nTokens, hiddenDim)
    let patches: UnsafeMutablePointer<Float>  // (batch·nTokens, patchDim)
    let scores: UnsafeMutablePointer<Float>   // (nTokens)
    let tFeat: UnsafeMutablePointer<Float>    // (batch, freqDim)
    let c: UnsafeMutablePointer<Float>        // (batch, dim) conditioning, then silu(c)
    let tmp: UnsafeMutablePointer<Float>      // (batch, dim)
    let ada: UnsafeMutablePointer<Float>      // (batch, 6·dim)
    private let all: UnsafeMutableBufferPointer<Float>

    public init(config c: DiTConfig, batch: Int) {
        self.batch = batch
        let bt = batch * c.nTokens
        let sizes = [bt * c.dim, bt * c.dim, bt * 3 * c.dim, bt * c.dim, bt * c.hiddenDim, bt * c.patchDim,
                     c.nTokens, batch * c.freqDim, batch * c.dim, batch * c.dim, batch * 6 * c.dim]
        all = .allocate(capacity: sizes.reduce(0, +))
        all.initialize(repeating: 0)
        var p = all.baseAddress!
        var ptrs: [UnsafeMutablePointer<Float>] = []
        for s in sizes { ptrs.append(p); p += s }
        (x, h, qkv, att, mlp, patches, scores) = (ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], ptrs[5], ptrs[6])
        (tFeat, self.c, tmp, ada) = (ptrs[7], ptrs[8], ptrs[9], ptrs[10])
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

    public init(weights: DiTWeights) { self.weights = weights }

    /// x: (batch, channels, S, S) in [-1, 1]-ish; tau: (batch); labels: (batch), `numClasses` = null.
    /// Writes the output (batch, channels, S, S) to `out`.
    public func forward(x: UnsafePointer<Float>, tau: [Double], labels: [Int], state s: DiTState,
                        out: UnsafeMutablePointer<Float>) {
        let c = config, w = weights
        let B = s.batch, N = c.nTokens, D = c.dim, BT = B * N
        precondition(tau.count == B && labels.count == B, "DiT.forward: batch mismatch")

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
        for blk in w.blocks {
            linear(blk.ada, s.c, B, s.ada)                    // (B, 6·D)
            layerNormModulate(s.x, shiftChunk: 0, scaleChunk: 1, chunks: 6, mod: s.ada, out: s.h, batch: B)
            linear(blk.qkv, s.h, BT, s.qkv)
            attention(s)
            linear(blk.proj, s.att, BT, s.h)
            gatedAdd(s.h, gateChunk: 2, chunks: 6, mod: s.ada, into: s.x, batch: B)
            layerNormModulate(s.x, shiftChunk: 3, scaleChunk: 4, chunks: 6, mod: s.ada, out: s.h, batch: B)
            linear(blk.fc1, s.h, BT, s.mlp)
            geluTanh(s.mlp, BT * c.hiddenDim)
            linear(blk.fc2, s.mlp, BT, s.h)
            gatedAdd(s.h, gateChunk: 5, chunks: 6, mod: s.ada, into: s.x, batch: B)
        }

        // 4. Final layer: mod(LN(x), shift, scale) → W_f (patchDim) → unpatchify.
        linear(w.finalAda, s.c, B, s.ada)                      // (B, 2·D)
        layerNormModulate(s.x, shiftChunk: 0, scaleChunk: 1, chunks: 2, mod: s.ada, out: s.h, batch: B)
        linear(w.final, s.h, BT, s.patches)
        unpatchify(s.patches, into: out, batch: B)
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

    /// `y(n, out) = x(n, in) · W^T + b` through EffCore's kernel surface.
    func linear(_ l: DiTWeights.Linear, _ x: UnsafePointer<Float>, _ n: Int, _ y: UnsafeMutablePointer<Float>) {
        Kernels.matmul(l.w, x: x, nTokens: n, y: y)
        for t in 0..<n { VectorOps.add(l.b, into: y + t * l.rows, l.rows) }
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
        for i in 0..<n { x[i] = x[i] / (1 + Foundation.exp(-x[i])) }
    }

    /// GELU, tanh approximation: ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
    func geluTanh(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
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

    /// Full (non-causal) multi-head self-attention within each image:
    /// att[q] = Σ_k softmax_k(q·k/√headSize) v[k], per head, heads concatenated.
    func attention(_ s: DiTState) {
        let c = config, N = c.nTokens, D = c.dim, hs = c.headSize, stride = 3 * D
        let scale = 1 / Float(hs).squareRoot()
        for b in 0..<s.batch {
            let base = s.qkv + b * N * stride
            for head in 0..<c.nHeads {
                let keys = base + D + head * hs, values = base + 2 * D + head * hs
                for q in 0..<N {
                    Kernels.attentionScores(q: base + q * stride + head * hs, keys: keys, stride: stride,
                                            n: N, headSize: hs, scale: scale, scores: s.scores)
                    Kernels.softmax(s.scores, N)
                    let o = s.att + (b * N + q) * D + head * hs
                    o.initialize(repeating: 0, count: hs)
                    Kernels.attentionMix(probs: s.scores, values: values, stride: stride, n: N, headSize: hs, out: o)
                }
            }
        }
    }
}
