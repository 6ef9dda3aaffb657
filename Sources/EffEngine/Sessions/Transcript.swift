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
    public var techniques: TechniqueRecord
    public var stats: TurnStats
    /// Skeleton-of-Thought details when the turn ran in `on` or `auto` mode.
    public var sot: SoTTurnRecord?

    public init(index: Int, messages: [TurnMessage], techniques: TechniqueConfig,
                stats: TurnStats, sot: SoTTurnRecord? = nil, time: Date = Date()) {
        self.index = index; self.messages = messages; self.techniques = TechniqueRecord(techniques)
        self.stats = stats; self.sot = sot; self.time = Transcript.timestamp(time)
    }
}

/// A session transcript: header then turns, stored as JSON Lines.
public struct Transcript: Hashable, Sendable {
    public var header: TranscriptHeader
    public var turns: [TranscriptTurn]
    /// A/B comparisons with their verdicts (each after the turn it compared).
    public var compares: [CompareRecord]
    /// Set when the file's last line was cut off (a crash or a copy that stopped mid-write):
    /// that line was skipped, everything before it was read. Never written back.
    public var cutLine: CutLine?

    public init(header: TranscriptHeader, turns: [TranscriptTurn] = [], compares: [CompareRecord] = []) {
        self.header = header; self.turns = turns; self.compares = compares
    }

    /// The unreadable, unterminated last line of a transcript file.
    public struct CutLine: Hashable, Sendable {
        /// 1-based line number.
        public var line: Int
        /// Bytes of that line present in the file.
        public var bytes: Int
        /// Why it could not be read ("not JSON (...)", "not UTF-8").
        public var reason: String

        /// One sentence for the person resuming.
        public var note: String {
            "line \(line) (\(bytes) bytes) ends without a newline and cannot be read (\(reason)): "
                + "it was cut off mid-write and was skipped; every line before it was loaded"
        }
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
    ///
    /// A file that ends mid-line (no final newline) and whose last line does not parse was
    /// cut off while being written: that line is skipped and described in `cutLine`, so
    /// every complete line before it still loads. A damaged line anywhere else, or a cut
    /// inside the header line, is an error.
    public static func parse(_ data: Data, file: String) throws -> Transcript {
        let bytes = [UInt8](data)
        // Line ranges by byte, so a cut inside a multi-byte character only affects its line.
        var ranges: [Range<Int>] = []
        var start = 0
        for (i, b) in bytes.enumerated() where b == 0x0A {
            ranges.append(start..<i); start = i + 1
        }
        let unterminated = start < bytes.count
        if unterminated { ranges.append(start..<bytes.count) }

        let dec = JSONDecoder()
        var header: TranscriptHeader?
        var turns: [TranscriptTurn] = []
        var compares: [CompareRecord] = []
        var cut: CutLine?
        for (i, range) in ranges.enumerated() {
            let isCutCandidate = unterminated && i == ranges.count - 1
            do {
                guard let text = String(validating: bytes[range], as: UTF8.self) else {
                    throw TranscriptError.notUTF8(file: "\(file):\(i + 1)")
                }
                let trimmed = text.trimmingCharacters(in: .whitespaces)
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
            } catch let e as TranscriptError {
                // Only a line that is not complete JSON can be a cut one: a proper prefix of a
                // JSON object never parses, while a whole object of the wrong shape is damage.
                guard isCutCandidate, !Self.isCompleteJSON(bytes[range]) else { throw e }
                guard header != nil else {
                    throw TranscriptError.cutHeader(file: file, bytes: range.count)
                }
                let reason: String
                switch e {
                case .notUTF8: reason = "not UTF-8"
                case .malformed(_, _, let r): reason = r
                default: reason = e.description
                }
                cut = CutLine(line: i + 1, bytes: range.count, reason: reason)
            }
        }
        guard let header else { throw TranscriptError.empty(file: file) }
        var t = Transcript(header: header, turns: turns, compares: compares)
        t.cutLine = cut
        return t
    }

    static func isCompleteJSON(_ line: ArraySlice<UInt8>) -> Bool {
        (try? JSONSerialization.jsonObject(with: Data(line), options: [.fragmentsAllowed])) != nil
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
                      s.skeletonSeconds ?? 0, s.expansionSeconds ?? 0, s.totalSeconds ?? 0)
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
    /// The file ends inside its first (header) line: nothing to resume.
    case cutHeader(file: String, bytes: Int)

    public var description: String {
        switch self {
        case .notUTF8(let f): return "\(f): not UTF-8 text"
        case .empty(let f): return "\(f): no header line (empty transcript)"
        case .malformed(let f, let l, let r): return "\(f):\(l): \(r)"
        case .notFound(let what): return "no session transcript found: \(what)"
        case .writeFailed(let f, let r): return "could not save \(f): \(r)"
        case .cutHeader(let f, let n):
            return "\(f): the file ends inside its header line (\(n) bytes, no newline): it was cut off before its first line was complete, so there is no conversation to resume"
        }
    }
}
