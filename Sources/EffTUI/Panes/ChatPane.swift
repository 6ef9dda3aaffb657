import EffEngine
import Foundation

/// Renders the conversation: role labels, Markdown-styled answers wrapped by display width,
/// a per-answer stats line, and a scroll position counted in lines from the bottom.
public struct ChatPane {
    public init() {}

    /// All display lines of the log at `width` columns.
    public static func lines(_ log: ChatLog, width: Int, theme: Theme) -> [StyledLine] {
        lines(entries: log.entries, width: width, theme: theme)
    }

    /// Display lines of some log entries (a blank line between messages).
    public static func lines(entries: [ChatLog.Entry], width: Int, theme: Theme) -> [StyledLine] {
        let bg = theme[.mainBg]
        let body = Style(fg: theme[.mainFg], bg: bg)
        var out: [StyledLine] = []
        let textWidth = max(1, width - 2)
        for e in entries {
            switch e.kind {
            case .notice(let warn):
                let st = Style(fg: warn ? theme[.statusWarnFg] : theme[.chatNoticeFg], bg: bg, attrs: .italic)
                for l in Wrap.wrap([Span("· " + e.text, st)], width: width, indent: 2, indentStyle: st) { out.append(l) }
                continue
            case .user, .system, .assistant: break
            }
            if !out.isEmpty { out.append([]) }
            let (label, fg): (String, ThemeKey) = e.kind == .user ? ("you", .chatUserFg)
                : e.kind == .system ? ("system", .chatSystemFg) : ("assistant", .chatAssistantFg)
            var header: StyledLine = [Span(label, Style(fg: theme[fg], bg: bg, attrs: .bold))]
            if let view = e.sot { header.append(Span(" · " + sotLabel(view, finished: e.finished), Style(fg: theme[.dimFg], bg: bg))) }
            if e.kind == .assistant && !e.finished { header.append(Span(" ▍", Style(fg: theme[.dimFg], bg: bg))) }
            out.append(header)
            let styled: [[Span]] = e.kind == .assistant
                ? MarkdownStyler(theme: theme, base: body).style(e.text)
                : e.text.split(separator: "\n", omittingEmptySubsequences: false)
                    .map { [Span(String($0), Style(fg: e.kind == .user ? theme[.mainFg] : theme[.chatSystemFg], bg: bg))] }
            for spans in styled {
                for l in Wrap.wrap(spans, width: textWidth) {
                    out.append([Span("  ", Style(bg: bg))] + l)
                }
            }
            if e.kind == .assistant, let s = e.stats {
                out.append([Span("  " + statsLine(s), Style(fg: theme[.dimFg], bg: bg))])
            }
        }
        return out
    }

    /// "SoT skeleton…", "SoT: 5 points expanding at once", "SoT: 5 points", "SoT fell back: ...".
    static func sotLabel(_ v: SoTAnswerView, finished: Bool) -> String {
        if let reason = v.fallbackReason { return "SoT fell back to normal decoding: \(reason)" }
        if v.isSkeletonStage { return finished ? "SoT skeleton (stopped)" : "SoT skeleton…" }
        return finished ? "SoT: \(v.points.count) points" : "SoT: \(v.points.count) points expanding at once"
    }

    /// "42 tok · decode 31.2 tok/s · prefill 250 tok/s (18 tok) · stopped".
    public static func statsLine(_ s: TurnStats) -> String {
        var parts = ["\(s.generatedTokens) tok"]
        if let d = s.decodeTokensPerSecond { parts.append(String(format: "decode %.1f tok/s", d)) }
        if let p = s.prefillTokensPerSecond { parts.append(String(format: "prefill %.0f tok/s (%d tok)", p, s.promptTokens)) }
        switch s.stopReason {
        case .endOfTurn: break
        case .cancelled: parts.append("stopped")
        case .maxTokens: parts.append("max tokens")
        case .contextFull: parts.append("context full")
        case .failed: parts.append("failed")
        }
        return parts.joined(separator: " · ")
    }

    /// Draws the visible window; `scroll` = lines hidden below the bottom. Returns the
    /// clamped scroll and the total line count.
    @discardableResult
    public static func render(_ lines: [StyledLine], into grid: inout CellGrid, rect: Rect,
                              scroll: Int, theme: Theme) -> (scroll: Int, total: Int) {
        grid.fill(rect, style: Style(fg: theme[.mainFg], bg: theme[.mainBg]))
        guard !rect.isEmpty else { return (0, lines.count) }
        let maxScroll = max(0, lines.count - rect.height)
        let s = min(max(0, scroll), maxScroll)
        let first = max(0, lines.count - rect.height - s)
        let visible = lines[first..<min(lines.count, first + rect.height)]
        for (row, line) in visible.enumerated() {
            Wrap.draw(line, into: &grid, x: rect.x, y: rect.y + row, maxX: rect.maxX)
        }
        if s > 0, rect.width > 12 {
            let tag = " ↓ \(s) more "
            grid.put(tag, x: rect.maxX - DisplayWidth.of(tag), y: rect.maxY - 1,
                     style: Style(fg: theme[.selectedFg], bg: theme[.selectedBg]))
        }
        return (s, lines.count)
    }
}
