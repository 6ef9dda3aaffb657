import EffCore

/// Which linear of a DiT block a matrix is.
public enum DiTBlockMatrix: Int, CaseIterable, Sendable {
    case qkv, proj, fc1, fc2, ada

    public var name: String { String(describing: self) }
}

/// Integer weights for the DiT's transformer blocks (ViDiT-Q / MixDQ's setting, on
/// effterm's int8 kernels): each block linear (qkv, proj, fc1, fc2, adaLN) is kept in f32 or
/// stored in a weight format with 8-bit-activation tiles (Q8_0: W8A8; Q4_1: W4A8) and
/// multiplied by 8-bit activations with int8 dot products (the LLM's tiles). The patch
/// embedding, timestep MLP and final layer stay in f32, as quantization studies of DiTs
/// usually keep them.
///
/// Activations, two ways:
/// - `dynamic`: each block of 32 values of each token is rounded at its own max |x| / 127
///   when it is used (finer than ViDiT-Q's per-token scale);
/// - `static`: one step per matrix, fixed before sampling from the largest |x| seen at its
///   input over calibration images at every timestep (`DiTActivationRanges`); values beyond
///   clip. DiT activations change range across timesteps, which is what this shows.
public final class DiTQuant: @unchecked Sendable {
    public enum Activations: String, Sendable, CaseIterable {
        case dynamic
        case `static`
    }

    public let activations: Activations
    /// The format of every block matrix, [layer][DiTBlockMatrix.rawValue] (nil: f32).
    public let formats: [[WeightFormat?]]
    /// [layer][DiTBlockMatrix.rawValue]
    private let matrices: [[RequantizedMatrix?]]
    /// Static steps, [layer][DiTBlockMatrix.rawValue] (nil for dynamic).
    public let steps: [[Float]]?
    /// Bytes of the block linears as stored (f32 ones at 4 bytes a weight), and all in f32.
    public let blockBytes: Int
    public let floatBytes: Int

    public enum Error: Swift.Error, CustomStringConvertible {
        case notBlocksOf32(matrix: String, cols: Int)
        case noInt8Tiles(format: String)
        case noCalibration
        case shape

        public var description: String {
            switch self {
            case let .notBlocksOf32(m, c): return "DiT quantization: \(m) has \(c) inputs, not a multiple of 32"
            case let .noInt8Tiles(f): return "DiT quantization: \(f) has no 8-bit-activation kernel (use Q8_0, Q4_1, Q4_0 or Q<bits>G<group>)"
            case .noCalibration: return "DiT quantization: static activations need calibration ranges (DiTActivationRanges)"
            case .shape: return "DiT quantization: formats or calibration ranges are for another model shape"
            }
        }
    }

    /// Quantizes the block linears of `weights` as `formats` says ([layer][matrix], nil
    /// keeps f32); `ranges` (static only) gives each matrix's input range.
    public init(weights: DiTWeights, formats: [[WeightFormat?]], activations: Activations = .dynamic,
                ranges: DiTActivationRanges? = nil, pool: ComputePool = .shared) throws {
        guard formats.count == weights.blocks.count, formats.allSatisfy({ $0.count == DiTBlockMatrix.allCases.count })
        else { throw Error.shape }
        self.activations = activations
        self.formats = formats
        var mats: [[RequantizedMatrix?]] = []
        var stored = 0
        for (l, blk) in weights.blocks.enumerated() {
            var row: [RequantizedMatrix?] = []
            for m in DiTBlockMatrix.allCases {
                let lin = blk[m]
                guard let format = formats[l][m.rawValue] else { row.append(nil); stored += lin.rows * lin.cols * 4; continue }
                guard format.fast?.packing != nil || format.fast?.lowBitKernel != nil else { throw Error.noInt8Tiles(format: format.name) }
                guard lin.cols % 32 == 0 else { throw Error.notBlocksOf32(matrix: "block \(l) \(m.name)", cols: lin.cols) }
                let q = try Requantizer.quantize(lin.w.data.assumingMemoryBound(to: Float.self), rows: lin.rows,
                                                 cols: lin.cols, spec: WeightSpec(format: format), pool: pool)
                stored += q.linear.byteCount
                row.append(q)
            }
            mats.append(row)
        }
        matrices = mats
        blockBytes = stored
        floatBytes = weights.blockLinearParameters * 4
        if activations == .static {
            guard let ranges else { throw Error.noCalibration }
            let maxAbs = ranges.maxAbs
            guard maxAbs.count == weights.blocks.count, maxAbs.allSatisfy({ $0.count == DiTBlockMatrix.allCases.count })
            else { throw Error.shape }
            steps = maxAbs.map { $0.map { $0 > 0 ? $0 / 127 : 1 } }
        } else {
            steps = nil
        }
    }

    /// W8A8: every block linear in Q8_0.
    public static func w8a8(weights: DiTWeights, activations: Activations = .dynamic,
                            ranges: DiTActivationRanges? = nil) throws -> DiTQuant {
        try DiTQuant(weights: weights, formats: uniform(weights, .q8_0), activations: activations, ranges: ranges)
    }

    /// One format for every block matrix.
    public static func uniform(_ weights: DiTWeights, _ format: WeightFormat?) -> [[WeightFormat?]] {
        Array(repeating: Array(repeating: format, count: DiTBlockMatrix.allCases.count), count: weights.blocks.count)
    }

    /// Whether block `layer`'s `matrix` runs quantized.
    func handles(layer: Int, _ matrix: DiTBlockMatrix) -> Bool { matrices[layer][matrix.rawValue] != nil }

    /// `y = W_q · Q8(x) + b` for block `layer`'s `matrix` (`n` tokens); false when that
    /// matrix stays in f32 (nothing written).
    func apply(layer: Int, _ matrix: DiTBlockMatrix, bias: UnsafePointer<Float>, x: UnsafePointer<Float>, n: Int,
               y: UnsafeMutablePointer<Float>) -> Bool {
        guard let lin = matrices[layer][matrix.rawValue]?.linear else { return false }
        if let steps {
            FastKernels.matmul(lin.weight, x: x, nTokens: n, y: y, activationStep: steps[layer][matrix.rawValue])
        } else {
            Kernels.matmul(lin, x: x, nTokens: n, y: y)
        }
        for t in 0..<n { VectorOps.add(bias, into: y + t * lin.rows, lin.rows) }
        return true
    }
}

/// The largest |x| at the input of every block linear over the forward passes it watched
/// (set as `DiT.rangeRecorder` while calibration images are sampled): static activation
/// scales for `DiTQuant`. Not thread-safe; one forward pass at a time.
public final class DiTActivationRanges: @unchecked Sendable {
    /// [layer][DiTBlockMatrix.rawValue]
    public private(set) var maxAbs: [[Float]]

    public init(layers: Int) {
        maxAbs = Array(repeating: Array(repeating: 0, count: DiTBlockMatrix.allCases.count), count: layers)
    }

    func observe(layer: Int, _ matrix: DiTBlockMatrix, x: UnsafePointer<Float>, count: Int) {
        var m = maxAbs[layer][matrix.rawValue]
        for i in 0..<count { m = max(m, abs(x[i])) }
        maxAbs[layer][matrix.rawValue] = m
    }
}

extension DiTWeights {
    /// Weights in the transformer blocks' linears (qkv, proj, fc1, fc2, adaLN): what
    /// `DiTQuant` replaces.
    public var blockLinearParameters: Int {
        blocks.reduce(0) { acc, b in acc + DiTBlockMatrix.allCases.reduce(0) { $0 + b[$1].rows * b[$1].cols } }
    }
}

extension DiTWeights.Block {
    public subscript(_ m: DiTBlockMatrix) -> DiTWeights.Linear {
        switch m {
        case .qkv: return qkv
        case .proj: return proj
        case .fc1: return fc1
        case .fc2: return fc2
        case .ada: return ada
        }
    }
}
