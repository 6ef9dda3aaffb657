import EffTestSupport
import Foundation
import Testing

/// Issue 14, durability end to end: `kill -9` of the real chat in the middle of an answer
/// keeps every completed turn on disk, and `--resume latest` continues that file, also when
/// its last line was cut off.
@Suite(.serialized, .enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
struct TmuxDurabilityTests {
    func chat(_ sessions: URL, _ extra: String) -> String {
        "XDG_CONFIG_HOME=$PWD/config \(shq(TestPaths.effterm.path)) chat --model \(shq(TestPaths.model.path)) "
            + "--sessions-dir \(shq(sessions.path)) --temp 0 \(extra); sleep 600"
    }

    func transcriptLines(_ dir: URL) throws -> (URL, [String]) {
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".jsonl") && !$0.hasPrefix(".") }
        guard files.count == 1 else { throw HarnessError("expected one transcript in \(dir.path), found \(files)") }
        let url = dir.appendingPathComponent(files[0])
        return (url, try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(String.init))
    }

    @Test func killNineMidAnswerKeepsCompletedTurnsAndResumes() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("effterm-kill9-\(UUID().uuidString)")
        let sessions = root.appendingPathComponent("sessions")
        try FileManager.default.createDirectory(at: sessions, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }

        let t = try TmuxSession(name: "kill9", command: chat(sessions, "--max-tokens 200"))
        defer { t.kill() }
        try t.waitFor("the chat screen", timeout: 120) { $0.contains("ask something") }
        try t.type("Say hello in one short sentence.")
        try t.send("Enter")
        try t.waitFor("the first answer's stats", timeout: 180) { $0.contains(" tok · ") }
        // The first turn is on disk as soon as its answer ends.
        let (file, afterFirst) = try transcriptLines(sessions)
        #expect(afterFirst.count == 2)
        try t.type("Write a long story about a dragon who learns to cook, with many details.")
        try t.send("Enter")
        try t.waitFor("the second answer streaming", timeout: 120) {
            $0.range(of: #"● [1-9][0-9]* tok"#, options: .regularExpression) != nil
        }
        let pid = try #require(t.childPid(), "no chat process")
        #expect(Foundation.kill(pid, SIGKILL) == 0)
        var waited = 0
        while Foundation.kill(pid, 0) == 0 && waited < 200 { Thread.sleep(forTimeInterval: 0.05); waited += 1 }

        // Every completed turn is there, byte for byte; the killed answer is not.
        let (same, afterKill) = try transcriptLines(sessions)
        #expect(same == file)
        #expect(afterKill == afterFirst, "the transcript changed when the chat was killed mid-answer")

        // Cut the file mid-line too (a crash of a copy, say): resume still works and says so.
        let cutLine = String(afterKill[1].prefix(afterKill[1].utf8.count / 2))
        try Data((afterKill.joined(separator: "\n") + "\n" + cutLine).utf8).write(to: file)

        let r = try TmuxSession(name: "kill9r", command: chat(sessions, "--max-tokens 16 --resume latest"))
        defer { r.kill() }
        // The chat pane keeps both notices (the status bar flashes each only for a while).
        let s = try r.waitFor("the resumed session and its note", timeout: 120) {
            $0.contains("1 turns") && $0.contains("cut off mid-write")
        }
        #expect(s.contains("Say hello in one short sentence."))
        #expect(s.range(of: #"resumed \S+\.jsonl: 1 turns"#, options: .regularExpression) != nil, "\(s)")
        #expect(s.contains("line 3 ("), "the note names the cut line:\n\(s)")
        #expect(FileManager.default.fileExists(atPath: file.path + ".cut"))
        try r.type("And in French?")
        try r.send("Enter")
        var final: [String] = []
        let deadline = Date().addingTimeInterval(180)
        while Date() < deadline {
            final = try transcriptLines(sessions).1
            if final.last?.contains("And in French?") == true { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        try r.send("C-q")
        #expect(final.count == 3, "header, the kept turn and the new one")
        #expect(final.prefix(2) == afterFirst.prefix(2))
        #expect(final.last?.contains("And in French?") == true)
    }
}
