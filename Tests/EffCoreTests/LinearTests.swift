import Foundation
import Testing
@testable import EffCore

/// `Linear` (y = Q(W) x + S x): the sparse f16 outliers against a dense reference with the
/// outliers added back, and the empty case against the plain matmul, bit for bit.
@Suite struct LinearTests {
    /// Float reassociation only, relative to sum |w_j x_j| (as KernelFastTests).
    static let floatRelativeTolerance: Float = 2e-5

    /// About 3% of positions, values well outside the quantized range (as outliers are).
    static func outliers(rows: Int, cols: Int, seed: UInt64) throws -> SparseOutliers {
        let u = testValues(rows * cols, seed: seed)
        let v = testValues(rows * cols, seed: seed + 1, scale: 6)
        var entries: [(row: Int, column: Int, value: Float)] = []
        for r in 0..<rows {
            for c in 0..<cols where u[r * cols + c] > 0.94 { entries.append((r, c, v[r * cols + c])) }
        }
        return try SparseOutliers(rows: rows, cols: cols, entries: entries)
    }

    @Test(arguments: [GGMLType.q4_1, .q4_0, .q8_0, .f16])
    func outliersMatchDenseReferenceWithOutliersAddedBack(_ type: GGMLType) throws {
        let (rows, cols, nTokens) = (37, 160, 5)
        let m = try KernelFastTests.TestMatrix(type, rows: rows, cols: cols, seed: 91)
        let s = try Self.outliers(rows: rows, cols: cols, seed: 92)
        #expect(s.count > rows * cols / 50 && s.count < rows * cols / 20)
        var dense = m.dequantized
        try s.addTo(dense: &dense)
        let x = testValues(nTokens * cols, seed: 93, scale: 1.5)
        var y = [Float](repeating: .nan, count: nTokens * rows)
        try m.stored.withUnsafeBytes { sb in
            let w = try WeightMatrix(type: type, data: sb.baseAddress!, rows: rows, cols: cols)
            let l = try Linear(weight: w, outliers: s)
            #expect(l.byteCount == w.byteCount + s.byteCount)
            l.apply(x: x, nTokens: nTokens, y: &y)
        }
        let quantizedActivations = FastKernels.isAvailable && type != .f16
        for t in 0..<nTokens {
            for r in 0..<rows {
                var ref: Double = 0, mag: Float = 0
                for c in 0..<cols {
                    ref += Double(dense[r * cols + c]) * Double(x[t * cols + c])
                    mag += abs(dense[r * cols + c] * x[t * cols + c])
                }
                // The fast int8 path also rounds activations to 8 bits (its named bound, on
                // the quantized part only; the outliers multiply the f32 activations).
                var tol = Self.floatRelativeTolerance * mag
                if quantizedActivations {
                    tol += KernelFastTests.q8BoundSlack * KernelFastTests.activationBound(m, x, t: t, r: r)
                }
                #expect(abs(Double(y[t * rows + r]) - ref) <= Double(tol), "\(type) t\(t) r\(r)")
            }
        }
    }

    @Test func sparseProductIsTheOutliersTimesX() throws {
        // y_linear - y_plain = S x, checked against an f64 sum of the stored f16 values.
        let (rows, cols, nTokens) = (19, 96, 3)
        let m = try KernelFastTests.TestMatrix(.q4_1, rows: rows, cols: cols, seed: 5)
        let s = try Self.outliers(rows: rows, cols: cols, seed: 6)
        let x = testValues(nTokens * cols, seed: 7)
        var plain = [Float](repeating: 0, count: nTokens * rows), withS = plain
        try m.stored.withUnsafeBytes { sb in
            let w = try WeightMatrix(type: .q4_1, data: sb.baseAddress!, rows: rows, cols: cols)
            Kernels.matmul(w, x: x, nTokens: nTokens, y: &plain)
            try Linear(weight: w, outliers: s).apply(x: x, nTokens: nTokens, y: &withS)
        }
        for t in 0..<nTokens {
            for r in 0..<rows {
                var sx: Double = 0, mag: Double = 0
                for k in Int(s.rowStart[r])..<Int(s.rowStart[r + 1]) {
                    let p = Double(Float(s.values[k])) * Double(x[t * cols + Int(s.columns[k])])
                    sx += p
                    mag += abs(p)
                }
                let got = Double(withS[t * rows + r]) - Double(plain[t * rows + r])
                // Two f32 roundings of the sum and of the add: a few ulps of |y| + |S x|.
                let tol = 4 * Double(Float.ulpOfOne) * (mag + abs(Double(plain[t * rows + r])) + 1e-6)
                #expect(abs(got - sx) <= tol, "t\(t) r\(r): \(got) vs \(sx)")
            }
        }
    }

    @Test(arguments: [GGMLType.q4_1, .q8_0, .f32])
    func emptyOutliersAreBitIdenticalToThePlainMatmul(_ type: GGMLType) throws {
        let (rows, cols) = (45, 128)
        let a = try KernelFastTests.TestMatrix(type, rows: rows, cols: cols, seed: 21)
        let b = try KernelFastTests.TestMatrix(type, rows: 24, cols: cols, seed: 22)
        for nTokens in [1, 3, 8, 13] {
            let x = testValues(nTokens * cols, seed: UInt64(30 + nTokens))
            var plainA = [Float](repeating: 0, count: nTokens * rows), plainB = [Float](repeating: 0, count: nTokens * 24)
            var linA = plainA, linB = plainB, fusedA = plainA, fusedB = plainB
            try a.stored.withUnsafeBytes { sa in
                try b.stored.withUnsafeBytes { sb in
                    let wa = try WeightMatrix(type: type, data: sa.baseAddress!, rows: rows, cols: cols)
                    let wb = try WeightMatrix(type: type, data: sb.baseAddress!, rows: 24, cols: cols)
                    let la = Linear(wa), lb = try Linear(weight: wb, outliers: nil)
                    #expect(la.outliers.isEmpty && lb.byteCount == wb.byteCount)
                    Kernels.matmul(wa, x: x, nTokens: nTokens, y: &plainA)
                    Kernels.matmul(wb, x: x, nTokens: nTokens, y: &plainB)
                    Kernels.matmul(la, x: x, nTokens: nTokens, y: &linA)
                    lb.apply(x: x, nTokens: nTokens, y: &linB)
                    fusedA.withUnsafeMutableBufferPointer { fa in
                        fusedB.withUnsafeMutableBufferPointer { fb in
                            Kernels.matmul(x: x, nTokens: nTokens, (la, fa.baseAddress!), (lb, fb.baseAddress!))
                        }
                    }
                }
            }
            #expect(linA == plainA && linB == plainB, "\(type) \(nTokens) tokens")
            #expect(fusedA == plainA && fusedB == plainB, "\(type) fused, \(nTokens) tokens")
        }
    }

    @Test func malformedOutliersAreRefusedWithTheFaultNamed() throws {
        #expect(throws: SparseOutliersError.columnOutOfRange(row: 1, column: 9, cols: 8)) {
            try SparseOutliers(rows: 2, cols: 8, rowStart: [0, 1, 2], columns: [3, 9], values: [1, 2])
        }
        #expect(throws: SparseOutliersError.unsortedColumns(row: 0)) {
            try SparseOutliers(rows: 1, cols: 8, rowStart: [0, 2], columns: [5, 2], values: [1, 2])
        }
        #expect(throws: SparseOutliersError.unsortedColumns(row: 0)) {
            try SparseOutliers(rows: 1, cols: 8, entries: [(0, 3, 1), (0, 3, 2)])
        }
        #expect(throws: SparseOutliersError.nonFinite(row: 0, column: 1)) {
            try SparseOutliers(rows: 1, cols: 8, rowStart: [0, 1], columns: [1], values: [.infinity])
        }
        #expect(throws: (any Error).self) {
            try SparseOutliers(rows: 2, cols: 8, rowStart: [0, 2, 1], columns: [1, 2], values: [1, 2])
        }
        let q = try GGMLType.q8_0.quantize([Float](repeating: 0.5, count: 64))
        try q.withUnsafeBytes { p in
            let w = try WeightMatrix(type: .q8_0, data: p.baseAddress!, rows: 2, cols: 32)
            #expect(throws: SparseOutliersError.shapeMismatch(weight: "2x32", outliers: "3x32")) {
                try Linear(weight: w, outliers: .empty(rows: 3, cols: 32))
            }
        }
    }
}
