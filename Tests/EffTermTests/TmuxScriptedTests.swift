import EffTestSupport
import Foundation
import Testing

/// Terminal-safety checks that need no model: the binary's hidden scripted backend streams a
/// fixed answer slowly, so signals land mid-answer. Complements TmuxChatTests.
@Suite(.serialized) struct TmuxScriptedTests {
    func command(_ answer: String, extra: String = "") -> String {
        "XDG_CONFIG_HOME=$PWD/config \(shq(TestPaths.effterm.path)) chat --sessions-dir sessions "
            + "--scripted-backend \(shq(answer)) \(extra); stty -a > stty.txt; sleep 600"
    }

    func restored(_ t: TmuxSession) throws -> Set<String> {
        try t.waitForFile(t.dir.appendingPathComponent("stty.txt"), timeout: 20)
        let stty = try String(contentsOf: t.dir.appendingPathComponent("stty.txt"), encoding: .utf8)
        #expect(t.paneVar("mouse_any_flag") == "0")
        #expect(t.paneVar("alternate_on") == "0")
        #expect(t.paneVar("cursor_flag") == "1")
        return Set(stty.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == ";" }).map(String.init))
    }

    @Test(arguments: [SIGTERM, SIGHUP, SIGINT, SIGSEGV, SIGABRT])
    func signalRestoresTerminal(sig: Int32) throws {
        let words = Array(repeating: "word", count: 400).joined(separator: " ")
        let t = try TmuxSession(name: "sig\(sig)", command: command(words))
        defer { t.kill() }
        try t.waitFor("chat screen", timeout: 30) { $0.contains("ask something") }
        try t.type("go"); try t.send("Enter")
        try t.waitFor("streaming", timeout: 30) { $0.contains("● ") }
        guard let pid = t.childPid() else { throw HarnessError("no child") }
        kill(pid, sig)
        let flags = try restored(t)
        for f in ["icanon", "echo", "isig", "icrnl"] { #expect(flags.contains(f), "signal \(sig): lacks \(f)") }
    }

    @Test func resizeRedrawsAndTooSmallShowsNotice() throws {
        let t = try TmuxSession(name: "resize", command: command("hi"))
        defer { t.kill() }
        try t.waitFor("chat screen", timeout: 30) { $0.contains("ask something") }
        try t.tmux(["resize-window", "-t", "t", "-x", "30", "-y", "8"])
        try t.waitFor("too-small notice", timeout: 10) { $0.contains("terminal too small") }
        try t.tmux(["resize-window", "-t", "t", "-x", "90", "-y", "30"])
        let s = try t.waitFor("redraw at 90x30", timeout: 10) { $0.contains("ask something") }
        #expect(s.split(separator: "\n").contains { $0.hasPrefix("┌ chat") && $0.count == 90 })
        try t.send("C-q")
        _ = try restored(t)
    }
}
