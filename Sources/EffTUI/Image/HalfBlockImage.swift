import EffCore

/// Renders RGB images into terminal cells with upper-half blocks: each cell shows two
/// vertically stacked pixels, "▀" in the top pixel's colour (foreground) over the bottom
/// pixel's colour (background). Truecolor, or the nearest xterm-256 entry as fallback.
public enum HalfBlockImage {
    public static let upperHalf: Character = "\u{2580}"

    /// Cells for `image`: `ceil(height / 2)` rows of `width` cells. An odd last pixel row
    /// gets the terminal's default background.
    public static func cells(_ image: RGBImage, depth: ColorDepth = .truecolor) -> [[Cell]] {
        let rows = (image.height + 1) / 2
        return (0..<rows).map { row in
            (0..<image.width).map { x in
                let (r, g, b) = image.pixel(x, 2 * row)
                let fg = Color.rgb(r, g, b).reduced(to: depth)
                var bg = Color.default
                if 2 * row + 1 < image.height {
                    let (r2, g2, b2) = image.pixel(x, 2 * row + 1)
                    bg = Color.rgb(r2, g2, b2).reduced(to: depth)
                }
                return Cell(upperHalf, style: Style(fg: fg, bg: bg))
            }
        }
    }

    /// Draws `image` with its top-left cell at (x, y), clipped to the grid.
    public static func draw(_ image: RGBImage, into grid: inout CellGrid, x: Int, y: Int,
                            depth: ColorDepth = .truecolor) {
        for (dy, row) in cells(image, depth: depth).enumerated() {
            for (dx, cell) in row.enumerated() where grid.contains(x + dx, y + dy) {
                grid.setCell(x + dx, y + dy, cell)
            }
        }
    }

    /// The image as ANSI escape text for printing to a terminal (SGR 38/48;2 truecolor or
    /// 38/48;5 indexed), one line per cell row, attributes reset at each line end.
    public static func ansi(_ image: RGBImage, depth: ColorDepth = .truecolor) -> String {
        var out = ""
        for row in cells(image, depth: depth) {
            for cell in row {
                out += sgr(cell.style.fg, foreground: true) + sgr(cell.style.bg, foreground: false)
                out.append(cell.char)
            }
            out += "\u{1B}[0m\n"
        }
        return out
    }

    static func sgr(_ c: Color, foreground: Bool) -> String {
        let base = foreground ? 38 : 48
        switch c {
        case .default: return "\u{1B}[\(foreground ? 39 : 49)m"
        case .rgb(let r, let g, let b): return "\u{1B}[\(base);2;\(r);\(g);\(b)m"
        case .indexed(let i): return "\u{1B}[\(base);5;\(i)m"
        case .ansi(let i): return "\u{1B}[\(i < 8 ? (foreground ? 30 : 40) + Int(i) : (foreground ? 90 : 100) + Int(i - 8))m"
        }
    }

    /// Box-filter resize (area average) to fit within `maxWidth` x `maxHeight` pixels,
    /// keeping the aspect ratio; upsamples by pixel repetition when the box is larger.
    public static func fit(_ image: RGBImage, maxWidth: Int, maxHeight: Int) -> RGBImage {
        guard image.width > 0, image.height > 0, maxWidth > 0, maxHeight > 0 else { return RGBImage(width: 0, height: 0) }
        let scale = min(Double(maxWidth) / Double(image.width), Double(maxHeight) / Double(image.height))
        let w = max(1, Int(Double(image.width) * scale)), h = max(1, Int(Double(image.height) * scale))
        var out = RGBImage(width: w, height: h)
        for y in 0..<h {
            let y0 = y * image.height / h, y1 = max(y0 + 1, (y + 1) * image.height / h)
            for x in 0..<w {
                let x0 = x * image.width / w, x1 = max(x0 + 1, (x + 1) * image.width / w)
                var acc = (0, 0, 0), n = 0
                for sy in y0..<y1 { for sx in x0..<x1 {
                    let (r, g, b) = image.pixel(sx, sy)
                    acc.0 += Int(r); acc.1 += Int(g); acc.2 += Int(b); n += 1
                } }
                let i = (y * w + x) * 3
                out.pixels[i] = UInt8(acc.0 / n); out.pixels[i + 1] = UInt8(acc.1 / n); out.pixels[i + 2] = UInt8(acc.2 / n)
            }
        }
        return out
    }
}
