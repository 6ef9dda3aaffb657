/// The kernel surface the models call: matmul, norms, activations, RoPE, attention pieces.
///
/// Each entry point picks its implementation once per call. Today every entry runs the
/// reference loop in `KernelsReference.swift` unless a fast path (`FastKernels`: the C
/// target CEffKernels on `ComputePool`) exists for it on this CPU; fast paths are tested
/// against the reference with named tolerances (KernelFastTests). `forceReference` pins the reference for A/B checks.
public enum Kernels {
    /// When true, every surface call runs the reference loop (tests, A/B comparisons).
    nonisolated(unsafe) public static var forceReference = false

    /// `Y(nTokens, out) = X(nTokens, in) · W(out, in)^T`: each token row of `x` (`w.cols`
    /// floats) times each stored row of `w`, written to `y` (`w.rows` floats per token).
    /// `x` and `y` must not overlap.
    @inline(__always)
    public static func matmul(_ w: WeightMatrix, x: UnsafePointer<Float>, nTokens: Int,
                              y: UnsafeMutablePointer<Float>) {
        if FastKernels.isAvailable && !forceReference {
            FastKernels.matmul(w, x: x, nTokens: nTokens, y: y)
            return
        }
        KernelsReference.matmul(w, x: x, nTokens: nTokens, y: y)
    }

    /// `y_i = X · W_i^T` for two or three matrices that read the same `x` (Q, K, V; gate,
    /// up): results identical to separate `matmul` calls, in one pass over the workers.
    @inline(__always)
    public static func matmul(x: UnsafePointer<Float>, nTokens: Int,
                              _ a: (WeightMatrix, UnsafeMutablePointer<Float>),
                              _ b: (WeightMatrix, UnsafeMutablePointer<Float>),
                              _ c: (WeightMatrix, UnsafeMutablePointer<Float>)? = nil) {
        if FastKernels.isAvailable && !forceReference {
            FastKernels.matmul(x: x, nTokens: nTokens, a, b, c)
            return
        }
        KernelsReference.matmul(a.0, x: x, nTokens: nTokens, y: a.1)
        KernelsReference.matmul(b.0, x: x, nTokens: nTokens, y: b.1)
        if let c { KernelsReference.matmul(c.0, x: x, nTokens: nTokens, y: c.1) }
    }

    /// `out = x / sqrt(mean(x^2) + eps) * weight` over `n` elements, for `nTokens` rows.
    /// `out` may alias `x`.
    @inline(__always)
    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, eps: Float,
                               n: Int, nTokens: Int, out: UnsafeMutablePointer<Float>) {
        KernelsReference.rmsNorm(x, weight: weight, eps: eps, n: n, nTokens: nTokens, out: out)
    }

    /// `gate[i] = silu(gate[i]) * up[i]` (SwiGLU), in place over `n` elements.
    @inline(__always)
    public static func swiglu(gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, n: Int) {
        if FastKernels.isAvailable && !forceReference {
            FastKernels.swiglu(gate: gate, up: up, n: n)
            return
        }
        KernelsReference.swiglu(gate: gate, up: up, n: n)
    }

    /// In-place numerically stable softmax over `n` elements.
    @inline(__always)
    public static func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        if FastKernels.isAvailable && !forceReference {
            FastKernels.softmax(x, n)
            return
        }
        KernelsReference.softmax(x, n)
    }

    /// Rotary embedding, "normal" (adjacent pairs) mode as ggml's `GGML_ROPE_TYPE_NORM`: for
    /// each of `nHeads` heads of `headSize` and each pair i < headSize/2,
    /// `(x[2i], x[2i+1])` is rotated by angle `position * invFreq[i]`.
    @inline(__always)
    public static func ropeNormal(_ x: UnsafeMutablePointer<Float>, nHeads: Int, headSize: Int,
                                  cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        KernelsReference.ropeNormal(x, nHeads: nHeads, headSize: headSize, cos: cos, sin: sin)
    }

    /// `scores[p] = scale * (q · K[p])` for `p` in `0..<n`, key `p` at `keys + p * stride`.
    @inline(__always)
    public static func attentionScores(q: UnsafePointer<Float>, keys: UnsafePointer<Float>, stride: Int,
                                       n: Int, headSize: Int, scale: Float, scores: UnsafeMutablePointer<Float>) {
        if FastKernels.isAvailable && !forceReference {
            FastKernels.attentionScores(q: q, keys: keys, stride: stride, n: n, headSize: headSize,
                                        scale: scale, scores: scores)
            return
        }
        KernelsReference.attentionScores(q: q, keys: keys, stride: stride, n: n, headSize: headSize,
                                         scale: scale, scores: scores)
    }

    /// `out += sum_p probs[p] * V[p]` for `p` in `0..<n`, value `p` at `values + p * stride`.
    @inline(__always)
    public static func attentionMix(probs: UnsafePointer<Float>, values: UnsafePointer<Float>, stride: Int,
                                    n: Int, headSize: Int, out: UnsafeMutablePointer<Float>) {
        if FastKernels.isAvailable && !forceReference {
            FastKernels.attentionMix(probs: probs, values: values, stride: stride, n: n, headSize: headSize, out: out)
            return
        }
        KernelsReference.attentionMix(probs: probs, values: values, stride: stride, n: n,
                                      headSize: headSize, out: out)
    }
}
