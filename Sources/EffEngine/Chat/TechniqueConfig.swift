import EffCore
import EffTechniques

/// The efficiency techniques in force: one typed value the chat engine applies at a safe
/// point (between turns) and that every turn records in its transcript line (as a
/// `TechniqueRecord`).
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
    /// Every linear tensor requantized from the file's to one `WeightSpec` ("Q3G64",
    /// "Q2G32+o0.5%").
    case uniform(String)

    public var description: String {
        switch self {
        case .file(let format): return format
        case .plan(let name): return "plan:" + name
        case .uniform(let spec): return "uniform:" + spec
        }
    }

    public init(_ text: String) {
        if text.hasPrefix("plan:") { self = .plan(String(text.dropFirst(5))) }
        else if text.hasPrefix("uniform:") { self = .uniform(String(text.dropFirst(8))) }
        else { self = .file(text) }
    }

    /// The file's tensors, as shipped.
    public var isFile: Bool { if case .file = self { return true } else { return false } }

    /// What the chat's weights hotkey cycles through: the file's tensors, uniform 4-, 3- and
    /// 2-bit requantizations, then the saved plans by name.
    public static func chatCycle(file: WeightChoice, plans: [String]) -> [WeightChoice] {
        [file, .uniform("Q4G64"), .uniform("Q3G64"), .uniform("Q2G32")] + plans.sorted().map { .plan($0) }
    }
}

/// Which keys attention reads (and whether the cache evicts): `AttentionSpec`, whose
/// spellings ("dense", "sink4+win1020", "sink4+win1020+evict") the transcripts store.
public typealias AttentionChoice = AttentionSpec

/// What a transcript line records of the techniques in force: `TechniqueConfig` with the
/// attention configuration kept as its spelling. A MoA turn names its plan
/// (`"moa:moa-d0.50"`) and the plan itself lives in a file that may since have been
/// renamed, replaced or deleted, so a transcript must read back without it: the record is
/// what ran, not something to re-run.
///
/// Each field is stored as a short string (`"weights":"Q4_1"`, `"kv_cache":"f16"`,
/// `"attention":"dense"`, `"sot":"off"`), the same spelling the status bar shows, so files
/// written before this type existed still load.
public struct TechniqueRecord: Hashable, Sendable {
    public var weights: WeightChoice
    public var kv: KVFormat
    /// `AttentionSpec.description`: "dense", "sink4+win1020+evict", "moa:NAME".
    public var attention: String
    public var sot: SoTMode

    public init(_ config: TechniqueConfig) {
        weights = config.weights; kv = config.kv
        attention = config.attention.description; sot = config.sot
    }

    /// Whether `text` is a spelling `AttentionSpec` writes (a `moa:` name counts without
    /// its plan).
    public static func isAttentionSpelling(_ text: String) -> Bool {
        AttentionSpec(text) != nil || AttentionSpec.moaName(text) != nil
    }
}

extension TechniqueRecord: Codable {
    enum CodingKeys: String, CodingKey { case weights, kv = "kv_cache", attention, sot }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        weights = WeightChoice(try c.decodeIfPresent(String.self, forKey: .weights) ?? "Q4_1")
        kv = try c.decodeIfPresent(KVFormat.self, forKey: .kv) ?? .f32
        let a = try c.decodeIfPresent(String.self, forKey: .attention) ?? "dense"
        guard Self.isAttentionSpelling(a) else {
            throw DecodingError.dataCorruptedError(forKey: .attention, in: c,
                                                   debugDescription: "unknown attention policy '\(a)'")
        }
        attention = a
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
        try c.encode(attention, forKey: .attention)
        try c.encode(sot.rawValue, forKey: .sot)
    }
}
