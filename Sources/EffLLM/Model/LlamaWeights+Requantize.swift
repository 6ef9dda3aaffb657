import EffCore

/// One linear tensor of a block: where a per-tensor weight plan or a scan points.
public struct LinearTensorID: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    public var layer: Int
    public var role: TensorRole

    public init(layer: Int, role: TensorRole) {
        self.layer = layer
        self.role = role
    }

    /// The tensor's name in the file (`blk.3.attn_q.weight`).
    public var name: String {
        typealias N = LlamaWeights.TensorName
        switch role {
        case .q: return N.q(layer)
        case .k: return N.k(layer)
        case .v: return N.v(layer)
        case .o: return N.o(layer)
        case .gate: return N.gate(layer)
        case .up: return N.up(layer)
        default: return N.down(layer)
        }
    }

    public var description: String { name }

    public static func < (a: Self, b: Self) -> Bool {
        let ra = LlamaWeights.linearRoles.firstIndex(of: a.role) ?? 0, rb = LlamaWeights.linearRoles.firstIndex(of: b.role) ?? 0
        return (a.layer, ra) < (b.layer, rb)
    }
}

extension LlamaWeights {
    /// The roles of the linear tensors a weight spec applies to (7 per block, 210 here).
    public static let linearRoles: [TensorRole] = [.q, .k, .v, .o, .gate, .up, .down]

    /// Every linear tensor, block by block, roles in `linearRoles` order.
    public var linearTensors: [LinearTensorID] {
        (0..<layers.count).flatMap { l in Self.linearRoles.map { LinearTensorID(layer: l, role: $0) } }
    }

    /// The stored matrix and outliers of one linear tensor.
    public func linear(_ id: LinearTensorID) -> Linear {
        let lw = layers[id.layer]
        let o = lw.outliers
        func make(_ w: WeightMatrix, _ s: SparseOutliers?) -> Linear { (try? Linear(weight: w, outliers: s)) ?? Linear(w) }
        switch id.role {
        case .q: return make(lw.wq, o?.q)
        case .k: return make(lw.wk, o?.k)
        case .v: return make(lw.wv, o?.v)
        case .o: return make(lw.wo, o?.o)
        case .gate: return make(lw.wGate, o?.gate)
        case .up: return make(lw.wUp, o?.up)
        default: return make(lw.wDown, o?.down)
        }
    }

    /// These weights with every linear tensor of every block (q, k, v, o, gate, up, down)
    /// requantized from its f32 dequantization (the reference) as `spec` says; the token
    /// embedding / tied output head and the norms stay as they are. `spec.isFile` returns
    /// `self`. `progress(done, total)` is called after each tensor.
    public func requantized(_ spec: WeightSpec, calibration: CalibrationGrams? = nil,
                            progress: ((Int, Int) -> Void)? = nil) throws -> LlamaWeights {
        guard !spec.isFile else { return self }
        return try requantized(specFor: { _ in spec }, calibration: calibration, progress: progress)
    }

    /// These weights with each linear tensor requantized as `plan` says (a spec per tensor
    /// name; `file` keeps a tensor as it is). The plan must name every linear tensor of this
    /// model and nothing else, so a plan made for another model is refused before any work.
    ///
    /// The plan may also name `token_embd.weight` (the embedding / tied output head), which is
    /// then requantized too (`requantizedEmbedding`); absent, it stays as in the file.
    public func requantized(plan: [String: WeightSpec], calibration: CalibrationGrams? = nil,
                            progress: ((Int, Int) -> Void)? = nil) throws -> LlamaWeights {
        let ids = linearTensors
        let names = Set(ids.map(\.name)).union([TensorName.tokenEmbedding])
        if let extra = plan.keys.sorted().first(where: { !names.contains($0) }) {
            throw WeightPlanError.unknownTensor(extra)
        }
        if let missing = ids.first(where: { plan[$0.name] == nil }) { throw WeightPlanError.missingTensor(missing.name) }
        let linears = try requantized(specFor: { plan[$0.name]! }, calibration: calibration, progress: progress)
        return try linears.requantizedEmbedding(plan[TensorName.tokenEmbedding] ?? .file)
    }

    /// These weights with the token embedding (and the output head, when tied to it)
    /// requantized from its f32 dequantization as `spec` says. The embedding is read by row
    /// lookups as well as by the head's matmul, so outliers and GPTQ (which need a matmul
    /// with known inputs) are refused.
    public func requantizedEmbedding(_ spec: WeightSpec) throws -> LlamaWeights {
        guard !spec.isFile else { return self }
        guard spec.outlierFraction == 0, !spec.gptq else { throw WeightPlanError.embeddingOption(spec.description) }
        let m = tokenEmbedding
        let f32 = Requantizer.dequantize(m)
        let q = try f32.withUnsafeBufferPointer {
            try Requantizer.quantize($0.baseAddress!, rows: m.rows, cols: m.cols, spec: spec)
        }
        var summary = self.summary
        for i in summary.indices where summary[i].name == TensorName.tokenEmbedding || (tiedOutput && summary[i].name == TensorName.output) {
            summary[i].format = spec.description
            summary[i].bytes = q.linear.byteCount
        }
        return try LlamaWeights(config: config, tokenEmbedding: q.linear.weight, layers: layers,
                                outputNorm: outputNorm, output: tiedOutput ? q.linear.weight : output, tiedOutput: tiedOutput,
                                summary: summary, owners: [self, q])
    }

    /// Requantizes each linear tensor as `specFor` says (`file`: kept as it is). GPTQ specs
    /// need `calibration` (`WeightSpecError.needsCalibration` otherwise).
    public func requantized(specFor: (LinearTensorID) -> WeightSpec, calibration: CalibrationGrams? = nil,
                            progress: ((Int, Int) -> Void)? = nil) throws -> LlamaWeights {
        let total = layers.count * Self.linearRoles.count
        var done = 0
        return try replacingLinears { id, m in
            defer { done += 1; progress?(done, total) }
            let spec = specFor(id)
            guard !spec.isFile else { return nil }
            let f32 = Requantizer.dequantize(m)
            let factor = spec.gptq ? try calibration?.factor(for: id, actOrder: spec.actOrder) : nil
            let q = try f32.withUnsafeBufferPointer {
                try Requantizer.quantize($0.baseAddress!, rows: m.rows, cols: m.cols, spec: spec, factor: factor)
            }
            return (q, spec.description)
        }
    }

    /// These weights with some linear tensors replaced: `replace(id, stored matrix)` returns
    /// the new matrix and its format name for the summary, or nil to keep the tensor (and
    /// its outliers). Everything else is shared with `self`.
    public func replacingLinears(_ replace: (LinearTensorID, WeightMatrix) throws -> (RequantizedMatrix, String)?) throws -> LlamaWeights {
        var owners: [AnyObject] = [self]
        var layersOut: [LlamaLayerWeights] = []
        var summary = self.summary
        for (l, lw) in layers.enumerated() {
            func pick(_ role: TensorRole) throws -> Linear {
                let id = LinearTensorID(layer: l, role: role)
                let kept = linear(id)
                guard let (q, format) = try replace(id, kept.weight) else { return kept }
                owners.append(q)
                if let i = summary.firstIndex(where: { $0.name == id.name }) {
                    summary[i].format = format
                    summary[i].bytes = q.linear.byteCount
                }
                return q.linear
            }
            let q = try pick(.q), k = try pick(.k), v = try pick(.v), o = try pick(.o)
            let gate = try pick(.gate), up = try pick(.up), down = try pick(.down)
            let all = [q, k, v, o, gate, up, down]
            let outliers = all.contains { !$0.outliers.isEmpty }
                ? LayerOutliers(q: q.outliers, k: k.outliers, v: v.outliers, o: o.outliers,
                                gate: gate.outliers, up: up.outliers, down: down.outliers)
                : nil
            layersOut.append(LlamaLayerWeights(attnNorm: lw.attnNorm, wq: q.weight, wk: k.weight, wv: v.weight,
                                               wo: o.weight, ffnNorm: lw.ffnNorm, wGate: gate.weight,
                                               wUp: up.weight, wDown: down.weight, outliers: outliers))
        }
        return try LlamaWeights(config: config, tokenEmbedding: tokenEmbedding, layers: layersOut,
                                outputNorm: outputNorm, output: output, tiedOutput: tiedOutput,
                                summary: summary, owners: owners)
    }

    /// Bytes and elements of the linear tensors (outliers included), from the summary.
    public var linearStorage: (bytes: Int, elements: Int) {
        let roles = Set(Self.linearRoles)
        return summary.filter { roles.contains($0.role) }.reduce((0, 0)) { ($0.0 + $1.bytes, $0.1 + $1.elementCount) }
    }
}

/// Why a per-tensor weight plan does not fit a model.
public enum WeightPlanError: Error, Equatable, CustomStringConvertible {
    case unknownTensor(String)
    case missingTensor(String)
    case embeddingOption(String)

    public var description: String {
        switch self {
        case .unknownTensor(let n): return "the plan names \(n), which this model has no linear tensor of (a plan for another model?)"
        case .missingTensor(let n): return "the plan gives no format for \(n)"
        case .embeddingOption(let s): return "the embedding cannot take '\(s)': outliers and GPTQ apply to the block linears only"
        }
    }
}
