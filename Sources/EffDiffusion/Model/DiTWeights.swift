import CEffKernels
import EffCore
import Foundation

/// The frozen DiT weights, converted to f32 once at load and viewed as `WeightMatrix`es.
///
/// Tensor names mirror the PyTorch module in Tools/dit/model.py (one table: `Names`).
/// Linear weights are stored `W(out, in)` row-major, the EffCore matmul convention.
public final class DiTWeights: @unchecked Sendable {
    /// The safetensors tensor names, in one place.
    public enum Names {
        public static let patchEmbedW = "patch_embed.weight", patchEmbedB = "patch_embed.bias"
        public static let posEmbed = "pos_embed"
        public static let tFc1W = "t_fc1.weight", tFc1B = "t_fc1.bias"
        public static let tFc2W = "t_fc2.weight", tFc2B = "t_fc2.bias"
        public static let classEmbed = "class_embed.weight"
        public static let finalAdaW = "final_ada.weight", finalAdaB = "final_ada.bias"
        public static let finalW = "final.weight", finalB = "final.bias"
        public static func block(_ l: Int, _ leaf: String) -> String { "blocks.\(l).\(leaf)" }
    }

    /// A linear layer: `y(out) = W(out, in) · x(in) + b(out)`.
    public struct Linear {
        public let w: WeightMatrix
        public let b: UnsafePointer<Float>   // (out)
        /// W in panels of 16 output rows (`eff_dit_pack16_f32`), for the DiT GEMM.
        public let packed: UnsafePointer<Float>
        public var rows: Int { w.rows }
        public var cols: Int { w.cols }
    }

    /// One transformer block's weights.
    public struct Block {
        public let qkv: Linear    // (3·dim, dim): q, k, v stacked, heads contiguous within each
        public let proj: Linear   // (dim, dim)
        public let fc1: Linear    // (hiddenDim, dim)
        public let fc2: Linear    // (dim, hiddenDim)
        public let ada: Linear    // (6·dim, dim): shift1, scale1, gate1, shift2, scale2, gate2
    }

    public let config: DiTConfig
    public let patchEmbed: Linear                 // (dim, patchDim)
    public let posEmbed: UnsafePointer<Float>     // (nTokens, dim)
    public let tFc1: Linear                       // (dim, freqDim)
    public let tFc2: Linear                       // (dim, dim)
    public let classEmbed: UnsafePointer<Float>   // (numClasses + 1, dim)
    public let blocks: [Block]                    // nLayers
    public let finalAda: Linear                   // (2·dim, dim): shift, scale
    public let final: Linear                      // (patchDim, dim)
    /// Total parameters (floats) held.
    public let parameterCount: Int

    private let storage: UnsafeMutableBufferPointer<Float>
    /// The packed copies of every linear weight (built once at load).
    private var packedStorage: [UnsafeMutablePointer<Float>] = []

    /// Binds every tensor, checking names and shapes against `config`.
    public init(config c: DiTConfig, file: SafeTensorsFile) throws {
        config = c
        var specs: [(String, [Int])] = [
            (Names.patchEmbedW, [c.dim, c.patchDim]), (Names.patchEmbedB, [c.dim]),
            (Names.posEmbed, [c.nTokens, c.dim]),
            (Names.tFc1W, [c.dim, c.freqDim]), (Names.tFc1B, [c.dim]),
            (Names.tFc2W, [c.dim, c.dim]), (Names.tFc2B, [c.dim]),
            (Names.classEmbed, [c.numClasses + 1, c.dim]),
            (Names.finalAdaW, [2 * c.dim, c.dim]), (Names.finalAdaB, [2 * c.dim]),
            (Names.finalW, [c.patchDim, c.dim]), (Names.finalB, [c.patchDim]),
        ]
        let blockLeaves: [(String, [Int])] = [
            ("qkv.weight", [3 * c.dim, c.dim]), ("qkv.bias", [3 * c.dim]),
            ("proj.weight", [c.dim, c.dim]), ("proj.bias", [c.dim]),
            ("fc1.weight", [c.hiddenDim, c.dim]), ("fc1.bias", [c.hiddenDim]),
            ("fc2.weight", [c.dim, c.hiddenDim]), ("fc2.bias", [c.dim]),
            ("ada.weight", [6 * c.dim, c.dim]), ("ada.bias", [6 * c.dim]),
        ]
        for l in 0..<c.nLayers { specs += blockLeaves.map { (Names.block(l, $0.0), $0.1) } }
        let expected = Set(specs.map(\.0))
        if let extra = file.names.first(where: { !expected.contains($0) }) {
            throw DiTError.weights(.init(text: "unexpected tensor '\(extra)' for depth \(c.nLayers)"))
        }
        let total = specs.reduce(0) { $0 + $1.1.reduce(1, *) }
        storage = .allocate(capacity: total)
        parameterCount = total
        var offsets: [String: Int] = [:]
        var at = 0
        do {
            for (name, shape) in specs {
                let values = try file.floats(name, shape: shape)
                if let bad = values.firstIndex(where: { !$0.isFinite }) {
                    throw DiTError.weights(.init(text: "tensor '\(name)' has a non-finite value at \(bad)"))
                }
                _ = UnsafeMutableBufferPointer(rebasing: storage[at..<(at + values.count)]).initialize(from: values)
                offsets[name] = at
                at += values.count
            }
        } catch let e as SafeTensorsError {
            storage.deallocate()
            throw DiTError.weights(.init(text: e.description))
        } catch {
            storage.deallocate()
            throw error
        }
        let base = UnsafePointer(storage.baseAddress!)
        func ptr(_ n: String) -> UnsafePointer<Float> { base + offsets[n]! }
        var packedBuffers: [UnsafeMutablePointer<Float>] = []
        func linear(_ w: String, _ b: String, _ rows: Int, _ cols: Int) throws -> Linear {
            let packed = UnsafeMutablePointer<Float>.allocate(capacity: eff_dit_packed16_floats(Int32(rows), Int32(cols)))
            eff_dit_pack16_f32(ptr(w), Int32(rows), Int32(cols), packed)
            packedBuffers.append(packed)
            return Linear(w: try WeightMatrix(type: .f32, data: UnsafeRawPointer(ptr(w)), rows: rows, cols: cols),
                          b: ptr(b), packed: packed)
        }
        patchEmbed = try linear(Names.patchEmbedW, Names.patchEmbedB, c.dim, c.patchDim)
        posEmbed = ptr(Names.posEmbed)
        tFc1 = try linear(Names.tFc1W, Names.tFc1B, c.dim, c.freqDim)
        tFc2 = try linear(Names.tFc2W, Names.tFc2B, c.dim, c.dim)
        classEmbed = ptr(Names.classEmbed)
        blocks = try (0..<c.nLayers).map { l in
            func n(_ leaf: String) -> String { Names.block(l, leaf) }
            return Block(qkv: try linear(n("qkv.weight"), n("qkv.bias"), 3 * c.dim, c.dim),
                         proj: try linear(n("proj.weight"), n("proj.bias"), c.dim, c.dim),
                         fc1: try linear(n("fc1.weight"), n("fc1.bias"), c.hiddenDim, c.dim),
                         fc2: try linear(n("fc2.weight"), n("fc2.bias"), c.dim, c.hiddenDim),
                         ada: try linear(n("ada.weight"), n("ada.bias"), 6 * c.dim, c.dim))
        }
        finalAda = try linear(Names.finalAdaW, Names.finalAdaB, 2 * c.dim, c.dim)
        final = try linear(Names.finalW, Names.finalB, c.patchDim, c.dim)
        packedStorage = packedBuffers
    }

    deinit {
        storage.deallocate()
        for p in packedStorage { p.deallocate() }
    }
}
