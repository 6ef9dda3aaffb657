import EffEngine
import EffTechniques
import Foundation

/// The attn panel: a layers x heads heatmap of how densely each head attended during the last
/// answer (measured from the real softmax probabilities), with a legend and the selected
/// head's attention pattern over key positions.
public final class AttnPanel: Panel {
    public let id = "attn"
    public let action: Action? = .panelAttn
    /// Which statistic the heatmap shows.
    public enum Metric: String { case density = "keys for 95% mass", sink = "mass on first 4 tokens" }
    public private(set) var metric = Metric.density
    public private(set) var selLayer = 0
    public private(set) var selHead = 0

    public init() {}

    public var helpLines: [(key: String, text: String)] {
        [("arrows", "select a head"), ("m", "switch metric (95% keys / sink mass)")]
    }

    public func handle(_ key: KeyEvent) -> Bool {
        switch key {
        case .up: selLayer = max(0, selLayer - 1)
        case .down: selLayer += 1
        case .left: selHead = max(0, selHead - 1)
        case .right: selHead += 1
        case .char("m"): metric = metric == .density ? .sink : .density
        default: return false
        }
        return true
    }

    func value(_ a: AttentionSummary, _ l: Int, _ h: Int) -> Float {
        metric == .density ? a.k95(layer: l, head: h) : a.sinkMass(layer: l, head: h)
    }

    public func render(into grid: inout CellGrid, rect: Rect, context: PanelContext) {
        let t = context.theme
        let bg = t[.mainBg]
        let text = Style(fg: t[.mainFg], bg: bg), dim = Style(fg: t[.dimFg], bg: bg)
        grid.fill(rect, style: text)
        guard let a = context.chat.attention, a.steps > 0 else {
            let msg = context.chat.model == nil ? "no model" : "no answer measured yet: ask something"
            grid.put(msg, x: rect.x, y: rect.y, style: dim, maxX: rect.maxX)
            return
        }
        selLayer = min(selLayer, a.nLayers - 1); selHead = min(selHead, a.nHeads - 1)
        var y = rect.y
        grid.put("\(metric.rawValue), \(a.steps) steps observed, \(a.keys) keys", x: rect.x, y: y, style: dim, maxX: rect.maxX)
        y += 1
        let cw = rect.width >= 3 + a.nHeads * 3 ? 3 : 2
        var hx = rect.x + 3
        for h in 0..<a.nHeads {
            grid.put(String(h).padding(toLength: cw, withPad: " ", startingAt: 0), x: hx, y: y,
                     style: Style(fg: t[.title], bg: bg, attrs: .bold), maxX: rect.maxX)
            hx += cw
        }
        y += 1
        let detailRows = 5
        let rows = max(1, rect.maxY - y - detailRows)
        let first = min(max(0, selLayer - rows / 2), max(0, a.nLayers - rows))
        for l in first..<min(a.nLayers, first + rows) {
            grid.put(String(format: "%2d", l), x: rect.x, y: y, style: l == selLayer ? Style(fg: t[.selectedFg], bg: t[.selectedBg]) : dim, maxX: rect.maxX)
            for h in 0..<a.nHeads {
                let v = Double(value(a, l, h))
                let x = rect.x + 3 + h * cw
                let selected = l == selLayer && h == selHead
                let glyph = selected ? (cw == 3 ? "[]" : "<>") : String(repeating: " ", count: cw - 1)
                grid.put(glyph, x: x, y: y, style: Style(fg: t[.selectedFg], bg: t.heat(v)), maxX: min(rect.maxX, x + cw - 1))
            }
            y += 1
        }
        // Legend.
        y = rect.maxY - detailRows
        var x = grid.put("0 ", x: rect.x, y: y, style: dim, maxX: rect.maxX)
        for i in 0..<10 { x = grid.put(" ", x: x, y: y, style: Style(bg: t.heat(Double(i) / 9)), maxX: rect.maxX) }
        grid.put(metric == .density ? " 1  (sparse → dense)" : " 1  (no sink → all sink)", x: x, y: y, style: dim, maxX: rect.maxX)
        y += 1
        let k = a.k95(layer: selLayer, head: selHead), s = a.sinkMass(layer: selLayer, head: selHead)
        grid.put(String(format: "L%d H%d: 95%% of mass in %.0f%% of keys, sink %.2f", selLayer, selHead, k * 100, s),
                 x: rect.x, y: y, style: Style(fg: t[.statusValueFg], bg: bg, attrs: .bold), maxX: rect.maxX)
        y += 1
        // The selected head's last-step pattern over key positions (binned), as a bar strip.
        let bars = Array(a.pattern(layer: selLayer, head: selHead))
        let width = min(bars.count, rect.width - 2)
        if width > 0 {
            let maxV = max(bars.max() ?? 1, 1e-6)
            let levels: [Character] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
            var strip = ""
            for i in 0..<width {
                // Fold bins onto the available width.
                let lo = i * bars.count / width, hi = max(lo + 1, (i + 1) * bars.count / width)
                let v = bars[lo..<hi].reduce(0, +) / Float(hi - lo)
                strip.append(levels[min(8, Int((v / maxV * 8).rounded()))])
            }
            grid.put(strip, x: rect.x, y: y, style: Style(fg: t[.heatEnd], bg: t[.chatCodeBg]), maxX: rect.maxX)
            y += 1
            grid.put("key 0", x: rect.x, y: y, style: dim, maxX: rect.maxX)
            let endLabel = "key \(a.keys - 1)"
            grid.put(endLabel, x: rect.x + max(6, width - endLabel.count), y: y, style: dim, maxX: rect.maxX)
        }
    }
}
