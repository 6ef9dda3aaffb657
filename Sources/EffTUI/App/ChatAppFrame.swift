import EffEngine
import Foundation

extension ChatApp {
    /// Renders the whole screen from the current state and `snapshot`; returns the grid and
    /// the cursor position (nil hides it). Pure with respect to the terminal.
    public func frame(snapshot: ChatSnapshot) -> (CellGrid, (x: Int, y: Int)?) {
        let (w, h) = screen.size
        let base = Style(fg: theme[.mainFg], bg: theme[.mainBg])
        var g = CellGrid(width: w, height: h, fill: Cell(" ", style: base))
        guard w >= Overlay.minWidth, h >= Overlay.minHeight else {
            Overlay.tooSmall(into: &g, theme: theme)
            return (g, nil)
        }
        // Bottom up: status (2 rows, 3 with SoT), input (separator + 1-5 rows), then the main area.
        let statusY = h - StatusBar.height(for: snapshot)
        StatusBar.render(into: &g, y: statusY, width: w, snapshot: snapshot, theme: theme,
                         notice: notice.map { ($0.text, $0.isWarning) }, keymap: keymap)
        let promptW = 2
        let lay = editor.layout(width: w - promptW - 1)
        let maxRows = max(1, min(5, (h - 2) / 4))
        let rows = min(maxRows, lay.rows.count)
        let firstRow = max(0, min(lay.cursorRow - rows + 1, lay.rows.count - rows))
        let inputY = statusY - rows
        let sepY = inputY - 1
        let inputStyle = Style(fg: theme[.inputFg], bg: theme[.inputBg])
        g.fill(Rect(x: 0, y: inputY, width: w, height: rows), style: inputStyle)
        g.put(String(repeating: "─", count: w), x: 0, y: sepY, style: Style(fg: theme[.border], bg: theme[.mainBg]))
        let hint = snapshot.isGenerating ? " Esc stops " : " Enter send · Alt-Enter newline "
        if w > 50 { g.put(hint, x: w - DisplayWidth.of(hint) - 1, y: sepY, style: Style(fg: theme[.dimFg], bg: theme[.mainBg])) }
        for i in 0..<rows {
            let prompt = i + firstRow == 0 ? "> " : "  "
            g.put(prompt, x: 0, y: inputY + i, style: Style(fg: theme[.inputPromptFg], bg: theme[.inputBg], attrs: .bold))
            g.put(lay.rows[firstRow + i], x: promptW, y: inputY + i, style: inputStyle, maxX: w - 1)
        }
        if editor.isEmpty && !snapshot.isGenerating {
            g.put("ask something… (F1 or ? for keys)", x: promptW, y: inputY, style: Style(fg: theme[.dimFg], bg: theme[.inputBg]), maxX: w - 1)
        }
        var cursor: (x: Int, y: Int)? = (promptW + lay.cursorCol, inputY + lay.cursorRow - firstRow)

        // Main area: chat and/or panel.
        let main = Rect(x: 0, y: 0, width: w, height: sepY)
        let panel = currentPanel
        if let panel, isPanelFullScreen {
            drawPanel(panel, into: &g, rect: main, snapshot: snapshot, focused: fullPanel)
            if fullPanel { cursor = nil }
        } else if let panel, !isNarrow {
            let pw = min(60, max(40, w * 2 / 5))
            drawChat(into: &g, rect: Rect(x: 0, y: 0, width: w - pw, height: main.height), snapshot: snapshot)
            drawPanel(panel, into: &g, rect: Rect(x: w - pw, y: 0, width: pw, height: main.height), snapshot: snapshot, focused: false)
        } else {
            drawChat(into: &g, rect: main, snapshot: snapshot)
        }
        if let compare = compareView {
            compare.render(into: &g, rect: main, theme: theme)
            cursor = nil
        }
        if showStats {
            var lines = latency.lines
            lines.append("colours \(screen.colorDepth.rawValue), theme \(theme.name), \(w)x\(h)")
            Overlay.stats(into: &g, lines: lines, theme: theme, bottom: sepY - 1)
        }
        if showHelp {
            Overlay.help(into: &g, keymap: keymap, panelLines: currentPanel?.helpLines ?? [], theme: theme)
            cursor = nil
        }
        return (g, cursor)
    }

    func drawChat(into g: inout CellGrid, rect: Rect, snapshot: ChatSnapshot) {
        let title = snapshot.sessionFile.map { "chat · " + URL(fileURLWithPath: $0).lastPathComponent } ?? "chat"
        g.box(rect, style: Style(fg: theme[.border], bg: theme[.mainBg]), title: title,
              titleStyle: Style(fg: theme[.title], bg: theme[.mainBg], attrs: .bold))
        let inner = Rect(x: rect.x + 2, y: rect.y + 1, width: rect.width - 4, height: rect.height - 2)
        chatPageHeight = inner.height
        let lines = chatLines(width: inner.width)
        let r = ChatPane.render(lines, into: &g, rect: inner, scroll: scroll, theme: theme)
        scroll = r.scroll
    }

    /// Display lines of the whole log, re-wrapping only entries that changed.
    func chatLines(width: Int) -> [StyledLine] {
        var out: [StyledLine] = []
        for (i, e) in log.entries.enumerated() {
            let sot = e.sot.map { "\($0.points.count)|\($0.fallbackReason != nil)" } ?? "-"
            let key = "\(width)|\(theme.name)|\(e.finished)|\(e.text.utf8.count)|\(e.stats != nil)|\(i == 0)|\(sot)"
            let lines: [StyledLine]
            if let c = lineCache[i], c.key == key { lines = c.lines }
            else {
                lines = ChatPane.lines(entries: [e], width: width, theme: theme)
                lineCache[i] = (key, lines)
            }
            if !out.isEmpty, e.kind != .notice(isWarning: true), e.kind != .notice(isWarning: false) { out.append([]) }
            out += lines
        }
        if lineCache.count > log.entries.count { lineCache = lineCache.filter { $0.key < log.entries.count } }
        return out
    }

    func drawPanel(_ panel: Panel, into g: inout CellGrid, rect: Rect, snapshot: ChatSnapshot, focused: Bool) {
        g.box(rect, style: Style(fg: focused ? theme[.borderFocus] : theme[.border], bg: theme[.mainBg]))
        // Tabs on the top border: the active panel highlighted.
        var x = rect.x + 2
        for (i, p) in panels.enumerated() {
            let active = i == panelIndex
            let st = active ? Style(fg: theme[.selectedFg], bg: theme[.selectedBg], attrs: .bold)
                            : Style(fg: theme[.dimFg], bg: theme[.mainBg])
            x = g.put(" \(p.id) ", x: x, y: rect.y, style: st, maxX: rect.maxX - 1)
            x += 1
        }
        let inner = Rect(x: rect.x + 2, y: rect.y + 1, width: rect.width - 4, height: rect.height - 2)
        panel.render(into: &g, rect: inner, context: PanelContext(chat: snapshot, theme: theme, focused: focused))
    }
}
