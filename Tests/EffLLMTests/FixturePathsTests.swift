import EffTestSupport
import Foundation
import Testing

/// The fidelity fixtures are vendored, so a clone with no `../shared` beside it has them;
/// extra directories only add files (or, for EFFTERM_FIXTURES, take precedence).
@Suite struct FixturePathsTests {
    @Test func vendoredFixturesArePresentAndUsed() throws {
        let names = ["tokenizer.jsonl", "chat-template.jsonl", "greedy.jsonl", "perplexity.json", "gpl-3.txt"]
        for name in names {
            let vendored = TestPaths.vendoredFixtures.appendingPathComponent(name)
            let data = try Data(contentsOf: vendored)
            #expect(data.count > 500, "\(name) looks truncated: \(data.count) bytes")
            // The merged directory serves the vendored copy (unless EFFTERM_FIXTURES overrides it).
            if ProcessInfo.processInfo.environment["EFFTERM_FIXTURES"] == nil {
                let merged = TestPaths.fixtures.appendingPathComponent(name)
                #expect(merged.resolvingSymlinksInPath().path == vendored.standardizedFileURL.resolvingSymlinksInPath().path)
                #expect(try Data(contentsOf: merged) == data)
            }
        }
    }

    @Test func laterLayersOnlyAddFiles() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("effterm-layers-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let first = root.appendingPathComponent("first"), second = root.appendingPathComponent("second")
        for d in [first, second] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
        try Data("first".utf8).write(to: first.appendingPathComponent("greedy.jsonl"))
        try Data("second".utf8).write(to: second.appendingPathComponent("greedy.jsonl"))
        try Data("extra".utf8).write(to: second.appendingPathComponent("extra.jsonl"))
        try Data("hidden".utf8).write(to: second.appendingPathComponent(".hidden"))
        let merged = root.appendingPathComponent("merged")
        let chosen = try TestPaths.mergeFixtures([first, second, root.appendingPathComponent("absent")], into: merged)
        #expect(Set(chosen.keys) == ["greedy.jsonl", "extra.jsonl"])
        #expect(try String(contentsOf: merged.appendingPathComponent("greedy.jsonl"), encoding: .utf8) == "first")
        #expect(try String(contentsOf: merged.appendingPathComponent("extra.jsonl"), encoding: .utf8) == "extra")
        #expect(!FileManager.default.fileExists(atPath: merged.appendingPathComponent(".hidden").path))
    }
}
