/// One input event after decoding: a key, a paste, a mouse wheel step, or a resize.
public enum KeyEvent: Hashable, Sendable {
    case char(Character)
    case ctrl(Character)      // lowercase letter: .ctrl("s")
    case alt(Character)
    case enter, altEnter, tab, backTab, backspace, delete, escape
    case up, down, left, right, home, end, pageUp, pageDown
    case function(Int)
    case wheelUp, wheelDown
    case paste(String)
    case resize

    /// The key's canonical name as keymap files spell it ("ctrl-s", "f1", "pgup", "?").
    public var name: String {
        switch self {
        case .char(" "): return "space"
        case .char(let c): return String(c)
        case .ctrl(let c): return "ctrl-\(c)"
        case .alt(let c): return "alt-\(c)"
        case .enter: return "enter"
        case .altEnter: return "alt-enter"
        case .tab: return "tab"
        case .backTab: return "shift-tab"
        case .backspace: return "backspace"
        case .delete: return "delete"
        case .escape: return "esc"
        case .up: return "up"
        case .down: return "down"
        case .left: return "left"
        case .right: return "right"
        case .home: return "home"
        case .end: return "end"
        case .pageUp: return "pgup"
        case .pageDown: return "pgdn"
        case .function(let n): return "f\(n)"
        case .wheelUp: return "wheel-up"
        case .wheelDown: return "wheel-down"
        case .paste: return "paste"
        case .resize: return "resize"
        }
    }

    /// Parses a key name as written in a keymap file; nil when unknown.
    public init?(name raw: String) {
        let s = raw.trimmingCharacters(in: .whitespaces)
        let lower = s.lowercased()
        let table: [String: KeyEvent] = [
            "enter": .enter, "alt-enter": .altEnter, "tab": .tab, "shift-tab": .backTab,
            "backspace": .backspace, "delete": .delete, "esc": .escape, "escape": .escape,
            "up": .up, "down": .down, "left": .left, "right": .right, "home": .home, "end": .end,
            "pgup": .pageUp, "pageup": .pageUp, "pgdn": .pageDown, "pagedown": .pageDown,
            "space": .char(" "), "wheel-up": .wheelUp, "wheel-down": .wheelDown,
        ]
        if let k = table[lower] { self = k; return }
        if lower.hasPrefix("ctrl-"), lower.count == 6, let c = lower.last, c.isLetter { self = .ctrl(c); return }
        if lower.hasPrefix("alt-"), s.count == 5, let c = s.last { self = .alt(c); return }
        if lower.hasPrefix("f"), let n = Int(lower.dropFirst()), (1...24).contains(n) { self = .function(n); return }
        if s.count == 1, let c = s.first, !c.isWhitespace { self = .char(c); return }
        return nil
    }
}

import Foundation

/// Turns raw terminal input (code points and backend key codes) into `KeyEvent`s:
/// Esc-prefixed Alt keys, Alt+Enter, bracketed paste (`ESC [200~ ... ESC [201~`), and C0
/// control characters. Pure, so the escape handling is testable without a terminal.
public struct KeyDecoder {
    /// Raw input: a code point from the terminal, or a key the backend already decoded.
    public enum Raw: Equatable { case scalar(UInt32), key(KeyEvent) }

    private var pending: [UInt32] = []
    private var pasting = false
    private var pasteBuffer: [UInt32] = []

    public init() {}

    /// Whether input seen so far leaves an escape sequence unfinished; the backend should
    /// then read again without waiting and call `flush` when nothing follows.
    public var isMidSequence: Bool { !pending.isEmpty || pasting }

    /// Feeds one raw input; returns the events it completes.
    public mutating func feed(_ raw: Raw) -> [KeyEvent] {
        switch raw {
        case .key(let k):
            if pasting { return [] }
            var out = flush()
            out.append(k)
            return out
        case .scalar(let v):
            if pasting {
                pasteBuffer.append(v)
                if pasteBuffer.count >= 6, Array(pasteBuffer.suffix(6)) == Self.pasteEnd {
                    pasteBuffer.removeLast(6)
                    pasting = false
                    var s = ""
                    for u in pasteBuffer { if let sc = Unicode.Scalar(u) { s.unicodeScalars.append(sc == "\r" ? "\n" : sc) } }
                    pasteBuffer.removeAll()
                    return [.paste(s)]
                }
                return []
            }
            if pending.isEmpty {
                if v == 27 { pending = [27]; return [] }
                return [Self.single(v)]
            }
            pending.append(v)
            if pending == Array(Self.pasteStart.prefix(pending.count)) {
                if pending.count == Self.pasteStart.count { pending.removeAll(); pasting = true }
                return []
            }
            if pending.count == 2 {
                pending.removeAll()
                switch v {
                case 13, 10: return [.altEnter]
                case 27: pending = [27]; return [.escape]
                default:
                    if let sc = Unicode.Scalar(v), v >= 32 { return [.alt(Character(sc))] }
                    return [.escape, Self.single(v)]
                }
            }
            // An unknown CSI sequence: drop it up to its final byte.
            if v >= 0x40 && v <= 0x7E { pending.removeAll() }
            return []
        }
    }

    /// Ends an unfinished sequence (nothing more arrived): a lone ESC is the Esc key.
    public mutating func flush() -> [KeyEvent] {
        defer { pending.removeAll() }
        if pending == [27] { return [.escape] }
        if pending.count == 2, pending[1] == 91 { return [.alt("[")] }
        return []
    }

    static let pasteStart: [UInt32] = [27, 91, 50, 48, 48, 126]   // ESC [ 2 0 0 ~
    static let pasteEnd: [UInt32] = [27, 91, 50, 48, 49, 126]     // ESC [ 2 0 1 ~

    static func single(_ v: UInt32) -> KeyEvent {
        switch v {
        case 13: return .enter
        case 10: return .ctrl("j")
        case 9: return .tab
        case 8, 127: return .backspace
        case 1...26: return .ctrl(Character(Unicode.Scalar(v + 96)!))
        default:
            if let sc = Unicode.Scalar(v) { return .char(Character(sc)) }
            return .char("\u{FFFD}")
        }
    }
}
