/// A place frames are shown and keys come from: the real terminal (ncurses) or memory.
public protocol Screen: AnyObject {
    /// Columns and rows right now.
    var size: (width: Int, height: Int) { get }
    /// What colours the terminal can show.
    var colorDepth: ColorDepth { get }
    /// Shows `grid`, writing only the cells that changed since the last frame, and places
    /// the cursor (hidden when nil).
    func present(_ grid: CellGrid, cursor: (x: Int, y: Int)?)
    /// Forgets what is on screen so the next `present` repaints everything.
    func invalidate()
    /// The next input event, waiting at most `timeoutMs` (0 = poll).
    func readKey(timeoutMs: Int) -> KeyEvent?
    /// Puts the terminal back as it was. Idempotent.
    func restore()
}

/// An in-memory screen for tests: frames land in `grid`, keys come from `keys`.
public final class MemoryScreen: Screen {
    public var width: Int, height: Int
    public var colorDepth: ColorDepth
    public private(set) var grid: CellGrid
    public private(set) var cursor: (x: Int, y: Int)?
    public var keys: [KeyEvent] = []
    /// Cells written by the last present (to check that unchanged cells are skipped).
    public private(set) var lastWriteCount = 0
    public private(set) var restored = 0
    private var shown: CellGrid?

    public init(width: Int, height: Int, colorDepth: ColorDepth = .truecolor) {
        self.width = width; self.height = height; self.colorDepth = colorDepth
        grid = CellGrid(width: width, height: height)
    }

    public var size: (width: Int, height: Int) { (width, height) }

    public func present(_ frame: CellGrid, cursor: (x: Int, y: Int)?) {
        let changed = frame.changedIndices(since: shown)
        lastWriteCount = changed.count
        grid = frame
        shown = frame
        self.cursor = cursor
    }

    public func invalidate() { shown = nil }

    public func readKey(timeoutMs: Int) -> KeyEvent? { keys.isEmpty ? nil : keys.removeFirst() }

    public func restore() { restored += 1 }
}
