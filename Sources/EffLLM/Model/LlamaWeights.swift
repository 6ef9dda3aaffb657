import EffCore

/// What a weight tensor does in a Llama block (the bits panel groups by it).
public enum TensorRole: String, Sendable, Codable, CaseIterable {
    case embd, q, k, v, o, gate, up, down, norm, output
}

/// One row of the per-tensor summary: where a tensor sits, its format and its storage cost
/// (what `inspect`, the bits panel and transcripts show).
public struct TensorSummary: Sendable, Hashable, Codable {
    /// The tensor's name in the file (`blk.3.attn_q.weight`).
    public var name: String
    /// Block index, or nil for the embedding, final norm and output head.
    public var layer: Int?
    public var role: TensorRole
    /// Format name from the traits table ("Q4_1", "Q8_0", "F32").
    public var format: String
    public var elementCount: Int
    public var bytes: Int
    /// Storage bits per weight including scales (`bytes * 8 / elementCount`).
    public var bitsPerWeight: Double { elementCount == 0 ? 0 : Double(bytes * 8) / Double(elementCount) }

    public init(name: String, layer: Int?, role: TensorRole, format: String, elementCount: Int, bytes: Int) {
        self.name = name; self.layer = layer; self.role = role; self.format = format
        self.elementCount = elementCount; self.bytes = bytes
    }
}

/// The weights of one transformer block. `W(out, in)` views, row-major; shapes in comments.
public struct LlamaLayerWeights: @unchecked Sendable {
    public let attnNorm: UnsafePointer<Float>  // (dim)
    public let wq: WeightMatrix                // (dim, dim)       rows = nHeads * headSize
    public let wk: WeightMatrix                // (kvDim, dim)
    public let wv: WeightMatrix                // (kvDim, dim)
    public let wo: WeightMatrix                // (dim, dim)
    public let ffnNorm: UnsafePointer<Float>   // (dim)
    public let wGate: WeightMatrix             // (hiddenDim, dim)  w1
    public let wUp: WeightMatrix               // (hiddenDim, dim)  w3
    public let wDown: WeightMatrix             // (dim, hiddenDim)  w2
    /// Sparse f16 outliers added to the matrices' products (`y = Q(W) x + S x`, `Linear`);
    /// nil for none (the file's weights).
    public let outliers: LayerOutliers?

    public init(attnNorm: UnsafePointer<Float>, wq: WeightMatrix, wk: WeightMatrix, wv: WeightMatrix,
                wo: WeightMatrix, ffnNorm: UnsafePointer<Float>, wGate: WeightMatrix, wUp: WeightMatrix,
                wDown: WeightMatrix, outliers: LayerOutliers? = nil) {
        self.attnNorm = attnNorm
        self.wq = wq; self.wk = wk; self.wv = wv; self.wo = wo
        self.ffnNorm = ffnNorm
        self.wGate = wGate; self.wUp = wUp; self.wDown = wDown
        self.outliers = outliers
    }
}

/// One block's sparse outliers, one set per matrix (each may be empty).
public struct LayerOutliers: Sendable {
    public let q, k, v, o, gate, up, down: SparseOutliers

    public init(q: SparseOutliers, k: SparseOutliers, v: SparseOutliers, o: SparseOutliers,
                gate: SparseOutliers, up: SparseOutliers, down: SparseOutliers) {
        self.q = q; self.k = k; self.v = v; self.o = o
        self.gate = gate; self.up = up; self.down = down
    }

    /// Bytes of all stored outliers.
    public var byteCount: Int {
        [q, k, v, o, gate, up, down].reduce(0) { $0 + ($1.isEmpty ? 0 : $1.byteCount) }
    }
}

/// Frozen weights of a Llama model: views into a mapped GGUF file (or other owned memory).
///
/// Nothing here changes after init; `owners` keeps the backing memory alive. Tensor names
/// follow llama.cpp's `LLM_TENSOR_*` table (`TensorName`). Q/K weights are stored as the
/// GGUF converter permuted them for llama, which is what "normal" (adjacent pair) RoPE
/// expects; nothing is un-permuted here.
public final class LlamaWeights: @unchecked Sendable {
    public let config: LlamaConfig
    public let tokenEmbedding: WeightMatrix   // (vocabSize, dim)   token_embd, Q8_0 here
    public let layers: [LlamaLayerWeights]    // nLayers
    public let outputNorm: UnsafePointer<Float>  // (dim)
    public let output: WeightMatrix           // (vocabSize, dim)   tied: token_embd itself
    /// True when the output head is the token embedding (no `output.weight` in the file).
    public let tiedOutput: Bool
    /// One entry per tensor, file-name order by layer (embd, blocks, norm, output).
    public let summary: [TensorSummary]
    private let owners: [AnyObject]

    /// Tensor names, one table (llama.cpp `LLM_TENSOR_*` for the llama architecture).
    public enum TensorName {
        public static let tokenEmbedding = "token_embd.weight"
        public static let outputNorm = "output_norm.weight"
        public static let output = "output.weight"
        public static func attnNorm(_ l: Int) -> String { "blk.\(l).attn_norm.weight" }
        public static func q(_ l: Int) -> String { "blk.\(l).attn_q.weight" }
        public static func k(_ l: Int) -> String { "blk.\(l).attn_k.weight" }
        public static func v(_ l: Int) -> String { "blk.\(l).attn_v.weight" }
        public static func o(_ l: Int) -> String { "blk.\(l).attn_output.weight" }
        public static func ffnNorm(_ l: Int) -> String { "blk.\(l).ffn_norm.weight" }
        public static func gate(_ l: Int) -> String { "blk.\(l).ffn_gate.weight" }
        public static func up(_ l: Int) -> String { "blk.\(l).ffn_up.weight" }
        public static func down(_ l: Int) -> String { "blk.\(l).ffn_down.weight" }
    }

    /// Assembles weights from parts (tests, requantized variants). `owners` must keep every
    /// pointer valid; `summary` describes the parts (pass [] to have none).
    public init(config: LlamaConfig, tokenEmbedding: WeightMatrix, layers: [LlamaLayerWeights],
                outputNorm: UnsafePointer<Float>, output: WeightMatrix, tiedOutput: Bool,
                summary: [TensorSummary], owners: [AnyObject]) throws {
        func shape(_ name: String, _ w: WeightMatrix, _ rows: Int, _ cols: Int) throws {
            guard w.rows == rows, w.cols == cols else {
                throw LlamaModelError.tensorShape(tensor: name, found: [w.cols, w.rows], expected: [cols, rows])
            }
        }
        let c = config
        try shape(TensorName.tokenEmbedding, tokenEmbedding, c.vocabSize, c.dim)
        try shape(TensorName.output, output, c.vocabSize, c.dim)
        guard layers.count == c.nLayers else {
            throw LlamaModelError.invalidValue(key: LlamaConfig.Key.nLayers, value: "\(c.nLayers)",
                                               expected: "\(layers.count) blocks of weights")
        }
        for (l, w) in layers.enumerated() {
            try shape(TensorName.q(l), w.wq, c.dim, c.dim)
            try shape(TensorName.k(l), w.wk, c.kvDim, c.dim)
            try shape(TensorName.v(l), w.wv, c.kvDim, c.dim)
            try shape(TensorName.o(l), w.wo, c.dim, c.dim)
            try shape(TensorName.gate(l), w.wGate, c.hiddenDim, c.dim)
            try shape(TensorName.up(l), w.wUp, c.hiddenDim, c.dim)
            try shape(TensorName.down(l), w.wDown, c.dim, c.hiddenDim)
        }
        self.config = config
        self.tokenEmbedding = tokenEmbedding
        self.layers = layers
        self.outputNorm = outputNorm
        self.output = output
        self.tiedOutput = tiedOutput
        self.summary = summary
        self.owners = owners
    }

    /// Binds every tensor of a llama GGUF file, checking names, shapes and formats.
    public convenience init(gguf: GGUFFile, config: LlamaConfig) throws {
        let c = config
        var summary: [TensorSummary] = []
        var owners: [AnyObject] = [gguf]

        func info(_ name: String, _ expected: [Int]) throws -> GGUFTensorInfo {
            guard let t = gguf.tensor(named: name) else { throw LlamaModelError.missingTensor(name) }
            guard t.dims == expected else {
                throw LlamaModelError.tensorShape(tensor: name, found: t.dims, expected: expected)
            }
            return t
        }
        func matrix(_ name: String, rows: Int, cols: Int, layer: Int?, role: TensorRole) throws -> WeightMatrix {
            let t = try info(name, [cols, rows])  // ggml order: row length first
            guard t.type.isComputable else {
                throw LlamaModelError.tensorType(tensor: name, type: t.type.traits.name,
                                                 reason: "no kernels for this format (computable: \(WeightFormat.computableNames))")
            }
            let bytes = gguf.data(for: t)
            let w = try WeightMatrix(type: t.type, data: bytes.baseAddress!, rows: rows, cols: cols)
            guard w.byteCount == bytes.count else {
                throw LlamaModelError.tensorType(tensor: name, type: t.type.traits.name,
                                                 reason: "\(bytes.count) bytes stored, \(w.byteCount) expected")
            }
            summary.append(TensorSummary(name: name, layer: layer, role: role, format: t.type.traits.name,
                                              elementCount: rows * cols, bytes: bytes.count))
            return w
        }
        /// Norm weights become f32 (pointing into the mapping when already F32).
        func vector(_ name: String, layer: Int?) throws -> UnsafePointer<Float> {
            let t = try info(name, [c.dim])
            let bytes = gguf.data(for: t)
            summary.append(TensorSummary(name: name, layer: layer, role: .norm, format: t.type.traits.name,
                                              elementCount: c.dim, bytes: bytes.count))
            if t.type == .f32 && Int(bitPattern: bytes.baseAddress!) % MemoryLayout<Float>.alignment == 0 {
                return bytes.baseAddress!.assumingMemoryBound(to: Float.self)
            }
            guard let k = t.type.rowKernels else {
                throw LlamaModelError.tensorType(tensor: name, type: t.type.traits.name, reason: "no kernels for this format")
            }
            let owned = OwnedFloats(count: c.dim)
            k.dequantizeRow(bytes.baseAddress!, owned.pointer, c.dim)
            owners.append(owned)
            return UnsafePointer(owned.pointer)
        }

        let embd = try matrix(TensorName.tokenEmbedding, rows: c.vocabSize, cols: c.dim, layer: nil, role: .embd)
        var layers: [LlamaLayerWeights] = []
        layers.reserveCapacity(c.nLayers)
        for l in 0..<c.nLayers {
            let attnNorm = try vector(TensorName.attnNorm(l), layer: l)
            let wq = try matrix(TensorName.q(l), rows: c.dim, cols: c.dim, layer: l, role: .q)
            let wk = try matrix(TensorName.k(l), rows: c.kvDim, cols: c.dim, layer: l, role: .k)
            let wv = try matrix(TensorName.v(l), rows: c.kvDim, cols: c.dim, layer: l, role: .v)
            let wo = try matrix(TensorName.o(l), rows: c.dim, cols: c.dim, layer: l, role: .o)
            let ffnNorm = try vector(TensorName.ffnNorm(l), layer: l)
            let gate = try matrix(TensorName.gate(l), rows: c.hiddenDim, cols: c.dim, layer: l, role: .gate)
            let up = try matrix(TensorName.up(l), rows: c.hiddenDim, cols: c.dim, layer: l, role: .up)
            let down = try matrix(TensorName.down(l), rows: c.dim, cols: c.hiddenDim, layer: l, role: .down)
            layers.append(LlamaLayerWeights(attnNorm: attnNorm, wq: wq, wk: wk, wv: wv, wo: wo, ffnNorm: ffnNorm,
                                            wGate: gate, wUp: up, wDown: down))
        }
        let outNorm = try vector(TensorName.outputNorm, layer: nil)
        let tied = gguf.tensor(named: TensorName.output) == nil
        let output = tied ? embd : try matrix(TensorName.output, rows: c.vocabSize, cols: c.dim, layer: nil, role: .output)
        try self.init(config: c, tokenEmbedding: embd, layers: layers, outputNorm: outNorm, output: output,
                      tiedOutput: tied, summary: summary, owners: owners)
    }

    /// Total bytes of all weight tensors (the tied head counted once).
    public var totalBytes: Int { summary.reduce(0) { $0 + $1.bytes } }
}

/// A heap block of f32 values owned by a weights or state object.
final class OwnedFloats {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    init(count: Int) {
        self.count = count
        pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }
    deinit { pointer.deallocate() }
}
