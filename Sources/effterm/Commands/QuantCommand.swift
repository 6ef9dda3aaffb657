import ArgumentParser
import EffCore
import EffEngine
import EffLLM
import Foundation

/// `effterm quant`: mixed-precision weight tools (issue 11): sensitivity scan and bit allocation.
struct QuantCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quant",
        abstract: "Scan per-tensor quantization sensitivity and allocate bits under a budget.",
        subcommands: [QuantScanCommand.self, QuantPlanCommand.self]
    )
}

/// Where scans and plans live, and the model fingerprint they are keyed by.
enum QuantStore {
    /// Scans: `$XDG_CACHE_HOME/effterm/quant/<fingerprint prefix>/scan-<settings hash>.json`.
    static func scanDirectory(fingerprint: String) -> URL {
        XDGDirectories.current().cache.appendingPathComponent("quant", isDirectory: true)
            .appendingPathComponent(String(fingerprint.prefix(16)), isDirectory: true)
    }

    /// Plans: `$XDG_DATA_HOME/effterm/quant-plans/NAME.json`.
    static var planDirectory: URL {
        XDGDirectories.current().data.appendingPathComponent("quant-plans", isDirectory: true)
    }

    /// A plan given as a path (contains '/' or ends in .json) or as a name in the plan directory.
    static func planURL(_ nameOrPath: String) -> URL {
        if nameOrPath.contains("/") || nameOrPath.hasSuffix(".json") { return URL(fileURLWithPath: nameOrPath) }
        return planDirectory.appendingPathComponent(nameOrPath + ".json")
    }

    /// sha256 of the model file: the fingerprint scans and plans are keyed by.
    static func fingerprint(_ path: String) throws -> String {
        do { return try ModelStore.sha256(of: URL(fileURLWithPath: path)) } catch {
            throw ValidationErrorParagraph("cannot hash the model file \(path): \(error)")
        }
    }

    /// 64-bit FNV-1a, hex: names cache files after their settings.
    static func hash(_ bytes: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(format: "%016llx", h)
    }

    /// The newest full scan (KL measured for all `tensorCount` tensors) in the model's cache directory.
    static func newestFullScan(fingerprint: String, tensorCount: Int) -> URL? {
        let dir = scanDirectory(fingerprint: fingerprint)
        let files = (try? FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: [.contentModificationDateKey])) ?? []
        let dated = files.filter { $0.lastPathComponent.hasPrefix("scan-") && $0.pathExtension == "json" }.compactMap { url -> (URL, Date)? in
            guard let r = try? loadScan(url), r.measuredKL, Set(r.entries.map(\.tensor)).count >= tensorCount else { return nil }
            return (url, (try? url.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate) ?? .distantPast)
        }
        return dated.max { $0.1 < $1.1 }?.0
    }

    static func loadScan(_ url: URL) throws -> ScanReport {
        try JSONDecoder().decode(ScanReport.self, from: Data(contentsOf: url))
    }

    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return e
    }
}
