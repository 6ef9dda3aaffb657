import Testing
@testable import EffTUI

@Suite struct CellGridTests {
    @Test func putClipsAndReportsColumn() {
        var g = CellGrid(width: 10, height: 2)
        let end = g.put("hello world", x: 2, y: 0, style: .plain)
        #expect(end == 10)
        #expect(g.text() == "  hello wo\n")
    }

    @Test func wideCharactersTakeTwoCells() {
        var g = CellGrid(width: 8, height: 1)
        let end = g.put("日本x", x: 0, y: 0, style: .plain)
        #expect(end == 5)
        #expect(g[1, 0].isContinuation)
        #expect(g.text() == "日本x")
        // A wide char that would straddle the edge becomes a space.
        var h = CellGrid(width: 3, height: 1)
        h.put("a日本", x: 0, y: 0, style: .plain)
        #expect(h.text() == "a日")
        var k = CellGrid(width: 2, height: 1)
        k.put("a日", x: 0, y: 0, style: .plain)
        #expect(k.text() == "a")
    }

    @Test func overwritingHalfAWideCharBlanksTheOtherHalf() {
        var g = CellGrid(width: 4, height: 1)
        g.put("日本", x: 0, y: 0, style: .plain)
        g.put("z", x: 1, y: 0, style: .plain)
        #expect(g.text() == " z本")
        #expect(!g[1, 0].isContinuation)
    }

    @Test func displayWidthTable() {
        #expect(DisplayWidth.of("a") == 1)
        #expect(DisplayWidth.of("é") == 1)            // precomposed
        #expect(DisplayWidth.of("e\u{301}") == 1)     // combining acute
        #expect(DisplayWidth.of("漢字") == 4)
        #expect(DisplayWidth.of("😀") == 2)
        #expect(DisplayWidth.of("👍🏽") == 2)           // skin-tone modifier joins
        #expect(DisplayWidth.of("❤️") == 2)            // VS16 emoji presentation
        #expect(DisplayWidth.of("ｈ") == 2)            // fullwidth latin
        #expect(DisplayWidth.of("\u{200B}") == 0)
    }

    @Test func changedIndicesFindsOnlyDifferences() {
        var a = CellGrid(width: 5, height: 2)
        a.put("abc", x: 0, y: 0, style: .plain)
        var b = a
        b.put("X", x: 1, y: 1, style: .plain)
        #expect(b.changedIndices(since: a) == [6])
        #expect(b.changedIndices(since: nil).count == 10)
    }

    @Test func colorReduction() {
        #expect(Color.rgb(255, 0, 0).reduced(to: .palette256) == .indexed(196))
        #expect(Color.rgb(128, 128, 128).reduced(to: .palette256) == .indexed(244))
        #expect(Color.rgb(250, 10, 10).reduced(to: .ansi8) == .ansi(1))
        #expect(Color.indexed(33).reduced(to: .truecolor) == .indexed(33))
        #expect(Color.default.reduced(to: .ansi8) == .default)
    }

    @Test func boxDrawsBorderAndTitle() {
        var g = CellGrid(width: 12, height: 3)
        g.box(Rect(x: 0, y: 0, width: 12, height: 3), style: .plain, title: "bits")
        #expect(g.text() == "┌ bits ────┐\n│          │\n└──────────┘")
    }
}
