import Foundation

/// Paired image quality between a test image and a reference of the same shape, both
/// planar (channels, S, S) floats in the model's [-1, 1] range.
public enum ImageMetrics {
    /// Peak signal-to-noise ratio in dB over all channels, peak-to-peak range 2 ([-1, 1]),
    /// values clipped to that range first (as a PNG would store them). Identical images give
    /// +infinity.
    public static func psnr(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count && !a.isEmpty, "psnr: shape mismatch")
        var se = 0.0
        for i in a.indices {
            let d = Double(clip(a[i]) - clip(b[i]))
            se += d * d
        }
        let mse = se / Double(a.count)
        return mse == 0 ? .infinity : 10 * log10(4 / mse)
    }

    /// Mean squared difference over all values, unclipped (the error searches minimise);
    /// over the common prefix when the shapes differ, 0 for empty input.
    public static func meanSquaredError(_ a: [Float], _ b: [Float]) -> Double {
        let n = min(a.count, b.count)
        var s = 0.0
        for i in 0..<n {
            let d = Double(a[i] - b[i])
            s += d * d
        }
        return n == 0 ? 0 : s / Double(n)
    }

    /// Mean structural similarity (Wang et al. 2004) with the standard constants
    /// (K1 = 0.01, K2 = 0.03, dynamic range 1 after mapping [-1, 1] to [0, 1]) and an 11×11
    /// Gaussian window of σ = 1.5, over the "valid" window positions of each channel,
    /// averaged over channels. 1 for identical images.
    public static func ssim(_ a: [Float], _ b: [Float], channels: Int, size: Int) -> Double {
        precondition(a.count == b.count && a.count == channels * size * size, "ssim: shape mismatch")
        let win = 11, r = win / 2
        guard size >= win else { return a == b ? 1 : 0 }
        var g = (0..<win).map { i -> Double in let d = Double(i - r); return Foundation.exp(-d * d / (2 * 1.5 * 1.5)) }
        let gs = g.reduce(0, +)
        g = g.map { $0 / gs }
        let c1 = 0.01 * 0.01, c2 = 0.03 * 0.03
        var total = 0.0, count = 0
        for ch in 0..<channels {
            let base = ch * size * size
            func px(_ v: [Float], _ y: Int, _ x: Int) -> Double { Double(clip(v[base + y * size + x])) * 0.5 + 0.5 }
            for y0 in 0...(size - win) {
                for x0 in 0...(size - win) {
                    var ma = 0.0, mb = 0.0, saa = 0.0, sbb = 0.0, sab = 0.0
                    for dy in 0..<win {
                        for dx in 0..<win {
                            let w = g[dy] * g[dx]
                            let va = px(a, y0 + dy, x0 + dx), vb = px(b, y0 + dy, x0 + dx)
                            ma += w * va; mb += w * vb
                            saa += w * va * va; sbb += w * vb * vb; sab += w * va * vb
                        }
                    }
                    let va = saa - ma * ma, vb = sbb - mb * mb, cov = sab - ma * mb
                    total += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
                    count += 1
                }
            }
        }
        return total / Double(count)
    }

    @inline(__always) static func clip(_ v: Float) -> Float { min(1, max(-1, v)) }
}
