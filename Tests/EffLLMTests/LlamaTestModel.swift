import EffCore
@testable import EffLLM

/// A tiny random Llama (no file, no network) for unit tests of the forward pass.
final class LlamaTestModel {
    private var storage: [UnsafeMutableRawPointer] = []
    let model: LlamaModel

    /// Deterministic values in [-scale, scale].
    static func values(_ n: Int, seed: UInt64, scale: Float) -> [Float] {
        var s = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return (Float((s >> 40) & 0xFFFFFF) / Float(1 << 24) * 2 - 1) * scale
        }
    }

    init(config: LlamaConfig, type: GGMLType = .q4_1, seed: UInt64 = 7) throws {
        var seed = seed
        var storage: [UnsafeMutableRawPointer] = []
        func matrix(_ rows: Int, _ cols: Int, _ t: GGMLType) throws -> WeightMatrix {
            seed += 1
            let bytes = try t.quantize(Self.values(rows * cols, seed: seed, scale: 1 / Float(cols).squareRoot() * 1.7))
            let p = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 64)
            bytes.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
            storage.append(p)
            return try WeightMatrix(type: t, data: p, rows: rows, cols: cols)
        }
        func norm(_ n: Int) -> UnsafePointer<Float> {
            seed += 1
            let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
            for (i, v) in Self.values(n, seed: seed, scale: 0.2).enumerated() { p[i] = 1 + v }
            storage.append(UnsafeMutableRawPointer(p))
            return UnsafePointer(p)
        }
        let c = config
        let embd = try matrix(c.vocabSize, c.dim, .q8_0)
        var layers: [LlamaLayerWeights] = []
        for _ in 0..<c.nLayers {
            layers.append(LlamaLayerWeights(
                attnNorm: norm(c.dim), wq: try matrix(c.dim, c.dim, type), wk: try matrix(c.kvDim, c.dim, type),
                wv: try matrix(c.kvDim, c.dim, type), wo: try matrix(c.dim, c.dim, type), ffnNorm: norm(c.dim),
                wGate: try matrix(c.hiddenDim, c.dim, type), wUp: try matrix(c.hiddenDim, c.dim, type),
                wDown: try matrix(c.dim, c.hiddenDim, type)))
        }
        let weights = try LlamaWeights(config: c, tokenEmbedding: embd, layers: layers, outputNorm: norm(c.dim),
                                       output: embd, tiedOutput: true, summary: [], owners: [])
        self.storage = storage
        model = LlamaModel(weights: weights)
    }

    deinit { storage.forEach { $0.deallocate() } }

    static func smallConfig() throws -> LlamaConfig {
        try LlamaConfig(dim: 64, hiddenDim: 128, nLayers: 2, nHeads: 4, nKVHeads: 2, vocabSize: 96, seqLen: 128,
                        ropeFreqBase: 10000, normEps: 1e-5)
    }
}
