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
    public init(name: String, sha256: String, templateHash: String, contextMax: Int,
                nLayers: Int, nHeads: Int, weightBytes: Int, tensors: [TensorSummary]) {
        self.name = name; self.sha256 = sha256; self.templateHash = templateHash
        self.contextMax = contextMax; self.nLayers = nLayers; self.nHeads = nHeads
        self.weightBytes = weightBytes; self.tensors = tensors
    }
}
