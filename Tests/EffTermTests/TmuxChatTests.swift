import EffTestSupport
import Foundation
import Testing

/// End-to-end: the release binary with the real model in a real terminal (tmux 120x40).
@Suite(.serialized, .enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
struct TmuxChatTests {
    static var themes: String { TestPaths.repoRoot.appendingPathComponent("Themes").path }

    func chatCommand(_ extra: String, sessions: String = "sessions") -> String {
        "EFFTERM_THEMES=\(shq(Self.themes)) XDG_CONFIG_HOME=$PWD/config \(shq(TestPaths.effterm.path)) chat "
            + "--model \(shq(TestPaths.model.path)) --sessions-dir \(sessions) --temp 0 \(extra) 2> stderr.txt; "
            + "stty -a > stty.txt; sleep 600"
    }

    func loadTranscript(_ dir: URL) throws -> [[String: Any]] {
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".jsonl") }
        guard files.count == 1 else { throw HarnessError("expected one transcript in \(dir.path), found \(files)") }
        let text = try String(contentsOf: dir.appendingPathComponent(files[0]), encoding: .utf8)
        return try text.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    func checkTerminalRestored(_ t: TmuxSession) throws {
        try t.waitForFile(t.dir.appendingPathComponent("stty.txt"), timeout: 30)
        let stty = try String(contentsOf: t.dir.appendingPathComponent("stty.txt"), encoding: .utf8)
        let flags = Set(stty.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == ";" }).map(String.init))
        for f in ["icanon", "echo", "isig", "icrnl", "opost", "ixon"] {
            #expect(flags.contains(f), "stty after exit lacks \(f):\n\(stty)")
        }
        #expect(t.paneVar("mouse_any_flag") == "0", "mouse tracking left on")
        #expect(t.paneVar("mouse_button_flag") == "0")
        #expect(t.paneVar("mouse_all_flag") == "0")
        #expect(t.paneVar("alternate_on") == "0", "alternate screen not left")
        #expect(t.paneVar("cursor_flag") == "1", "cursor hidden after exit")
    }

    @Test func chatStreamsOpensPanelsSavesAndQuits() throws {
        let t = try TmuxSession(name: "chat", command: chatCommand("--max-tokens 64 --stats"))
        defer { t.kill() }
        try t.waitFor("the chat screen", timeout: 120) { $0.contains("ask something") }
        // The first prompt of the greedy fixture: llama.cpp's greedy answer on this file starts
        // "Improving time management skills is a skill that can be developed ...".
        try t.type("How can I improve my time management skills?")
        try t.send("Enter")
        // The answer streams: text appears under "assistant" before the turn ends.
        try t.waitFor("streamed text", timeout: 120) { s in
            guard let r = s.range(of: "assistant") else { return false }
            return s[r.upperBound...].split(separator: "\n").dropFirst().contains { $0.contains("  ") && $0.count > 6 && $0.rangeOfCharacter(from: .letters) != nil }
        }
        // Key-to-screen latency while the answer streams, seen from outside: type a character
        // and poll the pane until it shows in the input line.
        var latencies: [Double] = []
        let keys = Array("qwertyuiop")
        for c in keys.map(String.init) {
            guard !t.capture().contains("tok · decode") else { break }
            let typed = String(keys.prefix(latencies.count + 1))
            let t0 = Date()
            try t.type(c)
            try t.waitFor("typed \(typed)", timeout: 5, every: 0.002) { $0.contains("> " + typed) }
            latencies.append(Date().timeIntervalSince(t0) * 1000)
        }
        try t.send("C-u")
        print("tmux key-to-screen while generating (ms): \(latencies.map { String(format: "%.1f", $0) })")
        #expect(!latencies.isEmpty, "the answer ended before any latency sample")
        let done = try t.waitFor("the answer's stats line", timeout: 180) { $0.contains("tok · decode") }
        if let line = done.split(separator: "\n").first(where: { $0.contains("tok · decode") }) {
            print("chat stats line: \(line.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "│ ")))")
        }
        #expect(done.range(of: #"decode [0-9.]+ tok/s"#, options: .regularExpression) != nil)
        // The --stats overlay covers part of the panels; its numbers also go to stderr at exit.
        try t.send("F12")
        try t.waitFor("stats overlay closed", timeout: 10) { !$0.contains("key→screen") }
        // Panels: attn shows measured heads, bits the real formats (bits is open at start).
        try t.send("F3")
        let attn = try t.waitFor("attn panel", timeout: 10) { $0.contains("of mass in") }
        #expect(attn.range(of: #"L0 H0: 95% of mass in [0-9]+% of keys"#, options: .regularExpression) != nil)
        try t.send("F2")
        let bits = try t.waitFor("bits panel", timeout: 10) { $0.contains("Q4_1×210") }
        #expect(bits.contains("total 92.1 MiB"))
        try t.send("F3")
        try t.waitFor("attn panel again", timeout: 10) { $0.contains("of mass in") }
        try t.send("F6")
        try t.send("Down")
        try t.waitFor("head selection", timeout: 10) { $0.contains("L1 H0") }
        try t.send("Escape")
        // Theme switch and save.
        try t.send("C-t")
        try t.waitFor("theme switch", timeout: 10) { $0.contains("theme ") }
        try t.send("C-s")
        let saved = try t.waitFor("save notice", timeout: 10) { $0.contains("saved ") }
        #expect(saved.contains(".jsonl"))
        try t.send("C-q")
        try checkTerminalRestored(t)
        let stderr = (try? String(contentsOf: t.dir.appendingPathComponent("stderr.txt"), encoding: .utf8)) ?? ""
        print("effterm --stats:\n\(stderr)")
        #expect(stderr.contains("key→screen generating: n="))
        let lines = try loadTranscript(t.dir.appendingPathComponent("sessions"))
        #expect(lines.count == 2)
        #expect(lines[0]["type"] as? String == "header")
        #expect((lines[0]["model_sha256"] as? String)?.count == 64)
        let turn = lines[1]
        let msgs = turn["messages"] as? [[String: String]] ?? []
        #expect(msgs.first?["content"] == "How can I improve my time management skills?")
        #expect(msgs.last?["role"] == "assistant")
        let answer = msgs.last?["content"] ?? ""
        #expect(answer.hasPrefix("Improving time management skills"), "greedy answer: \(answer)")
        let stats = turn["stats"] as? [String: Any] ?? [:]
        #expect((stats["generated_tokens"] as? Int ?? 0) > 0)
    }

    @Test func diffPanelDenoisesInTheTerminal() throws {
        let t = try TmuxSession(name: "diff", command: chatCommand(""))
        defer { t.kill() }
        try t.waitFor("the chat screen", timeout: 120) { $0.contains("ask something") }
        try t.send("F4")
        try t.waitFor("the diff panel", timeout: 30) { $0.contains("dpmpp2m 20 steps") }
        try t.send("F6")  // full screen: the panel takes its keys
        try t.send("g")
        // The real DiT runs 20 guided steps on the engine and reports its measured speed.
        let s = try t.waitFor("a finished image", timeout: 120) { $0.contains("done 20 steps") }
        #expect(s.contains("ms/image"))
        #expect(s.contains("▀"))  // the image, drawn with upper-half blocks
        try t.send("C-q")
        try checkTerminalRestored(t)
    }

    @Test func sigtermMidAnswerRestoresTerminalAndKeepsLastTurn() throws {
        let t = try TmuxSession(name: "term", command: chatCommand("--max-tokens 400"))
        defer { t.kill() }
        try t.waitFor("the chat screen", timeout: 120) { $0.contains("ask something") }
        try t.type("Say hello.")
        try t.send("Enter")
        try t.waitFor("first answer", timeout: 240) { $0.contains("tok · decode") || $0.contains(" tok · ") }
        try t.type("Write a long story about a dragon who learns to cook.")
        try t.send("Enter")
        try t.waitFor("second answer streaming", timeout: 120) { $0.contains("● ") }
        guard let pid = t.childPid() else { throw HarnessError("no effterm process in the pane") }
        Foundation.kill(pid, SIGTERM)
        try checkTerminalRestored(t)
        let lines = try loadTranscript(t.dir.appendingPathComponent("sessions"))
        #expect(lines.count >= 2)
        let first = lines[1]["messages"] as? [[String: String]] ?? []
        #expect(first.first?["content"] == "Say hello.")
        let firstAnswer = first.last?["content"] ?? ""
        #expect(!firstAnswer.isEmpty)
    }
}

/// Resuming a transcript with the real model, and the headless `sessions` commands on it.
@Suite(.serialized, .enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
struct TmuxResumeTests {
    @Test func resumeRebuildsCacheContinuesAndExports() throws {
        let header = #"{"created":"2026-01-01T00:00:00Z","effterm_version":"0.0.1","model_name":"other-model","model_sha256":"0000000000000000000000000000000000000000000000000000000000000000","sampler":{"max_tokens":64,"min_p":0.05,"repeat_penalty":1.1,"seed":7,"temperature":0,"top_k":40,"top_p":0.9},"seed":7,"template_hash":"x","type":"header"}"#
        let turn = #"{"index":0,"messages":[{"content":"My name is Ada. Remember it.","role":"user"},{"content":"Nice to meet you, Ada! I will remember your name.","role":"assistant"}],"stats":{"context_used":0,"decode_s":0,"decode_steps":0,"generated_tokens":12,"prefill_s":0,"prompt_tokens":0,"stop":"eos"},"techniques":{"attention":"dense","kv_cache":"f32","sot":"off","weights":"Q4_1"},"time":"2026-01-01T00:00:01Z","type":"turn"}"#
        let t = try TmuxSession(name: "resume", command:
            "mkdir -p sessions && printf '%s\\n%s\\n' \(shq(header)) \(shq(turn)) > sessions/old.jsonl && "
            + "XDG_CONFIG_HOME=$PWD/config \(shq(TestPaths.effterm.path)) chat --model \(shq(TestPaths.model.path)) "
            + "--sessions-dir sessions --temp 0 --max-tokens 24 --resume latest; stty -a > stty.txt; sleep 600")
        defer { t.kill() }
        // The old conversation is back, the cache was rebuilt from it, the model mismatch is flagged.
        let s = try t.waitFor("resumed session", timeout: 120) { $0.contains("tokens rebuilt") }
        #expect(s.contains("My name is Ada"))
        #expect(s.contains("transcript was made with other-model"))
        #expect(s.range(of: #"resumed old\.jsonl: 1 turns, [0-9]+ tokens rebuilt"#, options: .regularExpression) != nil)
        try t.type("What is my name?")
        try t.send("Enter")
        let done = try t.waitFor("second answer", timeout: 180) { $0.contains(" tok · ") }
        #expect(done.contains("What is my name?"))
        try t.send("C-q")
        try t.waitForFile(t.dir.appendingPathComponent("stty.txt"), timeout: 30)
        let text = try String(contentsOf: t.dir.appendingPathComponent("sessions/old.jsonl"), encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 3, "the new turn is appended to the resumed transcript")
        #expect(lines[2].contains("What is my name?"))
        #expect(lines[0].contains("\"seed\":7"), "the original header is kept")

        // Headless: list, show, export.
        let dir = t.dir.appendingPathComponent("sessions").path
        let list = try ProcessRunner.effterm(["sessions", "list", "--sessions-dir", dir, "--json"])
        #expect(list.status == 0)
        #expect(list.stdout.contains("\"turns\" : 2"))
        let show = try ProcessRunner.effterm(["sessions", "show", "latest", "--sessions-dir", dir])
        #expect(show.stdout.contains("## user\n\nWhat is my name?"))
        let md = t.dir.appendingPathComponent("out.md")
        let export = try ProcessRunner.effterm(["sessions", "export", "latest", "--sessions-dir", dir, "--markdown", md.path])
        #expect(export.status == 0, "\(export.stderr)")
        let exported = try String(contentsOf: md, encoding: .utf8)
        #expect(exported.contains("My name is Ada") && exported.contains("What is my name?"))
    }
}
