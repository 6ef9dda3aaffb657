import EffCore
import EffTechniques

/// The efficiency techniques in force: one typed value the chat engine applies at a safe
/// point (between turns) and that every turn records in its transcript line.
///
/// Transcripts store each field as a short string (`"weights":"Q4_1"`, `"kv_cache":"f16"`,
/// `"attention":"dense"`, `"sot":"off"`), the same spelling the status bar shows, so files
/// written before this type existed still load.
public struct TechniqueConfig: Hashable, Sendable {
    /// How the weights are stored.
    public var weights: WeightChoice = .file("Q4_1")
    /// How the KV cache holds keys and values.
    public var kv: KVFormat = .f32
    /// Which cached keys each head reads.
    public var attention: AttentionChoice = .dense
    /// Skeleton-of-Thought mode.
    public var sot: SoTMode = .off

    public init(weights: WeightChoice = .file("Q4_1"), kv: KVFormat = .f32, attention: AttentionChoice = .dense,
                sot: SoTMode = .off) {
        self.weights = weights; self.kv = kv; self.attention = attention; self.sot = sot
    }
}

/// Where the weights come from.
public enum WeightChoice: Hashable, Sendable, CustomStringConvertible {
    /// The model file's tensors as shipped, named by their main format ("Q4_1").
    case file(String)
    /// A named mixed-precision plan (`effterm quant plan`).
    case plan(String)

    public var description: String {
        switch self {
        case .file(let format): return format
        case .plan(let name): return "plan:" + name
        }
    }

    public init(_ text: String) {
        self = text.hasPrefix("plan:") ? .plan(String(text.dropFirst(5))) : .file(text)
    }
}

/// Which keys attention reads (and whether the cache evicts): `AttentionSpec`, whose
/// spellings ("dense", "sink4+win1020", "sink4+win1020+evict") the transcripts store.
public typealias AttentionChoice = AttentionSpec

extension TechniqueConfig: Codable {
    enum CodingKeys: String, CodingKey { case weights, kv = "kv_cache", attention, sot }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        weights = WeightChoice(try c.decodeIfPresent(String.self, forKey: .weights) ?? "Q4_1")
        kv = try c.decodeIfPresent(KVFormat.self, forKey: .kv) ?? .f32
        let a = try c.decodeIfPresent(String.self, forKey: .attention) ?? "dense"
        guard let attention = AttentionChoice(a) else {
            throw DecodingError.dataCorruptedError(forKey: .attention, in: c,
                                                   debugDescription: "unknown attention policy '\(a)'")
        }
        self.attention = attention
        let s = try c.decodeIfPresent(String.self, forKey: .sot) ?? "off"
        guard let sot = SoTMode(rawValue: s) else {
            throw DecodingError.dataCorruptedError(forKey: .sot, in: c, debugDescription: "unknown SoT mode '\(s)'")
        }
        self.sot = sot
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(weights.description, forKey: .weights)
        try c.encode(kv, forKey: .kv)
        try c.encode(attention.description, forKey: .attention)
        try c.encode(sot.rawValue, forKey: .sot)
    }
}
