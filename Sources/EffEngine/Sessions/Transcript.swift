import Foundation

/// The first line of a session transcript: what produced the conversation.
public struct TranscriptHeader: Codable, Hashable, Sendable {
    public var type = "header"
    public var efftermVersion: String
    public var created: String
    public var modelName: String
    public var modelSHA256: String
    public var templateHash: String
    public var seed: UInt64
    public var sampler: GenerationSettings
    public var system: String?

    public init(modelName: String, modelSHA256: String, templateHash: String,
                sampler: GenerationSettings, system: String?, created: Date = Date()) {
        efftermVersion = EffTermVersion.string
        self.created = Transcript.timestamp(created)
        self.modelName = modelName; self.modelSHA256 = modelSHA256
        self.templateHash = templateHash; self.seed = sampler.sampler.seed
        self.sampler = sampler; self.system = system
    }

    enum CodingKeys: String, CodingKey {
        case type, efftermVersion = "effterm_version", created, modelName = "model_name"
        case modelSHA256 = "model_sha256", templateHash = "template_hash", seed, sampler, system
    }
}

/// One turn: the user's message, the answer (possibly stopped early), the techniques in
/// force and what the turn measured.
public struct TranscriptTurn: Codable, Hashable, Sendable {
    public var type = "turn"
    public var index: Int
    public var time: String
    public var messages: [TurnMessage]
    public var techniques: TechniqueConfig
    public var stats: TurnStats
    /// Skeleton-of-Thought details when the turn ran in `on` or `auto` mode.
    public var sot: SoTTurnRecord?

    public init(index: Int, messages: [TurnMessage], techniques: TechniqueConfig,
                stats: TurnStats, sot: SoTTurnRecord? = nil, time: Date = Date()) {
        self.index = index; self.messages = messages; self.techniques = techniques
        self.stats = stats; self.sot = sot; self.time = Transcript.timestamp(time)
    }
}

/// A session transcript: header then turns, stored as JSON Lines.
public struct Transcript: Hashable, Sendable {
    public var header: TranscriptHeader
    public var turns: [TranscriptTurn]
    /// A/B comparisons with their verdicts (each after the turn it compared).
    public var compares: [CompareRecord]

    public init(header: TranscriptHeader, turns: [TranscriptTurn] = [], compares: [CompareRecord] = []) {
        self.header = header; self.turns = turns; self.compares = compares
    }

    /// The conversation as the model sees it (system message first when present).
    public var messages: [TurnMessage] {
        var out: [TurnMessage] = []
        if let s = header.system, !s.isEmpty { out.append(TurnMessage(role: "system", content: s)) }
        for t in turns { out.append(contentsOf: t.messages) }
        return out
    }

    /// JSON Lines text: one object per line, header first, ending with a newline.
    public func jsonLines() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = try enc.encode(header)
        data.append(0x0A)
        // Each comparison follows the turn it compared, so the file reads in order.
        var pending = compares
        for t in turns {
            data.append(try enc.encode(t)); data.append(0x0A)
            for c in pending where c.turnIndex <= t.index { data.append(try enc.encode(c)); data.append(0x0A) }
            pending.removeAll { $0.turnIndex <= t.index }
        }
        for c in pending { data.append(try enc.encode(c)); data.append(0x0A) }
        return data
    }

    /// Parses JSON Lines; errors name the file and line at fault.
    public static func parse(_ data: Data, file: String) throws -> Transcript {
        guard let text = String(data: data, encoding: .utf8) else {
            throw TranscriptError.notUTF8(file: file)
        }
        let dec = JSONDecoder()
        var header: TranscriptHeader?
        var turns: [TranscriptTurn] = []
        var compares: [CompareRecord] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            let lineData = Data(trimmed.utf8)
            do {
                if header == nil {
                    header = try dec.decode(TranscriptHeader.self, from: lineData)
                    guard header?.type == "header" else {
                        throw TranscriptError.malformed(file: file, line: i + 1, reason: "first object must have type \"header\"")
                    }
                } else {
                    struct Kind: Decodable { var type: String }
                    let kind = try dec.decode(Kind.self, from: lineData).type
                    switch kind {
                    case "turn": turns.append(try dec.decode(TranscriptTurn.self, from: lineData))
                    case "compare": compares.append(try dec.decode(CompareRecord.self, from: lineData))
                    default:
                        throw TranscriptError.malformed(file: file, line: i + 1, reason: "expected type \"turn\" or \"compare\", found \"\(kind)\"")
                    }
                }
            } catch let e as TranscriptError {
                throw e
            } catch {
                throw TranscriptError.malformed(file: file, line: i + 1, reason: Transcript.describe(error))
            }
        }
        guard let header else { throw TranscriptError.empty(file: file) }
        return Transcript(header: header, turns: turns, compares: compares)
    }

    /// A Markdown rendering for reading (not for resuming).
    public func markdown() -> String {
        var out = "# effterm session \(header.created)\n\n"
        out += "- model: \(header.modelName) (sha256 \(header.modelSHA256.prefix(16))...)\n"
        out += "- effterm \(header.efftermVersion), seed \(header.seed), temperature \(shortDecimal(header.sampler.sampler.temperature))\n"
        if let s = header.system, !s.isEmpty { out += "- system: \(s)\n" }
        for t in turns {
            for m in t.messages {
                out += "\n## \(m.role)\n\n\(m.content)\n"
            }
            var line = "\n_turn \(t.index + 1): \(t.stats.generatedTokens) tokens"
            if let d = t.stats.decodeTokensPerSecond { line += String(format: ", decode %.1f tok/s", d) }
            if let p = t.stats.prefillTokensPerSecond { line += String(format: ", prefill %.1f tok/s", p) }
            line += ", weights \(t.techniques.weights), KV \(t.techniques.kv), attention \(t.techniques.attention), SoT \(t.techniques.sot.rawValue)"
            if t.stats.stopReason != .endOfTurn { line += ", ended: \(t.stats.stopReason.rawValue)" }
            out += line + "_\n"
            if let sot = t.sot { out += Self.markdown(sot) }
            for c in compares where c.turnIndex == t.index { out += Self.markdown(c) }
        }
        return out
    }

    static func markdown(_ s: SoTTurnRecord) -> String {
        var out = "\n_Skeleton-of-Thought (\(s.mode))"
        if let r = s.router { out += String(format: ", router %@ (score %.2f, threshold %.2f)", r.reason, r.score, r.threshold) }
        if !s.usedSoT { return out + ": answered normally_\n" }
        if let f = s.fallbackReason { return out + ": fell back to normal decoding, \(f)_\n" }
        out += String(format: ": B=%d, skeleton %.2f s, expansion %.2f s, total %.2f s", s.streams,
                      s.skeletonSeconds, s.expansionSeconds, s.totalSeconds)
        if let r = s.stepRatio { out += String(format: ", r(B) %.2f", r) }
        if let n = s.normalEstimateSeconds { out += String(format: ", normal decoding of %d tokens est. %.2f s", s.answerTokens, n) }
        out += "_\n\n"
        for p in s.points { out += "- point \(p.index) \"\(p.text)\": \(p.tokens) tokens\n" }
        return out
    }

    static func markdown(_ c: CompareRecord) -> String {
        var out = "\n### A/B comparison (blind)\n\n"
        for side in c.sides {
            out += String(format: "**%@ (%@)**, %.2f s, %d tokens:\n\n", side.label, side.mode, side.seconds, side.tokens)
            out += side.answer + "\n\n"
        }
        out += "Verdict: " + (c.verdict == "skipped" ? "skipped" : c.verdict == "tie" ? "tie" : "\(c.verdict) better (\(c.preferredMode ?? "?"))") + "\n"
        return out
    }

    static func timestamp(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: d)
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "missing key \"\(key.stringValue)\""
        case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx):
            return "wrong type at \(ctx.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.dataCorrupted(let ctx): return "not JSON (\(ctx.debugDescription))"
        default: return "\(error)"
        }
    }
}

/// Problems reading or writing transcripts; each names the file (and line) at fault.
public enum TranscriptError: Error, CustomStringConvertible, Equatable {
    case notUTF8(file: String)
    case empty(file: String)
    case malformed(file: String, line: Int, reason: String)
    case notFound(String)
    case writeFailed(file: String, reason: String)

    public var description: String {
        switch self {
        case .notUTF8(let f): return "\(f): not UTF-8 text"
        case .empty(let f): return "\(f): no header line (empty transcript)"
        case .malformed(let f, let l, let r): return "\(f):\(l): \(r)"
        case .notFound(let what): return "no session transcript found: \(what)"
        case .writeFailed(let f, let r): return "could not save \(f): \(r)"
        }
    }
}
