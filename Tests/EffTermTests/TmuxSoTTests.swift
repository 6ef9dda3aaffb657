import EffTestSupport
import Foundation
import Testing

/// End-to-end Skeleton-of-Thought with the real model in a real terminal: the skeleton
/// appears, then several points grow at the same time, the status row reports the stages,
/// and the blind A/B comparison stores the verdict in the transcript.
@Suite(.serialized, .enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
struct TmuxSoTTests {
    /// Text of each numbered point in the chat column (left `width` columns), by index.
    static func points(_ screen: String, width: Int) -> [Int: String] {
        var out: [Int: String] = [:]
        var current: Int?
        for raw in screen.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw.prefix(width)).trimmingCharacters(in: CharacterSet(charactersIn: "│ "))
            if line.isEmpty || line.hasPrefix("you") || line.hasPrefix("assistant") || line.hasPrefix("└") {
                current = nil; continue
            }
            if let m = line.range(of: #"^[0-9]+\. "#, options: .regularExpression),
               let n = Int(line[m].dropLast(2)) {
                current = n
                out[n] = String(line[m.upperBound...])
            } else if let c = current {
                out[c, default: ""] += " " + line
            }
        }
        return out
    }

    @Test func pointsGrowTogetherThenCompareStoresTheVerdict() throws {
        let chat = TmuxChatTests()
        let t = try TmuxSession(name: "sot", command: chat.chatCommand("--sot on --max-tokens 96"))
        defer { t.kill() }
        try t.waitFor("the chat screen", timeout: 120) { $0.contains("ask something") }
        try t.send("Tab"); try t.send("Tab"); try t.send("Tab")   // close the side panel: the chat gets 120 columns
        try t.waitFor("SoT row", timeout: 10) { $0.contains("SoT on │") }
        try t.type("What are some tips for staying healthy?")
        try t.send("Enter")
        try t.waitFor("the skeleton stage", timeout: 120) { $0.contains("SoT skeleton") || $0.contains("points expanding") }

        // Poll the pane while the points expand: at least once, two or more points must have
        // grown between consecutive captures (they decode in one batch, a token each per step).
        var previous: [Int: String] = [:]
        var grewTogether = 0
        var sawExpanding = false
        let deadline = Date().addingTimeInterval(180)
        while Date() < deadline {
            let s = t.capture()
            if s.contains("points expanding at once") {
                sawExpanding = true
                let now = Self.points(s, width: 120)
                let grown = now.filter { k, v in v.count > (previous[k]?.count ?? 0) && previous[k] != nil }
                if grown.count >= 2 { grewTogether += 1 }
                previous = now
            } else if sawExpanding || s.contains("vs normal ≈") {
                break
            }
            Thread.sleep(forTimeInterval: 0.005)
        }
        print("SoT e2e: captures where >= 2 points grew together: \(grewTogether)")
        #expect(sawExpanding, "never saw the expansion stage")
        #expect(grewTogether >= 1, "no capture showed two points growing at once")
        let done = try t.waitFor("the SoT summary", timeout: 180) { $0.contains("vs normal ≈") }
        #expect(done.range(of: #"skeleton [0-9]+ ms │ expansion [0-9]+ ms │ r\(B\) [0-9.]+"#, options: .regularExpression) != nil)
        let final = Self.points(done, width: 120)
        #expect(final.count >= 2, "fewer than two points in the answer:\n\(done)")

        // A/B: both runs, blind, vote B, reveal (once the engine is idle: the input hint is back).
        try t.waitFor("idle", timeout: 60) { $0.contains("ask something") }
        try t.send("F8")
        try t.waitFor("the compare view", timeout: 20) { $0.contains("A/B compare (blind)") }
        let ready = try t.waitFor("both answers", timeout: 300) { $0.contains("which is better?") }
        #expect(!ready.contains("= SoT"), "the modes must stay hidden before the vote")
        try t.type("2")
        let revealed = try t.waitFor("the reveal", timeout: 20) { $0.contains("verdict saved in the transcript") }
        #expect(revealed.contains("= SoT ·") && revealed.contains("= normal ·"))
        try t.send("Escape")
        try t.waitFor("compare closed", timeout: 10) { !$0.contains("A/B compare (blind)") }
        try t.send("F7")
        try t.waitFor("auto mode", timeout: 10) { $0.contains("SoT auto │") }
        try t.send("C-q")
        try chat.checkTerminalRestored(t)

        let lines = try chat.loadTranscript(t.dir.appendingPathComponent("sessions"))
        let turn = try #require(lines.first { $0["type"] as? String == "turn" })
        let sot = try #require(turn["sot"] as? [String: Any])
        #expect(sot["used_sot"] as? Bool == true && sot["mode"] as? String == "on")
        let points = try #require(sot["points"] as? [[String: Any]])
        #expect(points.count >= 2 && sot["streams"] as? Int == points.count)
        #expect((sot["skeleton"] as? String)?.hasPrefix("1.") == true)
        #expect(sot["skeleton_s"] as? Double ?? 0 > 0 && sot["expansion_s"] as? Double ?? 0 > 0)
        let compare = try #require(lines.first { $0["type"] as? String == "compare" })
        #expect(compare["verdict"] as? String == "B")
        let sides = try #require(compare["sides"] as? [[String: Any]])
        #expect(Set(sides.compactMap { $0["mode"] as? String }) == ["normal", "sot"])
    }
}
