import Foundation

/// The DiT blueprint, decoded from the JSON written by Tools/dit/export.py.
///
/// Axis vocabulary: `dim` (hidden width), `nLayers`, `nHeads`, `headSize = dim / nHeads`,
/// `hiddenDim = mlpRatio · dim`, `nTokens = (imageSize / patch)²`, `patchDim = channels · patch²`.
public struct DiTConfig: Codable, Equatable, Sendable {
    public var imageSize: Int
    public var channels: Int
    public var patch: Int
    public var dim: Int
    public var nLayers: Int
    public var nHeads: Int
    public var mlpRatio: Int
    /// Real classes; id `numClasses` is the null class used for unconditional guidance.
    public var numClasses: Int
    /// Width of the sinusoidal timestep features.
    public var freqDim: Int
    public var timesteps: Int
    /// What the network predicts: "v" (α·ε − σ·x₀) or "eps".
    public var prediction: String
    public var schedule: String
    public var layerNormEps: Float

    enum CodingKeys: String, CodingKey {
        case imageSize = "image_size", channels, patch, dim = "hidden", nLayers = "depth"
        case nHeads = "heads", mlpRatio = "mlp_ratio", numClasses = "num_classes"
        case freqDim = "freq_dim", timesteps, prediction, schedule, layerNormEps = "layer_norm_eps"
    }

    public var headSize: Int { dim / nHeads }
    public var hiddenDim: Int { mlpRatio * dim }
    public var grid: Int { imageSize / patch }
    public var nTokens: Int { grid * grid }
    public var patchDim: Int { channels * patch * patch }
    /// Floats in one image, (channels, imageSize, imageSize).
    public var imageFloats: Int { channels * imageSize * imageSize }

    /// Decodes and validates a config; errors name the offending field.
    public static func load(from data: Data) throws -> DiTConfig {
        let c: DiTConfig
        do { c = try JSONDecoder().decode(DiTConfig.self, from: data) } catch {
            throw DiTError.badConfig("\(error)")
        }
        try c.validate()
        return c
    }

    public func validate() throws {
        func need(_ ok: Bool, _ what: String) throws { if !ok { throw DiTError.badConfig(what) } }
        try need((1...4096).contains(imageSize), "image_size \(imageSize) out of range")
        try need((1...16).contains(channels), "channels \(channels) out of range")
        try need(patch >= 1 && imageSize % patch == 0, "patch \(patch) must divide image_size \(imageSize)")
        try need((1...8192).contains(dim), "hidden \(dim) out of range")
        try need((1...256).contains(nLayers), "depth \(nLayers) out of range")
        try need(nHeads >= 1 && dim % nHeads == 0, "heads \(nHeads) must divide hidden \(dim)")
        try need((1...16).contains(mlpRatio), "mlp_ratio \(mlpRatio) out of range")
        try need((1...100_000).contains(numClasses), "num_classes \(numClasses) out of range")
        try need(freqDim >= 2 && freqDim % 2 == 0, "freq_dim \(freqDim) must be even")
        try need((2...100_000).contains(timesteps), "timesteps \(timesteps) out of range")
        try need(prediction == "v" || prediction == "eps", "prediction '\(prediction)' is not v or eps")
        try need(schedule == "cosine", "schedule '\(schedule)' is not cosine")
        try need(layerNormEps > 0 && layerNormEps < 1, "layer_norm_eps \(layerNormEps) out of range")
    }
}

/// Why a DiT could not be loaded or run; cases name the file, field or tensor at fault.
public enum DiTError: Error, Equatable, CustomStringConvertible {
    case badConfig(String)
    case weights(SafeTensorsErrorDescription)
    case resourceMissing(String)
    case badClassList(String)
    case unknownClass(String)

    public var description: String {
        switch self {
        case let .badConfig(m): return "DiT config: \(m)"
        case let .weights(m): return "DiT weights: \(m.text)"
        case let .resourceMissing(m): return "DiT resource missing: \(m)"
        case let .badClassList(m): return "DiT class list: \(m)"
        case let .unknownClass(m): return "unknown class '\(m)' (see `effterm diffuse --list-classes`)"
        }
    }
}

/// A safetensors error carried as text so `DiTError` stays `Equatable` across modules.
public struct SafeTensorsErrorDescription: Equatable, Sendable {
    public var text: String
}
