import Foundation

/// How a hidden-state router turns a question into a feature vector.
///
/// The question is run through the language model (as bare text, or as the user turn of
/// its chat template with the assistant prompt after it); at each listed block the
/// residual stream of each token is RMS-normalized (unit weights: the final layer then
/// equals the model's final-norm hidden state up to a per-feature scale, which the
/// standardizer removes) and pooled: `mean` over the question's own tokens, `last` the
/// prompt's last token (the position that predicts the answer's first token). Features
/// are the pooled vectors concatenated in (layer, pool) order: `layers.count · pools.count · dim`.
public struct HiddenStateRecipe: Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Input: String, Sendable, Codable, CaseIterable { case raw, chat }
    public enum Pool: String, Sendable, Codable, CaseIterable { case mean, last }
    public var input: Input
    /// Block indices, 0-based; `nLayers - 1` is the last block.
    public var layers: [Int]
    public var pools: [Pool]
    public init(input: Input, layers: [Int], pools: [Pool]) {
        self.input = input
        self.layers = layers
        self.pools = pools
    }

    public var description: String {
        "\(input.rawValue) L\(layers.map(String.init).joined(separator: "+")) \(pools.map(\.rawValue).joined(separator: "+"))"
    }
}

/// Identifies the model a router was trained on; a router refuses any other model.
public struct RouterModelIdentity: Sendable, Equatable, Codable {
    /// File name it was trained from (informational).
    public var name: String
    /// SHA-256 of that file, when known (informational).
    public var fileSHA256: String?
    /// Digest of the loaded weights (see `HiddenStateRouter.fingerprint`): what is checked.
    public var weightsFingerprint: String
    public init(name: String, fileSHA256: String?, weightsFingerprint: String) {
        self.name = name
        self.fileSHA256 = fileSHA256
        self.weightsFingerprint = weightsFingerprint
    }
}

/// How the bundled router was trained and how it scored under cross-validation.
public struct RouterTrainingRecord: Sendable, Equatable, Codable {
    public var questionsFile: String
    public var split: String
    public var rows: Int
    public var positives: Int
    public var folds: Int
    public var minPrecision: Double
    public var loss: RouterLoss
    public var optimizer: RouterTraining.Adam
    /// Out-of-fold precision, recall and average precision on the training split.
    public var cvPrecision: Double?
    public var cvRecall: Double?
    public var cvAveragePrecision: Double
    public var cvCategoryAccuracy: Double?
    public var note: String
    public init(questionsFile: String, split: String, rows: Int, positives: Int, folds: Int, minPrecision: Double,
                loss: RouterLoss, optimizer: RouterTraining.Adam, cvPrecision: Double?, cvRecall: Double?,
                cvAveragePrecision: Double, cvCategoryAccuracy: Double?, note: String) {
        self.questionsFile = questionsFile
        self.split = split
        self.rows = rows
        self.positives = positives
        self.folds = folds
        self.minPrecision = minPrecision
        self.loss = loss
        self.optimizer = optimizer
        self.cvPrecision = cvPrecision
        self.cvRecall = cvRecall
        self.cvAveragePrecision = cvAveragePrecision
        self.cvCategoryAccuracy = cvCategoryAccuracy
        self.note = note
    }
}

/// A trained hidden-state router as stored on disk (`sot-router.json`): the model it
/// belongs to, the feature recipe, standardizer, SoT head and threshold, an optional
/// category head (for the reason text) and the training record.
public struct SoTRouterWeights: Sendable, Equatable, Codable {
    public static let formatName = "effterm-sot-router/1"
    public var format: String
    public var model: RouterModelIdentity
    public var recipe: HiddenStateRecipe
    public var standardizer: FeatureStandardizer
    public var head: LogisticHead
    public var threshold: Double
    public var categoryHead: SoftmaxHead?
    /// Categories whose questions suit SoT (for the reason text).
    public var suitableCategories: [String]
    public var training: RouterTrainingRecord?

    public init(model: RouterModelIdentity, recipe: HiddenStateRecipe, standardizer: FeatureStandardizer,
                head: LogisticHead, threshold: Double, categoryHead: SoftmaxHead?, suitableCategories: [String],
                training: RouterTrainingRecord?) {
        self.format = Self.formatName
        self.model = model
        self.recipe = recipe
        self.standardizer = standardizer
        self.head = head
        self.threshold = threshold
        self.categoryHead = categoryHead
        self.suitableCategories = suitableCategories
        self.training = training
    }

    /// Decodes and checks a weights file; errors name what is wrong.
    public static func load(_ data: Data, source: String) throws -> SoTRouterWeights {
        let w: SoTRouterWeights
        do {
            w = try JSONDecoder().decode(SoTRouterWeights.self, from: data)
        } catch {
            throw SoTRouterError.badWeights(source: source, reason: "\(error)")
        }
        guard w.format == formatName else {
            throw SoTRouterError.badWeights(source: source, reason: "format \(w.format), expected \(formatName)")
        }
        let dim = w.standardizer.dim
        guard dim > 0, w.standardizer.std.count == dim, w.head.weights.count == dim else {
            throw SoTRouterError.badWeights(source: source, reason:
                "standardizer has \(w.standardizer.mean.count)/\(w.standardizer.std.count) features, head \(w.head.weights.count)")
        }
        if let c = w.categoryHead, c.weights.count != c.labels.count || c.bias.count != c.labels.count
            || c.weights.contains(where: { $0.count != dim }) {
            throw SoTRouterError.badWeights(source: source, reason: "category head shape does not match \(dim) features")
        }
        guard !w.recipe.layers.isEmpty, !w.recipe.pools.isEmpty, (0...1).contains(w.threshold) else {
            throw SoTRouterError.badWeights(source: source, reason: "empty recipe or threshold \(w.threshold) outside 0...1")
        }
        return w
    }

    /// The decision for one feature vector (as the recipe produced it).
    public func decide(features: [Double], seconds: Double) -> SoTRouteDecision {
        let z = standardizer.apply(features)
        let score = head.probability(z)
        let use = score >= threshold
        var category: String?, categoryScore: Double?
        if let c = categoryHead {
            let p = c.probabilities(z)
            if let best = p.indices.max(by: { p[$0] < p[$1] }) {
                category = c.labels[best]
                categoryScore = p[best]
            }
        }
        let s = String(format: "%.2f", score), t = String(format: "%.2f", threshold)
        let reason: String
        if use {
            let kind = category.map { suitableCategories.contains($0) ? "list-like \($0)" : "list-like (\($0)?)" }
                ?? "list-like"
            reason = "\(kind) question (\(s) >= \(t)) - SoT"
        } else if let category, let categoryScore, !suitableCategories.contains(category) {
            reason = "looks like \(category) (\(String(format: "%.2f", categoryScore))); P(SoT) \(s) < \(t) - normal decoding"
        } else {
            reason = "not clearly list-like (\(s) < \(t)) - normal decoding"
        }
        return SoTRouteDecision(useSoT: use, score: score, threshold: threshold, reason: reason, seconds: seconds,
                                category: category, categoryScore: categoryScore)
    }
}

/// Why a router could not be built or run.
public enum SoTRouterError: Error, Equatable, CustomStringConvertible {
    case noBundledWeights(String)
    case badWeights(source: String, reason: String)
    /// The loaded model is not the one the router was trained on.
    case modelMismatch(trainedOn: String, expected: String, found: String)
    case featureSize(expected: Int, found: Int)
    case emptyQuestion

    public var description: String {
        switch self {
        case .noBundledWeights(let why):
            return "no trained SoT router is bundled (\(why)); run `effterm sot train-router` or use --mode on/off"
        case let .badWeights(source, reason):
            return "SoT router weights \(source) are unusable: \(reason)"
        case let .modelMismatch(trainedOn, expected, found):
            return "the SoT router was trained on \(trainedOn) (weights fingerprint \(expected.prefix(12))...) but the "
                + "loaded model's fingerprint is \(found.prefix(12))...; refusing auto mode with mismatched router "
                + "weights (use --mode on/off, or retrain with `effterm sot train-router`)"
        case let .featureSize(expected, found):
            return "SoT router expects \(expected) features, the model produced \(found)"
        case .emptyQuestion:
            return "cannot route an empty question"
        }
    }
}
