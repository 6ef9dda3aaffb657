import Foundation
import Testing
@testable import EffEngine

@Suite struct SessionStoreTests {
    @Test func malformedLinesNameFileAndLine() throws {
        let good = Transcript(header: TranscriptHeader(modelName: "m", modelSHA256: "s", templateHash: "h",
                                                       sampler: GenerationSettings(), system: "sys"))
        var data = try good.jsonLines()
        data.append(Data("{\"type\":\"turn\",\"index\":0}\n".utf8))
        #expect(throws: TranscriptError.malformed(file: "x.jsonl", line: 2, reason: "missing key \"time\"")) {
            try Transcript.parse(data, file: "x.jsonl")
        }
        #expect(throws: TranscriptError.empty(file: "e")) { try Transcript.parse(Data(), file: "e") }
        do {
            _ = try Transcript.parse(Data("not json\n".utf8), file: "bad")
            Issue.record("expected an error")
        } catch let e as TranscriptError {
            #expect(e.description.hasPrefix("bad:1: not JSON"))
        }
    }

    @Test func roundTripAndMarkdownAndLatest() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("effterm-ss-\(UUID().uuidString)")
        let store = SessionStore(directory: dir)
        var settings = GenerationSettings(); settings.sampler.seed = 99
        await store.begin(TranscriptHeader(modelName: "SmolLM2", modelSHA256: "abc", templateHash: "th",
                                           sampler: settings, system: nil))
        var stats = TurnStats(); stats.generatedTokens = 11; stats.decodeSeconds = 0.5
        let url = try await store.append(TranscriptTurn(index: 0, messages: [
            TurnMessage(role: "user", content: "Why?"), TurnMessage(role: "assistant", content: "**Because**")],
            techniques: TechniqueConfig(), stats: stats))
        let lines = String(decoding: try Data(contentsOf: url), as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[0].contains("\"effterm_version\":\"\(EffTermVersion.string)\""))
        #expect(lines[0].contains("\"model_sha256\":\"abc\""))
        #expect(lines[0].contains("\"seed\":99"))
        #expect(lines[1].contains("\"decode_s\":0.5"))
        let t = try SessionStore.load(url)
        #expect(t.header.sampler.sampler.seed == 99)
        #expect(t.markdown().contains("## assistant\n\n**Because**"))
        #expect(t.markdown().contains("decode 20.0 tok/s"))
        #expect(try SessionStore.resolve("latest", in: dir) == url)
        // No temp files left behind.
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(names == [url.lastPathComponent])
    }

    @Test func defaultDirectoryPrefersLocalSessionsFolder() throws {
        let cwd = FileManager.default.temporaryDirectory.appendingPathComponent("effterm-cwd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: cwd, withIntermediateDirectories: true)
        let xdg = SessionStore.defaultDirectory(environment: ["XDG_DATA_HOME": "/x/data"], cwd: cwd.path)
        #expect(xdg.path == "/x/data/effterm/sessions")
        try FileManager.default.createDirectory(at: cwd.appendingPathComponent("Sessions"), withIntermediateDirectories: true)
        let local = SessionStore.defaultDirectory(environment: ["XDG_DATA_HOME": "/x/data"], cwd: cwd.path)
        #expect(local.lastPathComponent == "Sessions")
    }
}
