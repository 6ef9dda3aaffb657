import EffLLM

/// One weight tensor as the bits panel shows it (the model's own summary type).
public typealias TensorSummary = EffLLM.TensorSummary
public typealias TensorRole = EffLLM.TensorRole

/// What the UI shows about the loaded model.
public struct ModelInfo: Hashable, Sendable {
    public var name: String
    public var sha256: String
    public var templateHash: String
    public var contextMax: Int
    public var nLayers: Int
    public var nHeads: Int
    public var weightBytes: Int
    public var tensors: [TensorSummary]
    /// The sensitivity scan of this model file (`effterm quant scan`), per tensor name: the
    /// KL of quantizing only that tensor at each candidate; empty without a scan.
    public var sensitivity: [String: [SensitivityPoint]] = [:]
    /// Measured quality of the weights in use, when known (a plan evaluated by `effterm eval
    /// quant --plan`), e.g. "KLD 0.085 ppl 17.9".
    public var weightsQuality: String?
    public init(name: String, sha256: String, templateHash: String, contextMax: Int,
                nLayers: Int, nHeads: Int, weightBytes: Int, tensors: [TensorSummary]) {
        self.name = name; self.sha256 = sha256; self.templateHash = templateHash
        self.contextMax = contextMax; self.nLayers = nLayers; self.nHeads = nHeads
        self.weightBytes = weightBytes; self.tensors = tensors
    }
}

/// One tensor at one candidate format, from a sensitivity scan.
public struct SensitivityPoint: Hashable, Sendable {
    public var spec: String
    public var bitsPerWeight: Double
    /// KL(P_ref || P) in nats with only this tensor quantized; nil when only the proxy ran.
    public var kl: Double?
    public init(spec: String, bitsPerWeight: Double, kl: Double?) {
        self.spec = spec; self.bitsPerWeight = bitsPerWeight; self.kl = kl
    }
}
