/// A terminal colour as themes and panes name it, before the backend maps it to what the
/// terminal can show (truecolor, the 256-colour xterm palette, or the 8 ANSI colours).
public enum Color: Hashable, Sendable {
    /// The terminal's own default foreground or background.
    case `default`
    /// One of the 16 ANSI colours (0-7 normal, 8-15 bright).
    case ansi(UInt8)
    /// An entry of the xterm 256-colour palette.
    case indexed(UInt8)
    /// A 24-bit colour.
    case rgb(UInt8, UInt8, UInt8)

    /// The colour as 24-bit RGB (palette entries use the xterm defaults); nil for `.default`.
    public var rgbValue: (r: UInt8, g: UInt8, b: UInt8)? {
        switch self {
        case .default: return nil
        case .rgb(let r, let g, let b): return (r, g, b)
        case .ansi(let i): return Color.paletteRGB(Int(i & 15))
        case .indexed(let i): return Color.paletteRGB(Int(i))
        }
    }

    /// The colour reduced to what a terminal of `depth` can show.
    public func reduced(to depth: ColorDepth) -> Color {
        switch (self, depth) {
        case (.default, _): return .default
        case (_, .truecolor): return self
        case (.ansi, _): return depth == .ansi8 ? .ansi(ansiIndex & 7) : self
        case (.indexed(let i), .ansi8): return i < 16 ? .ansi(i & 7) : .ansi(ansiIndex & 7)
        case (.indexed, .palette256): return self
        case (.rgb(let r, let g, let b), .palette256): return .indexed(Color.nearest256(r, g, b))
        case (.rgb, .ansi8): return .ansi(ansiIndex & 7)
        default: return self
        }
    }

    /// The nearest of the 16 ANSI colours (used for 8-colour terminals).
    var ansiIndex: UInt8 {
        if case .ansi(let i) = self { return i }
        guard let (r, g, b) = rgbValue else { return 7 }
        var best = 0, bestD = Int.max
        for i in 0..<16 {
            let (pr, pg, pb) = Color.paletteRGB(i)
            let d = Color.distance(r, g, b, pr, pg, pb)
            if d < bestD { bestD = d; best = i }
        }
        return UInt8(best)
    }

    /// Squared RGB distance weighted roughly by perceived luminance (2,4,3).
    static func distance(_ r1: UInt8, _ g1: UInt8, _ b1: UInt8,
                         _ r2: UInt8, _ g2: UInt8, _ b2: UInt8) -> Int {
        let dr = Int(r1) - Int(r2), dg = Int(g1) - Int(g2), db = Int(b1) - Int(b2)
        return 2 * dr * dr + 4 * dg * dg + 3 * db * db
    }

    /// The xterm default RGB of palette entry `i` (0-15 system colours, 16-231 the 6x6x6
    /// cube, 232-255 the grey ramp).
    public static func paletteRGB(_ i: Int) -> (UInt8, UInt8, UInt8) {
        let system: [(UInt8, UInt8, UInt8)] = [
            (0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205),
            (0, 205, 205), (229, 229, 229), (127, 127, 127), (255, 0, 0), (0, 255, 0),
            (255, 255, 0), (92, 92, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255),
        ]
        if i < 16 { return system[max(0, i)] }
        if i < 232 {
            let c = i - 16
            let level: (Int) -> UInt8 = { $0 == 0 ? 0 : UInt8(55 + $0 * 40) }
            return (level(c / 36), level((c / 6) % 6), level(c % 6))
        }
        let g = UInt8(min(255, 8 + (i - 232) * 10))
        return (g, g, g)
    }

    /// The nearest xterm-256 entry to an RGB colour (cube or grey ramp, whichever is closer).
    public static func nearest256(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
        func cubeIndex(_ v: UInt8) -> Int { v < 48 ? 0 : v < 115 ? 1 : (Int(v) - 35) / 40 }
        let ci = 16 + 36 * cubeIndex(r) + 6 * cubeIndex(g) + cubeIndex(b)
        let (cr, cg, cb) = paletteRGB(ci)
        let avg = (Int(r) + Int(g) + Int(b)) / 3
        let gi = avg > 238 ? 255 : max(232, 232 + (avg - 3) / 10)
        let (gr, gg, gb) = paletteRGB(gi)
        let dc = distance(r, g, b, cr, cg, cb), dg = distance(r, g, b, gr, gg, gb)
        return UInt8(dc <= dg ? ci : gi)
    }

    /// Linear blend between two colours in RGB (t in 0...1); `.default` blends as grey.
    public static func blend(_ a: Color, _ b: Color, _ t: Double) -> Color {
        let (ar, ag, ab) = a.rgbValue ?? (128, 128, 128)
        let (br, bg, bb) = b.rgbValue ?? (128, 128, 128)
        let u = min(1, max(0, t))
        func mix(_ x: UInt8, _ y: UInt8) -> UInt8 { UInt8((Double(x) * (1 - u) + Double(y) * u).rounded()) }
        return .rgb(mix(ar, br), mix(ag, bg), mix(ab, bb))
    }
}

/// How many colours the terminal can show.
public enum ColorDepth: String, Sendable, CaseIterable {
    case truecolor, palette256 = "256", ansi8 = "8"
}

/// Text attributes of one cell.
public struct TextAttributes: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let bold = TextAttributes(rawValue: 1)
    public static let dim = TextAttributes(rawValue: 2)
    public static let italic = TextAttributes(rawValue: 4)
    public static let underline = TextAttributes(rawValue: 8)
    public static let reverse = TextAttributes(rawValue: 16)
}

/// Foreground, background and attributes applied to text.
public struct Style: Hashable, Sendable {
    public var fg: Color
    public var bg: Color
    public var attrs: TextAttributes
    public init(fg: Color = .default, bg: Color = .default, attrs: TextAttributes = []) {
        self.fg = fg; self.bg = bg; self.attrs = attrs
    }
    public static let plain = Style()
    /// The same style with extra attributes.
    public func with(_ extra: TextAttributes) -> Style {
        var s = self; s.attrs.formUnion(extra); return s
    }
}
