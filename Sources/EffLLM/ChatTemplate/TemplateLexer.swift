/// Splits Jinja template source into text, `{{ }}` and `{% %}` segments with their
/// expression tokens, applying the whitespace rules chat templates are written for.
///
/// The environment matches what Hugging Face and llama.cpp use for chat templates:
/// `trim_blocks` (the first newline after `%}` or `#}` is dropped), `lstrip_blocks`
/// (spaces/tabs from the start of a line up to `{%` or `{#` are dropped),
/// `keep_trailing_newline = False` (one newline at the very end of the source is dropped),
/// plus the explicit `-` (strip all whitespace on that side) and `+` (disable the
/// automatic rule on that side) markers.
enum TemplateLexer {
    struct Token: Equatable {
        enum Kind: Equatable { case name, string, integer, op }
        var kind: Kind
        var text: String
        var pos: SourcePos
    }

    enum Segment: Equatable {
        case text(String)
        case output([Token], SourcePos)       // {{ ... }}
        case statement([Token], SourcePos)    // {% ... %}
    }

    private enum TagKind { case output, statement, comment }

    private enum Raw {
        case text(String, lineStarting: Bool)
        case tag(TagKind, [Token], SourcePos, leftMark: Unicode.Scalar?, rightMark: Unicode.Scalar?)
    }

    static func lex(_ source: String) throws -> [Segment] {
        var src = Array(source.unicodeScalars)
        if src.last == "\n" { src.removeLast(); if src.last == "\r" { src.removeLast() } }
        // Line starts, for positions.
        var lineStarts = [0]
        for (i, s) in src.enumerated() where s == "\n" { lineStarts.append(i + 1) }
        func pos(_ i: Int) -> SourcePos {
            var lo = 0, hi = lineStarts.count - 1
            while lo < hi { let mid = (lo + hi + 1) / 2; if lineStarts[mid] <= i { lo = mid } else { hi = mid - 1 } }
            return SourcePos(line: lo + 1, column: i - lineStarts[lo] + 1)
        }

        var raws: [Raw] = []
        var i = 0
        var textStart = 0
        var lineStarting = true
        func flushText(_ end: Int) {
            if end > textStart {
                raws.append(.text(String(String.UnicodeScalarView(src[textStart..<end])), lineStarting: lineStarting))
            }
        }
        while i < src.count {
            guard src[i] == "{", i + 1 < src.count, src[i + 1] == "{" || src[i + 1] == "%" || src[i + 1] == "#" else {
                i += 1; continue
            }
            let open = i
            flushText(open)
            let kind: TagKind = src[i + 1] == "{" ? .output : src[i + 1] == "%" ? .statement : .comment
            i += 2
            var leftMark: Unicode.Scalar? = nil
            if i < src.count, src[i] == "-" || src[i] == "+" { leftMark = src[i]; i += 1 }
            var tokens: [Token] = []
            var rightMark: Unicode.Scalar? = nil
            if kind == .comment {
                guard let close = find(["#", "}"], in: src, from: i) else {
                    let p = pos(open)
                    throw ChatTemplateError.syntax(message: "comment '{#' is never closed", line: p.line, column: p.column)
                }
                if close > i, src[close - 1] == "-" || src[close - 1] == "+" { rightMark = src[close - 1] }
                i = close + 2
            } else {
                let closer: Unicode.Scalar = kind == .output ? "}" : "%"
                (tokens, rightMark, i) = try lexTag(src, from: i, closer: closer, open: open, pos: pos)
            }
            // trim_blocks: drop one newline after a statement or comment (unless marked).
            var consumedNewline = false
            if kind != .output && rightMark == nil {
                if i < src.count, src[i] == "\n" { i += 1; consumedNewline = true }
                else if i + 1 < src.count, src[i] == "\r", src[i + 1] == "\n" { i += 2; consumedNewline = true }
            }
            raws.append(.tag(kind, tokens, pos(open), leftMark: leftMark, rightMark: rightMark))
            textStart = i
            lineStarting = consumedNewline
        }
        flushText(src.count)
        return applyWhitespace(raws)
    }

    /// Applies `-`, `+`, lstrip_blocks to the text around tags; drops comments.
    private static func applyWhitespace(_ raws: [Raw]) -> [Segment] {
        var texts: [String?] = raws.map { if case .text(let t, _) = $0 { return t } else { return nil } }
        for (k, raw) in raws.enumerated() {
            guard case .tag(let kind, _, _, let leftMark, let rightMark) = raw else { continue }
            if k > 0, var prev = texts[k - 1], case .text(_, let lineStarting) = raws[k - 1] {
                if leftMark == "-" {
                    while let last = prev.unicodeScalars.last, last.properties.isWhitespace { prev.unicodeScalars.removeLast() }
                } else if leftMark == nil && kind != .output {
                    // lstrip_blocks: only spaces/tabs between the line start and the tag.
                    let scalars = Array(prev.unicodeScalars)
                    let lineStart = (scalars.lastIndex(of: "\n").map { $0 + 1 }) ?? (lineStarting ? 0 : nil)
                    if let ls = lineStart, scalars[ls...].allSatisfy({ $0 == " " || $0 == "\t" }) {
                        prev = String(String.UnicodeScalarView(scalars[..<ls]))
                    }
                }
                texts[k - 1] = prev
            }
            if rightMark == "-", k + 1 < raws.count, var next = texts[k + 1] {
                while let first = next.unicodeScalars.first, first.properties.isWhitespace { next.unicodeScalars.removeFirst() }
                texts[k + 1] = next
            }
        }
        var segments: [Segment] = []
        for (k, raw) in raws.enumerated() {
            switch raw {
            case .text:
                let t = texts[k]!.replacingCRLF()
                if !t.isEmpty { segments.append(.text(t)) }
            case .tag(.output, let tokens, let p, _, _): segments.append(.output(tokens, p))
            case .tag(.statement, let tokens, let p, _, _): segments.append(.statement(tokens, p))
            case .tag(.comment, _, _, _, _): break
            }
        }
        return segments
    }

    private static func find(_ pair: [Unicode.Scalar], in src: [Unicode.Scalar], from: Int) -> Int? {
        var i = from
        while i + 1 < src.count {
            if src[i] == pair[0] && src[i + 1] == pair[1] { return i }
            i += 1
        }
        return nil
    }

    /// Lexes expression tokens up to the closing `}}` / `%}` (optionally `-`/`+` marked).
    private static func lexTag(_ src: [Unicode.Scalar], from start: Int, closer: Unicode.Scalar, open: Int,
                               pos: (Int) -> SourcePos) throws -> ([Token], Unicode.Scalar?, Int) {
        var tokens: [Token] = []
        var i = start
        func isClose(_ at: Int) -> Bool { at + 1 < src.count && src[at] == closer && src[at + 1] == "}" }
        while true {
            while i < src.count, src[i].properties.isWhitespace { i += 1 }
            guard i < src.count else {
                let p = pos(open)
                throw ChatTemplateError.syntax(message: "tag opened here is never closed", line: p.line, column: p.column)
            }
            if isClose(i) { return (tokens, nil, i + 2) }
            if (src[i] == "-" || src[i] == "+"), isClose(i + 1) { return (tokens, src[i], i + 3) }
            let c = src[i]
            let p = pos(i)
            if c == "'" || c == "\"" {
                var value = String.UnicodeScalarView()
                var j = i + 1
                while j < src.count, src[j] != c {
                    if src[j] == "\\", j + 1 < src.count {
                        j += 1
                        switch src[j] {
                        case "n": value.append("\n")
                        case "t": value.append("\t")
                        case "r": value.append("\r")
                        case "0": value.append("\0")
                        default: value.append(src[j])     // \\ \' \" and unknown escapes
                        }
                    } else {
                        value.append(src[j])
                    }
                    j += 1
                }
                guard j < src.count else {
                    throw ChatTemplateError.syntax(message: "string literal is never closed", line: p.line, column: p.column)
                }
                tokens.append(Token(kind: .string, text: String(value), pos: p))
                i = j + 1
            } else if c.properties.numericType == .decimal && c.isASCII {
                var j = i
                while j < src.count, src[j].isASCII, ("0"..."9").contains(src[j]) { j += 1 }
                if j < src.count, src[j] == ".", j + 1 < src.count, ("0"..."9").contains(src[j + 1]) {
                    throw ChatTemplateError.unsupported(construct: "float literal", line: p.line, column: p.column)
                }
                tokens.append(Token(kind: .integer, text: String(String.UnicodeScalarView(src[i..<j])), pos: p))
                i = j
            } else if c == "_" || (c.isASCII && c.properties.isAlphabetic) {
                var j = i
                while j < src.count, src[j] == "_" || (src[j].isASCII && (src[j].properties.isAlphabetic || ("0"..."9").contains(src[j]))) { j += 1 }
                tokens.append(Token(kind: .name, text: String(String.UnicodeScalarView(src[i..<j])), pos: p))
                i = j
            } else {
                let two = i + 1 < src.count ? String(String.UnicodeScalarView([c, src[i + 1]])) : ""
                if ["==", "!=", "<=", ">=", "//", "**"].contains(two) {
                    tokens.append(Token(kind: .op, text: two, pos: p)); i += 2
                } else if "+-*/%~<>()[].,:|=".unicodeScalars.contains(c) {
                    tokens.append(Token(kind: .op, text: String(c), pos: p)); i += 1
                } else if c == "{" || c == "}" {
                    throw ChatTemplateError.unsupported(construct: "dict literal '{...}'", line: p.line, column: p.column)
                } else {
                    throw ChatTemplateError.syntax(message: "unexpected character '\(c)'", line: p.line, column: p.column)
                }
            }
        }
    }
}

private extension String {
    /// Jinja normalizes template newlines to "\n".
    func replacingCRLF() -> String {
        guard unicodeScalars.contains("\r") else { return self }
        var out = String.UnicodeScalarView()
        var it = unicodeScalars.makeIterator()
        var pending = it.next()
        while let s = pending {
            pending = it.next()
            if s == "\r" {
                out.append("\n")
                if pending == "\n" { pending = it.next() }
            } else {
                out.append(s)
            }
        }
        return String(out)
    }
}
