/// Sparse outlier weights `S(rows, cols)` in compressed sparse rows, values in f16: the
/// `S` of a `Linear`'s `y = Q(W) x + S x` (outlier-aware quantization in the style of
/// SpQR / SqueezeLLM's dense-and-sparse split: the few weights a low-bit format would ruin
/// are kept apart at higher precision).
///
/// Row `r`'s entries are `rowStart[r] ..< rowStart[r + 1]`, each a column `columns[k]`
/// (ascending within a row, no repeats) and a value `values[k]`.
public struct SparseOutliers: Sendable, Equatable {
    /// Output features, the rows of the matrix it adds to.
    public let rows: Int
    /// Input features.
    public let cols: Int
    /// `rows + 1` offsets into `columns` / `values`; `rowStart[0] == 0`.
    public let rowStart: [Int32]
    public let columns: [Int32]
    public let values: [Float16]

    /// Checks the CSR arrays and keeps them; throws `SparseOutliersError` naming the fault.
    public init(rows: Int, cols: Int, rowStart: [Int32], columns: [Int32], values: [Float16]) throws {
        guard rows >= 0, cols >= 0, rows <= Int(Int32.max), cols <= Int(Int32.max) else {
            throw SparseOutliersError.badShape(rows: rows, cols: cols)
        }
        guard rowStart.count == rows + 1, rowStart.first == 0 else {
            throw SparseOutliersError.badRowStart("expected \(rows + 1) offsets starting at 0, got \(rowStart.count)")
        }
        guard columns.count == values.count, Int(rowStart[rows]) == columns.count else {
            throw SparseOutliersError.badRowStart("last offset \(rowStart[rows]) but \(columns.count) columns and \(values.count) values")
        }
        for r in 0..<rows {
            let lo = Int(rowStart[r]), hi = Int(rowStart[r + 1])
            guard lo <= hi else { throw SparseOutliersError.badRowStart("row \(r) ends before it starts") }
            for k in lo..<hi {
                let c = Int(columns[k])
                guard c >= 0, c < cols else { throw SparseOutliersError.columnOutOfRange(row: r, column: c, cols: cols) }
                guard k == lo || columns[k - 1] < columns[k] else {
                    throw SparseOutliersError.unsortedColumns(row: r)
                }
                guard values[k].isFinite else { throw SparseOutliersError.nonFinite(row: r, column: c) }
            }
        }
        self.rows = rows
        self.cols = cols
        self.rowStart = rowStart
        self.columns = columns
        self.values = values
    }

    /// No outliers: a `Linear` with these computes exactly `Q(W) x`.
    public static func empty(rows: Int, cols: Int) -> SparseOutliers {
        SparseOutliers(unchecked: max(0, rows), max(0, cols), rowStart: [Int32](repeating: 0, count: max(0, rows) + 1))
    }

    /// Zero entries need no checks.
    private init(unchecked rows: Int, _ cols: Int, rowStart: [Int32]) {
        self.rows = rows
        self.cols = cols
        self.rowStart = rowStart
        columns = []
        values = []
    }

    /// Builds the CSR arrays from (row, column, value) entries in any order; values are
    /// rounded to f16. Throws on an entry outside the matrix or a repeated position.
    public init(rows: Int, cols: Int, entries: [(row: Int, column: Int, value: Float)]) throws {
        guard rows >= 0, cols >= 0 else { throw SparseOutliersError.badShape(rows: rows, cols: cols) }
        for e in entries where !(0..<rows).contains(e.row) || !(0..<cols).contains(e.column) {
            throw SparseOutliersError.columnOutOfRange(row: e.row, column: e.column, cols: cols)
        }
        let sorted = entries.sorted { ($0.row, $0.column) < ($1.row, $1.column) }
        var rowStart = [Int32](repeating: 0, count: rows + 1)
        for e in sorted { rowStart[e.row + 1] += 1 }
        for r in 0..<rows { rowStart[r + 1] += rowStart[r] }
        for i in sorted.indices.dropFirst() where sorted[i].row == sorted[i - 1].row && sorted[i].column == sorted[i - 1].column {
            throw SparseOutliersError.unsortedColumns(row: sorted[i].row)
        }
        try self.init(rows: rows, cols: cols, rowStart: rowStart, columns: sorted.map { Int32($0.column) },
                      values: sorted.map { Float16($0.value) })
    }

    /// Number of stored outliers.
    public var count: Int { values.count }

    /// True when there are no outliers.
    public var isEmpty: Bool { values.isEmpty }

    /// Bytes of the stored arrays (offsets, columns, f16 values).
    public var byteCount: Int { rowStart.count * 4 + columns.count * 4 + values.count * 2 }

    /// `Y(nTokens, rows) += X(nTokens, cols) · S^T`: for every token and row, the row's
    /// outliers times the token's activations, summed in f32 in column order, then added.
    public func multiplyAdd(x: UnsafePointer<Float>, nTokens: Int, y: UnsafeMutablePointer<Float>) {
        guard !values.isEmpty, nTokens > 0 else { return }
        rowStart.withUnsafeBufferPointer { rs in
            columns.withUnsafeBufferPointer { cs in
                values.withUnsafeBufferPointer { vs in
                    for r in 0..<rows {
                        let lo = Int(rs[r]), hi = Int(rs[r + 1])
                        if lo == hi { continue }
                        for t in 0..<nTokens {
                            let xt = x + t * cols
                            var s: Float = 0
                            for k in lo..<hi { s += Float(vs[k]) * xt[Int(cs[k])] }
                            y[t * rows + r] += s
                        }
                    }
                }
            }
        }
    }

    /// Adds `S` into a dense row-major `rows x cols` f32 matrix (dense references, tests).
    public func addTo(dense: inout [Float]) throws {
        guard dense.count == rows * cols else {
            throw SparseOutliersError.shapeMismatch(weight: "\(dense.count) elements", outliers: "\(rows)x\(cols)")
        }
        for r in 0..<rows {
            for k in Int(rowStart[r])..<Int(rowStart[r + 1]) { dense[r * cols + Int(columns[k])] += Float(values[k]) }
        }
    }
}

/// Why a set of outliers was refused.
public enum SparseOutliersError: Error, Equatable, CustomStringConvertible {
    case badShape(rows: Int, cols: Int)
    case badRowStart(String)
    case columnOutOfRange(row: Int, column: Int, cols: Int)
    case unsortedColumns(row: Int)
    case nonFinite(row: Int, column: Int)
    case shapeMismatch(weight: String, outliers: String)

    public var description: String {
        switch self {
        case .badShape(let r, let c): return "outliers: bad shape \(r)x\(c)"
        case .badRowStart(let why): return "outliers: bad row offsets: \(why)"
        case .columnOutOfRange(let r, let c, let n): return "outliers: row \(r) column \(c) is outside 0..<\(n)"
        case .unsortedColumns(let r): return "outliers: row \(r) has columns out of order or repeated"
        case .nonFinite(let r, let c): return "outliers: value at row \(r) column \(c) is not finite in f16"
        case .shapeMismatch(let w, let o): return "outliers \(o) do not match the weight matrix \(w)"
        }
    }
}
