import CEffKernels

/// One row of the weight-format table: how a tensor format is laid out and computed.
///
/// The table is ggml's `type_traits` idea (block size, bytes per block, to_float, vec_dot,
/// from_float) plus the fast path and its packing, so everything effterm knows about a
/// format sits in one row: the GGUF reader's size checks, the reference codecs that are the
/// oracle, which fast kernel multiplies it and how its weights are repacked for that kernel.
/// A new format is one more row plus its kernels; no other switch names formats.
///
/// Identity is the `name`. `ggmlType` is the GGUF/ggml id when the format has one; formats
/// of effterm's own (`LowBitCodec`'s Q<bits>G<group>) leave it nil and are found with `WeightFormat.named(_:)`.
public struct WeightFormat: Sendable, Hashable, CustomStringConvertible {
    /// Display name as ggml spells it ("Q4_1").
    public let name: String
    /// The ggml id, nil for formats that are not ggml's.
    public let ggmlType: GGMLType?
    /// Weights per block (1 for plain element types).
    public let blockSize: Int
    /// Bytes per block, scales and mins included.
    public let bytesPerBlock: Int
    /// The reference row codecs (dequantize, dot with f32, quantize as ggml rounds): the
    /// oracle for every fast path. nil when effterm cannot compute the format.
    public let reference: QuantRowKernels?
    /// How the fast kernels multiply this format; nil: the reference loop runs instead.
    public let fast: FastPath?

    /// The fast kernel entry of a format.
    public enum FastPath: Sendable, Equatable {
        /// Activations are quantized to 8 bits per block of 32 (Q8A, `eff_q8a_block`) and
        /// multiplied as int8 dot products in 8-row tiles over the weights repacked once into
        /// the x8 layout `eff_x8_kind` (CEffKernels.h, its row in matmul.c's layout table).
        case int8Tiles(eff_x8_kind)
        /// Half-precision weights times f32 activations (`eff_matmul_f16`).
        case f16
        /// Single-precision weights times f32 activations (`eff_matmul_f32`).
        case f32
        /// effterm's own Q<bits>G<group> formats (`LowBitCodec`): activations quantized as
        /// for `int8Tiles`, weights repacked once into the low-bit x8 layout
        /// (`eff_qg_x8_pack`, same bytes as the tensor) and unpacked in registers by
        /// `eff_qg_matmul_x8`.
        case lowBit(bits: Int32, group: Int32)
        /// effterm's super-block formats Q<bits>S (`SuperBlockCodec`): expanded once into
        /// Q<bits>G64 and packed and multiplied as `lowBit` (the storage is smaller).
        case superBlock(bits: Int32)

        /// The low-bit kernel's shape (`eff_qg_*`) for `lowBit` and `superBlock`.
        public var lowBitKernel: (bits: Int32, group: Int32)? {
            switch self {
            case .lowBit(let b, let g): return (b, g)
            case .superBlock(let b): return (b, Int32(SuperBlockCodec.group))
            default: return nil
            }
        }

        /// The packed layout the kernels read, when the path repacks weights.
        public var packing: eff_x8_kind? {
            if case .int8Tiles(let k) = self { return k }
            return nil
        }

        /// True when the path reads a packed copy of the weights (`PackedWeights`).
        public var packs: Bool {
            switch self {
            case .int8Tiles, .lowBit, .superBlock: return true
            case .f16, .f32: return false
            }
        }

        /// Bytes of the packed copy of a `rows` x `cols` matrix (0 when not packed).
        public func packedBytes(rows: Int, cols: Int) -> Int {
            switch self {
            case .int8Tiles(let k): return eff_x8_bytes(k, Int32(rows), Int32(cols / 32))
            case .lowBit(let b, let g): return eff_qg_x8_bytes(b, g, Int32(rows), Int32(cols))
            case .superBlock(let b): return eff_qg_x8_bytes(b, Int32(SuperBlockCodec.group), Int32(rows), Int32(cols))
            case .f16, .f32: return 0
            }
        }

        /// Packs rows `rows` (lower bound a multiple of 8) of the row-major matrix `src`.
        func pack(_ src: UnsafePointer<UInt8>, rowBytes: Int, totalRows: Int, rows: Range<Int>, cols: Int,
                  into dst: UnsafeMutablePointer<UInt8>) {
            switch self {
            case .int8Tiles(let k):
                eff_x8_pack(k, src, rowBytes, Int32(totalRows), Int32(rows.lowerBound), Int32(rows.upperBound),
                            Int32(cols / 32), dst)
            case .lowBit(let b, let g):
                eff_qg_x8_pack(b, g, src, rowBytes, Int32(totalRows), Int32(rows.lowerBound), Int32(rows.upperBound),
                               Int32(cols), dst)
            case .superBlock(let b):
                // Expand the rows this chunk packs (its 8-row groups, padding rows included)
                // into Q<bits>G64 rows, then pack those.
                guard let codec = SuperBlockCodec(bits: Int(b)), !rows.isEmpty else { return }
                let inner = codec.inner
                let lo = rows.lowerBound, hi = min(totalRows, (rows.upperBound + 7) / 8 * 8)
                let innerRowBytes = (cols / inner.group) * inner.blockBytes
                let tmp = UnsafeMutableRawPointer.allocate(byteCount: max(1, (hi - lo) * innerRowBytes), alignment: 64)
                defer { tmp.deallocate() }
                codec.expandRows(src + lo * rowBytes, rowBytes: rowBytes, rows: hi - lo, cols: cols, into: tmp)
                let packedRowGroup = eff_qg_x8_bytes(b, Int32(inner.group), 8, Int32(cols))
                eff_qg_x8_pack(b, Int32(inner.group), tmp.assumingMemoryBound(to: UInt8.self), innerRowBytes,
                               Int32(hi - lo), 0, Int32(rows.count), Int32(cols), dst + (lo / 8) * packedRowGroup)
            case .f16, .f32:
                break
            }
        }
    }

    public init(name: String, ggmlType: GGMLType?, blockSize: Int, bytesPerBlock: Int,
                reference: QuantRowKernels? = nil, fast: FastPath? = nil) {
        self.name = name
        self.ggmlType = ggmlType
        self.blockSize = blockSize
        self.bytesPerBlock = bytesPerBlock
        self.reference = reference
        self.fast = fast
    }

    /// Storage bits per weight, scales and mins included (Q4_1: 160 bits / 32 = 5.0).
    public var bitsPerWeight: Double { Double(bytesPerBlock * 8) / Double(blockSize) }

    /// True when effterm can dequantize and multiply the format.
    public var isComputable: Bool { reference != nil }

    /// The reference row kernels (same as `reference`; the name call sites use).
    public var rowKernels: QuantRowKernels? { reference }

    /// Bytes needed for one row of `count` elements, or nil when `count` is not a whole
    /// number of blocks or the size overflows.
    public func rowBytes(_ count: Int) -> Int? {
        guard count >= 0, count % blockSize == 0 else { return nil }
        let (bytes, overflow) = (count / blockSize).multipliedReportingOverflow(by: bytesPerBlock)
        return overflow ? nil : bytes
    }

    /// A ggml format describes itself as ggml's enum case does ("q4_1"), so strings built
    /// from a matrix's format (the router's model fingerprint) read as they always have.
    public var description: String { ggmlType.map { String(describing: $0) } ?? name }

    public static func == (a: WeightFormat, b: WeightFormat) -> Bool { a.name == b.name }
    public func hash(into h: inout Hasher) { h.combine(name) }
}

// MARK: - The table

extension WeightFormat {
    /// A ggml format effterm can describe (sizes) but not compute.
    private static func described(_ name: String, _ t: GGMLType, _ blockSize: Int, _ bytes: Int) -> WeightFormat {
        WeightFormat(name: name, ggmlType: t, blockSize: blockSize, bytesPerBlock: bytes)
    }

    public static let f32 = WeightFormat(
        name: "F32", ggmlType: .f32, blockSize: 1, bytesPerBlock: 4,
        reference: QuantRowKernels(dequantizeRow: { QuantBlocks.dequantizeF32($0, $1, $2) },
                                   dotRow: { QuantBlocks.dotF32($0, $1, $2) },
                                   quantizeRow: { QuantBlocks.quantizeF32($0, $1, $2) }),
        fast: .f32)
    public static let f16 = WeightFormat(
        name: "F16", ggmlType: .f16, blockSize: 1, bytesPerBlock: 2,
        reference: QuantRowKernels(dequantizeRow: { QuantBlocks.dequantizeF16($0, $1, $2) },
                                   dotRow: { QuantBlocks.dotF16($0, $1, $2) },
                                   quantizeRow: { QuantBlocks.quantizeF16($0, $1, $2) }),
        fast: .f16)
    public static let q8_0 = WeightFormat(
        name: "Q8_0", ggmlType: .q8_0, blockSize: 32, bytesPerBlock: 34,
        reference: QuantRowKernels(dequantizeRow: { QuantBlocks.dequantizeQ8_0($0, $1, $2) },
                                   dotRow: { QuantBlocks.dotQ8_0($0, $1, $2) },
                                   quantizeRow: { QuantBlocks.quantizeQ8_0($0, $1, $2) }),
        fast: .int8Tiles(EFF_X8_Q8_0))
    public static let q4_0 = WeightFormat(
        name: "Q4_0", ggmlType: .q4_0, blockSize: 32, bytesPerBlock: 18,
        reference: QuantRowKernels(dequantizeRow: { QuantBlocks.dequantizeQ4_0($0, $1, $2) },
                                   dotRow: { QuantBlocks.dotQ4_0($0, $1, $2) },
                                   quantizeRow: { QuantBlocks.quantizeQ4_0($0, $1, $2) }),
        fast: .int8Tiles(EFF_X8_Q4_0))
    public static let q4_1 = WeightFormat(
        name: "Q4_1", ggmlType: .q4_1, blockSize: 32, bytesPerBlock: 20,
        reference: QuantRowKernels(dequantizeRow: { QuantBlocks.dequantizeQ4_1($0, $1, $2) },
                                   dotRow: { QuantBlocks.dotQ4_1($0, $1, $2) },
                                   quantizeRow: { QuantBlocks.quantizeQ4_1($0, $1, $2) }),
        fast: .int8Tiles(EFF_X8_Q4_1))

    /// Every format effterm knows, one row each: the computable ones above, then ggml's
    /// other live ids (sizes only, so a file holding them can be described and refused), then
    /// effterm's own low-bit formats (`lowBit`, no ggml id).
    public static let all: [WeightFormat] = [
        f32, f16, q4_0, q4_1, q8_0,
        described("Q5_0", .q5_0, 32, 22), described("Q5_1", .q5_1, 32, 24),
        described("Q8_1", .q8_1, 32, 36),
        described("Q2_K", .q2_K, 256, 84), described("Q3_K", .q3_K, 256, 110),
        described("Q4_K", .q4_K, 256, 144), described("Q5_K", .q5_K, 256, 176),
        described("Q6_K", .q6_K, 256, 210), described("Q8_K", .q8_K, 256, 292),
        described("IQ2_XXS", .iq2_xxs, 256, 66), described("IQ2_XS", .iq2_xs, 256, 74),
        described("IQ3_XXS", .iq3_xxs, 256, 98), described("IQ1_S", .iq1_s, 256, 50),
        described("IQ4_NL", .iq4_nl, 32, 18), described("IQ3_S", .iq3_s, 256, 110),
        described("IQ2_S", .iq2_s, 256, 82), described("IQ4_XS", .iq4_xs, 256, 136),
        described("I8", .i8, 1, 1), described("I16", .i16, 1, 2), described("I32", .i32, 1, 4),
        described("I64", .i64, 1, 8), described("F64", .f64, 1, 8),
        described("IQ1_M", .iq1_m, 256, 56), described("BF16", .bf16, 1, 2),
        described("TQ1_0", .tq1_0, 256, 54), described("TQ2_0", .tq2_0, 256, 66),
        described("MXFP4", .mxfp4, 32, 17),
    ] + lowBit + superBlock

    /// The computable ggml formats, for messages about files ("F32, F16, Q4_0, Q4_1, Q8_0").
    public static var computableNames: String {
        all.filter { $0.isComputable && $0.ggmlType != nil }.map(\.name).joined(separator: ", ")
    }

    /// The row named `name` (as `WeightFormat.name` spells it), or nil.
    public static func named(_ name: String) -> WeightFormat? {
        all.first { $0.name == name }
    }

    /// Rows indexed by ggml id (the table above, looked up once per tensor, not per element).
    static let byGGMLId: [WeightFormat?] = {
        let maxId = Int(GGMLType.allCases.map(\.rawValue).max() ?? 0)
        var table = [WeightFormat?](repeating: nil, count: maxId + 1)
        for f in all { if let t = f.ggmlType { table[Int(t.rawValue)] = f } }
        return table
    }()

    /// The kernels for a row of `count` elements, or a typed error naming why not.
    public func checkedRowKernels(count: Int) throws -> QuantRowKernels {
        guard let k = reference else {
            throw ggmlType.map { QuantError.unsupportedType($0) } ?? QuantError.unsupportedFormat(name)
        }
        guard rowBytes(count) != nil else {
            throw ggmlType.map { QuantError.partialBlock(type: $0, count: count) }
                ?? QuantError.partialFormatBlock(format: name, blockSize: blockSize, count: count)
        }
        return k
    }
}
