import EffCore
import Testing
@testable import EffTUI

@Suite struct HalfBlockImageTests {
    // 2 x 3 image: rows (red, green), (blue, white), (black, grey).
    let image = RGBImage(width: 2, height: 3, pixels: [255, 0, 0, 0, 255, 0,
                                                       0, 0, 255, 255, 255, 255,
                                                       0, 0, 0, 128, 128, 128])

    @Test func topPixelIsForegroundBottomPixelIsBackground() {
        let cells = HalfBlockImage.cells(image)
        #expect(cells.count == 2 && cells[0].count == 2)
        #expect(cells[0][0] == Cell("\u{2580}", style: Style(fg: .rgb(255, 0, 0), bg: .rgb(0, 0, 255))))
        #expect(cells[0][1].style == Style(fg: .rgb(0, 255, 0), bg: .rgb(255, 255, 255)))
        // Odd height: the last row's lower half is the terminal default.
        #expect(cells[1][1].style == Style(fg: .rgb(128, 128, 128), bg: .default))
    }

    @Test func palette256FallbackPicksNearestEntries() {
        let cells = HalfBlockImage.cells(image, depth: .palette256)
        #expect(cells[0][0].style.fg == .indexed(196))   // pure red -> cube (5,0,0)
        #expect(cells[0][1].style.bg == .indexed(231))   // white -> cube (5,5,5)
        #expect(cells[1][0].style.fg == .indexed(16))    // black
    }

    @Test func drawsIntoACellGridClipped() {
        var grid = CellGrid(width: 3, height: 1)
        HalfBlockImage.draw(image, into: &grid, x: 2, y: 0)
        #expect(grid[2, 0].style.fg == .rgb(255, 0, 0))
        #expect(grid[1, 0] == .blank)
    }

    @Test func ansiTextUsesTruecolorAndIndexedSGR() {
        let t = HalfBlockImage.ansi(RGBImage(width: 1, height: 2, pixels: [1, 2, 3, 4, 5, 6]))
        #expect(t == "\u{1B}[38;2;1;2;3m\u{1B}[48;2;4;5;6m\u{2580}\u{1B}[0m\n")
        let p = HalfBlockImage.ansi(RGBImage(width: 1, height: 1, pixels: [255, 0, 0]), depth: .palette256)
        #expect(p == "\u{1B}[38;5;196m\u{1B}[49m\u{2580}\u{1B}[0m\n")
    }

    @Test func fitAveragesBoxesAndKeepsAspect() {
        let img = RGBImage(width: 4, height: 2, pixels: [0, 0, 0, 100, 100, 100, 10, 10, 10, 10, 10, 10,
                                                         0, 0, 0, 100, 100, 100, 30, 30, 30, 30, 30, 30])
        let small = HalfBlockImage.fit(img, maxWidth: 2, maxHeight: 8)
        #expect(small.width == 2 && small.height == 1)
        #expect(small.pixels == [50, 50, 50, 20, 20, 20])
    }
}
