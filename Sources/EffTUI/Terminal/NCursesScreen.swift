import CNCursesW
import Foundation

/// The ncurses backend: the only file that talks to curses.
///
/// Frames are diffed against the previous one and only changed cells are written (ncurses
/// then diffs once more against the physical screen). Each frame is wrapped in synchronized
/// output (DEC mode 2026) where the terminal advertises it, so the terminal never paints a
/// half-drawn frame. Colours map to what the terminal can show: direct colour when the
/// terminfo entry is a `-direct` one, else the 256-colour palette, else the 8 ANSI colours.
public final class NCursesScreen: Screen {
    public let colorDepth: ColorDepth
    private var shown: CellGrid?
    private var pairs: [PairKey: Int32] = [:]
    private var nextPair: Int32 = 1
    private let maxPairs: Int32
    private let directColor: Bool
    private let synchronized: Bool
    private var decoder = KeyDecoder()
    private var queued: [KeyEvent] = []
    private var active = true
    private let mouse: Bool

    private struct PairKey: Hashable { let fg: Int32; let bg: Int32 }

    /// Initializes the terminal (locale, raw mode, keypad, colours, mouse, bracketed paste).
    /// `forceDepth` overrides detection.
    public init(mouse: Bool = true, forceDepth: ColorDepth? = nil) {
        setlocale(LC_ALL, "")
        let env = ProcessInfo.processInfo.environment
        let wantsTrue = ["truecolor", "24bit"].contains(env["COLORTERM"]?.lowercased() ?? "")
        if wantsTrue || forceDepth == .truecolor, let term = env["TERM"], !term.hasSuffix("-direct"),
           let base = term.split(separator: "-").first {
            // Prefer a direct-colour terminfo entry when one is installed (xterm-direct, ...).
            let candidate = "\(base)-direct"
            if setupterm_ok(candidate) { setenv("TERM", candidate, 1) }
        }
        set_escdelay(25)
        initscr()
        raw()
        noecho()
        nonl()
        keypad(effterm_stdscr(), true)
        curs_set(0)
        var colors: Int32 = 0
        if has_colors() {
            start_color()
            use_default_colors()
            colors = COLORS
        }
        maxPairs = has_colors() ? COLOR_PAIRS : 0
        directColor = colors >= 0x1000000
        if let forceDepth { colorDepth = forceDepth == .truecolor && !directColor ? .palette256 : forceDepth }
        else if directColor { colorDepth = .truecolor }
        else if colors >= 256 { colorDepth = .palette256 }
        else { colorDepth = .ansi8 }
        self.mouse = mouse
        if mouse {
            mousemask(effterm_wheel_up_mask() | effterm_wheel_down_mask(), nil)
            mouseinterval(0)
        }
        let syncCap = tigetstr("Sync")
        let hasSync = syncCap != nil && Int(bitPattern: syncCap) != -1
        let knownSync = ["WezTerm", "iTerm.app", "ghostty", "vscode", "contour"].contains(env["TERM_PROGRAM"] ?? "")
            || ["kitty", "foot", "alacritty", "ghostty"].contains { (env["TERM"] ?? "").contains($0) }
        if let v = env["EFFTERM_SYNC"] { synchronized = v == "1" } else { synchronized = hasSync || knownSync }
        Self.writeRaw("\u{1B}[?2004h")   // bracketed paste on
    }

    public var size: (width: Int, height: Int) {
        (Int(getmaxx(effterm_stdscr())), Int(getmaxy(effterm_stdscr())))
    }

    public func invalidate() { shown = nil }

    public func present(_ grid: CellGrid, cursor: (x: Int, y: Int)?) {
        guard active else { return }
        let win = effterm_stdscr()
        let full = shown == nil || shown!.width != grid.width || shown!.height != grid.height
        if full { clearok(win, true) }
        let changed = grid.changedIndices(since: full ? nil : shown)
        var cc = cchar_t()
        var wbuf = [wchar_t](repeating: 0, count: 8)
        for i in changed {
            let cell = grid.cells[i]
            if cell.isContinuation { continue }
            let x = Int32(i % grid.width), y = Int32(i / grid.width)
            // The bottom-right cell can scroll some terminals; ncurses handles it via insert.
            var n = 0
            for s in cell.char.unicodeScalars where n < 5 { wbuf[n] = wchar_t(bitPattern: s.value); n += 1 }
            wbuf[n] = 0
            let pair = pairFor(cell.style)
            effterm_setcchar(&cc, wbuf, attributes(cell.style.attrs), pair)
            mvwadd_wch(win, y, x, &cc)
        }
        if let cursor, cursor.x >= 0, cursor.y >= 0, cursor.x < grid.width, cursor.y < grid.height {
            wmove(win, Int32(cursor.y), Int32(cursor.x))
            curs_set(1)
        } else {
            curs_set(0)
        }
        wnoutrefresh(win)
        if synchronized { Self.writeRaw("\u{1B}[?2026h") }
        doupdate()
        if synchronized { Self.writeRaw("\u{1B}[?2026l") }
        shown = grid
    }

    public func readKey(timeoutMs: Int) -> KeyEvent? {
        if !queued.isEmpty { return queued.removeFirst() }
        var wait = Int32(timeoutMs)
        while true {
            wtimeout(effterm_stdscr(), decoder.isMidSequence ? 30 : wait)
            var ch: wint_t = 0
            let rc = wget_wch(effterm_stdscr(), &ch)
            var events: [KeyEvent]
            if rc == ERR {
                events = decoder.flush()
                if events.isEmpty { return nil }
            } else if rc == KEY_CODE_YES {
                guard let k = mapKey(Int32(ch)) else { continue }
                events = decoder.feed(.key(k))
            } else {
                events = decoder.feed(.scalar(UInt32(ch)))
            }
            if !events.isEmpty {
                queued.append(contentsOf: events.dropFirst())
                return events[0]
            }
            wait = 0
        }
    }

    public func restore() {
        guard active else { return }
        active = false
        if mouse { mousemask(0, nil) }
        Self.writeRaw("\u{1B}[?2004l")
        curs_set(1)
        endwin()
    }

    // MARK: helpers

    private func mapKey(_ code: Int32) -> KeyEvent? {
        switch code {
        case KEY_UP: return .up
        case KEY_DOWN: return .down
        case KEY_LEFT: return .left
        case KEY_RIGHT: return .right
        case KEY_HOME: return .home
        case KEY_END: return .end
        case KEY_PPAGE: return .pageUp
        case KEY_NPAGE: return .pageDown
        case KEY_BACKSPACE: return .backspace
        case KEY_DC: return .delete
        case KEY_BTAB: return .backTab
        case KEY_ENTER: return .enter
        case KEY_RESIZE: shown = nil; return .resize
        case KEY_MOUSE:
            var ev = MEVENT()
            guard getmouse(&ev) == OK else { return nil }
            if ev.bstate & effterm_wheel_up_mask() != 0 { return .wheelUp }
            if ev.bstate & effterm_wheel_down_mask() != 0 { return .wheelDown }
            return nil
        default:
            let f0 = effterm_key_f(0)
            if code > f0 && code <= f0 + 24 { return .function(Int(code - f0)) }
            return nil
        }
    }

    private func attributes(_ a: TextAttributes) -> attr_t {
        var out = effterm_a_normal()
        if a.contains(.bold) { out |= effterm_a_bold() }
        if a.contains(.dim) { out |= effterm_a_dim() }
        if a.contains(.italic) { out |= effterm_a_italic() }
        if a.contains(.underline) { out |= effterm_a_underline() }
        if a.contains(.reverse) { out |= effterm_a_reverse() }
        return out
    }

    private func colorNumber(_ c: Color) -> Int32 {
        switch c.reduced(to: colorDepth) {
        case .default: return -1
        case .ansi(let i): return Int32(colorDepth == .ansi8 ? i & 7 : i)
        case .indexed(let i): return Int32(i)
        case .rgb(let r, let g, let b): return directColor ? Int32(r) << 16 | Int32(g) << 8 | Int32(b) : Int32(Color.nearest256(r, g, b))
        }
    }

    private func pairFor(_ style: Style) -> Int32 {
        guard maxPairs > 1 else { return 0 }
        let key = PairKey(fg: colorNumber(style.fg), bg: colorNumber(style.bg))
        if key.fg == -1 && key.bg == -1 { return 0 }
        if let p = pairs[key] { return p }
        if nextPair >= maxPairs {
            // Out of pairs: start over and repaint everything with fresh ones.
            pairs.removeAll(); nextPair = 1; shown = nil
        }
        let p = nextPair
        nextPair += 1
        init_extended_pair(p, key.fg, key.bg)
        pairs[key] = p
        return p
    }

    /// Writes an escape sequence straight to the terminal (ncurses has flushed its buffer).
    static func writeRaw(_ s: String) {
        fflush(stdout)
        s.utf8CString.withUnsafeBufferPointer { buf in
            _ = write(STDOUT_FILENO, buf.baseAddress!, buf.count - 1)
        }
    }
}

/// Whether a terminfo entry named `name` exists (without touching the current terminal).
private func setupterm_ok(_ name: String) -> Bool {
    let first = String(name.prefix(1))
    let dirs = ["/usr/share/terminfo", "/lib/terminfo", "/etc/terminfo",
                (ProcessInfo.processInfo.environment["HOME"] ?? "") + "/.terminfo"]
    return dirs.contains { FileManager.default.fileExists(atPath: "\($0)/\(first)/\(name)") }
}
