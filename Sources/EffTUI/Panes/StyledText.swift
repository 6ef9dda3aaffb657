/// A run of text in one style.
public struct Span: Equatable, Sendable {
    public var text: String
    public var style: Style
    public init(_ text: String, _ style: Style) { self.text = text; self.style = style }
}

/// A display line: spans that fit the width they were wrapped to.
public typealias StyledLine = [Span]

/// Word wrapping of styled text by display width (CJK and emoji count two columns).
public enum Wrap {
    /// Wraps `spans` (one logical line) to `width`, breaking at spaces where possible and
    /// inside long words otherwise; continuation lines start with `indent` spaces.
    public static func wrap(_ spans: [Span], width: Int, indent: Int = 0, indentStyle: Style = .plain) -> [StyledLine] {
        let w = max(1, width)
        // Flatten to (character, style) so breaks can fall anywhere.
        var cells: [(Character, Style, Int)] = []
        for s in spans { for ch in s.text { let cw = DisplayWidth.of(ch); cells.append((ch, s.style, cw)) } }
        var lines: [StyledLine] = []
        var start = 0
        var first = true
        while true {
            let avail = first ? w : max(1, w - indent)
            var col = 0, i = start, lastSpace = -1
            while i < cells.count {
                let cw = cells[i].2
                if col + cw > avail { break }
                if cells[i].0 == " " { lastSpace = i }
                col += cw; i += 1
            }
            var end = i
            var next = i
            if i < cells.count {
                if cells[i].0 == " " { next = i + 1 }
                else if lastSpace > start { end = lastSpace; next = lastSpace + 1 }
                else if end == start { end = start + 1; next = end }   // a cell wider than the line
            }
            var line: StyledLine = []
            if !first && indent > 0 { line.append(Span(String(repeating: " ", count: indent), indentStyle)) }
            for j in start..<end {
                let (ch, st, _) = cells[j]
                if let lastIdx = line.indices.last, line[lastIdx].style == st { line[lastIdx].text.append(ch) }
                else { line.append(Span(String(ch), st)) }
            }
            lines.append(line)
            if next >= cells.count { break }
            start = next
            first = false
        }
        return lines
    }

    /// Draws a styled line at (x, y), clipped to `maxX`; returns the end column.
    @discardableResult
    public static func draw(_ line: StyledLine, into grid: inout CellGrid, x: Int, y: Int, maxX: Int) -> Int {
        var cx = x
        for s in line { cx = grid.put(s.text, x: cx, y: y, style: s.style, maxX: maxX) }
        return cx
    }
}

/// Light Markdown styling for answers: headings, **bold**, `inline code`, fenced code
/// blocks and list markers. Enough to read model output comfortably; not a full parser.
public struct MarkdownStyler {
    public let theme: Theme
    public let base: Style
    public init(theme: Theme, base: Style) { self.theme = theme; self.base = base }

    /// Styles a whole message; returns one span list per source line.
    public func style(_ text: String) -> [[Span]] {
        var out: [[Span]] = []
        var inFence = false
        let codeStyle = Style(fg: theme[.chatCodeFg], bg: theme[.chatCodeBg])
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("```") {
                inFence.toggle()
                out.append([Span(line, Style(fg: theme[.dimFg], bg: base.bg))])
                continue
            }
            if inFence { out.append([Span(line.isEmpty ? " " : line, codeStyle)]); continue }
            if trimmed.hasPrefix("#") {
                let body = trimmed.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces)
                out.append([Span(body, Style(fg: theme[.chatHeadingFg], bg: base.bg, attrs: .bold))])
                continue
            }
            var spans: [Span] = []
            var rest = Substring(line)
            let lead = rest.prefix { $0 == " " }
            let afterLead = rest.dropFirst(lead.count)
            if afterLead.hasPrefix("- ") || afterLead.hasPrefix("* ") || afterLead.hasPrefix("+ ") {
                spans.append(Span(String(lead) + "• ", Style(fg: theme[.chatListFg], bg: base.bg, attrs: .bold)))
                rest = afterLead.dropFirst(2)
            } else if let dot = afterLead.firstIndex(of: "."), afterLead[..<dot].allSatisfy(\.isNumber),
                      !afterLead[..<dot].isEmpty, afterLead[afterLead.index(after: dot)...].hasPrefix(" ") {
                let marker = afterLead[...dot]
                spans.append(Span(String(lead) + marker + " ", Style(fg: theme[.chatListFg], bg: base.bg, attrs: .bold)))
                rest = afterLead[afterLead.index(dot, offsetBy: 2)...]
            }
            spans += inline(rest, codeStyle: codeStyle)
            out.append(spans)
        }
        return out
    }

    /// `**bold**` and `` `code` `` within a line.
    func inline(_ s: Substring, codeStyle: Style) -> [Span] {
        var spans: [Span] = []
        var cur = ""
        var bold = false, code = false
        var i = s.startIndex
        func flush() {
            guard !cur.isEmpty else { return }
            let st = code ? codeStyle : bold ? Style(fg: theme[.chatBoldFg], bg: base.bg, attrs: .bold) : base
            spans.append(Span(cur, st)); cur = ""
        }
        while i < s.endIndex {
            let c = s[i]
            if c == "`" { flush(); code.toggle(); i = s.index(after: i); continue }
            if !code, c == "*", s.index(after: i) < s.endIndex, s[s.index(after: i)] == "*" {
                flush(); bold.toggle(); i = s.index(i, offsetBy: 2); continue
            }
            cur.append(c); i = s.index(after: i)
        }
        flush()
        return spans
    }
}
