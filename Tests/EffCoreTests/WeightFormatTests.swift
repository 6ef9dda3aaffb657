import CEffKernels
import Testing
@testable import EffCore

/// The weight-format table: one row per format, every ggml id covered, the fast path and
/// packing read from the row, and a format outside ggml's ids computed from its row alone.
@Suite struct WeightFormatTests {
    @Test func everyGGMLIdHasExactlyOneRow() {
        for t in GGMLType.allCases {
            let rows = WeightFormat.all.filter { $0.ggmlType == t }
            #expect(rows.count == 1, "\(t)")
            #expect(t.traits.ggmlType == t)
            #expect(t.traits.description == "\(t)")  // a matrix's format prints as ggml's enum
        }
        #expect(Set(WeightFormat.all.map(\.name)).count == WeightFormat.all.count)
        #expect(WeightFormat.all.filter { $0.ggmlType != nil }.count == GGMLType.allCases.count)
        #expect(WeightFormat.all.filter { $0.ggmlType == nil } == WeightFormat.lowBit + WeightFormat.superBlock)
    }

    @Test func computableRowsAndTheirFastPaths() {
        #expect(WeightFormat.all.filter { $0.isComputable && $0.ggmlType != nil } == [.f32, .f16, .q4_0, .q4_1, .q8_0])
        #expect(WeightFormat.computableNames == "F32, F16, Q4_0, Q4_1, Q8_0")
        #expect(QuantError.unsupportedType(.q6_K).description.hasSuffix("(computable: F32, F16, Q4_0, Q4_1, Q8_0)"))
        #expect(WeightFormat.q4_1.fast == .int8Tiles(EFF_X8_Q4_1))
        #expect(WeightFormat.q4_0.fast == .int8Tiles(EFF_X8_Q4_0))
        #expect(WeightFormat.q8_0.fast == .int8Tiles(EFF_X8_Q8_0))
        #expect(WeightFormat.f16.fast == .f16 && WeightFormat.f32.fast == .f32)
        #expect(WeightFormat.f16.fast?.packing == nil)
        for f in WeightFormat.all where !f.isComputable { #expect(f.fast == nil, "\(f.name)") }
        // The packed layouts' sizes: same bytes per row as ggml for Q4, plus row sums for Q8_0.
        #expect(eff_x8_bytes(EFF_X8_Q4_1, 8, 1) == 8 * 20)
        #expect(eff_x8_bytes(EFF_X8_Q4_0, 8, 1) == 8 * 18)
        #expect(eff_x8_bytes(EFF_X8_Q8_0, 8, 1) == 8 * 36)
        #expect(eff_x8_bytes(eff_x8_kind(rawValue: 7), 8, 1) == 0)  // an unknown kind packs nothing
        #expect(WeightFormat.named("Q4_1") == .q4_1 && WeightFormat.named("Q4_2") == nil)
    }

    @Test func aWeightMatrixPrintsItsFormatAsBefore() throws {
        // The SoT router fingerprints a model from "\(m.type) rows x cols".
        let q = try GGMLType.q4_1.quantize([Float](repeating: 0.25, count: 64))
        try q.withUnsafeBytes { p in
            let w = try WeightMatrix(type: .q4_1, data: p.baseAddress!, rows: 2, cols: 32)
            #expect("\(w.type) \(w.rows)x\(w.cols)" == "q4_1 2x32")
            #expect(w.format == .q4_1 && w.type.rowKernels != nil)
        }
    }

    @Test func aFormatOutsideGGMLIsOneRowPlusItsKernels() throws {
        // A format with no ggml id that reuses Q8_0's codecs and packed layout: the table row
        // alone makes it a WeightMatrix, and the fast kernels give Q8_0's bits.
        let mine = WeightFormat(name: "EFF_TEST8", ggmlType: nil, blockSize: 32, bytesPerBlock: 34,
                                reference: WeightFormat.q8_0.reference, fast: .int8Tiles(EFF_X8_Q8_0))
        #expect(mine.description == "EFF_TEST8" && mine.bitsPerWeight == 8.5)
        let (rows, cols, nTokens) = (13, 96, 4)
        let values = testValues(rows * cols, seed: 3)
        let stored = try mine.quantize(values)
        #expect(stored == (try GGMLType.q8_0.quantize(values)))
        let x = testValues(nTokens * cols, seed: 4)
        var a = [Float](repeating: 0, count: nTokens * rows), b = a
        try stored.withUnsafeBytes { p in
            let wm = try WeightMatrix(format: mine, data: p.baseAddress!, rows: rows, cols: cols)
            let wq = try WeightMatrix(type: .q8_0, data: p.baseAddress!, rows: rows, cols: cols)
            Kernels.matmul(wm, x: x, nTokens: nTokens, y: &a)
            Kernels.matmul(wq, x: x, nTokens: nTokens, y: &b)
        }
        #expect(a == b)
        // Without kernels it is described but refused, by name.
        let sizesOnly = WeightFormat(name: "EFF_SIZES", ggmlType: nil, blockSize: 64, bytesPerBlock: 20)
        #expect(sizesOnly.rowBytes(128) == 40 && sizesOnly.rowBytes(100) == nil)
        #expect(throws: QuantError.unsupportedFormat("EFF_SIZES")) { try sizesOnly.quantize([Float](repeating: 0, count: 64)) }
        #expect(throws: QuantError.partialFormatBlock(format: "EFF_TEST8", blockSize: 32, count: 40)) {
            try mine.quantize([Float](repeating: 0, count: 40))
        }
    }
}
