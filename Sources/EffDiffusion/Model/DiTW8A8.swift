import EffCore

/// Which linear of a DiT block a matrix is.
public enum DiTBlockMatrix: Int, CaseIterable, Sendable {
    case qkv, proj, fc1, fc2, ada

    public var name: String { String(describing: self) }
}

/// W8A8 for the DiT's transformer blocks (ViDiT-Q's setting, on effterm's int8 kernels):
/// every block linear (qkv, proj, fc1, fc2, adaLN) stored as Q8_0 (int8 weights, one f16
/// scale per 32 inputs of a row) and multiplied by 8-bit activations with int8 dot products
/// (the LLM's tiles). The patch embedding, timestep MLP and final layer stay in f32, as
/// quantization studies of DiTs usually keep them.
///
/// Activations, two ways:
/// - `dynamic`: each block of 32 values of each token is rounded at its own max |x| / 127
///   when it is used (finer than ViDiT-Q's per-token scale);
/// - `static`: one step per matrix, fixed before sampling from the largest |x| seen at its
///   input over calibration images at every timestep (`DiTActivationRanges`); values beyond
///   clip. DiT activations change range across timesteps, which is what this shows.
public final class DiTW8A8: @unchecked Sendable {
    public enum Activations: String, Sendable, CaseIterable {
        case dynamic
        case `static`
    }

    public let activations: Activations
    /// [layer][DiTBlockMatrix.rawValue]
    private let matrices: [[RequantizedMatrix]]
    /// Static steps, [layer][DiTBlockMatrix.rawValue] (nil for dynamic).
    public let steps: [[Float]]?
    /// Bytes of the quantized block linears, and of the f32 weights they replace.
    public let quantizedBytes: Int
    public let floatBytes: Int

    public enum Error: Swift.Error, CustomStringConvertible {
        case notBlocksOf32(matrix: String, cols: Int)
        case noCalibration
        case calibrationShape

        public var description: String {
            switch self {
            case let .notBlocksOf32(m, c): return "W8A8: \(m) has \(c) inputs, not a multiple of 32"
            case .noCalibration: return "W8A8: static activations need calibration ranges (DiTActivationRanges)"
            case .calibrationShape: return "W8A8: the calibration ranges are for another model shape"
            }
        }
    }

    /// Quantizes every block linear of `weights` to Q8_0; `ranges` (static only) gives each
    /// matrix's input range.
    public init(weights: DiTWeights, activations: Activations, ranges: DiTActivationRanges? = nil,
                pool: ComputePool = .shared) throws {
        self.activations = activations
        var mats: [[RequantizedMatrix]] = []
        var qBytes = 0, fBytes = 0
        for (l, blk) in weights.blocks.enumerated() {
            var row: [RequantizedMatrix] = []
            for m in DiTBlockMatrix.allCases {
                let lin = blk[m]
                guard lin.cols % 32 == 0 else { throw Error.notBlocksOf32(matrix: "block \(l) \(m.name)", cols: lin.cols) }
                let q = try Requantizer.quantize(lin.w.data.assumingMemoryBound(to: Float.self), rows: lin.rows,
                                                 cols: lin.cols, spec: WeightSpec(format: .q8_0), pool: pool)
                qBytes += q.linear.byteCount
                fBytes += lin.rows * lin.cols * 4
                row.append(q)
            }
            mats.append(row)
        }
        matrices = mats
        quantizedBytes = qBytes
        floatBytes = fBytes
        if activations == .static {
            guard let ranges else { throw Error.noCalibration }
            let maxAbs = ranges.maxAbs
            guard maxAbs.count == weights.blocks.count, maxAbs.allSatisfy({ $0.count == DiTBlockMatrix.allCases.count })
            else { throw Error.calibrationShape }
            steps = maxAbs.map { $0.map { $0 > 0 ? $0 / 127 : 1 } }
        } else {
            steps = nil
        }
    }

    /// `y = W_q · Q8(x) + b` for block `layer`'s `matrix` (`n` tokens).
    func apply(layer: Int, _ matrix: DiTBlockMatrix, bias: UnsafePointer<Float>, x: UnsafePointer<Float>, n: Int,
               y: UnsafeMutablePointer<Float>) {
        let lin = matrices[layer][matrix.rawValue].linear
        if let steps {
            FastKernels.matmul(lin.weight, x: x, nTokens: n, y: y, activationStep: steps[layer][matrix.rawValue])
        } else {
            Kernels.matmul(lin, x: x, nTokens: n, y: y)
        }
        for t in 0..<n { VectorOps.add(bias, into: y + t * lin.rows, lin.rows) }
    }
}

/// The largest |x| at the input of every block linear over the forward passes it watched
/// (set as `DiT.rangeRecorder` while calibration images are sampled): static activation
/// scales for `DiTW8A8`. Not thread-safe; one forward pass at a time.
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
