import Foundation

/// What a set of weight tensors becomes: `file` (as stored) or a computable format with
/// options, parsed from `--weights` specs such as `Q4G32`, `Q3G64+o0.5%`, `Q2G32+mse`, `F32`.
///
///     spec    = "file" | format ("+" option)*
///     format  = a computable row of the weight-format table (Q<b>G<g>, Q<b>S, Q4_1, Q8_0, F16, F32)
///     option  = "o" percent "%"   keep the largest-|w| percent of each tensor as f16 outliers
///             | "mse"             Q<b>G<g> only: clip-range search (`LowBitCodec.quantizeSearch`)
///             | "gptq"            Q<b>G<g> only: GPTQ error feedback under calibration inputs (`GPTQ`)
///             | "act"             with gptq: sweep the columns in act order (`GPTQ.Factor.make`)
public struct WeightSpec: Sendable, Hashable, CustomStringConvertible {
    /// nil: the tensors as the file stores them.
    public var format: WeightFormat?
    /// Share of each tensor's weights (0 ..< 1) kept apart as f16 outliers.
    public var outlierFraction: Double
    /// Search the clip range per group instead of plain min/max.
    public var search: Bool
    /// Quantize with GPTQ (needs the inputs' Gram matrix, `Requantizer.quantize(factor:)`).
    public var gptq: Bool
    /// With `gptq`: columns of larger input energy first, group parameters fixed up front.
    public var actOrder: Bool

    public init(format: WeightFormat?, outlierFraction: Double = 0, search: Bool = false, gptq: Bool = false,
                actOrder: Bool = false) {
        self.format = format
        self.outlierFraction = outlierFraction
        self.search = search
        self.gptq = gptq
        self.actOrder = actOrder
    }

    /// The file's tensors, untouched.
    public static let file = WeightSpec(format: nil)

    public var isFile: Bool { format == nil }

    public var description: String {
        guard let format else { return "file" }
        var s = format.name
        if outlierFraction > 0 { s += "+o" + Self.percent(outlierFraction * 100) + "%" }
        if search { s += "+mse" }
        if gptq { s += "+gptq" }
        if actOrder { s += "+act" }
        return s
    }

    private static func percent(_ p: Double) -> String {
        var s = String(format: "%.4f", p)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }

    /// Parses one spec; the error says what is accepted.
    public init(parsing text: String) throws {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: "+", omittingEmptySubsequences: false).map(String.init)
        guard let head = parts.first, !head.isEmpty else { throw WeightSpecError.empty }
        if head.lowercased() == "file" {
            guard parts.count == 1 else { throw WeightSpecError.optionOnFile(text) }
            self = .file
            return
        }
        guard let f = WeightFormat.named(head) ?? WeightFormat.named(head.uppercased()), f.isComputable else {
            throw WeightSpecError.unknownFormat(head)
        }
        var spec = WeightSpec(format: f)
        for opt in parts.dropFirst() {
            if opt == "mse" {
                guard f.lowBitCodec != nil else { throw WeightSpecError.badOption(text, "mse applies to Q<bits>G<group> formats only") }
                spec.search = true
            } else if opt == "gptq" {
                guard f.lowBitCodec != nil else { throw WeightSpecError.badOption(text, "gptq applies to Q<bits>G<group> formats only") }
                spec.gptq = true
            } else if opt == "act" {
                spec.actOrder = true
            } else if opt.hasPrefix("o"), opt.hasSuffix("%"), let p = Double(opt.dropFirst().dropLast()), p >= 0, p < 100 {
                spec.outlierFraction = p / 100
            } else {
                throw WeightSpecError.badOption(text, "options are +o<percent>% (e.g. +o0.5%), +mse, +gptq and +act (with +gptq)")
            }
        }
        if spec.actOrder && !spec.gptq { throw WeightSpecError.badOption(text, "+act is GPTQ's column order: give +gptq too") }
        self = spec
    }

    /// Parses a comma-separated list of specs.
    public static func list(_ text: String) throws -> [WeightSpec] {
        let specs = try text.split(separator: ",").map { try WeightSpec(parsing: String($0)) }
        guard !specs.isEmpty else { throw WeightSpecError.empty }
        return specs
    }
}

/// Why a weight spec was refused.
public enum WeightSpecError: Error, Equatable, CustomStringConvertible {
    case empty
    case unknownFormat(String)
    case badOption(String, String)
    case optionOnFile(String)
    case needsCalibration(String)

    public var description: String {
        let formats = "file, Q<bits>G<group> (bits 2,3,4,5,6,8; group 32,64,128), Q<bits>S (bits 2,3,4), Q4_1, Q4_0, Q8_0, F16, F32"
        switch self {
        case .empty: return "weights: empty spec (use \(formats))"
        case .unknownFormat(let f): return "weights: unknown or non-computable format '\(f)' (use \(formats))"
        case .badOption(let s, let why): return "weights: '\(s)': \(why)"
        case .optionOnFile(let s): return "weights: '\(s)': 'file' takes no options"
        case .needsCalibration(let s): return "weights: '\(s)' needs calibration inputs (GPTQ), and none were given"
        }
    }
}

/// A matrix quantized by effterm, owning its bytes: the quantized rows and its outliers, as a
/// `Linear` (`y = Q(W) x + S x`).
public final class RequantizedMatrix: @unchecked Sendable {
    private let storage: UnsafeMutableRawPointer
    public let linear: Linear

    fileprivate init(storage: UnsafeMutableRawPointer, linear: Linear) {
        self.storage = storage
        self.linear = linear
    }

    deinit { storage.deallocate() }
}

/// Round-to-nearest requantization of f32 weights into any computable format, with optional
/// sparse f16 outliers (LLM-MQ's dense-and-sparse split).
public enum Requantizer {
    /// Quantizes `W(rows, cols)` (row-major f32) as `spec` says (`spec.format` must be set).
    ///
    /// Outliers: the `round(outlierFraction * rows * cols)` weights of largest |w| (ties: the
    /// first in row-major order) are taken out; each is replaced, before quantizing, by the
    /// midpoint of the other weights' range in its row's group (so it widens nothing), and `S`
    /// stores `w - Q(W')` at its position in f16: the dense part's error there is carried
    /// by the outlier, so `Q(W') + S` equals `W` at those positions up to f16 rounding.
    ///
    /// `spec.gptq` needs `factor`, from the Gram matrix of this tensor's calibration inputs,
    /// (cols, cols); the dense part is then quantized by GPTQ.
    public static func quantize(_ w: UnsafePointer<Float>, rows: Int, cols: Int, spec: WeightSpec,
                                factor: GPTQ.Factor? = nil, pool: ComputePool = .shared) throws -> RequantizedMatrix {
        guard let format = spec.format else { throw WeightSpecError.empty }
        if spec.gptq && factor == nil { throw WeightSpecError.needsCalibration(spec.description) }
        if spec.gptq, let factor, (factor.order != nil) != spec.actOrder {
            throw GPTQ.GPTQError.shape("the factor's column order does not match '\(spec.description)'")
        }
        let kernels = try format.checkedRowKernels(count: cols)
        let rowBytes = format.rowBytes(cols)!
        let n = rows * cols
        let storage = UnsafeMutableRawPointer.allocate(byteCount: max(1, rows * rowBytes), alignment: 64)
        let search = spec.search ? format.lowBitCodec : nil

        let k = Int((spec.outlierFraction * Double(n)).rounded())
        var positions: [Int] = []
        var work: UnsafeMutablePointer<Float>? = nil
        if k > 0 {
            positions = largestMagnitudes(w, n, k).sorted()
            let copy = UnsafeMutablePointer<Float>.allocate(capacity: n)
            copy.update(from: w, count: n)
            fillOutliers(copy, rows: rows, cols: cols, group: format.blockSize, positions: positions)
            work = copy
        }
        defer { work?.deallocate() }
        let src = UnsafePointer(work ?? UnsafeMutablePointer(mutating: w))
        if spec.gptq, let codec = format.lowBitCodec, let factor {
            do {
                try GPTQ.quantize(src, rows: rows, cols: cols, codec: codec, factor: factor, search: spec.search,
                                  dst: storage, pool: pool)
            } catch {
                storage.deallocate()
                throw error
            }
        } else {
            pool.forEachChunk(rows) { r in
                for row in r {
                    let s = src + row * cols, d = storage + row * rowBytes
                    if let search { search.quantizeSearch(s, d, cols) } else { kernels.quantizeRow(s, d, cols) }
                }
            }
        }

        var outliers: SparseOutliers? = nil
        if !positions.isEmpty {
            var entries: [(row: Int, column: Int, value: Float)] = []
            entries.reserveCapacity(positions.count)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: cols) { tmp in
                var lastRow = -1
                for p in positions {
                    let r = p / cols, c = p % cols
                    if r != lastRow {
                        kernels.dequantizeRow(storage + r * rowBytes, tmp.baseAddress!, cols)
                        lastRow = r
                    }
                    entries.append((r, c, w[p] - tmp[c]))
                }
            }
            outliers = try SparseOutliers(rows: rows, cols: cols, entries: entries)
        }
        let matrix = try WeightMatrix(format: format, data: UnsafeRawPointer(storage), rows: rows, cols: cols)
        return RequantizedMatrix(storage: storage, linear: try Linear(weight: matrix, outliers: outliers))
    }

    /// Dequantizes a stored matrix to f32 (the reference a requantization starts from).
    public static func dequantize(_ m: WeightMatrix) -> [Float] {
        var out = [Float](repeating: 0, count: m.rows * m.cols)
        guard let k = m.format.reference, m.rows > 0 else { return out }
        out.withUnsafeMutableBufferPointer { o in
            for r in 0..<m.rows { k.dequantizeRow(m.row(r), o.baseAddress! + r * m.cols, m.cols) }
        }
        return out
    }

    /// Flat indices of the `k` largest |w[i]| (ties: lower index first).
    static func largestMagnitudes(_ w: UnsafePointer<Float>, _ n: Int, _ k: Int) -> [Int] {
        guard k > 0 else { return [] }
        if k >= n { return Array(0..<n) }
        let mags = (0..<n).map { abs(w[$0]) }
        let threshold = mags.sorted(by: >)[k - 1]
        var out: [Int] = []
        out.reserveCapacity(k)
        for i in 0..<n where mags[i] > threshold { out.append(i) }
        for i in 0..<n where out.count < k && mags[i] == threshold { out.append(i) }
        return out
    }

    /// Replaces each outlier (sorted flat indices) by the midpoint of the rest of its group.
    static func fillOutliers(_ w: UnsafeMutablePointer<Float>, rows: Int, cols: Int, group: Int, positions: [Int]) {
        let g = max(1, group)
        var isOutlier = Set(positions)
        var i = 0
        while i < positions.count {
            let p = positions[i]
            let r = p / cols, g0 = (p % cols) / g * g
            let start = r * cols + g0, end = start + min(g, cols - g0)
            var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
            for j in start..<end where !isOutlier.contains(j) {
                lo = min(lo, w[j]); hi = max(hi, w[j])
            }
            let fill: Float = lo <= hi ? (lo + hi) / 2 : 0
            while i < positions.count && positions[i] < end {
                w[positions[i]] = fill
                i += 1
            }
        }
        isOutlier.removeAll()
    }
}
