import EffEngine
import Testing
@testable import EffTUI

/// Styles are not visible in text snapshots, so these check the cells' attributes directly.
@Suite struct ChatPaneStyleTests {
    func grid(_ answer: String, width: Int = 40) -> CellGrid {
        var log = ChatLog()
        log.apply(.userMessage("q"))
        log.apply(.text(answer))
        let lines = ChatPane.lines(log, width: width, theme: .builtin)
        var g = CellGrid(width: width, height: lines.count)
        ChatPane.render(lines, into: &g, rect: Rect(x: 0, y: 0, width: width, height: lines.count), scroll: 0, theme: .builtin)
        return g
    }

    func find(_ g: CellGrid, _ s: String) -> (Int, Int)? {
        let rows = g.text().split(separator: "\n", omittingEmptySubsequences: false)
        for (y, row) in rows.enumerated() {
            if let r = row.range(of: s) { return (DisplayWidth.of(row[..<r.lowerBound]), y) }
        }
        return nil
    }

    @Test func markdownStyles() throws {
        let g = grid("# Title\nsome **bold** and `code`\n- item\n```\nlet x = 1\n```")
        let t = Theme.builtin
        let (hx, hy) = try #require(find(g, "Title"))
        #expect(g[hx, hy].style.attrs.contains(.bold))
        #expect(g[hx, hy].style.fg == t[.chatHeadingFg])
        let (bx, by) = try #require(find(g, "bold"))
        #expect(g[bx, by].style.attrs.contains(.bold) && g[bx, by].style.fg == t[.chatBoldFg])
        #expect(!g[bx - 2, by].style.attrs.contains(.bold))          // the space before is plain
        let (cx, cy) = try #require(find(g, "code"))
        #expect(g[cx, cy].style.fg == t[.chatCodeFg])
        #expect(!g.text().contains("**") && !g.text().contains("`code`"))
        let (ix, iy) = try #require(find(g, "• item"))
        #expect(g[ix, iy].style.fg == t[.chatListFg])
        let (kx, ky) = try #require(find(g, "let x = 1"))
        #expect(g[kx, ky].style.bg == t[.chatCodeBg])
    }

    @Test func wrapsByDisplayWidthWithoutSplittingWideChars() {
        // 12 CJK characters (24 columns) in a 16-column pane: 2-column indent leaves 14.
        let g = grid(String(repeating: "漢", count: 12), width: 16)
        let rows = g.text().split(separator: "\n").filter { $0.contains("漢") }
        #expect(rows.count == 2)
        #expect(rows.allSatisfy { DisplayWidth.of($0) <= 16 })
        #expect(rows[0] == "  " + String(repeating: "漢", count: 7))
    }

    @Test func streamingCursorShowsUntilFinished() {
        var log = ChatLog()
        log.apply(.userMessage("q"))
        log.apply(.text("partial"))
        #expect(ChatPane.lines(log, width: 30, theme: .builtin).contains { $0.contains { $0.text == " ▍" } })
        var s = TurnStats(); s.stopReason = .cancelled; s.generatedTokens = 3
        log.apply(.answerFinished(s))
        let lines = ChatPane.lines(log, width: 40, theme: .builtin)
        #expect(!lines.contains { $0.contains { $0.text == " ▍" } })
        #expect(lines.last?.map(\.text).joined().contains("3 tok · stopped") == true)
    }
}
