import EffCore
import Foundation

/// A mixed-precision weight plan (issue 11 item 4): one weight spec per linear tensor, the
/// scan it came from, its budget, predicted quality (summed scanned KL) and, once
/// `effterm eval quant --plan` ran, measured quality. Stored as a small JSON file under
/// `$XDG_DATA_HOME/effterm/quant-plans/NAME.json`.
public struct WeightPlan: Codable, Sendable, Equatable {
    /// Marks the file type; a file without it is refused.
    public static let formatTag = "effterm-weight-plan"
    public static let currentVersion = 1

    public struct Tensor: Codable, Sendable, Equatable {
        public var tensor: String
        public var spec: String
        public var bytes: Int
        /// The scan's KL for this tensor at this spec (nats).
        public var kl: Double?
        public init(tensor: String, spec: String, bytes: Int, kl: Double?) {
            self.tensor = tensor; self.spec = spec; self.bytes = bytes; self.kl = kl
        }
    }

    public struct Budget: Codable, Sendable, Equatable {
        /// "bits_per_weight" (of the linear tensors) or "size" (whole model).
        public var kind: String
        public var value: Double
        /// The bytes the linear tensors could use.
        public var linearBytes: Int
        public init(kind: String, value: Double, linearBytes: Int) { self.kind = kind; self.value = value; self.linearBytes = linearBytes }
        enum CodingKeys: String, CodingKey { case kind, value, linearBytes = "linear_bytes" }
    }

    public struct Measured: Codable, Sendable, Equatable {
        public var text: String
        public var chunks: Int
        public var ctx: Int
        public var ppl: Double
        public var kld: Double
        public var top1: Double
        public var weightMiB: Double
        public init(text: String, chunks: Int, ctx: Int, ppl: Double, kld: Double, top1: Double, weightMiB: Double) {
            self.text = text; self.chunks = chunks; self.ctx = ctx; self.ppl = ppl; self.kld = kld; self.top1 = top1; self.weightMiB = weightMiB
        }
        enum CodingKeys: String, CodingKey { case text, chunks, ctx, ppl, kld, top1, weightMiB = "weight_mib" }
    }

    public var format: String = WeightPlan.formatTag
    public var version: Int = WeightPlan.currentVersion
    public var name: String
    /// The model file's fingerprint (sha256) the plan was made for.
    public var modelFingerprint: String
    /// The scan file the KL values came from.
    public var scan: String
    public var budget: Budget
    /// Sum of the chosen tensors' scanned KL (nats; assumes the tensors' effects add).
    public var predictedKLSum: Double
    /// Linear tensors' bytes (outliers included), their element count and bits per weight.
    public var linearBytes: Int
    public var linearElements: Int
    public var bitsPerWeight: Double
    /// The whole model's weight bytes with this plan (embedding, norms as in the file).
    public var totalBytes: Int
    /// Byte grid of the knapsack and whether it rounded nothing (`BitAllocator`).
    public var grid: Int
    public var exact: Bool
    public var tensors: [Tensor]
    public var measured: Measured?

    public init(name: String, modelFingerprint: String, scan: String, budget: Budget, predictedKLSum: Double,
                linearBytes: Int, linearElements: Int, totalBytes: Int, grid: Int, exact: Bool, tensors: [Tensor]) {
        self.name = name; self.modelFingerprint = modelFingerprint; self.scan = scan; self.budget = budget
        self.predictedKLSum = predictedKLSum; self.linearBytes = linearBytes; self.linearElements = linearElements
        self.bitsPerWeight = linearElements == 0 ? 0 : Double(linearBytes * 8) / Double(linearElements)
        self.totalBytes = totalBytes; self.grid = grid; self.exact = exact; self.tensors = tensors
    }

    enum CodingKeys: String, CodingKey {
        case format, version, name, scan, budget, grid, exact, tensors, measured
        case modelFingerprint = "model_fingerprint", predictedKLSum = "predicted_kl_sum"
        case linearBytes = "linear_bytes", linearElements = "linear_elements", bitsPerWeight = "bits_per_weight"
        case totalBytes = "total_bytes"
    }

    /// The spec per tensor name, every spec parsed; throws on a bad spec or a repeated tensor.
    public func specs() throws -> [String: WeightSpec] {
        var out: [String: WeightSpec] = [:]
        for t in tensors {
            guard out[t.tensor] == nil else { throw WeightPlanFileError.repeatedTensor(t.tensor) }
            do { out[t.tensor] = try WeightSpec(parsing: t.spec) } catch {
                throw WeightPlanFileError.badSpec(tensor: t.tensor, reason: "\(error)")
            }
        }
        return out
    }

    /// Reads and checks a plan file: JSON of this type and version, parseable specs, and
    /// (when given) made for the model with `fingerprint`.
    public static func load(from url: URL, fingerprint: String? = nil) throws -> WeightPlan {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw WeightPlanFileError.unreadable(url.path) }
        let plan: WeightPlan
        do { plan = try JSONDecoder().decode(WeightPlan.self, from: data) } catch let e as DecodingError {
            throw WeightPlanFileError.malformed(url.path, Self.explain(e))
        } catch {
            throw WeightPlanFileError.malformed(url.path, "not JSON")
        }
        guard plan.format == formatTag else { throw WeightPlanFileError.malformed(url.path, "format is '\(plan.format)', not '\(formatTag)'") }
        guard plan.version == currentVersion else { throw WeightPlanFileError.malformed(url.path, "version \(plan.version) (this effterm reads \(currentVersion))") }
        _ = try plan.specs()
        if let fingerprint, plan.modelFingerprint != fingerprint {
            throw WeightPlanFileError.otherModel(plan: String(plan.modelFingerprint.prefix(12)), model: String(fingerprint.prefix(12)))
        }
        return plan
    }

    /// Writes the plan as pretty JSON (atomically).
    public func save(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try encoder.encode(self).write(to: url, options: .atomic)
    }

    private static func explain(_ e: DecodingError) -> String {
        func path(_ c: DecodingError.Context) -> String { c.codingPath.map(\.stringValue).joined(separator: ".") }
        switch e {
        case .keyNotFound(let k, let c): return "missing key '\(([path(c)] + [k.stringValue]).filter { !$0.isEmpty }.joined(separator: "."))'"
        case .typeMismatch(_, let c), .valueNotFound(_, let c): return "wrong type at '\(path(c))'"
        case .dataCorrupted(let c): return c.codingPath.isEmpty ? "not JSON" : "bad value at '\(path(c))'"
        @unknown default: return "\(e)"
        }
    }
}

/// Why a plan file was refused.
public enum WeightPlanFileError: Error, Equatable, CustomStringConvertible {
    case unreadable(String)
    case malformed(String, String)
    case badSpec(tensor: String, reason: String)
    case repeatedTensor(String)
    case otherModel(plan: String, model: String)

    public var description: String {
        switch self {
        case .unreadable(let p): return "cannot read the plan file \(p)"
        case .malformed(let p, let why): return "the plan file \(p) is not a weight plan: \(why)"
        case .badSpec(let t, let why): return "the plan's spec for \(t) is invalid: \(why)"
        case .repeatedTensor(let t): return "the plan names \(t) twice"
        case .otherModel(let p, let m): return "the plan was made for model \(p)..., not this one (\(m)...)"
        }
    }
}
