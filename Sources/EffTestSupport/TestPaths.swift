import Foundation

/// Where tests find the repository, the fixtures, the release binary and the model.
public enum TestPaths {
    /// The package root (the folder holding Package.swift).
    public static let repoRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // Sources/EffTestSupport/TestPaths.swift
        return url
    }()

    /// The fixtures vendored in the repository: llama.cpp's outputs on the same GGUF file
    /// (see Tests/Fixtures/llamacpp/README.md for their origin and how to regenerate them).
    public static var vendoredFixtures: URL {
        repoRoot.appendingPathComponent("Tests/Fixtures/llamacpp")
    }

    /// The fixture directory tests read: the vendored files, plus files of
    /// `../shared/fixtures` (beside the checkout, when present) that are not vendored, with
    /// `EFFTERM_FIXTURES=DIR`'s files taking precedence over both. Built once per process as
    /// a temporary directory of symbolic links, so relative names inside the files (such as
    /// perplexity.json's `text_file`) resolve within it.
    public static var fixtures: URL { mergedFixtures }

    /// The directories that make up `fixtures`, highest precedence first.
    public static func fixtureLayers(environment: [String: String] = ProcessInfo.processInfo.environment) -> [URL] {
        var layers: [URL] = []
        if let dir = environment["EFFTERM_FIXTURES"] { layers.append(URL(fileURLWithPath: dir)) }
        layers.append(vendoredFixtures)
        layers.append(repoRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures"))
        return layers
    }

    /// Links every regular file of `layers` into `directory` (the first layer holding a
    /// name wins). Returns the names linked and the layer each came from.
    @discardableResult
    public static func mergeFixtures(_ layers: [URL], into directory: URL) throws -> [String: URL] {
        let fm = FileManager.default
        try? fm.removeItem(at: directory)
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        var chosen: [String: URL] = [:]
        for layer in layers {
            guard let names = try? fm.contentsOfDirectory(atPath: layer.path) else { continue }
            for name in names.sorted() where !name.hasPrefix(".") && chosen[name] == nil {
                let source = layer.appendingPathComponent(name)
                var isDir: ObjCBool = false
                guard fm.fileExists(atPath: source.path, isDirectory: &isDir), !isDir.boolValue else { continue }
                try fm.createSymbolicLink(at: directory.appendingPathComponent(name),
                                          withDestinationURL: source.standardizedFileURL)
                chosen[name] = layer
            }
        }
        return chosen
    }

    private static let mergedFixtures: URL = {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("effterm-fixtures-\(getpid())-\(UInt32.random(in: 0...0xFFFFFF))")
        do {
            try mergeFixtures(fixtureLayers(), into: dir)
        } catch {
            // Fall back to the vendored folder alone; the tests then report what is missing.
            return vendoredFixtures
        }
        return dir
    }()

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
