/// The chat input: a multi-line text buffer with a cursor and a history of sent messages.
///
/// Enter sends; Alt+Enter or Ctrl+J inserts a newline; Up/Down move between lines and, on
/// the first/last line, through history; a paste is inserted whole (newlines kept).
public struct LineEditor: Sendable, Equatable {
    public private(set) var chars: [Character] = []
    public private(set) var cursor = 0
    public private(set) var history: [String] = []
    private var historyIndex: Int?
    private var draft: [Character] = []

    public init(history: [String] = []) { self.history = history }

    public var text: String { String(chars) }
    public var isEmpty: Bool { chars.isEmpty }

    /// What an edit key did.
    public enum Outcome: Equatable { case edited, submitted(String), ignored }

    public mutating func handle(_ key: KeyEvent) -> Outcome {
        switch key {
        case .char(let c): insert(String(c))
        case .paste(let s): insert(s)
        case .altEnter, .ctrl("j"): insert("\n")
        case .enter:
            let t = text
            guard !t.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return .ignored }
            if history.last != t { history.append(t) }
            historyIndex = nil
            chars.removeAll(); cursor = 0
            return .submitted(t)
        case .backspace:
            guard cursor > 0 else { return .ignored }
            chars.remove(at: cursor - 1); cursor -= 1
        case .delete, .ctrl("d"):
            guard cursor < chars.count else { return .ignored }
            chars.remove(at: cursor)
        case .left: cursor = max(0, cursor - 1)
        case .right: cursor = min(chars.count, cursor + 1)
        case .home, .ctrl("a"): cursor = lineStart(cursor)
        case .end, .ctrl("e"): cursor = lineEnd(cursor)
        case .ctrl("u"):
            let s = lineStart(cursor); chars.removeSubrange(s..<cursor); cursor = s
        case .ctrl("k"):
            let e = lineEnd(cursor); chars.removeSubrange(cursor..<e)
        case .ctrl("w"):
            var s = cursor
            while s > 0, chars[s - 1] == " " { s -= 1 }
            while s > 0, chars[s - 1] != " ", chars[s - 1] != "\n" { s -= 1 }
            chars.removeSubrange(s..<cursor); cursor = s
        case .up:
            let s = lineStart(cursor)
            if s > 0 {
                let col = cursor - s
                let prevStart = lineStart(s - 1)
                cursor = min(prevStart + col, s - 1)
            } else { return recall(-1) }
        case .down:
            let e = lineEnd(cursor)
            if e < chars.count {
                let col = cursor - lineStart(cursor)
                let nextEnd = lineEnd(e + 1)
                cursor = min(e + 1 + col, nextEnd)
            } else { return recall(1) }
        default: return .ignored
        }
        return .edited
    }

    public mutating func insert(_ s: String) {
        let new = Array(s.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n"))
            .filter { $0 == "\n" || !($0.asciiValue.map { $0 < 32 || $0 == 127 } ?? false) }
            .map { $0 == "\t" ? " " : $0 }
        chars.insert(contentsOf: new, at: cursor)
        cursor += new.count
    }

    public mutating func clear() { chars.removeAll(); cursor = 0; historyIndex = nil }

    private mutating func recall(_ step: Int) -> Outcome {
        guard !history.isEmpty else { return .ignored }
        if historyIndex == nil {
            guard step < 0 else { return .ignored }
            draft = chars
            historyIndex = history.count - 1
        } else {
            let n = historyIndex! + step
            if n < 0 { return .ignored }
            if n >= history.count {
                historyIndex = nil; chars = draft; cursor = chars.count; return .edited
            }
            historyIndex = n
        }
        chars = Array(history[historyIndex!]); cursor = chars.count
        return .edited
    }

    private func lineStart(_ i: Int) -> Int {
        var s = i
        while s > 0, chars[s - 1] != "\n" { s -= 1 }
        return s
    }

    private func lineEnd(_ i: Int) -> Int {
        var e = i
        while e < chars.count, chars[e] != "\n" { e += 1 }
        return e
    }

    /// The buffer wrapped to `width` columns: rows of text and the cursor's (row, column).
    public func layout(width: Int) -> (rows: [String], cursorRow: Int, cursorCol: Int) {
        let w = max(1, width)
        var rows: [String] = [""]
        var col = 0
        var cRow = 0, cCol = 0
        for (i, ch) in chars.enumerated() {
            if i == cursor { cRow = rows.count - 1; cCol = col }
            if ch == "\n" { rows.append(""); col = 0; continue }
            let cw = max(1, DisplayWidth.of(ch))
            if col + cw > w { rows.append(""); col = 0; if i == cursor { cRow = rows.count - 1; cCol = 0 } }
            rows[rows.count - 1].append(ch)
            col += cw
        }
        if cursor == chars.count {
            if col >= w { rows.append(""); col = 0 }
            cRow = rows.count - 1; cCol = col
        }
        return (rows, cRow, cCol)
    }
}
