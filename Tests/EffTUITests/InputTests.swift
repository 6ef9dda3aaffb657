import Testing
@testable import EffTUI

@Suite struct KeyDecoderTests {
    func decode(_ scalars: [UInt32], flush: Bool = true) -> [KeyEvent] {
        var d = KeyDecoder()
        var out: [KeyEvent] = []
        for s in scalars { out += d.feed(.scalar(s)) }
        if flush { out += d.flush() }
        return out
    }

    @Test func controlAndAltKeys() {
        #expect(decode([13]) == [.enter])
        #expect(decode([10]) == [.ctrl("j")])
        #expect(decode([19]) == [.ctrl("s")])
        #expect(decode([127]) == [.backspace])
        #expect(decode([27]) == [.escape])
        #expect(decode([27, 13]) == [.altEnter])
        #expect(decode([27, 98]) == [.alt("b")])
        #expect(decode([0x65E5]) == [.char("日")])
    }

    @Test func bracketedPasteArrivesWhole() {
        let body = Array("line one\rline 二".unicodeScalars.map(\.value))
        let seq: [UInt32] = [27, 91, 50, 48, 48, 126] + body + [27, 91, 50, 48, 49, 126]
        #expect(decode(seq) == [.paste("line one\nline 二")])
    }

    @Test func unknownCSIIsDropped() {
        #expect(decode([27, 91, 49, 59, 53, 65, 120]) == [.char("x")])
    }

    @Test func keyNamesRoundTrip() {
        for k: KeyEvent in [.ctrl("s"), .function(5), .pageUp, .altEnter, .char("?"), .tab, .escape, .backTab] {
            #expect(KeyEvent(name: k.name) == k)
        }
        #expect(KeyEvent(name: "bogus-key") == nil)
    }
}

@Suite struct LineEditorTests {
    func type(_ e: inout LineEditor, _ s: String) { for c in s { _ = e.handle(.char(c)) } }

    @Test func editingAndCursor() {
        var e = LineEditor()
        type(&e, "helo")
        _ = e.handle(.left); _ = e.handle(.char("l"))
        #expect(e.text == "hello")
        _ = e.handle(.home); _ = e.handle(.delete)
        #expect(e.text == "ello")
        _ = e.handle(.end); _ = e.handle(.backspace)
        #expect(e.text == "ell")
        type(&e, " world"); _ = e.handle(.ctrl("w"))
        #expect(e.text == "ell ")
    }

    @Test func multiLineAndSubmitAndHistory() {
        var e = LineEditor()
        type(&e, "first")
        _ = e.handle(.altEnter)
        type(&e, "second")
        _ = e.handle(.ctrl("j"))
        type(&e, "third")
        #expect(e.text == "first\nsecond\nthird")
        _ = e.handle(.up)                                  // moves between lines, not history
        #expect(e.cursor == "first\nsecon".count)        // same column (5) one line up
        #expect(e.handle(.enter) == .submitted("first\nsecond\nthird"))
        #expect(e.text.isEmpty)
        type(&e, "draft")
        _ = e.handle(.up)                                  // history
        #expect(e.text == "first\nsecond\nthird")
        _ = e.handle(.down)
        #expect(e.text == "first\nsecond\nthird" || e.text == "draft")
        _ = e.handle(.end); _ = e.handle(.down)
        #expect(e.text == "draft")
        var empty = LineEditor()
        #expect(empty.handle(.enter) == .ignored)
    }

    @Test func pasteKeepsNewlinesAndWrapsByWidth() {
        var e = LineEditor()
        _ = e.handle(.paste(String(repeating: "漢", count: 7) + "\nab"))
        #expect(e.text.split(separator: "\n").count == 2)
        let lay = e.layout(width: 6)                       // 3 wide chars per row
        #expect(lay.rows == ["漢漢漢", "漢漢漢", "漢", "ab"])
        #expect(lay.cursorRow == 3 && lay.cursorCol == 2)
    }
}

@Suite struct KeymapTests {
    @Test func fileOverridesAndReportsConflicts() {
        var km = Keymap()
        #expect(km.action(for: .ctrl("s")) == .save)
        let problems = km.apply("""
        # comment
        save = ctrl-w
        theme = f5, ctrl-y
        quit = ctrl-s        # ctrl-s is free now: save moved to ctrl-w
        help = ctrl-w        # conflict with save
        nonsense = f1
        stop = hyper-x
        """, file: "keymap")
        #expect(km.action(for: .ctrl("w")) == .save)
        #expect(km.action(for: .ctrl("t")) == nil)
        #expect(km.action(for: .ctrl("y")) == .cycleTheme)
        #expect(km.action(for: .ctrl("s")) == .quit)
        #expect(km.action(for: .function(1)) == .help)
        #expect(problems.count == 3)
        #expect(problems[0].hasPrefix("keymap:5: conflict: ctrl-w is already bound to save"))
        #expect(problems[1].hasPrefix("keymap:6: unknown action \"nonsense\""))
        #expect(problems[2] == "keymap:7: unknown key \"hyper-x\"")
    }
}

@Suite struct ThemeTests {
    @Test func malformedLinesAreReportedWithFileAndLine() {
        let (theme, diags) = ThemeParser.parse("""
        # ok
        main_fg="#102030"
        border="#abc"
        heat_mid="red"
        bits_4 = "200"
        this is not a line
        chat_user_fg=#ffffff
        no_such_key="#000000"
        title="#zzzzzz"
        """, name: "t", file: "t.theme")
        #expect(theme[.mainFg] == .rgb(0x10, 0x20, 0x30))
        #expect(theme[.border] == .rgb(0xaa, 0xbb, 0xcc))
        #expect(theme[.heatMid] == .ansi(1))
        #expect(theme[.bits4] == .indexed(200))
        #expect(theme[.chatUserFg] == ThemeKey.chatUserFg.fallback)   // per-key fallback
        #expect(diags.map(\.line) == [6, 7, 8, 9])
        #expect(diags[0].description.hasPrefix("t.theme:6: expected key=\"value\""))
        #expect(diags[2].description == "t.theme:8: unknown key \"no_such_key\"")
    }

    @Test func shippedThemesLoadCleanAndDefaultCommentsEveryKey() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Themes")
        let catalog = ThemeCatalog(directories: [dir])
        let names = catalog.names()
        #expect(names.first == "default")
        #expect(names.count >= 4)
        for n in names {
            let (theme, diags) = catalog.load(n)
            #expect(diags.isEmpty, "\(n): \(diags)")
            #expect(Set(theme.colors.keys) == Set(ThemeKey.allCases), "\(n) sets every key")
        }
        let text = try String(contentsOf: dir.appendingPathComponent("default.theme"), encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for (i, l) in lines.enumerated() where l.contains("=\"") && !l.hasPrefix("#") {
            #expect(i > 0 && lines[i - 1].hasPrefix("# "), "key on line \(i + 1) has a comment")
        }
        // Monochrome stays within the 8 ANSI colours and defaults.
        let mono = catalog.load("monochrome").0
        for k in ThemeKey.allCases {
            switch mono[k] {
            case .default: break
            case .ansi(let i): #expect(i < 8)
            default: Issue.record("monochrome \(k.rawValue) is not an ANSI colour")
            }
        }
    }
}

import Foundation
