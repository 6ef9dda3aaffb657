import EffCore

extension LlamaWeights {
    /// The roles of the linear tensors a weight spec applies to (7 per block, 210 here).
    public static let linearRoles: [TensorRole] = [.q, .k, .v, .o, .gate, .up, .down]

    /// These weights with every linear tensor of every block (q, k, v, o, gate, up, down)
    /// requantized from its f32 dequantization (the reference) as `spec` says; the token
    /// embedding / tied output head and the norms stay as they are. `spec.isFile` returns
    /// `self`. `progress(done, total)` is called after each tensor.
    public func requantized(_ spec: WeightSpec, progress: ((Int, Int) -> Void)? = nil) throws -> LlamaWeights {
        guard !spec.isFile else { return self }
        var owners: [AnyObject] = [self]
        var layersOut: [LlamaLayerWeights] = []
        var summary = self.summary
        let total = layers.count * Self.linearRoles.count
        var done = 0
        for (l, lw) in layers.enumerated() {
            func requant(_ m: WeightMatrix, _ role: TensorRole, _ name: String) throws -> Linear {
                let f32 = Requantizer.dequantize(m)
                let q = try f32.withUnsafeBufferPointer {
                    try Requantizer.quantize($0.baseAddress!, rows: m.rows, cols: m.cols, spec: spec)
                }
                owners.append(q)
                if let i = summary.firstIndex(where: { $0.name == name }) {
                    summary[i].format = spec.description
                    summary[i].bytes = q.linear.byteCount
                }
                done += 1
                progress?(done, total)
                return q.linear
            }
            let q = try requant(lw.wq, .q, TensorName.q(l)), k = try requant(lw.wk, .k, TensorName.k(l))
            let v = try requant(lw.wv, .v, TensorName.v(l)), o = try requant(lw.wo, .o, TensorName.o(l))
            let gate = try requant(lw.wGate, .gate, TensorName.gate(l)), up = try requant(lw.wUp, .up, TensorName.up(l))
            let down = try requant(lw.wDown, .down, TensorName.down(l))
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
