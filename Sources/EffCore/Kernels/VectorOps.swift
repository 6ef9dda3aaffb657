/// Small f32 vector primitives shared by the reference kernels.
///
/// Reductions use explicit SIMD8 accumulators: Swift does not reassociate float adds, so a
/// plain `sum += a[i] * b[i]` loop would stay scalar. Element-wise loops are left plain
/// (LLVM vectorizes them with the release CPU target).
public enum VectorOps {
    @inline(__always)
    static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    /// `sum_i a[i] * b[i]` for i in 0..<n.
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>(), acc2 = SIMD8<Float>(), acc3 = SIMD8<Float>()
        var i = 0
        while i + 32 <= n {
            acc0.addProduct(load8(a + i), load8(b + i))
            acc1.addProduct(load8(a + i + 8), load8(b + i + 8))
            acc2.addProduct(load8(a + i + 16), load8(b + i + 16))
            acc3.addProduct(load8(a + i + 24), load8(b + i + 24))
            i += 32
        }
        while i + 8 <= n {
            acc0.addProduct(load8(a + i), load8(b + i))
            i += 8
        }
        var sum = ((acc0 + acc1) + (acc2 + acc3)).sum()
        while i < n { sum += a[i] * b[i]; i += 1 }
        return sum
    }

    /// Dot product of exactly 32 elements (one quant block).
    @inline(__always)
    public static func dot32(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) -> Float {
        var acc0 = load8(a) * load8(b)
        var acc1 = load8(a + 8) * load8(b + 8)
        acc0.addProduct(load8(a + 16), load8(b + 16))
        acc1.addProduct(load8(a + 24), load8(b + 24))
        return (acc0 + acc1).sum()
    }

    /// Sum of exactly 32 elements.
    @inline(__always)
    public static func sum32(_ a: UnsafePointer<Float>) -> Float {
        ((load8(a) + load8(a + 8)) + (load8(a + 16) + load8(a + 24))).sum()
    }

    /// `y[i] += alpha * x[i]`.
    @inline(__always)
    public static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { y[i] += alpha * x[i] }
    }

    /// `y[i] += x[i]`.
    @inline(__always)
    public static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { y[i] += x[i] }
    }

    /// Largest element of a non-empty vector.
    public static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = -Float.infinity
        for i in 0..<n where x[i] > m { m = x[i] }
        return m
    }
}
