import Foundation

/// Plain-loop reference kernels: the oracle every fast path is tested against, kept forever.
///
/// "Not absurdly slow": the type dispatch happens once per call, inner loops run over
/// `UnsafePointer`s (vectorizable), and matmul rows are spread over
/// `KernelParallelism`. Nothing here allocates on the heap for a single-token call.
public enum KernelsReference {
    /// Minimum output rows per parallel chunk; below this threading costs more than it saves.
    static let minRowsPerChunk = 16

    /// See `Kernels.matmul`. One token: one quantized-row dot per output. Several tokens:
    /// each weight row is dequantized once into scratch and dotted with every token.
    public static func matmul(_ w: WeightMatrix, x: UnsafePointer<Float>, nTokens: Int,
                              y: UnsafeMutablePointer<Float>) {
        guard nTokens > 0, let k = w.format.reference else { return }
        let rows = w.rows, cols = w.cols
        if nTokens == 1 {
            let dot = k.dotRow
            KernelParallelism.forEachChunk(rows, minChunk: minRowsPerChunk) { range in
                for r in range { y[r] = dot(w.row(r), x, cols) }
            }
            return
        }
        let dequantize = k.dequantizeRow
        KernelParallelism.forEachChunk(rows, minChunk: minRowsPerChunk) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: cols) { scratch in
                let row = scratch.baseAddress!
                for r in range {
                    dequantize(w.row(r), row, cols)
                    for t in 0..<nTokens {
                        y[t * rows + r] = VectorOps.dot(row, x + t * cols, cols)
                    }
                }
            }
        }
    }

    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, eps: Float,
                               n: Int, nTokens: Int, out: UnsafeMutablePointer<Float>) {
        for t in 0..<nTokens {
            let xt = x + t * n, ot = out + t * n
            let mean = VectorOps.dot(xt, xt, n) / Float(n)
            let scale = 1 / (mean + eps).squareRoot()
            for i in 0..<n { ot[i] = xt[i] * scale * weight[i] }
        }
    }

    public static func swiglu(gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, n: Int) {
        for i in 0..<n {
            let g = gate[i]
            gate[i] = g / (1 + expf(-g)) * up[i]
        }
    }

    public static func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        guard n > 0 else { return }
        let m = VectorOps.max(x, n)
        var sum: Float = 0
        for i in 0..<n {
            let e = expf(x[i] - m)
            x[i] = e
            sum += e
        }
        let inv = 1 / sum
        for i in 0..<n { x[i] *= inv }
    }

    public static func ropeNormal(_ x: UnsafeMutablePointer<Float>, nHeads: Int, headSize: Int,
                                  cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        let half = headSize / 2
        for h in 0..<nHeads {
            let v = x + h * headSize
            for i in 0..<half {
                let x0 = v[2 * i], x1 = v[2 * i + 1]
                v[2 * i] = x0 * cos[i] - x1 * sin[i]
                v[2 * i + 1] = x0 * sin[i] + x1 * cos[i]
            }
        }
    }

    public static func attentionScores(q: UnsafePointer<Float>, keys: UnsafePointer<Float>, stride: Int,
                                       n: Int, headSize: Int, scale: Float, scores: UnsafeMutablePointer<Float>) {
        for p in 0..<n { scores[p] = scale * VectorOps.dot(q, keys + p * stride, headSize) }
    }

    public static func attentionMix(probs: UnsafePointer<Float>, values: UnsafePointer<Float>, stride: Int,
                                    n: Int, headSize: Int, out: UnsafeMutablePointer<Float>) {
        for p in 0..<n { VectorOps.axpy(probs[p], values + p * stride, out, headSize) }
    }
}
