import Foundation

/// One DiTFastAttn strategy for a block's self-attention at one step (TECHNIQUES.md §7,
/// arXiv 2406.08552). Raw values are the plan file's spelling.
public enum FastAttnStrategy: String, CaseIterable, Codable, Sendable {
    /// Full attention.
    case full
    /// ASC: attention computed for the conditional CFG half and shared with the unconditional half.
    case asc
    /// WA-RS: window attention plus the residual cached at the block's last full step.
    case wars
    /// WA-RS and ASC together.
    case warsASC = "wars+asc"
    /// AST: the previous step's attention output reused.
    case ast

    /// The authors' candidate order, most aggressive first (full is the fallback).
    public static let searchOrder: [FastAttnStrategy] = [.ast, .warsASC, .wars, .asc]

    /// One character per strategy for plan maps in the terminal.
    public var glyph: Character {
        switch self {
        case .full: return "F"
        case .asc: return "C"
        case .wars: return "W"
        case .warsASC: return "w"
        case .ast: return "S"
        }
    }
}

/// A DiTFastAttn plan: one strategy per (step, block) for one model, sampler and step count,
/// as searched on calibration inputs. Stored as JSON (`FastAttnPlan.load`, `encoded()`).
public struct FastAttnPlan: Codable, Equatable, Sendable {
    /// Format tag and version written in every file.
    public static let formatName = "effterm-ditfastattn-plan"
    public static let formatVersion = 1

    public var format: String = FastAttnPlan.formatName
    public var version: Int = FastAttnPlan.formatVersion
    /// Model the plan was searched for (e.g. "dit-base").
    public var model: String
    public var sampler: String
    public var guidance: Double
    /// Half-width of the attention band, in tokens, for wars steps.
    public var window: Int
    /// The threshold the search used (δ; block l of L accepts errors below δ·(l+1)/L).
    public var delta: Double
    /// (steps, layers) strategies.
    public var strategies: [[FastAttnStrategy]]
    /// Free-form provenance (calibration classes and seeds, search time).
    public var notes: [String: String] = [:]

    public var steps: Int { strategies.count }
    public var layers: Int { strategies.first?.count ?? 0 }

    public init(model: String, sampler: String, guidance: Double, window: Int, delta: Double,
                strategies: [[FastAttnStrategy]], notes: [String: String] = [:]) {
        self.model = model; self.sampler = sampler; self.guidance = guidance; self.window = window
        self.delta = delta; self.strategies = strategies; self.notes = notes
    }

    /// Why a plan file could not be used; each case says what to fix.
    public enum LoadError: Error, Equatable, CustomStringConvertible {
        case unreadable(String)
        case notAPlan(String)
        case invalid(String)

        public var description: String {
            switch self {
            case let .unreadable(m): return "plan file: \(m)"
            case let .notAPlan(m): return "not a DiTFastAttn plan: \(m)"
            case let .invalid(m): return "invalid DiTFastAttn plan: \(m)"
            }
        }
    }

    /// Decodes and checks a plan: format tag and version, a rectangular non-empty grid,
    /// window ≥ 1, step 0 full or asc in every block (nothing to reuse yet).
    public static func load(from data: Data) throws -> FastAttnPlan {
        struct Header: Decodable { var format: String?; var version: Int? }
        guard let header = try? JSONDecoder().decode(Header.self, from: data) else {
            throw LoadError.notAPlan("not a JSON object")
        }
        guard header.format == formatName else {
            throw LoadError.notAPlan("\"format\" is \(header.format.map { "'\($0)'" } ?? "missing"), expected '\(formatName)'")
        }
        guard header.version == formatVersion else {
            throw LoadError.notAPlan("version \(header.version.map(String.init) ?? "missing") (this effterm reads version \(formatVersion))")
        }
        let plan: FastAttnPlan
        do { plan = try JSONDecoder().decode(FastAttnPlan.self, from: data) } catch let DecodingError.dataCorrupted(ctx) {
            throw LoadError.invalid(Self.path(ctx.codingPath) + ctx.debugDescription)
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw LoadError.invalid("missing \"\(key.stringValue)\"" + (ctx.codingPath.isEmpty ? "" : " in " + Self.path(ctx.codingPath)))
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw LoadError.invalid(Self.path(ctx.codingPath) + ctx.debugDescription)
        } catch {
            throw LoadError.invalid("\(error)")
        }
        try plan.validate()
        return plan
    }

    /// Reads and checks a plan file.
    public static func load(path: String) throws -> FastAttnPlan {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw LoadError.unreadable("cannot read \(path): \((error as NSError).localizedDescription)")
        }
        return try load(from: data)
    }

    public func validate() throws {
        guard !strategies.isEmpty, layers > 0 else { throw LoadError.invalid("\"strategies\" is empty") }
        for (s, row) in strategies.enumerated() where row.count != layers {
            throw LoadError.invalid("step \(s) has \(row.count) strategies, step 0 has \(layers)")
        }
        guard window >= 1 else { throw LoadError.invalid("window \(window) must be at least 1") }
        guard delta >= 0, delta.isFinite else { throw LoadError.invalid("delta \(delta) must be a finite number >= 0") }
        if let l = strategies[0].firstIndex(where: { $0 != .full && $0 != .asc }) {
            throw LoadError.invalid("step 0 block \(l) is '\(strategies[0][l].rawValue)': the first step has no earlier attention to reuse")
        }
    }

    /// Checks the plan fits a run: same number of blocks and steps.
    public func check(layers: Int, steps: Int) throws {
        guard self.layers == layers else {
            throw LoadError.invalid("plan has \(self.layers) blocks per step, the model has \(layers)")
        }
        guard self.steps == steps else {
            throw LoadError.invalid("plan covers \(self.steps) steps, the run has \(steps) (pass --steps \(self.steps))")
        }
    }

    /// Pretty-printed JSON, keys sorted, one step per line of the strategy grid.
    public func encoded() throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(self)
    }

    /// Occurrences of each strategy over all cells.
    public var histogram: [FastAttnStrategy: Int] {
        var h: [FastAttnStrategy: Int] = [:]
        for row in strategies { for s in row { h[s, default: 0] += 1 } }
        return h
    }

    /// The plan as rows of glyphs, one row per block, one column per step (the diff panel's map).
    public var map: [String] {
        (0..<layers).map { l in String(strategies.map { $0[l].glyph }) }
    }

    private static func path(_ p: [CodingKey]) -> String {
        p.isEmpty ? "" : p.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined() + ": "
    }
}
