import Foundation

/// Where tests find the repository, the shared fixtures, the release binary and the model.
public enum TestPaths {
    /// The package root (the folder holding Package.swift).
    public static let repoRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // Sources/EffTestSupport/TestPaths.swift
        return url
    }()

    /// `../shared/fixtures` beside the checkout: llama.cpp's outputs on the same GGUF file.
    public static var fixtures: URL {
        if let dir = ProcessInfo.processInfo.environment["EFFTERM_FIXTURES"] {
            return URL(fileURLWithPath: dir)
        }
        return repoRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures")
    }

    /// The `effterm` executable built beside the running test bundle (same configuration).
    public static var effterm: URL {
        if let bin = ProcessInfo.processInfo.environment["EFFTERM_BIN"] {
            return URL(fileURLWithPath: bin)
        }
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = runner.deletingLastPathComponent()
        // On Darwin the runner sits inside an .xctest bundle; climb out of it.
        while dir.path.contains(".xctest") { dir.deleteLastPathComponent() }
        return dir.appendingPathComponent("effterm")
    }

    /// The SmolLM2 GGUF for the model tier: `EFFTERM_MODEL`, else the XDG cache location
    /// that `effterm models pull` writes. Model-tier tests fail (not skip) when it is absent.
    public static var model: URL {
        let env = ProcessInfo.processInfo.environment
        if let path = env["EFFTERM_MODEL"] { return URL(fileURLWithPath: path) }
        let cache = env["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return cache.appendingPathComponent("effterm/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    }
}
