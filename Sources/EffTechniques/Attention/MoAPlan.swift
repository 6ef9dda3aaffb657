import EffCore
import Foundation

/// One KV head's elastic span in MoA (Fu et al., "MoA: Mixture of Sparse Attention for
/// Automatic Large Language Model Compression", 2024): at sequence length `N` the head reads
/// the sink block and the last `alpha + beta * N` positions.
public struct MoARule: Codable, Hashable, Sendable, CustomStringConvertible {
    public var alpha: Int
    public var beta: Double

    public init(alpha: Int, beta: Double) { self.alpha = alpha; self.beta = beta }

    /// Recent positions read at length `n` (never below `minimum`, never above `n`).
    @inline(__always)
    public func span(at n: Int, minimum: Int) -> Int {
        min(n, max(minimum, alpha + Int((beta * Double(n)).rounded(.down))))
    }

    public var description: String { String(format: "%+d%+.3fN", alpha, beta) }
}

/// A MoA plan: one `MoARule` per (layer, KV head), the sink block every head keeps, and
/// where the plan came from (profile, budget, measured quality). A small JSON file in
/// `$XDG_DATA_HOME/effterm/attn-plans/`.
public struct MoAPlan: Codable, Hashable, Sendable {
    public static let formatTag = "effterm-moa-plan"
    public static let currentVersion = 1

    public var format = MoAPlan.formatTag
    public var version = MoAPlan.currentVersion
    public var name: String
    /// sha256 of the model file the plan was made for.
    public var modelFingerprint: String
    public var layers: Int
    public var kvHeads: Int
    /// Leading positions every head always reads (MoA's global first block).
    public var sinkTokens: Int
    /// Smallest recent span any head reads (the diagonal block and its neighbour).
    public var minSpan: Int
    /// layers * kvHeads rules, index `layer * kvHeads + kvHead`.
    public var rules: [MoARule]
    /// The mean-density budget the search ran under and the lengths it constrained.
    public var budget: Double
    public var constrainedLengths: [Int]
    /// How the plan was chosen (profile lengths and samples, objective weights, solver).
    public var provenance: [String: String]
    /// Perplexity on the held-out validation text at `validationLength` (nil: not validated).
    public var validationPPL: Double?
    public var validationDensePPL: Double?
    public var validationLength: Int?

    public init(name: String, modelFingerprint: String, layers: Int, kvHeads: Int, sinkTokens: Int, minSpan: Int,
                rules: [MoARule], budget: Double, constrainedLengths: [Int], provenance: [String: String] = [:]) {
        self.name = name; self.modelFingerprint = modelFingerprint; self.layers = layers; self.kvHeads = kvHeads
        self.sinkTokens = sinkTokens; self.minSpan = minSpan; self.rules = rules; self.budget = budget
        self.constrainedLengths = constrainedLengths; self.provenance = provenance
    }

    enum CodingKeys: String, CodingKey {
        case format, version, name, layers, rules, budget, provenance
        case modelFingerprint = "model_fingerprint", kvHeads = "kv_heads", sinkTokens = "sink_tokens"
        case minSpan = "min_span", constrainedLengths = "constrained_lengths", validationPPL = "validation_ppl"
        case validationDensePPL = "validation_dense_ppl", validationLength = "validation_length"
    }

    @inline(__always)
    public func rule(layer: Int, kvHead: Int) -> MoARule { rules[layer * kvHeads + kvHead] }

    /// Positions (layer, kvHead) reads when the sequence is `n` long: sinks + span, at most `n`.
    public func readCount(layer: Int, kvHead: Int, length n: Int) -> Int {
        let span = rule(layer: layer, kvHead: kvHead).span(at: n, minimum: minSpan)
        return min(n, span + sinkTokens)
    }

    /// Decode-time density at length `n`: the mean over heads of positions read / `n`.
    public func density(at n: Int) -> Double {
        guard n > 0, !rules.isEmpty else { return 1 }
        var sum = 0
        for l in 0..<layers { for h in 0..<kvHeads { sum += readCount(layer: l, kvHead: h, length: n) } }
        return Double(sum) / Double(n * rules.count)
    }

    /// Reads and checks a plan file (JSON of this type and version, shape consistent, made for
    /// the model with `fingerprint` and shape when given).
    public static func load(from url: URL, fingerprint: String? = nil, layers: Int? = nil, kvHeads: Int? = nil) throws -> MoAPlan {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw MoAPlanError.unreadable(url.path) }
        let plan: MoAPlan
        do { plan = try JSONDecoder().decode(MoAPlan.self, from: data) } catch {
            throw MoAPlanError.malformed(url.path, "not an attention plan (\(Self.short(error)))")
        }
        guard plan.format == formatTag else { throw MoAPlanError.malformed(url.path, "format is '\(plan.format)', not '\(formatTag)'") }
        guard plan.version == currentVersion else {
            throw MoAPlanError.malformed(url.path, "version \(plan.version) (this effterm reads \(currentVersion))")
        }
        guard plan.layers > 0, plan.kvHeads > 0, plan.rules.count == plan.layers * plan.kvHeads else {
            throw MoAPlanError.malformed(url.path, "\(plan.rules.count) rules for \(plan.layers) layers x \(plan.kvHeads) KV heads")
        }
        guard plan.sinkTokens >= 0, plan.minSpan >= 1,
              plan.rules.allSatisfy({ $0.beta >= 0 && $0.beta <= 1 && abs($0.alpha) <= 1 << 24 }) else {
            throw MoAPlanError.malformed(url.path, "a rule or size is out of range (beta in 0...1, min_span >= 1, sink_tokens >= 0)")
        }
        if let fingerprint, plan.modelFingerprint != fingerprint {
            throw MoAPlanError.otherModel(plan: String(plan.modelFingerprint.prefix(12)), model: String(fingerprint.prefix(12)))
        }
        if let layers, let kvHeads, plan.layers != layers || plan.kvHeads != kvHeads {
            throw MoAPlanError.otherShape(plan: "\(plan.layers)x\(plan.kvHeads)", model: "\(layers)x\(kvHeads)")
        }
        return plan
    }

    /// Writes the plan as pretty JSON, atomically.
    public func save(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try encoder.encode(self).write(to: url, options: .atomic)
    }

    private static func short(_ e: Error) -> String {
        guard let d = e as? DecodingError else { return "\(e)" }
        switch d {
        case .keyNotFound(let k, _): return "missing key '\(k.stringValue)'"
        case .typeMismatch(_, let c), .valueNotFound(_, let c): return "wrong type at '\(c.codingPath.map(\.stringValue).joined(separator: "."))'"
        case .dataCorrupted(let c): return c.codingPath.isEmpty ? "not JSON" : "bad value at '\(c.codingPath.map(\.stringValue).joined(separator: "."))'"
        @unknown default: return "\(d)"
        }
    }
}

public enum MoAPlanError: Error, CustomStringConvertible, Equatable {
    case unreadable(String)
    case malformed(String, String)
    case otherModel(plan: String, model: String)
    case otherShape(plan: String, model: String)

    public var description: String {
        switch self {
        case .unreadable(let p): return "cannot read the attention plan \(p)"
        case .malformed(let p, let why): return "\(p) is not a usable attention plan: \(why)"
        case .otherModel(let p, let m): return "the attention plan was made for model \(p)..., not this model (\(m)...); run `effterm attn plan` for it"
        case .otherShape(let p, let m): return "the attention plan has \(p) layers x KV heads; this model has \(m)"
        }
    }
}

/// MoA's read pattern at run time: for a query at position `p` (sequence length `N = p + 1`,
/// original positions, no re-indexing) KV head `h` of layer `l` reads the first
/// `sinkTokens` positions and the last `rule.span(N)` positions. Decode therefore reads
/// only each head's live keys, and prefill rows only their band; the cache keeps every
/// position (a mask, like `SinkWindowAttentionPolicy` without eviction).
public final class MoAAttentionPolicy: AttentionPolicy {
    public let plan: MoAPlan

    public init(plan: MoAPlan) { self.plan = plan }

    public var name: String { "moa:\(plan.name)" }

    public func keyRanges(layer: Int, kvHead: Int, queryPosition: Int,
                          into ranges: UnsafeMutableBufferPointer<Range<Int>>) -> Int {
        let n = queryPosition + 1
        guard layer < plan.layers, kvHead < plan.kvHeads else { ranges[0] = 0..<n; return 1 }
        let span = plan.rules[layer * plan.kvHeads + kvHead].span(at: n, minimum: plan.minSpan)
        let recent = n - span
        let sinks = plan.sinkTokens
        if recent <= sinks || ranges.count < 2 {
            ranges[0] = (recent <= sinks ? 0 : recent)..<n
            return 1
        }
        if sinks == 0 { ranges[0] = recent..<n; return 1 }
        ranges[0] = 0..<sinks
        ranges[1] = recent..<n
        return 2
    }
}
