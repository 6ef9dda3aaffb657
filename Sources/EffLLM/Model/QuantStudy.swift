import EffCore

/// Simulated round-to-nearest quantization of activations and of the KV cache, for the
/// QLLM-Eval grid (`effterm eval quant --grid`): values are quantized and dequantized in
/// place where the forward pass produces them, so any weight format can be combined with
/// any activation or KV width. Off (nil fields) the forward pass is untouched.
///
/// The integer kernels always multiply activations rounded to 8 bits per 32-column block
/// (`eff_quantize_q8a`); `activationBits` adds a coarser per-token quantization in front of
/// every linear layer, as QLLM-Eval's per-token dynamic scheme.
public struct QuantStudy: Sendable, Equatable {
    /// Bits of every linear layer's input, symmetric with one scale per token; nil: as computed.
    public var activationBits: Int?
    /// Bits of the keys and values written to the cache, asymmetric per token in groups of
    /// `kvGroup` channels; nil: as computed.
    public var kvBits: Int?
    public var kvGroup: Int

    public init(activationBits: Int? = nil, kvBits: Int? = nil, kvGroup: Int = 64) {
        self.activationBits = activationBits; self.kvBits = kvBits; self.kvGroup = kvGroup
    }

    /// Each of `rows` rows of `width` floats rounded to `bits`-bit integers times one scale
    /// (max |x| / (2^(bits-1) - 1)), in place.
    public static func quantizeTokens(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, bits: Int) {
        let qmax = Float((1 << (bits - 1)) - 1)
        for r in 0..<rows {
            let row = x + r * width
            var amax: Float = 0
            for i in 0..<width { amax = max(amax, abs(row[i])) }
            guard amax > 0 else { continue }
            let scale = amax / qmax, inv = 1 / scale
            for i in 0..<width { row[i] = min(qmax, max(-qmax, (row[i] * inv).rounded())) * scale }
        }
    }

    /// Each group of `group` floats (rows of `width`, groups within a row) rounded to
    /// `bits`-bit codes between its min and max, in place.
    public static func quantizeGroups(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, bits: Int, group: Int) {
        let levels = Float((1 << bits) - 1)
        for r in 0..<rows {
            var g0 = 0
            while g0 < width {
                let p = x + r * width + g0, n = min(group, width - g0)
                var lo = p[0], hi = p[0]
                for i in 1..<n { lo = min(lo, p[i]); hi = max(hi, p[i]) }
                if hi > lo {
                    let scale = (hi - lo) / levels, inv = 1 / scale
                    for i in 0..<n { p[i] = lo + min(levels, max(0, ((p[i] - lo) * inv).rounded())) * scale }
                }
                g0 += group
            }
        }
    }
}
