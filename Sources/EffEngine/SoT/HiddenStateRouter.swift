import Crypto
import EffCore
import EffLLM
import EffTechniques
import Foundation

/// SoT-R's trained router, scaled to effterm: a logistic head (trained with the authors'
/// Tversky + cross-entropy loss) on SmolLM2's own pooled hidden states, so routing costs
/// one prefill of the question and no second model.
///
/// The weights are bundled (`Resources/sot-router.json`, written by
/// `effterm sot train-router`) and carry a fingerprint of the model they were trained on;
/// `bundled` and `init(weights:...)` refuse any other model with
/// `SoTRouterError.modelMismatch` rather than route with features the head never saw.
public final class HiddenStateRouter: SoTRouting {
    public let weights: SoTRouterWeights
    public let features: HiddenStateFeatures

    /// A router over `model` with explicit weights; throws `modelMismatch` when the
    /// weights were trained on other model weights.
    public init(model: LlamaModel, tokenizer: Tokenizer, template: ChatTemplate, weights: SoTRouterWeights) throws {
        let found = Self.fingerprint(model.weights)
        guard found == weights.model.weightsFingerprint else {
            throw SoTRouterError.modelMismatch(trainedOn: weights.model.name,
                                               expected: weights.model.weightsFingerprint, found: found)
        }
        let dim = weights.recipe.layers.count * weights.recipe.pools.count * model.config.dim
        guard weights.recipe.layers.allSatisfy({ (0..<model.config.nLayers).contains($0) }),
              dim == weights.standardizer.dim else {
            throw SoTRouterError.featureSize(expected: weights.standardizer.dim, found: dim)
        }
        self.weights = weights
        features = HiddenStateFeatures(model: model, tokenizer: tokenizer, template: template)
    }

    /// The router trained for effterm's default model, from the bundled resource.
    public static func bundled(model: LlamaModel, tokenizer: Tokenizer, template: ChatTemplate) throws -> HiddenStateRouter {
        try HiddenStateRouter(model: model, tokenizer: tokenizer, template: template, weights: bundledWeights())
    }

    /// Where the bundled weights live inside the resource bundle.
    public static var bundledWeightsURL: URL? {
        Bundle.module.url(forResource: "sot-router", withExtension: "json", subdirectory: "Resources")
            ?? Bundle.module.url(forResource: "sot-router", withExtension: "json")
    }

    /// The bundled weights, decoded and checked.
    public static func bundledWeights() throws -> SoTRouterWeights {
        guard let url = bundledWeightsURL else {
            throw SoTRouterError.noBundledWeights("Resources/sot-router.json is missing from the EffEngine bundle")
        }
        return try SoTRouterWeights.load(try Data(contentsOf: url), source: url.lastPathComponent)
    }

    public func route(question: String) throws -> SoTRouteDecision {
        let start = DispatchTime.now().uptimeNanoseconds
        let x = try features.features(question, recipe: weights.recipe)
        guard x.count == weights.standardizer.dim else {
            throw SoTRouterError.featureSize(expected: weights.standardizer.dim, found: x.count)
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return weights.decide(features: x, seconds: seconds)
    }

    /// SHA-256 over what decides the router's features: the config, every norm vector in
    /// full, and every 16th stored row of every weight matrix with its format (a few MB,
    /// ~10 ms). Any other checkpoint or quantization of the model changes it.
    public static func fingerprint(_ w: LlamaWeights) -> String {
        var h = SHA256()
        let c = w.config
        let header = "\(c.dim) \(c.hiddenDim) \(c.nLayers) \(c.nHeads) \(c.nKVHeads) \(c.vocabSize) \(c.seqLen) "
            + "\(c.ropeFreqBase) \(c.normEps) tied=\(w.tiedOutput)"
        h.update(data: Data(header.utf8))
        func vector(_ p: UnsafePointer<Float>, _ n: Int) {
            h.update(bufferPointer: UnsafeRawBufferPointer(start: p, count: n * 4))
        }
        func matrix(_ m: WeightMatrix) {
            h.update(data: Data("\(m.type) \(m.rows)x\(m.cols)".utf8))
            for r in stride(from: 0, to: m.rows, by: 16) {
                h.update(bufferPointer: UnsafeRawBufferPointer(start: m.row(r), count: m.rowBytes))
            }
        }
        matrix(w.tokenEmbedding)
        for l in w.layers {
            vector(l.attnNorm, c.dim)
            vector(l.ffnNorm, c.dim)
            for m in [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown] { matrix(m) }
        }
        vector(w.outputNorm, c.dim)
        if !w.tiedOutput { matrix(w.output) }
        return ModelStore.hex(h.finalize())
    }
}
