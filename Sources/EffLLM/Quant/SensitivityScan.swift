import EffCore
import Foundation

/// Layer-sensitivity scan (issue 11 item 3; LLM-MQ's per-layer sensitivity, measured instead
/// of estimated): for every linear tensor and every candidate format, the mean
/// `KL(P_ref || P)` of next-token distributions on calibration tokens when ONLY that tensor
/// is quantized, plus a cheap proxy, the activation-weighted quantization error
///
///     proxy(W, Q) = sum_j E[x_j^2] * ||W[:, j] - Q(W)[:, j]||^2     (W(out, in), x(in))
///
/// with `E[x_j^2]` the second moment of input column j over the calibration tokens (the
/// expected squared output error `E||(W - Q(W)) x||^2` when the inputs' columns are
/// uncorrelated).
///
/// The reference is `weights` with the linear tensors as f32 (callers pass the file's
/// weights requantized to F32). Each calibration chunk runs once through the reference,
/// keeping its logits, the residual stream entering every block and the input moments; a
/// candidate for a tensor of block `l` then reruns only blocks `l ..< nLayers` and the head
/// from the cached stream (`LlamaModel.forward(_:fromLayer:residual:state:logits:)`), since
/// the blocks before it are unchanged. Every position of every chunk is scored.
public final class SensitivityScan {
    /// One (tensor, candidate) measurement.
    public struct Entry: Sendable, Codable, Equatable {
        public var tensor: String
        public var layer: Int
        public var role: TensorRole
        public var spec: String
        /// Bytes of the quantized tensor, outliers included.
        public var bytes: Int
        /// Mean KL(P_ref || P) in nats over the calibration positions; nil when not measured.
        public var kl: Double?
        public var proxy: Double

        public init(tensor: String, layer: Int, role: TensorRole, spec: String, bytes: Int, kl: Double?, proxy: Double) {
            self.tensor = tensor; self.layer = layer; self.role = role; self.spec = spec
            self.bytes = bytes; self.kl = kl; self.proxy = proxy
        }
    }

    /// Why a scan stopped.
    public enum ScanError: Error, CustomStringConvertible {
        case cancelled
        case calibrationTooShort(have: Int, need: Int)
        case noCandidates

        public var description: String {
            switch self {
            case .cancelled: return "cancelled"
            case .calibrationTooShort(let have, let need): return "the calibration text has \(have) tokens, \(need) needed (chunks x ctx)"
            case .noCandidates: return "no candidate formats (every spec must name a format, not 'file')"
            }
        }
    }

    public let reference: LlamaModel
    public let tokens: [Int32]
    public let chunks: Int
    public let ctx: Int
    private let vocab: Int
    /// Reference logits and probabilities per chunk, (ctx, vocab) each.
    private var refLogits: [[Float]] = []
    private var refProbs: [[Float]] = []
    /// log-sum-exp of each reference row, per chunk.
    private var refLSE: [[Double]] = []
    /// Residual stream entering block l (l >= 1) per chunk: `residuals[c][l]`, (ctx, dim).
    private var residuals: [[[Float]]] = []
    /// Mean of x_j^2 over the calibration tokens per (layer, input site).
    private var moments: [[[Double]]] = []
    /// Seconds the reference pass took.
    public private(set) var referenceSeconds = 0.0

    /// Runs the reference over `chunks` chunks of `ctx` calibration tokens (the first
    /// `chunks * ctx` of `tokens`) and keeps what the candidates are measured against.
    public init(reference: LlamaModel, tokens: [Int32], chunks: Int, ctx: Int) throws {
        guard chunks >= 1, ctx >= 2, tokens.count >= chunks * ctx else {
            throw ScanError.calibrationTooShort(have: tokens.count, need: max(1, chunks) * max(2, ctx))
        }
        self.reference = reference
        self.tokens = Array(tokens.prefix(chunks * ctx))
        self.chunks = chunks
        self.ctx = ctx
        self.vocab = reference.config.vocabSize
        let start = Date()
        try runReference()
        referenceSeconds = Date().timeIntervalSince(start)
    }

    /// Collects the residual stream after every block and the input moments.
    private final class Recorder: ResidualObserver, LinearInputObserver {
        var residuals: [[Float]]
        var sums: [[[Double]]]
        var count = 0

        init(config c: LlamaConfig) {
            residuals = Array(repeating: [], count: c.nLayers)
            sums = (0..<c.nLayers).map { _ in LinearInput.allCases.map { [Double](repeating: 0, count: $0 == .feedForwardHidden ? c.hiddenDim : c.dim) } }
        }

        func residual(layer: Int, position0: Int, rows: UnsafeBufferPointer<Float>, nTokens: Int) {
            residuals[layer] = Array(rows)
        }

        func linearInput(layer: Int, site: LinearInput, rows: UnsafePointer<Float>, nTokens: Int, width: Int) {
            sums[layer][site.rawValue].withUnsafeMutableBufferPointer { s in
                for t in 0..<nTokens {
                    let r = rows + t * width
                    for j in 0..<width { s[j] += Double(r[j] * r[j]) }
                }
            }
        }
    }

    private func runReference() throws {
        let c = reference.config
        var sums: [[[Double]]] = []
        for chunk in 0..<chunks {
            let state = reference.makeState(maxContext: ctx, maxBatch: ctx)
            let recorder = Recorder(config: c)
            state.residualObserver = recorder
            state.linearInputObserver = recorder
            var logits = [Float](repeating: 0, count: ctx * vocab)
            try tokens[(chunk * ctx)..<((chunk + 1) * ctx)].withContiguousStorageIfAvailable { t in
                try logits.withUnsafeMutableBufferPointer {
                    try reference.forward(t, fromLayer: 0, residual: nil, state: state, logits: $0.baseAddress!)
                }
            }!
            var probs = logits
            var lse = [Double](repeating: 0, count: ctx)
            probs.withUnsafeMutableBufferPointer { p in
                for r in 0..<ctx { lse[r] = Self.softmaxLSE(p.baseAddress! + r * vocab, vocab) }
            }
            refLogits.append(logits)
            refProbs.append(probs)
            refLSE.append(lse)
            // Entering block l = leaving block l - 1; block 0 starts from the embeddings.
            residuals.append([[]] + recorder.residuals.dropLast())
            if sums.isEmpty { sums = recorder.sums } else {
                for l in 0..<c.nLayers { for s in 0..<sums[l].count { for j in 0..<sums[l][s].count { sums[l][s][j] += recorder.sums[l][s][j] } } }
            }
        }
        let n = Double(chunks * ctx)
        moments = sums.map { $0.map { $0.map { $0 / n } } }
    }

    /// Softmax in place; returns the row's log-sum-exp (from the largest probability, which
    /// is `exp(max - lse)`), in f64.
    static func softmaxLSE(_ x: UnsafeMutablePointer<Float>, _ n: Int) -> Double {
        let best = LogitMath.argmax(x, n)
        let m = Double(x[best])
        Kernels.softmax(x, n)
        return m - log(Double(x[best]))
    }

    /// The input site a role's tensor reads.
    static func site(_ role: TensorRole) -> LinearInput {
        switch role {
        case .q, .k, .v: return .attention
        case .o: return .attentionOutput
        case .gate, .up: return .feedForward
        default: return .feedForwardHidden
        }
    }

    /// Per-column second moments `E[x_j^2]` of the input of `id`.
    public func inputMoments(_ id: LinearTensorID) -> [Double] { moments[id.layer][Self.site(id.role).rawValue] }

    /// Measures every (tensor, candidate) pair in `tensors` order. `measureKL` false gives
    /// the proxy alone. `progress(done, total, entry)` after each pair; `isCancelled` is
    /// polled between pairs (throws `ScanError.cancelled`).
    ///
    /// GPTQ candidates need `calibration` (the inputs' Gram matrices). `embedding` candidates
    /// (formats for `token_embd.weight`, the embedding / tied output head) are measured after
    /// the linear tensors, each from block 0 (the head changes too).
    ///
    /// The embedding touches every token through the lookup and every prediction through the
    /// head, and a 128-token calibration sample sees few of its rows, so its KL is measured
    /// over `embeddingTokens` (default: the scan's tokens), in chunks of `ctx`, each chunk's
    /// reference computed on the way (4 candidates here cost a few seconds, not 1680 pairs').
    public func run(tensors: [LinearTensorID], candidates: [WeightSpec], embedding: [WeightSpec] = [],
                    embeddingTokens: [Int32]? = nil,
                    calibration: CalibrationGrams? = nil, measureKL: Bool = true,
                    progress: ((Int, Int, Entry) -> Void)? = nil,
                    isCancelled: () -> Bool = { false }) throws -> [Entry] {
        let specs = candidates.filter { !$0.isFile }
        guard !specs.isEmpty else { throw ScanError.noCandidates }
        let embeddingSpecs = embedding.filter { !$0.isFile }
        let total = tensors.count * specs.count + embeddingSpecs.count
        var entries: [Entry] = []
        entries.reserveCapacity(total)
        let state = reference.makeState(maxContext: ctx, maxBatch: ctx)
        var logits = [Float](repeating: 0, count: ctx * vocab)
        for id in tensors {
            let stored = reference.weights.linear(id)
            let w = Requantizer.dequantize(stored.weight)
            let m2 = inputMoments(id)
            for spec in specs {
                if isCancelled() { throw ScanError.cancelled }
                let factor = spec.gptq ? try calibration?.factor(for: id, actOrder: spec.actOrder) : nil
                let q = try w.withUnsafeBufferPointer {
                    try Requantizer.quantize($0.baseAddress!, rows: stored.rows, cols: stored.cols, spec: spec, factor: factor)
                }
                let proxy = try Self.proxy(w, q.linear, m2)
                var kl: Double? = nil
                if measureKL {
                    let model = LlamaModel(weights: try reference.weights.replacingLinears { t, _ in t == id ? (q, spec.description) : nil })
                    var sum = 0.0
                    for c in 0..<chunks {
                        _ = state.rewind(to: 0)
                        try tokens[(c * ctx)..<((c + 1) * ctx)].withContiguousStorageIfAvailable { t in
                            try logits.withUnsafeMutableBufferPointer { out in
                                try residuals[c][id.layer].withUnsafeBufferPointer { r in
                                    try model.forward(t, fromLayer: id.layer, residual: id.layer == 0 ? nil : r.baseAddress!,
                                                      state: state, logits: out.baseAddress!)
                                }
                            }
                        }!
                        sum += klSum(chunk: c, logits: &logits)
                    }
                    kl = sum / Double(chunks * ctx)
                }
                let e = Entry(tensor: id.name, layer: id.layer, role: id.role, spec: spec.description,
                              bytes: q.linear.byteCount, kl: kl, proxy: proxy)
                entries.append(e)
                progress?(entries.count, total, e)
            }
        }
        if !embeddingSpecs.isEmpty {
            entries += try runEmbedding(embeddingSpecs, tokens: embeddingTokens ?? tokens, measureKL: measureKL,
                                        progress: { e in progress?(entries.count + 1, total, e) }, isCancelled: isCancelled)
        }
        return entries
    }

    /// Embedding candidates: mean KL over every whole chunk of `ctx` in `tokens`.
    private func runEmbedding(_ specs: [WeightSpec], tokens: [Int32], measureKL: Bool,
                              progress: (Entry) -> Void, isCancelled: () -> Bool) throws -> [Entry] {
        let nChunks = max(1, tokens.count / ctx)
        let models = try specs.map { LlamaModel(weights: try reference.weights.requantizedEmbedding($0)) }
        var sums = [Double](repeating: 0, count: specs.count)
        if measureKL {
            let state = reference.makeState(maxContext: ctx, maxBatch: ctx)
            var ref = [Float](repeating: 0, count: ctx * vocab), probs = ref, x = ref
            var lse = [Double](repeating: 0, count: ctx)
            func forward(_ m: LlamaModel, _ c: Int, _ out: inout [Float]) throws {
                _ = state.rewind(to: 0)
                let chunk = Array(tokens[(c * ctx)..<((c + 1) * ctx)])
                try chunk.withUnsafeBufferPointer { t in
                    try out.withUnsafeMutableBufferPointer { try m.forward(t, fromLayer: 0, residual: nil, state: state, logits: $0.baseAddress!) }
                }
            }
            for c in 0..<nChunks {
                if isCancelled() { throw ScanError.cancelled }
                try forward(reference, c, &ref)
                probs = ref
                probs.withUnsafeMutableBufferPointer { p in
                    for r in 0..<ctx { lse[r] = Self.softmaxLSE(p.baseAddress! + r * vocab, vocab) }
                }
                for (i, m) in models.enumerated() {
                    try forward(m, c, &x)
                    sums[i] += Self.klSum(refLogits: ref, refProbs: probs, refLSE: lse, logits: &x, rows: ctx, vocab: vocab)
                }
            }
        }
        var out: [Entry] = []
        for (i, spec) in specs.enumerated() {
            // No activation statistics for a lookup table: the proxy is the weights' squared error.
            let e = Entry(tensor: LlamaWeights.TensorName.tokenEmbedding, layer: -1, role: .embd, spec: spec.description,
                          bytes: models[i].weights.tokenEmbedding.byteCount,
                          kl: measureKL ? sums[i] / Double(nChunks * ctx) : nil,
                          proxy: Self.weightError(reference.weights.tokenEmbedding, models[i].weights.tokenEmbedding))
            out.append(e)
            progress(e)
        }
        return out
    }

    /// `||A - B||^2` of two matrices of one shape, dequantized.
    static func weightError(_ a: WeightMatrix, _ b: WeightMatrix) -> Double {
        let x = Requantizer.dequantize(a), y = Requantizer.dequantize(b)
        var s = 0.0
        for i in x.indices { let d = Double(x[i] - y[i]); s += d * d }
        return s
    }

    /// `sum_rows KL(P_ref || P)` of one chunk, with `KL = sum_v p_v (r_v - x_v) + lse(x) - lse(r)`
    /// (`r` reference logits, `x` these): the logit differences are small, so the sum
    /// loses little to cancellation. `logits` is overwritten.
    private func klSum(chunk c: Int, logits: inout [Float]) -> Double {
        Self.klSum(refLogits: refLogits[c], refProbs: refProbs[c], refLSE: refLSE[c], logits: &logits, rows: ctx, vocab: vocab)
    }

    /// `klSum(chunk:logits:)` against any reference rows (logits, probabilities, log-sum-exps).
    static func klSum(refLogits: [Float], refProbs: [Float], refLSE: [Double], logits: inout [Float], rows: Int, vocab: Int) -> Double {
        var perRow = [Double](repeating: 0, count: rows)
        refLogits.withUnsafeBufferPointer { rl in
            refProbs.withUnsafeBufferPointer { rp in
                refLSE.withUnsafeBufferPointer { rlse in
                    logits.withUnsafeMutableBufferPointer { x in
                        perRow.withUnsafeMutableBufferPointer { out in
                            ComputePool.shared.forEachChunk(rows) { range in
                                for r in range {
                                    let xr = x.baseAddress! + r * vocab
                                    let d = Self.weightedDifference(rp.baseAddress! + r * vocab, rl.baseAddress! + r * vocab, xr, vocab)
                                    let lse = Self.softmaxLSE(xr, vocab)
                                    out[r] = d + lse - rlse[r]
                                }
                            }
                        }
                    }
                }
            }
        }
        return perRow.reduce(0, +)
    }

    /// `sum_v p_v (r_v - x_v)`, eight f32 lanes summed per block of 1024 into f64.
    static func weightedDifference(_ p: UnsafePointer<Float>, _ r: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) -> Double {
        var total = 0.0
        var i = 0
        while i < n {
            let end = min(n, i + 1024)
            var acc = SIMD8<Float>()
            while i + 8 <= end {
                let pv = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
                let rv = UnsafeRawPointer(r + i).loadUnaligned(as: SIMD8<Float>.self)
                let xv = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
                acc += pv * (rv - xv)
                i += 8
            }
            var s = Double(acc.sum())
            while i < end { s += Double(p[i] * (r[i] - x[i])); i += 1 }
            total += s
        }
        return total
    }

    /// `sum_j m2_j * sum_r (W[r, j] - Q(W)[r, j])^2` with Q(W) dequantized plus its outliers.
    public static func proxy(_ w: [Float], _ q: Linear, _ m2: [Double]) throws -> Double {
        var dq = Requantizer.dequantize(q.weight)
        if !q.outliers.isEmpty { try q.outliers.addTo(dense: &dq) }
        let cols = q.cols
        var colErr = [Double](repeating: 0, count: cols)
        for r in 0..<q.rows {
            let base = r * cols
            for j in 0..<cols {
                let e = w[base + j] - dq[base + j]
                colErr[j] += Double(e * e)
            }
        }
        var s = 0.0
        for j in 0..<cols { s += m2[j] * colErr[j] }
        return s
    }
}
