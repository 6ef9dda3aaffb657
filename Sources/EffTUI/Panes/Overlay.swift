import EffEngine
import Foundation

/// Overlays drawn over the panes: help, stats, too-small notice.
public enum Overlay {
    /// A centred box listing every binding, editor keys and the focused panel's keys.
    public static func help(into grid: inout CellGrid, keymap: Keymap, panelLines: [(key: String, text: String)], theme t: Theme) {
        var rows: [(String, String)] = Action.allCases.map { (keymap.keyNames($0), $0.summary) }
        rows += [("?", "help (when the input is empty)"), ("enter", "send"), ("alt-enter, ctrl-j", "new line"),
                 ("up/down", "history (first/last line)"), ("home/end, ctrl-a/e", "line start/end"),
                 ("ctrl-u/k/w", "delete to start/end, word")]
        rows += panelLines.map { ("panel " + $0.key, $0.text) }
        let keyW = min(24, rows.map { DisplayWidth.of($0.0) }.max() ?? 10)
        let textW = rows.map { DisplayWidth.of($0.1) }.max() ?? 20
        let w = min(grid.width - 2, keyW + textW + 5), h = min(grid.height - 2, rows.count + 2)
        guard w > 10, h > 3 else { return }
        let r = Rect(x: (grid.width - w) / 2, y: (grid.height - h) / 2, width: w, height: h)
        let bg = t[.helpBg]
        grid.fill(r, style: Style(fg: t[.helpFg], bg: bg))
        grid.box(r, style: Style(fg: t[.borderFocus], bg: bg), title: "keys (F1 or Esc closes)", titleStyle: Style(fg: t[.title], bg: bg, attrs: .bold))
        for (i, row) in rows.prefix(h - 2).enumerated() {
            grid.put(row.0, x: r.x + 2, y: r.y + 1 + i, style: Style(fg: t[.helpKeyFg], bg: bg, attrs: .bold), maxX: r.x + 2 + keyW)
            grid.put(row.1, x: r.x + 3 + keyW, y: r.y + 1 + i, style: Style(fg: t[.helpFg], bg: bg), maxX: r.maxX - 1)
        }
    }

    /// A small box of measured UI numbers in the bottom-right corner, its last row at `bottom`.
    public static func stats(into grid: inout CellGrid, lines: [String], theme t: Theme, bottom: Int) {
        let w = min(grid.width, (lines.map { DisplayWidth.of($0) }.max() ?? 10) + 4)
        let h = min(bottom + 1, lines.count + 2)
        let r = Rect(x: grid.width - w, y: bottom + 1 - h, width: w, height: h)
        let bg = t[.helpBg]
        grid.fill(r, style: Style(fg: t[.helpFg], bg: bg))
        grid.box(r, style: Style(fg: t[.borderFocus], bg: bg), title: "stats")
        for (i, l) in lines.enumerated() where i < r.height - 2 {
            grid.put(l, x: r.x + 2, y: r.y + 1 + i, style: Style(fg: t[.helpFg], bg: bg), maxX: r.maxX - 1)
        }
    }

    /// Minimum terminal size for the workbench.
    public static let minWidth = 40, minHeight = 10

    public static func tooSmall(into grid: inout CellGrid, theme t: Theme) {
        let style = Style(fg: t[.statusWarnFg], bg: t[.mainBg], attrs: .bold)
        grid.fill(Rect(x: 0, y: 0, width: grid.width, height: grid.height), style: style)
        let lines = ["terminal too small", "need \(minWidth)x\(minHeight)", "have \(grid.width)x\(grid.height)"]
        for (i, l) in lines.enumerated() {
            let x = max(0, (grid.width - DisplayWidth.of(l)) / 2)
            grid.put(l, x: x, y: max(0, grid.height / 2 - 1) + i, style: style)
        }
    }
}
