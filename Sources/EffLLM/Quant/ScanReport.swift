import EffCore
import Foundation

/// A finished sensitivity scan as stored in the cache (`$XDG_CACHE_HOME/effterm/quant/`) and
/// printed by `effterm quant scan --json`: the settings that identify it and every entry.
public struct ScanReport: Codable, Sendable, Equatable {
    public static let currentVersion = 1

    public var version: Int = ScanReport.currentVersion
    /// sha256 of the model file.
    public var modelFingerprint: String
    /// The calibration text's path and a hash of its calibration tokens.
    public var calibration: String
    public var calibrationHash: String
    public var chunks: Int
    public var ctx: Int
    public var candidates: [String]
    /// Formats scanned for the embedding / tied head (nil in scans made before it was scanned).
    public var embeddingCandidates: [String]?
    /// Whether KL was measured (false: proxy only).
    public var measuredKL: Bool
    public var entries: [SensitivityScan.Entry]
    /// Spearman's rho between proxy and KL over all entries (nil without KL).
    public var spearman: Double?
    public var referenceSeconds: Double
    public var seconds: Double

    public init(modelFingerprint: String, calibration: String, calibrationHash: String, chunks: Int, ctx: Int,
                candidates: [String], embeddingCandidates: [String]? = nil, measuredKL: Bool, entries: [SensitivityScan.Entry],
                referenceSeconds: Double, seconds: Double) {
        self.modelFingerprint = modelFingerprint; self.calibration = calibration; self.calibrationHash = calibrationHash
        self.chunks = chunks; self.ctx = ctx; self.candidates = candidates; self.embeddingCandidates = embeddingCandidates
        self.measuredKL = measuredKL
        self.entries = entries; self.referenceSeconds = referenceSeconds; self.seconds = seconds
        // The embedding's proxy is a plain weight error, not comparable with the linears'.
        let pairs = entries.filter { $0.role != .embd }.compactMap { e in e.kl.map { (e.proxy, $0) } }
        spearman = measuredKL ? RankCorrelation.spearman(pairs.map(\.0), pairs.map(\.1)) : nil
    }

    enum CodingKeys: String, CodingKey {
        case version, calibration, chunks, ctx, candidates, entries, spearman, seconds
        case modelFingerprint = "model_fingerprint", calibrationHash = "calibration_hash"
        case measuredKL = "measured_kl", referenceSeconds = "reference_seconds"
        case embeddingCandidates = "embedding_candidates"
    }

    /// The entries of one tensor, in candidate order.
    public func entries(for tensor: String) -> [SensitivityScan.Entry] { entries.filter { $0.tensor == tensor } }

    /// The plan minimizing the summed KL of `tensors` (all must be scanned with KL) within
    /// `linearBudget` bytes (`BitAllocator`). With `embeddingBytes` (the embedding's size as
    /// stored) and embedding entries in the scan, `token_embd.weight` is one more item, its
    /// stored format a zero-KL choice, and the budget covers it too (`otherBytes` then
    /// excludes it).
    public func plan(name: String, tensors: [LinearTensorID], linearBudget: Int, budgetKind: String, budgetValue: Double,
                     linearElements: Int, otherBytes: Int, scanPath: String, embeddingBytes: Int? = nil,
                     grid: Int? = nil) throws -> WeightPlan {
        var byTensor: [String: [SensitivityScan.Entry]] = [:]
        for e in entries { byTensor[e.tensor, default: []].append(e) }
        var items: [[BitAllocator.Choice]] = []
        var options: [[SensitivityScan.Entry]] = []
        for id in tensors {
            let es = byTensor[id.name] ?? []
            guard !es.isEmpty, es.allSatisfy({ $0.kl != nil }) else { throw ScanReportError.tensorNotScanned(id.name) }
            items.append(es.map { BitAllocator.Choice(bytes: $0.bytes, cost: $0.kl!) })
            options.append(es)
        }
        let embeddingName = LlamaWeights.TensorName.tokenEmbedding
        let embedding = (byTensor[embeddingName] ?? []).filter { $0.kl != nil }
        if let embeddingBytes, !embedding.isEmpty {
            let stored = SensitivityScan.Entry(tensor: embeddingName, layer: -1, role: .embd, spec: "file",
                                               bytes: embeddingBytes, kl: 0, proxy: 0)
            let es = [stored] + embedding
            items.append(es.map { BitAllocator.Choice(bytes: $0.bytes, cost: $0.kl!) })
            options.append(es)
        }
        let s = try BitAllocator.solve(items, budget: linearBudget, grid: grid)
        let chosen = zip(options, s.picks).map { $0[$1] }
        let linearBytes = chosen.filter { $0.role != .embd }.reduce(0) { $0 + $1.bytes }
        return WeightPlan(name: name, modelFingerprint: modelFingerprint, scan: scanPath,
                          budget: .init(kind: budgetKind, value: budgetValue, linearBytes: linearBudget),
                          predictedKLSum: s.cost, linearBytes: linearBytes, linearElements: linearElements,
                          totalBytes: s.bytes + otherBytes, grid: s.grid, exact: s.exact,
                          tensors: chosen.map { .init(tensor: $0.tensor, spec: $0.spec, bytes: $0.bytes, kl: $0.kl) })
    }
}

/// Why a scan cannot serve a plan.
public enum ScanReportError: Error, Equatable, CustomStringConvertible {
    case tensorNotScanned(String)

    public var description: String {
        switch self {
        case .tensorNotScanned(let t): return "the scan has no KL for \(t) (a plan needs a full scan with KL: effterm quant scan)"
        }
    }
}
