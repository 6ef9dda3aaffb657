import CEffKernels

/// Row conversions of the KV store: the C kernels when the CPU has them, else Swift loops
/// with the same arithmetic (`KernelsReference` style).
public enum KVRowCodec {
    public static func putF16(_ x: UnsafePointer<Float>, _ n: Int, _ out: UnsafeMutablePointer<UInt16>) {
        if FastKernels.isAvailable { eff_kv_put_f16(x, Int32(n), out); return }
        for i in 0..<n { out[i] = Float16(x[i]).bitPattern }
    }

    public static func getF16(_ h: UnsafePointer<UInt16>, _ n: Int, _ out: UnsafeMutablePointer<Float>) {
        if FastKernels.isAvailable { eff_kv_get_f16(h, Int32(n), out); return }
        for i in 0..<n { out[i] = Float(Float16(bitPattern: h[i])) }
    }

    public static func putQ8(_ x: UnsafePointer<Float>, _ n: Int, _ group: Int, _ codes: UnsafeMutablePointer<Int8>,
                      _ scales: UnsafeMutablePointer<Float>) {
        if FastKernels.isAvailable { eff_kv_put_q8(x, Int32(n), Int32(group), codes, scales); return }
        var g0 = 0, gi = 0
        while g0 < n {
            let e = min(g0 + group, n)
            var amax: Float = 0
            for i in g0..<e { amax = max(amax, abs(x[i])) }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            scales[gi] = d
            for i in g0..<e { codes[i] = Int8(min(127, max(-127, (x[i] * id).rounded(.toNearestOrEven)))) }
            g0 += group
            gi += 1
        }
    }

    public static func getQ8(_ codes: UnsafePointer<Int8>, _ scales: UnsafePointer<Float>, _ n: Int, _ group: Int,
                      _ out: UnsafeMutablePointer<Float>) {
        if FastKernels.isAvailable { eff_kv_get_q8(codes, scales, Int32(n), Int32(group), out); return }
        for i in 0..<n { out[i] = Float(codes[i]) * scales[i / group] }
    }
}
