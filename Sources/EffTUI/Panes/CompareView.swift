import EffEngine
import Foundation

/// The A/B comparison over the chat: the last question answered by normal decoding and by
/// Skeleton-of-Thought, shown side by side as A and B. Which is which, and the timings,
/// stay hidden until the person votes (1 = A, 2 = B, 3 = tie, Esc = skip), so the verdict
/// judges the text; then both are revealed.
public struct CompareView: Sendable, Equatable {
    public enum Phase: Sendable, Equatable {
        case running, ready, recorded(CompareRecord), failed(String)
    }

    public private(set) var question: String
    public private(set) var modes: [String]
    public private(set) var texts = ["", ""]
    public private(set) var sides: [CompareSide?] = [nil, nil]
    public private(set) var phase: Phase = .running
    public var scroll = 0

    public init(question: String, modes: [String]) {
        self.question = question
        self.modes = modes
    }

    /// Applies an engine event; `.started` is handled by the owner (it creates the view).
    public mutating func apply(_ event: CompareEvent) {
        switch event {
        case .started(let q, let m):
            self = CompareView(question: q, modes: m)
        case .text(let side, let text):
            if texts.indices.contains(side) { texts[side] = text }
        case .sideDone(let side, let result):
            if sides.indices.contains(side) { sides[side] = result; texts[side] = result.answer }
        case .ready: phase = .ready
        case .failed(let why): phase = .failed(why)
        case .recorded(let record): phase = .recorded(record)
        }
    }

    public var isRevealed: Bool {
        if case .recorded = phase { return true }
        if case .failed = phase { return true }
        return false
    }

    /// Draws the comparison into `rect`.
    public func render(into g: inout CellGrid, rect: Rect, theme t: Theme) {
        let bg = t[.mainBg]
        let body = Style(fg: t[.mainFg], bg: bg), dim = Style(fg: t[.dimFg], bg: bg)
        let strong = Style(fg: t[.title], bg: bg, attrs: .bold)
        g.fill(rect, style: body)
        g.box(rect, style: Style(fg: t[.borderFocus], bg: bg), title: "A/B compare (blind)", titleStyle: strong)
        let inner = Rect(x: rect.x + 2, y: rect.y + 1, width: rect.width - 4, height: rect.height - 2)
        guard inner.width >= 10, inner.height >= 4 else { return }
        var y = inner.y
        for l in Wrap.wrap([Span("Q: " + question, Style(fg: t[.chatUserFg], bg: bg, attrs: .bold))], width: inner.width).prefix(2) {
            Wrap.draw(l, into: &g, x: inner.x, y: y, maxX: inner.maxX); y += 1
        }
        let footerRows = 2
        let colGap = 3
        let colW = (inner.width - colGap) / 2
        let top = y + 1
        let bottom = inner.maxY - footerRows
        let height = max(0, bottom - top - 1)
        for side in 0..<2 {
            let x = inner.x + side * (colW + colGap)
            let label = side == 0 ? "A" : "B"
            var head = label
            if isRevealed, let s = sides[side] {
                head += " = " + (s.mode == "sot" ? "SoT" : "normal")
                head += String(format: " · %.2f s · %d tok", s.seconds, s.tokens)
                if s.streams > 0 { head += " · B=\(s.streams)" }
            } else if sides[side] != nil {
                head += " · done"
            } else if phase == .running {
                head += " · running…"
            }
            g.put(head, x: x, y: top, style: strong, maxX: x + colW)
            guard phase != .running else {
                // Blind: no text until both sides are done (the way SoT grows gives it away).
                let n = texts[side].split(whereSeparator: \.isWhitespace).count
                if n > 0 || sides[side] != nil {
                    g.put("\(n) words so far", x: x, y: top + 2, style: dim, maxX: x + colW)
                }
                continue
            }
            let lines = MarkdownStyler(theme: t, base: body).style(texts[side]).flatMap { Wrap.wrap($0, width: colW) }
            let first = min(scroll, max(0, lines.count - height))
            for (row, line) in lines.dropFirst(first).prefix(height).enumerated() {
                Wrap.draw(line, into: &g, x: x, y: top + 2 + row, maxX: x + colW)
            }
        }
        if colGap > 0 {
            for row in top..<bottom { g.put("│", x: inner.x + colW + 1, y: row, style: dim) }
        }
        let footer: String
        switch phase {
        case .running: footer = "running normal decoding, then SoT, one after the other · Esc stops"
        case .ready:
            footer = "which is better?  1 = A  2 = B  3 = tie  Esc = skip" + (inner.width >= 90 ? "  (PgUp/PgDn scroll)" : "")
        case .recorded(let r):
            let pick = r.verdict == "skipped" ? "skipped" : r.verdict == "tie" ? "tie"
                : "\(r.verdict) (\(r.preferredMode == "sot" ? "SoT" : "normal")) better"
            footer = "verdict saved in the transcript: \(pick) · Esc or Enter closes"
        case .failed(let why): footer = why + " · Esc closes"
        }
        g.put(footer, x: inner.x, y: inner.maxY - 1, style: Style(fg: t[.statusKeyFg], bg: bg, attrs: .bold), maxX: inner.maxX)
    }
}
