import EffCore

/// One attention configuration by name: which keys each query reads and whether the cache
/// evicts. The spelling is what options, the status bar and transcripts use:
///
/// - `dense`: every cached key (the reference);
/// - `sinkS+winW`: StreamingLLM's read mask (`SinkWindowAttentionPolicy`), nothing evicted,
///   so switching back to dense restores attention exactly;
/// - `sinkS+winW+evict`: StreamingLLM with a bounded cache (`StreamingLLMEviction`): memory
///   stays at S + W positions and evicted tokens are gone for good; `sinkS+winW+evict/C`
///   evicts C positions at a time once full (the window then holds W - C + 1 ... W tokens),
///   which spreads the cost of moving and re-rotating the window over C tokens.
///
/// `sink0+winW` (with or without `+evict`) is window-only attention, the baseline that
/// StreamingLLM shows failing once the first tokens leave.
///
/// - `moa:NAME`: a MoA plan (`MoAPlan`): per-KV-head elastic spans plus the sink block,
///   a read mask (nothing evicted). The plan itself comes from a file, so parsing this
///   spelling needs a resolver (`AttentionPolicyCatalog.parse(_:resolve:)`).
public enum AttentionSpec: Hashable, Sendable, CustomStringConvertible {
    case dense
    case sinkWindow(sinks: Int, window: Int, evict: Bool = false, step: Int = 1)
    case moa(MoAPlan)

    public var description: String {
        switch self {
        case .dense: return "dense"
        case let .sinkWindow(s, w, evict, step):
            return "sink\(s)+win\(w)" + (evict ? "+evict" : "") + (evict && step > 1 ? "/\(step)" : "")
        case let .moa(plan): return "moa:\(plan.name)"
        }
    }

    /// The plan name of a `moa:NAME` spelling (nil for every other text).
    public static func moaName(_ text: String) -> String? {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard t.lowercased().hasPrefix("moa:") else { return nil }
        let name = String(t.dropFirst(4))
        return name.isEmpty ? nil : name
    }

    /// Parses `description`'s spellings (case-insensitive, spaces ignored); nil otherwise.
    public init?(_ text: String) {
        let t = text.lowercased().filter { !$0.isWhitespace }
        if t == "dense" { self = .dense; return }
        var parts = t.split(separator: "+", omittingEmptySubsequences: false)
        var evict = false, step = 1
        if parts.count == 3 {
            let e = parts[2].split(separator: "/", omittingEmptySubsequences: false)
            guard e[0] == "evict", e.count <= 2 else { return nil }
            if e.count == 2 { guard let c = Int(e[1]), c >= 1 else { return nil }; step = c }
            evict = true; parts.removeLast()
        }
        guard parts.count == 2, parts[0].hasPrefix("sink"), parts[1].hasPrefix("win"),
              let s = Int(parts[0].dropFirst(4)), let w = Int(parts[1].dropFirst(3)),
              s >= 0, w > 0, s <= AttentionPolicyCatalog.maxPositions, w <= AttentionPolicyCatalog.maxPositions,
              step <= w
        else { return nil }
        self = .sinkWindow(sinks: s, window: w, evict: evict, step: step)
    }

    /// StreamingLLM as the chat toggles it: 4 sinks + 1020 recent tokens (the authors'
    /// perplexity cache size), evicting 64 positions at a time: measured on SmolLM2 (README),
    /// about half the ms per token of evicting one at a time, for +0.7% perplexity.
    public static let streamingDefault = AttentionSpec.sinkWindow(sinks: 4, window: 1020, evict: true, step: 64)

    /// Whether this configuration removes tokens from the cache.
    public var evicts: Bool {
        if case .sinkWindow(_, _, true, _) = self { return true }
        return false
    }

    /// Most positions the cache holds under this configuration (nil: unbounded, dense or
    /// mask-only).
    public var kvBudget: Int? {
        if case let .sinkWindow(s, w, true, _) = self { return s + w }
        return nil
    }

    /// The read mask to install on a state (nil: read every cached key). An evicting
    /// configuration reads its whole (bounded) cache.
    public func makeReadPolicy() -> AttentionPolicy? {
        switch self {
        case .dense, .sinkWindow(_, _, true, _): return nil
        case let .sinkWindow(s, w, false, _): return SinkWindowAttentionPolicy(sinks: s, window: w)
        case let .moa(plan): return MoAAttentionPolicy(plan: plan)
        }
    }

    /// The eviction policy to install on a state (nil: the cache keeps every token).
    public func makeEvictionPolicy() -> KVEvictionPolicy? {
        if case let .sinkWindow(s, w, true, step) = self { return StreamingLLMEviction(sinks: s, window: w, step: step) }
        return nil
    }
}

/// Parses attention specs for options (`--policies dense,sink4+win1020+evict`) with errors a
/// person can act on.
public enum AttentionPolicyCatalog {
    /// Largest sink or window size accepted (positions).
    public static let maxPositions = 1 << 24
    /// Spellings shown in help and errors.
    public static let examples = ["dense", "sink4+win1020", "sink4+win1020+evict", "sink4+win1020+evict/64",
                                  "sink0+win1024+evict", "moa:NAME"]

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var text: String
        public var description: String {
            "unknown attention policy '\(text)'; expected one of: " + AttentionPolicyCatalog.examples.joined(separator: ", ")
                + " (S sinks >= 0, W window >= 1, 1 <= C <= W)"
        }
    }

    /// A `moa:NAME` spelling without a way to load the plan.
    public struct NoPlanResolver: Error, CustomStringConvertible {
        public var name: String
        public var description: String { "attention plan 'moa:\(name)' cannot be loaded here" }
    }

    /// One spec; `moa:NAME` goes through `resolve` (a name or a path to a plan file).
    public static func parse(_ text: String, resolve: ((String) throws -> MoAPlan)? = nil) throws -> AttentionSpec {
        if let name = AttentionSpec.moaName(text) {
            guard let resolve else { throw NoPlanResolver(name: name) }
            return .moa(try resolve(name))
        }
        guard let spec = AttentionSpec(text) else { throw ParseError(text: text) }
        return spec
    }

    /// A comma-separated list, in order; empty items are skipped, an empty list is an error.
    public static func parseList(_ text: String, resolve: ((String) throws -> MoAPlan)? = nil) throws -> [AttentionSpec] {
        let items = text.split(separator: ",").map(String.init).filter { !$0.allSatisfy(\.isWhitespace) }
        guard !items.isEmpty else { throw ParseError(text: text) }
        return try items.map { try parse($0, resolve: resolve) }
    }
}
