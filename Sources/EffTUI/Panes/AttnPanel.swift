import EffCore
import EffEngine
import EffTechniques
import Foundation

/// The attn panel: a layers x heads heatmap of how densely each head attended during the last
/// answer (measured from the real softmax probabilities), with a legend and the selected
/// head's attention pattern over key positions.
///
/// The third metric shows the MoA plan (Fu et al., "MoA: Mixture of Sparse Attention", 2024)
/// in force, or the one dense answers measure: per (layer, head) the share of the context
/// the plan reads, next to the share of the measured attention mass its spans keep, and for
/// the selected head its read pattern over the context (sink block, skipped middle, recent
/// span) under the head's measured pattern.
public final class AttnPanel: Panel {
    public let id = "attn"
    public let action: Action? = .panelAttn
    /// Which statistic the heatmap shows.
    public enum Metric: String {
        case density = "keys for 95% mass", sink = "mass on first 4 tokens", plan = "plan density / kept mass"

        /// The metric `m` switches to: density -> sink -> plan -> density.
        var next: Metric {
            switch self {
            case .density: return .sink
            case .sink: return .plan
            case .plan: return .density
            }
        }
    }
    public private(set) var metric = Metric.density
    public private(set) var selLayer = 0
    public private(set) var selHead = 0

    public init() {}

    public var helpLines: [(key: String, text: String)] {
        [("arrows", "select a head"), ("m", "switch metric (95% keys / sink mass / MoA plan)")]
    }

    public func handle(_ key: KeyEvent) -> Bool {
        switch key {
        case .up: selLayer = max(0, selLayer - 1)
        case .down: selLayer += 1
        case .left: selHead = max(0, selHead - 1)
        case .right: selHead += 1
        case .char("m"): metric = metric.next
        default: return false
        }
        return true
    }

    func value(_ a: AttentionSummary, _ l: Int, _ h: Int) -> Float {
        metric == .density ? a.k95(layer: l, head: h) : a.sinkMass(layer: l, head: h)
    }

    /// The attention policy in force, with a MoA plan's density at `n` keys
    /// ("policy moa:moa-d0.50, density 0.46 at 3072").
    static func policyText(_ spec: AttentionSpec, n: Int) -> String {
        guard case let .moa(plan) = spec else { return "policy \(spec)" }
        return "policy \(spec), density " + String(format: "%.2f", plan.density(at: n)) + " at \(n)"
    }

    public func render(into grid: inout CellGrid, rect: Rect, context: PanelContext) {
        let t = context.theme
        let bg = t[.mainBg]
        let text = Style(fg: t[.mainFg], bg: bg), dim = Style(fg: t[.dimFg], bg: bg)
        grid.fill(rect, style: text)
        if metric == .plan {
            renderPlan(into: &grid, rect: rect, context: context)
            return
        }
        guard let a = context.chat.attention, a.steps > 0 else {
            let msg = context.chat.model == nil ? "no model" : "no answer measured yet: ask something"
            grid.put(msg, x: rect.x, y: rect.y, style: dim, maxX: rect.maxX)
            return
        }
        selLayer = min(selLayer, a.nLayers - 1); selHead = min(selHead, a.nHeads - 1)
        var y = rect.y
        let policy = Self.policyText(context.chat.techniques.attention, n: max(context.chat.contextUsed, a.keys, 1))
        grid.put("\(metric.rawValue), \(a.steps) steps observed, \(a.keys) keys · \(policy)", x: rect.x, y: y,
                 style: dim, maxX: rect.maxX)
        y += 1
        let cw = rect.width >= 3 + a.nHeads * 3 ? 3 : 2
        drawHeadNumbers(&grid, x: rect.x + 3, y: y, heads: a.nHeads, cw: cw, maxX: rect.maxX, theme: t)
        y += 1
        let detailRows = 5
        let rows = max(1, rect.maxY - y - detailRows)
        let first = min(max(0, selLayer - rows / 2), max(0, a.nLayers - rows))
        let shown = first..<min(a.nLayers, first + rows)
        drawLayerLabels(&grid, x: rect.x, y: y, layers: shown, maxX: rect.maxX, theme: t)
        drawMap(&grid, x: rect.x + 3, y: y, layers: shown, heads: a.nHeads, cw: cw, maxX: rect.maxX, theme: t) {
            Double(self.value(a, $0, $1))
        }
        // Legend.
        y = rect.maxY - detailRows
        drawLegend(&grid, x: rect.x, y: y, maxX: rect.maxX, theme: t,
                   note: metric == .density ? "(sparse → dense)" : "(no sink → all sink)")
        y += 1
        let k = a.k95(layer: selLayer, head: selHead), s = a.sinkMass(layer: selLayer, head: selHead)
        grid.put(String(format: "L%d H%d: 95%% of mass in %.0f%% of keys, sink %.2f", selLayer, selHead, k * 100, s),
                 x: rect.x, y: y, style: Style(fg: t[.statusValueFg], bg: bg, attrs: .bold), maxX: rect.maxX)
        y += 1
        if drawPattern(&grid, a, x: rect.x, y: y, width: min(a.patternBins, rect.width - 2), maxX: rect.maxX, theme: t) {
            y += 1
            grid.put("key 0", x: rect.x, y: y, style: dim, maxX: rect.maxX)
            let endLabel = "key \(a.keys - 1)"
            let width = min(a.patternBins, rect.width - 2)
            grid.put(endLabel, x: rect.x + max(6, width - endLabel.count), y: y, style: dim, maxX: rect.maxX)
        }
    }

    /// The plan metric: the MoA plan in force (or, under dense, the one being measured) as a
    /// layers x heads map of the share of `N` keys each head reads, `N` the context length;
    /// beside it the measured mass those reads keep when the last answer measured it; then
    /// the selected head's numbers and its reads over the context.
    private func renderPlan(into grid: inout CellGrid, rect: Rect, context: PanelContext) {
        let t = context.theme, bg = t[.mainBg]
        let dim = Style(fg: t[.dimFg], bg: bg)
        let a = context.chat.attention.flatMap { $0.steps > 0 ? $0 : nil }
        let spec = context.chat.techniques.attention
        let n = max(context.chat.contextUsed, a?.keys ?? 0, 1)
        var active: MoAPlan?
        if case let .moa(p) = spec { active = p }
        let plan = active ?? a?.measuredPlan
        var y = rect.y
        // The header names the policy in force and the plan shown, shortened to fit.
        var headers = [Self.policyText(spec, n: n)]
        if let plan {
            let density = "density " + String(format: "%.2f", plan.density(at: n))
            if active != nil {
                headers += ["\(spec), \(density) at \(n)", "\(spec), \(density)"]
            } else {
                headers = ["\(headers[0]) · measuring moa:\(plan.name), \(density) at \(n)",
                           "\(headers[0]) · measuring moa:\(plan.name)", "\(spec) · measuring moa:\(plan.name)"]
            }
        }
        grid.put(Self.fitting(headers, rect.width), x: rect.x, y: y, style: dim, maxX: rect.maxX)
        y += 1
        guard let nLayers = a?.nLayers ?? context.chat.model?.nLayers,
              let nHeads = a?.nHeads ?? context.chat.model?.nHeads, nLayers > 0, nHeads > 0 else {
            grid.put("no model", x: rect.x, y: y, style: dim, maxX: rect.maxX)
            return
        }
        guard let plan else {
            grid.put("no MoA plan active or measured: ^O cycles to saved plans (effterm attn plan makes one)",
                     x: rect.x, y: y, style: dim, maxX: rect.maxX)
            return
        }
        guard plan.layers == nLayers, plan.kvHeads > 0, nHeads % plan.kvHeads == 0 else {
            grid.put("moa:\(plan.name) is for \(plan.layers) layers x \(plan.kvHeads) KV heads; "
                     + "this model has \(nLayers) x \(nHeads) heads", x: rect.x, y: y, style: dim, maxX: rect.maxX)
            return
        }
        guard rect.height >= 3 else { return }
        selLayer = min(selLayer, nLayers - 1); selHead = min(selHead, nHeads - 1)
        // Query head h reads through KV head h / group (grouped-query attention).
        let group = nHeads / plan.kvHeads
        let kept = a?.measuredPlan == plan ? a?.keptMass : nil
        func reads(_ l: Int, _ h: Int) -> Double {
            Double(plan.readCount(layer: l, kvHead: h / group, length: n)) / Double(n)
        }

        // Geometry: the reads map and, when measured, the kept-mass map beside it.
        func mapsWidth(_ cw: Int, _ both: Bool) -> Int { 3 + nHeads * cw + (both ? 2 + nHeads * cw : 0) }
        let both = kept != nil && mapsWidth(1, true) <= rect.width
        let cw = mapsWidth(3, both) <= rect.width ? 3 : mapsWidth(2, both) <= rect.width ? 2 : 1
        let mapX = rect.x + 3, keptX = mapX + nHeads * cw + 2

        // The selected head's sentence: one line when it fits, else two (the first one
        // shortened on narrow panels: the key count is in the header).
        let l = selLayer, h = selHead, kv = h / group
        let rule = plan.rule(layer: l, kvHead: kv)
        let span = rule.span(at: n, minimum: plan.minSpan)
        let read = plan.readCount(layer: l, kvHead: kv, length: n)
        let percent = Double(read) / Double(n) * 100
        let readText = String(format: "L%d H%d: plan reads %.0f%% (%d%+.3f·N = %d recent + %d sinks, of %d keys)",
                              l, h, percent, rule.alpha, rule.beta, span, read - span, n)
        let shortRead = String(format: "L%d H%d: reads %.0f%%, %d%+.3f·N = %d", l, h, percent, rule.alpha, rule.beta, span)
        let keptText = kept.map { String(format: "keeps %.1f%% of measured mass", $0[l * nHeads + h] * 100) }
            ?? "mass not measured under dense yet"
        let detail = readText.count + 2 + keptText.count <= rect.width ? [readText + ", " + keptText]
            : [Self.fitting([readText, shortRead], rect.width), keptText]

        // Rows: header, head numbers, at least one map row, the detail, the span row always;
        // then, room permitting, key labels, the measured pattern, the legend, map titles,
        // and every further row goes to the map.
        var spare = rect.maxY - y - (1 + 1 + detail.count + 1)
        func take() -> Bool { if spare > 0 { spare -= 1; return true }; return false }
        let showLabels = take()
        let showPattern = a != nil && take()
        let showLegend = take()
        let showTitles = both && take()
        let rows = min(nLayers, 1 + max(0, spare))

        if showTitles {
            grid.put("plan reads", x: mapX, y: y, style: Style(fg: t[.title], bg: bg), maxX: keptX - 1)
            grid.put("kept mass", x: keptX, y: y, style: Style(fg: t[.title], bg: bg), maxX: rect.maxX)
            y += 1
        }
        drawHeadNumbers(&grid, x: mapX, y: y, heads: nHeads, cw: cw, maxX: rect.maxX, theme: t)
        if both { drawHeadNumbers(&grid, x: keptX, y: y, heads: nHeads, cw: cw, maxX: rect.maxX, theme: t) }
        y += 1
        let first = min(max(0, selLayer - rows / 2), max(0, nLayers - rows))
        let shown = first..<min(nLayers, first + rows)
        drawLayerLabels(&grid, x: rect.x, y: y, layers: shown, maxX: rect.maxX, theme: t)
        drawMap(&grid, x: mapX, y: y, layers: shown, heads: nHeads, cw: cw, maxX: rect.maxX, theme: t) { reads($0, $1) }
        if both, let kept {
            drawMap(&grid, x: keptX, y: y, layers: shown, heads: nHeads, cw: cw, maxX: rect.maxX, theme: t) {
                Double(kept[$0 * nHeads + $1])
            }
        }
        y += rows
        if showLegend {
            drawLegend(&grid, x: rect.x, y: y, maxX: rect.maxX, theme: t,
                       note: both ? "(share of keys read · of mass kept)" : "(share of keys read)")
            y += 1
        }
        for line in detail where y < rect.maxY {
            grid.put(line, x: rect.x, y: y, style: Style(fg: t[.statusValueFg], bg: bg, attrs: .bold), maxX: rect.maxX)
            y += 1
        }
        // The measured pattern and the plan's reads share one width, so they line up.
        let width = max(1, rect.width - 2)
        if showPattern, let a {
            _ = drawPattern(&grid, a, x: rect.x, y: y, width: width, maxX: rect.maxX, theme: t)
            y += 1
        }
        guard y < rect.maxY else { return }
        drawSpan(&grid, plan: plan, layer: l, kvHead: kv, length: n, x: rect.x, y: y, width: width,
                 maxX: rect.maxX, theme: t)
        y += 1
        if showLabels {
            let endLabel = "key \(n - 1)", key = "█ read · skipped"
            grid.put("key 0", x: rect.x, y: y, style: dim, maxX: rect.maxX)
            if width >= 5 + 2 + key.count + 2 + endLabel.count {
                grid.put(key, x: rect.x + (width - key.count) / 2, y: y, style: dim, maxX: rect.maxX)
            }
            grid.put(endLabel, x: rect.x + max(6, width - endLabel.count), y: y, style: dim, maxX: rect.maxX)
        }
    }

    // MARK: - Pieces

    /// The first of `candidates` (longest first) that fits `width` columns, else the last.
    static func fitting(_ candidates: [String], _ width: Int) -> String {
        candidates.first { $0.count <= width } ?? candidates.last ?? ""
    }

    private func drawHeadNumbers(_ grid: inout CellGrid, x: Int, y: Int, heads: Int, cw: Int, maxX: Int, theme t: Theme) {
        var hx = x
        for h in 0..<heads {
            grid.put(String(h % (cw == 1 ? 10 : 100)).padding(toLength: cw, withPad: " ", startingAt: 0), x: hx, y: y,
                     style: Style(fg: t[.title], bg: t[.mainBg], attrs: .bold), maxX: maxX)
            hx += cw
        }
    }

    private func drawLayerLabels(_ grid: inout CellGrid, x: Int, y: Int, layers: Range<Int>, maxX: Int, theme t: Theme) {
        for l in layers {
            let style = l == selLayer ? Style(fg: t[.selectedFg], bg: t[.selectedBg]) : Style(fg: t[.dimFg], bg: t[.mainBg])
            grid.put(String(format: "%2d", l), x: x, y: y + l - layers.lowerBound, style: style, maxX: maxX)
        }
    }

    /// One heatmap of `layers` x `heads` from (x, y): `value(layer, head)` in 0...1 as the
    /// cell colour, `cw` columns a cell (the last one a gap when cw > 1), the selected head
    /// marked.
    private func drawMap(_ grid: inout CellGrid, x: Int, y: Int, layers: Range<Int>, heads: Int, cw: Int, maxX: Int,
                         theme t: Theme, value: (Int, Int) -> Double) {
        for l in layers {
            for h in 0..<heads {
                let cx = x + h * cw
                let selected = l == selLayer && h == selHead
                let glyph: String
                switch (cw, selected) {
                case (1, true): glyph = "*"
                case (1, false): glyph = " "
                case (3, true): glyph = "[]"
                case (_, true): glyph = "<>"
                default: glyph = String(repeating: " ", count: cw - 1)
                }
                grid.put(glyph, x: cx, y: y + l - layers.lowerBound, style: Style(fg: t[.selectedFg], bg: t.heat(value(l, h))),
                         maxX: min(maxX, cx + max(1, cw - 1)))
            }
        }
    }

    private func drawLegend(_ grid: inout CellGrid, x: Int, y: Int, maxX: Int, theme t: Theme, note: String) {
        let dim = Style(fg: t[.dimFg], bg: t[.mainBg])
        var cx = grid.put("0 ", x: x, y: y, style: dim, maxX: maxX)
        for i in 0..<10 { cx = grid.put(" ", x: cx, y: y, style: Style(bg: t.heat(Double(i) / 9)), maxX: maxX) }
        grid.put(" 1  " + note, x: cx, y: y, style: dim, maxX: maxX)
    }

    /// The selected head's last-step pattern over key positions (binned), as a bar strip
    /// `width` columns wide (bins folded, or repeated when the strip is wider); false when
    /// there is no room.
    private func drawPattern(_ grid: inout CellGrid, _ a: AttentionSummary, x: Int, y: Int, width: Int, maxX: Int,
                             theme t: Theme) -> Bool {
        let bars = Array(a.pattern(layer: selLayer, head: selHead))
        guard width > 0, !bars.isEmpty else { return false }
        let maxV = max(bars.max() ?? 1, 1e-6)
        let levels: [Character] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
        var strip = ""
        for i in 0..<width {
            // Fold bins onto the available width.
            let lo = i * bars.count / width, hi = max(lo + 1, (i + 1) * bars.count / width)
            let v = bars[lo..<hi].reduce(0, +) / Float(hi - lo)
            strip.append(levels[min(8, Int((v / maxV * 8).rounded()))])
        }
        grid.put(strip, x: x, y: y, style: Style(fg: t[.heatEnd], bg: t[.chatCodeBg]), maxX: maxX)
        return true
    }

    /// What (layer, kvHead) reads of `length` keys under `plan`, folded onto `width` columns:
    /// '█' where a column holds a read position (the sink block in the title colour, the
    /// recent span in the heat colour), '·' where it skips them all. The ranges come from
    /// `MoAAttentionPolicy`, the same ones decode reads.
    private func drawSpan(_ grid: inout CellGrid, plan: MoAPlan, layer: Int, kvHead: Int, length n: Int,
                          x: Int, y: Int, width: Int, maxX: Int, theme t: Theme) {
        var ranges = [Range<Int>](repeating: 0..<0, count: AttentionPolicyLimits.maxRanges)
        let policy = MoAAttentionPolicy(plan: plan)
        let count = ranges.withUnsafeMutableBufferPointer {
            min(policy.keyRanges(layer: layer, kvHead: kvHead, queryPosition: n - 1, into: $0), $0.count)
        }
        let read = ranges[0..<count]
        let bg = t[.chatCodeBg]
        for i in 0..<width {
            let lo = i * n / width, hi = max(lo + 1, (i + 1) * n / width)
            let style: Style, glyph: String
            if read.contains(where: { $0.overlaps(lo..<hi) }) {
                glyph = "█"
                style = Style(fg: lo < plan.sinkTokens ? t[.title] : t[.heatEnd], bg: bg)
            } else {
                glyph = "·"
                style = Style(fg: t[.dimFg], bg: bg)
            }
            grid.put(glyph, x: x + i, y: y, style: style, maxX: maxX)
        }
    }
}
