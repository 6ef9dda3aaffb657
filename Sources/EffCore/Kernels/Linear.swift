/// A linear layer's weights: a quantized matrix plus optional sparse f16 outliers,
/// `y = Q(W) x + S x` (`W(out, in)`, row-major, as everywhere).
///
/// With no outliers (the shipped model) `apply` is exactly `Kernels.matmul` of `weight`,
/// bit for bit; the sparse product runs only over stored outliers.
public struct Linear: @unchecked Sendable {
    /// `Q(W)`: the matrix in its storage format.
    public let weight: WeightMatrix
    /// `S`: outliers kept apart at f16 (often empty).
    public let outliers: SparseOutliers

    /// Pairs a matrix with outliers of the same shape (none when nil).
    public init(weight: WeightMatrix, outliers: SparseOutliers? = nil) throws {
        let s = outliers ?? .empty(rows: weight.rows, cols: weight.cols)
        guard s.rows == weight.rows, s.cols == weight.cols else {
            throw SparseOutliersError.shapeMismatch(weight: "\(weight.rows)x\(weight.cols)", outliers: "\(s.rows)x\(s.cols)")
        }
        self.weight = weight
        self.outliers = s
    }

    /// A matrix with no outliers.
    public init(_ weight: WeightMatrix) {
        self.weight = weight
        outliers = .empty(rows: weight.rows, cols: weight.cols)
    }

    /// Output features (`out`).
    public var rows: Int { weight.rows }
    /// Input features (`in`).
    public var cols: Int { weight.cols }
    /// Bytes stored: the quantized matrix plus the outliers' arrays.
    public var byteCount: Int { weight.byteCount + (outliers.isEmpty ? 0 : outliers.byteCount) }

    /// `Y(nTokens, out) = X(nTokens, in) · (Q(W) + S)^T`; `x` and `y` must not overlap.
    public func apply(x: UnsafePointer<Float>, nTokens: Int, y: UnsafeMutablePointer<Float>) {
        Kernels.matmul(weight, x: x, nTokens: nTokens, y: y)
        outliers.multiplyAdd(x: x, nTokens: nTokens, y: y)
    }
}

extension Kernels {
    /// `Y = X · (Q(W) + S)^T` for a `Linear` (see `Linear.apply`).
    @inline(__always)
    public static func matmul(_ l: Linear, x: UnsafePointer<Float>, nTokens: Int, y: UnsafeMutablePointer<Float>) {
        l.apply(x: x, nTokens: nTokens, y: y)
    }

    /// The fused form of `matmul(x:nTokens:_:_:_:)` for `Linear`s: the quantized matrices in
    /// one pass, then each one's outliers; identical to separate `Linear.apply` calls.
    @inline(__always)
    public static func matmul(x: UnsafePointer<Float>, nTokens: Int,
                              _ a: (Linear, UnsafeMutablePointer<Float>),
                              _ b: (Linear, UnsafeMutablePointer<Float>),
                              _ c: (Linear, UnsafeMutablePointer<Float>)? = nil) {
        matmul(x: x, nTokens: nTokens, (a.0.weight, a.1), (b.0.weight, b.1), c.map { ($0.0.weight, $0.1) })
        a.0.outliers.multiplyAdd(x: x, nTokens: nTokens, y: a.1)
        b.0.outliers.multiplyAdd(x: x, nTokens: nTokens, y: b.1)
        if let c { c.0.outliers.multiplyAdd(x: x, nTokens: nTokens, y: c.1) }
    }
}
