import CEffKernels
import Foundation

/// GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative
/// Pre-trained Transformers", ICLR 2023) for effterm's low-bit formats.
///
/// Round-to-nearest quantizes each weight alone. GPTQ quantizes the input columns of a
/// matrix `W(out, in)` one at a time, left to right, and after each column moves the error it
/// made onto the columns not yet quantized, weighted by how the calibration inputs correlate:
/// with `H = X^T X` (the inputs' Gram matrix, plus a small damping on the diagonal) and `U`
/// the upper Cholesky factor of `H^-1` (`H^-1 = U^T U`), row r after column i becomes
///
///     e = (w_ri - q(w_ri)) / U_ii,     w_rk -= e * U_ik  for k > i.
///
/// That minimizes the layer's output error `||W X - Q X||^2` column by column instead of the
/// weights' error. Rows are independent (they share only `U`), so rows run in parallel.
/// A group's scale and min are chosen when the sweep reaches its first column, from the
/// weights as they stand then (GPTQ's grouping), by min/max or, with `search`, by the same
/// clip search as `LowBitCodec.quantizeSearch`.
///
/// With `H` diagonal, `U` is diagonal, nothing moves, and GPTQ equals round-to-nearest with
/// the same group parameters (tested).
public enum GPTQ {
    /// What the sweep needs from the calibration inputs: `u`, the upper Cholesky factor of
    /// the damped inverse Gram matrix with rows and columns in `order` (nil: natural order).
    public struct Factor: Sendable {
        public let u: [Float]
        public let order: [Int]?
        public init(u: [Float], order: [Int]? = nil) { self.u = u; self.order = order }

        /// The factor of `gram` (n, n) for a sweep in natural order, or with `actOrder` in
        /// GPTQ's "act order": columns of larger `H_ii` (inputs with more energy) first, so
        /// their errors can still move to the many columns after them.
        public static func make(gram: UnsafePointer<Float>, n: Int, actOrder: Bool, damp: Double = 0.01) throws -> Factor {
            guard actOrder else { return Factor(u: try inverseFactor(gram: gram, n: n, damp: damp)) }
            let order = (0..<n).sorted { (gram[$0 * n + $0], $1) > (gram[$1 * n + $1], $0) }
            var p = [Float](repeating: 0, count: n * n)
            for a in 0..<n { for b in 0..<n { p[a * n + b] = gram[order[a] * n + order[b]] } }
            let u = try p.withUnsafeBufferPointer { try inverseFactor(gram: $0.baseAddress!, n: n, damp: damp) }
            return Factor(u: u, order: order)
        }
    }

    /// Why a factor could not be computed.
    public enum GPTQError: Error, CustomStringConvertible {
        case notPositiveDefinite(column: Int)
        case shape(String)

        public var description: String {
            switch self {
            case .notPositiveDefinite(let c): return "GPTQ: the damped Gram matrix is not positive definite (column \(c))"
            case .shape(let s): return "GPTQ: \(s)"
            }
        }
    }

    /// `U` with `(H + damp * mean(diag H) * I)^-1 = U^T U`, upper triangular, row-major
    /// (n, n). Columns no calibration input reached (`H_ii = 0`) get `H_ii = 1`, as GPTQ does.
    ///
    /// Computed without forming the inverse: reversing the order of rows and columns (`J`),
    /// `J H J = L L^T` (Cholesky) gives `H = A A^T` with `A = J L J` upper triangular, so
    /// `H^-1 = (A^-1)^T A^-1` and `U = A^-1`. One Cholesky and one triangular inverse, in f64.
    public static func inverseFactor(gram: UnsafePointer<Float>, n: Int, damp: Double = 0.01) throws -> [Float] {
        guard n > 0 else { throw GPTQError.shape("empty Gram matrix") }
        var meanDiag = 0.0
        for i in 0..<n { meanDiag += Double(gram[i * n + i]) }
        meanDiag /= Double(n)
        let lambda = damp * (meanDiag > 0 ? meanDiag : 1)
        // R = J H J + damping, f64.
        var r = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<n { r[i * n + j] = Double(gram[(n - 1 - i) * n + (n - 1 - j)]) }
            if r[i * n + i] <= 0 { r[i * n + i] = 1 }
            r[i * n + i] += lambda
        }
        // Cholesky R = L L^T in place (lower triangle), row by row.
        try r.withUnsafeMutableBufferPointer { rb in
            let a = rb.baseAddress!
            for i in 0..<n {
                let ri = a + i * n
                for j in 0...i {
                    let rj = a + j * n
                    var s = ri[j]
                    s -= dot(UnsafePointer(ri), UnsafePointer(rj), j)
                    if i == j {
                        guard s > 0, s.isFinite else { throw GPTQError.notPositiveDefinite(column: n - 1 - i) }
                        ri[i] = s.squareRoot()
                    } else {
                        ri[j] = s / rj[j]
                    }
                }
            }
        }
        // Inverse of L (lower), then U = A^-1 = J L^-1 J (upper).
        var inv = [Double](repeating: 0, count: n * n)
        r.withUnsafeBufferPointer { lb in
            inv.withUnsafeMutableBufferPointer { ib in
                let l = lb.baseAddress!, m = ib.baseAddress!
                // Column by column of L^-1 is strided; solve row by row instead:
                // (L^-1)_ij for j <= i: = (delta_ij - sum_{j<=k<i} L_ik (L^-1)_kj) / L_ii.
                // Work on the transpose T = (L^-1)^T (upper), row j of T = column j of L^-1,
                // so each row is a forward substitution with contiguous access to L's rows.
                for j in 0..<n {
                    let t = m + j * n  // T row j: entries k >= j
                    t[j] = 1 / l[j * n + j]
                    if j + 1 < n {
                        for i in (j + 1)..<n {
                            let li = l + i * n
                            // sum_{k=j}^{i-1} L_ik T_jk
                            let s = dot(li + j, UnsafePointer(t + j), i - j)
                            t[i] = -s / li[i]
                        }
                    }
                }
            }
        }
        // inv holds T = (L^-1)^T: T_jk = (L^-1)_kj. U_ab = (L^-1)_{n-1-a, n-1-b} = T_{n-1-b, n-1-a}.
        var u = [Float](repeating: 0, count: n * n)
        for a in 0..<n {
            for b in a..<n { u[a * n + b] = Float(inv[(n - 1 - b) * n + (n - 1 - a)]) }
        }
        return u
    }

    @inline(__always)
    private static func dot(_ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>, _ n: Int) -> Double {
        var acc = SIMD4<Double>(), i = 0
        while i + 4 <= n {
            acc += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD4<Double>.self) * UnsafeRawPointer(y + i).loadUnaligned(as: SIMD4<Double>.self)
            i += 4
        }
        var s = acc.sum()
        while i < n { s += x[i] * y[i]; i += 1 }
        return s
    }

    /// Quantizes `W(rows, cols)` (row-major f32) into `codec`'s blocks at `dst` (rows of
    /// `cols / group` blocks) with GPTQ under `factor` (from the inputs' Gram matrix,
    /// (cols, cols)). In act order a group's scale and min are fixed before the sweep, from
    /// the weights as given ("static groups"), since its columns are not visited together.
    public static func quantize(_ w: UnsafePointer<Float>, rows: Int, cols: Int, codec: LowBitCodec,
                                factor: Factor, search: Bool, dst: UnsafeMutableRawPointer,
                                pool: ComputePool = .shared) throws {
        guard cols % codec.group == 0 else { throw GPTQError.shape("\(cols) columns are not a whole number of \(codec.group)-groups") }
        guard factor.u.count == cols * cols, factor.order.map({ $0.count == cols }) ?? true else {
            throw GPTQError.shape("factor is not \(cols) x \(cols)")
        }
        let rowBytes = cols / codec.group * codec.blockBytes
        factor.u.withUnsafeBufferPointer { ub in
            let u = ub.baseAddress!
            pool.forEachChunk(rows) { range in
                let work = UnsafeMutablePointer<Float>.allocate(capacity: cols)
                let codes = UnsafeMutablePointer<UInt8>.allocate(capacity: cols)
                defer { work.deallocate(); codes.deallocate() }
                for r in range {
                    if let order = factor.order {
                        quantizeRowOrdered(w + r * cols, cols: cols, codec: codec, u: u, order: order, search: search,
                                           work: work, codes: codes, dst: dst + r * rowBytes)
                    } else {
                        work.update(from: w + r * cols, count: cols)
                        quantizeRow(work, cols: cols, codec: codec, u: u, search: search,
                                    codes: codes, dst: dst + r * rowBytes)
                    }
                }
            }
        }
    }

    /// `x[k] -= e * u[k]` for k in `from ..< n`.
    @inline(__always)
    static func subtractScaled(_ x: UnsafeMutablePointer<Float>, _ u: UnsafePointer<Float>, _ e: Float, from: Int, to n: Int) {
        var j = from
        let ev = SIMD8<Float>(repeating: e)
        while j + 8 <= n {
            let p = UnsafeMutableRawPointer(x + j)
            p.storeBytes(of: p.loadUnaligned(as: SIMD8<Float>.self) - ev * UnsafeRawPointer(u + j).loadUnaligned(as: SIMD8<Float>.self),
                         as: SIMD8<Float>.self)
            j += 8
        }
        while j < n { x[j] -= e * u[j]; j += 1 }
    }

    /// One row in act order: group parameters from `w` first, then the sweep over the
    /// permuted copy `work`; codes land at their natural positions.
    static func quantizeRowOrdered(_ w: UnsafePointer<Float>, cols: Int, codec: LowBitCodec, u: UnsafePointer<Float>,
                                   order: [Int], search: Bool, work: UnsafeMutablePointer<Float>,
                                   codes: UnsafeMutablePointer<UInt8>, dst: UnsafeMutableRawPointer) {
        let g = codec.group, maxq = Float(codec.maxCode), nGroups = cols / g
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * nGroups) { pb in
            let params = pb.baseAddress!
            for b in 0..<nGroups {
                let (d, m) = codec.groupParameters(w + b * g, search: search)
                params[2 * b] = d
                params[2 * b + 1] = m
                QuantBlocks.storeHalf(d, dst + b * codec.blockBytes, 0)
                QuantBlocks.storeHalf(m, dst + b * codec.blockBytes, 2)
            }
            for k in 0..<cols { work[k] = w[order[k]] }
            for k in 0..<cols {
                let i = order[k], b = i / g
                let d = params[2 * b], m = params[2 * b + 1]
                let id: Float = d != 0 ? 1 / d : 0
                let c = min(maxq, max(0, ((work[k] - m) * id).rounded()))
                codes[i] = UInt8(c)
                let e = (work[k] - (c * d + m)) / u[k * cols + k]
                if e != 0 { subtractScaled(work, u + k * cols, e, from: k + 1, to: cols) }
            }
            for b in 0..<nGroups { codec.storeCodes(codes + b * g, dst + b * codec.blockBytes) }
        }
    }

    /// One row: `x` is consumed (updated in place as the sweep moves errors right).
    static func quantizeRow(_ x: UnsafeMutablePointer<Float>, cols: Int, codec: LowBitCodec, u: UnsafePointer<Float>,
                            search: Bool, codes: UnsafeMutablePointer<UInt8>, dst: UnsafeMutableRawPointer) {
        let g = codec.group, maxq = Float(codec.maxCode)
        var d: Float = 0, m: Float = 0, id: Float = 0
        for i in 0..<cols {
            let k = i % g
            if k == 0 {
                (d, m) = codec.groupParameters(x + i, search: search)
                id = d != 0 ? 1 / d : 0
                let blk = dst + (i / g) * codec.blockBytes
                QuantBlocks.storeHalf(d, blk, 0)
                QuantBlocks.storeHalf(m, blk, 2)
            }
            let c = min(maxq, max(0, ((x[i] - m) * id).rounded()))
            codes[k] = UInt8(c)
            let e = (x[i] - (c * d + m)) / u[i * cols + i]
            if e != 0 { subtractScaled(x, u + i * cols, e, from: i + 1, to: cols) }
            if k == g - 1 { codec.storeCodes(codes, dst + (i / g) * codec.blockBytes) }
        }
    }

    /// `G += X^T X` for `X(nTokens, width)` (row-major), with the f32 matmul kernel on the
    /// transposed rows. `gram` is (width, width).
    public static func accumulateGram(_ x: UnsafePointer<Float>, nTokens: Int, width: Int,
                                      into gram: UnsafeMutablePointer<Float>, pool: ComputePool = .shared) {
        guard nTokens > 0, width > 0 else { return }
        let xt = UnsafeMutablePointer<Float>.allocate(capacity: width * nTokens)
        let y = UnsafeMutablePointer<Float>.allocate(capacity: width * width)
        defer { xt.deallocate(); y.deallocate() }
        for t in 0..<nTokens { for j in 0..<width { xt[j * nTokens + t] = x[t * width + j] } }
        // Y(width "tokens", width rows) = XT · XT^T: y[a * width + b] = sum_t X[t, b] X[t, a].
        let rowBytes = nTokens * MemoryLayout<Float>.stride
        pool.exclusive {
            pool.forEachChunk(width) { r in
                eff_matmul_f32(xt, rowBytes, Int32(r.lowerBound), Int32(r.upperBound), Int32(nTokens),
                               xt, Int32(nTokens), Int32(width), y, Int32(width))
            }
        }
        for i in 0..<(width * width) { gram[i] += y[i] }
    }
}

extension LowBitCodec {
    /// A group's stored scale and min (f16-rounded) for the `group` values at `x`: min/max
    /// as `quantize` rounds them, or with `search` the clip range of least squared error
    /// (what `quantizeSearch` stores).
    func groupParameters(_ x: UnsafePointer<Float>, search: Bool) -> (d: Float, m: Float) {
        let maxq = Float(maxCode)
        var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
        for j in 0..<group {
            if x[j] < lo { lo = x[j] }
            if x[j] > hi { hi = x[j] }
        }
        let range = hi - lo
        guard search, range > 0 else {
            return (Float(Float16(range / maxq)), Float(Float16(lo)))
        }
        var best = (err: Float.infinity, d: Float(0), m: lo)
        for a in Self.clipSteps {
            for bb in Self.clipSteps where a + bb < 0.5 {
                let m = Float(Float16(lo + a * range))
                let d = Float(Float16((range * (1 - a - bb)) / maxq))
                let id: Float = d != 0 ? 1 / d : 0
                var err: Float = 0
                for j in 0..<group {
                    let q = min(maxq, max(0, ((x[j] - m) * id).rounded()))
                    let e = q * d + m - x[j]
                    err += e * e
                }
                if err < best.err { best = (err, d, m) }
            }
        }
        return (best.d, best.m)
    }
}
