/// A width x height array of cells that panes draw into; the screen backends blit it.
///
/// Drawing clips to the grid (and to an optional clip rectangle), so panes never have to
/// check bounds. `text()` turns the grid into plain lines for snapshot tests.
public struct CellGrid: Hashable, Sendable {
    public private(set) var width: Int
    public private(set) var height: Int
    /// Row-major cells: `cells[y * width + x]`.
    public private(set) var cells: [Cell]

    public init(width: Int, height: Int, fill: Cell = .blank) {
        self.width = max(0, width)
        self.height = max(0, height)
        self.cells = Array(repeating: fill, count: self.width * self.height)
    }

    public subscript(x: Int, y: Int) -> Cell {
        get { cells[y * width + x] }
        set { cells[y * width + x] = newValue }
    }

    /// Whether (x, y) lies inside the grid.
    @inline(__always)
    public func contains(_ x: Int, _ y: Int) -> Bool { x >= 0 && y >= 0 && x < width && y < height }

    /// Fills a rectangle with one character and style.
    public mutating func fill(_ rect: Rect, char: Character = " ", style: Style) {
        let x0 = max(0, rect.x), x1 = min(width, rect.maxX)
        let y0 = max(0, rect.y), y1 = min(height, rect.maxY)
        guard x0 < x1, y0 < y1 else { return }
        for y in y0..<y1 { for x in x0..<x1 { cells[y * width + x] = Cell(char, style: style) } }
    }

    /// Writes `text` from (x, y) on one row, clipped at `maxX` (exclusive; default the grid
    /// edge). Double-width characters that would straddle the clip edge are replaced by a
    /// space. Control characters are skipped. Returns the column after the last cell written.
    @discardableResult
    public mutating func put(_ text: some StringProtocol, x: Int, y: Int, style: Style,
                             maxX: Int? = nil) -> Int {
        guard y >= 0, y < height else { return x }
        let limit = min(width, maxX ?? width)
        var cx = x
        for ch in text {
            if cx >= limit { break }
            let w = DisplayWidth.of(ch)
            if w == 0 { continue }
            if cx < 0 { cx += w; continue }
            if w == 2 && cx + 1 >= limit {
                setCell(cx, y, Cell(" ", style: style)); cx += 1; break
            }
            setCell(cx, y, Cell(ch, style: style))
            if w == 2 { setCell(cx + 1, y, Cell(" ", style: style, isContinuation: true)) }
            cx += w
        }
        return cx
    }

    /// Sets one cell, repairing any double-width character it splits.
    public mutating func setCell(_ x: Int, _ y: Int, _ cell: Cell) {
        guard contains(x, y) else { return }
        let i = y * width + x
        // Overwriting half of a wide character blanks its other half.
        if cells[i].isContinuation, x > 0, !cell.isContinuation {
            cells[i - 1] = Cell(" ", style: cells[i - 1].style)
        }
        if !cells[i].isContinuation, x + 1 < width, cells[i + 1].isContinuation,
           DisplayWidth.of(cells[i].char) == 2 {
            cells[i + 1] = Cell(" ", style: cells[i + 1].style)
        }
        cells[i] = cell
    }

    /// Draws a single-line box border with an optional title on the top edge.
    public mutating func box(_ rect: Rect, style: Style, title: String? = nil, titleStyle: Style? = nil) {
        guard rect.width >= 2, rect.height >= 2 else { return }
        let x1 = rect.maxX - 1, y1 = rect.maxY - 1
        for x in rect.x + 1..<x1 {
            setCell(x, rect.y, Cell("─", style: style)); setCell(x, y1, Cell("─", style: style))
        }
        for y in rect.y + 1..<y1 {
            setCell(rect.x, y, Cell("│", style: style)); setCell(x1, y, Cell("│", style: style))
        }
        setCell(rect.x, rect.y, Cell("┌", style: style)); setCell(x1, rect.y, Cell("┐", style: style))
        setCell(rect.x, y1, Cell("└", style: style)); setCell(x1, y1, Cell("┘", style: style))
        if let title, rect.width > 4 {
            put(" \(title) ", x: rect.x + 1, y: rect.y, style: titleStyle ?? style, maxX: x1)
        }
    }

    /// The grid as plain text, one line per row, trailing spaces trimmed (for snapshots).
    public func text() -> String {
        var lines: [String] = []
        lines.reserveCapacity(height)
        for y in 0..<height {
            var line = ""
            for x in 0..<width {
                let c = cells[y * width + x]
                if !c.isContinuation { line.append(c.char) }
            }
            while line.last == " " { line.removeLast() }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// Indices of cells that differ from `previous` (all of them when the sizes differ).
    public func changedIndices(since previous: CellGrid?) -> [Int] {
        guard let previous, previous.width == width, previous.height == height else {
            return Array(cells.indices)
        }
        var out: [Int] = []
        for i in cells.indices where cells[i] != previous.cells[i] { out.append(i) }
        return out
    }
}
