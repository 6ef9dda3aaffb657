/// One terminal cell: a grapheme cluster and its style.
///
/// A double-width character occupies two cells: the first holds the character, the second is
/// a `continuation` cell that backends skip and text snapshots omit.
public struct Cell: Hashable, Sendable {
    public var char: Character
    public var style: Style
    /// True for the right half of a double-width character.
    public var isContinuation: Bool

    public init(_ char: Character = " ", style: Style = .plain, isContinuation: Bool = false) {
        self.char = char; self.style = style; self.isContinuation = isContinuation
    }

    public static let blank = Cell()
}

/// A rectangle of cells, in grid coordinates (x = column, y = row).
public struct Rect: Hashable, Sendable {
    public var x: Int, y: Int, width: Int, height: Int
    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x; self.y = y; self.width = max(0, width); self.height = max(0, height)
    }
    public var maxX: Int { x + width }
    public var maxY: Int { y + height }
    public var isEmpty: Bool { width <= 0 || height <= 0 }
    /// The rectangle shrunk by `n` cells on every side.
    public func inset(_ n: Int) -> Rect { Rect(x: x + n, y: y + n, width: width - 2 * n, height: height - 2 * n) }
}
