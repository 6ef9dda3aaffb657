import EffEngine
import Foundation

/// The bits panel: the weights in use as a layers x {q,k,v,o,gate,up,down} map, each cell
/// coloured by storage bits per weight, with bytes per layer and the total; with a
/// sensitivity scan (`effterm quant scan`), a per-layer sensitivity bar and, for the selected
/// tensor (arrows when full screen), its KL at every scanned format. It redraws when Ctrl-P
/// installs other weights.
public final class BitsPanel: Panel {
    public let id = "bits"
    public let action: Action? = .panelBits
    public static let roles: [TensorRole] = [.q, .k, .v, .o, .gate, .up, .down]
    private var scroll = 0
    private var selLayer = 0
    private var selRole = 0

    public init() {}

    public var helpLines: [(key: String, text: String)] { [("arrows", "select a tensor (its KL per format below)")] }

    public func handle(_ key: KeyEvent) -> Bool {
        switch key {
        case .up: selLayer = max(0, selLayer - 1); return true
        case .down: selLayer += 1; return true
        case .left: selRole = max(0, selRole - 1); return true
        case .right: selRole = min(Self.roles.count - 1, selRole + 1); return true
        default: return false
        }
    }

    /// The scanned format a layer's sensitivity bar reads: Q3G64 when scanned, else the
    /// candidate closest to 3.5 bits per weight.
    static func barSpec(_ points: [SensitivityPoint]) -> SensitivityPoint? {
        points.first { $0.spec == "Q3G64" } ?? points.min { abs($0.bitsPerWeight - 3.5) < abs($1.bitsPerWeight - 3.5) }
    }

    /// `width` cells of eighth blocks for a KL on a log scale from 1e-4 (empty) to 1 nat (full).
    static func bar(_ kl: Double, width: Int) -> String {
        let v = kl > 0 ? min(1, max(0, (log10(kl) + 4) / 4)) : 0
        let eighths = Int((v * Double(width * 8)).rounded())
        let blocks = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]
        return String(repeating: "█", count: eighths / 8) + blocks[eighths % 8]
    }

    /// A KL in three significant characters ("0.41", ".012", "3e-4").
    static func shortKL(_ kl: Double) -> String {
        if kl >= 0.995 { return String(format: "%.1f", kl) }
        if kl >= 0.0095 { return String(format: "%.2f", kl).replacingOccurrences(of: "0.", with: ".") }
        if kl >= 0.00095 { return String(format: "%.3f", kl).replacingOccurrences(of: "0.", with: ".") }
        return String(format: "%.0e", kl).replacingOccurrences(of: "e-0", with: "e-")
    }

    public func render(into grid: inout CellGrid, rect: Rect, context: PanelContext) {
        let t = context.theme
        let bg = t[.mainBg]
        let text = Style(fg: t[.mainFg], bg: bg), dim = Style(fg: t[.dimFg], bg: bg)
        grid.fill(rect, style: text)
        guard let model = context.chat.model, !model.tensors.isEmpty else {
            grid.put("no model tensors loaded", x: rect.x, y: rect.y, style: dim, maxX: rect.maxX)
            return
        }
        let nLayers = (model.tensors.compactMap(\.layer).max() ?? -1) + 1
        var cells = [[TensorSummary?]](repeating: [TensorSummary?](repeating: nil, count: Self.roles.count), count: nLayers)
        var layerBytes = [Int](repeating: 0, count: nLayers)
        var total = 0
        var byFormat: [String: (count: Int, bytes: Int)] = [:]
        for ts in model.tensors {
            total += ts.bytes
            byFormat[ts.format, default: (0, 0)].count += 1
            byFormat[ts.format, default: (0, 0)].bytes += ts.bytes
            guard let l = ts.layer, l < nLayers else { continue }
            layerBytes[l] += ts.bytes
            if let r = Self.roles.firstIndex(of: ts.role) { cells[l][r] = ts }
        }
        // Column widths: label 3, 7 cells of cw, bytes, then the sensitivity bar.
        let cw = rect.width >= 48 ? 5 : rect.width >= 38 ? 4 : 3
        let bytesX = rect.x + 3 + Self.roles.count * cw + 1
        let sens = model.sensitivity
        let sensX = bytesX + 10, sensWidth = min(8, rect.maxX - sensX)
        let showSens = !sens.isEmpty && sensWidth >= 3
        selLayer = max(0, min(selLayer, nLayers - 1))
        var y = rect.y
        var header = "L  "
        for r in Self.roles { header += String(r.rawValue.prefix(cw - 1)).padding(toLength: cw, withPad: " ", startingAt: 0) }
        let titleStyle = Style(fg: t[.title], bg: bg, attrs: .bold)
        grid.put(header, x: rect.x, y: y, style: titleStyle, maxX: rect.maxX)
        grid.put("bytes", x: bytesX, y: y, style: titleStyle, maxX: rect.maxX)
        if showSens { grid.put("KL@3b", x: sensX, y: y, style: titleStyle, maxX: rect.maxX) }
        y += 1
        // A fourth footer row for the selected tensor, the weights' quality or the bar legend.
        let hasInfoLine = context.focused || model.weightsQuality != nil || !sens.isEmpty
        let footer = hasInfoLine ? 4 : 3
        var rows = max(0, rect.maxY - y - footer)
        if rows < nLayers { rows = max(0, rows - 1) }   // one row for "a-b of n layers"
        // Keep the selected layer in view.
        if selLayer < scroll { scroll = selLayer } else if rows > 0, selLayer >= scroll + rows { scroll = selLayer - rows + 1 }
        scroll = min(scroll, max(0, nLayers - rows))
        for l in scroll..<min(nLayers, scroll + rows) {
            let isSelLayer = context.focused && l == selLayer
            grid.put(String(format: "%2d", l), x: rect.x, y: y,
                     style: isSelLayer ? Style(fg: t[.selectedFg], bg: t[.selectedBg]) : dim, maxX: rect.maxX)
            for (ri, ts) in cells[l].enumerated() {
                let x = rect.x + 3 + ri * cw
                guard let ts else { grid.put("  ·", x: x, y: y, style: dim, maxX: rect.maxX); continue }
                let label = cw >= 4 ? String(format: "%.1f", ts.bitsPerWeight) : String(format: "%.0f", ts.bitsPerWeight.rounded())
                let pad = max(0, cw - 1 - label.count)
                var cellText = String(repeating: " ", count: pad) + label
                if isSelLayer && ri == selRole { cellText = ">" + cellText.dropFirst() }
                grid.put(cellText, x: x, y: y, style: Style(fg: .rgb(0, 0, 0), bg: t.bits(ts.bitsPerWeight)), maxX: min(rect.maxX, x + cw - 1))
            }
            grid.put(formatBytes(layerBytes[l]), x: bytesX, y: y, style: text, maxX: rect.maxX)
            if showSens {
                // The layer's most sensitive matrix at about 3 bits.
                let kl = cells[l].compactMap { $0.flatMap { sens[$0.name].flatMap(Self.barSpec)?.kl } }.max()
                if let kl { grid.put(Self.bar(kl, width: sensWidth), x: sensX, y: y, style: Style(fg: t[.statusWarnFg], bg: bg), maxX: rect.maxX) }
            }
            y += 1
        }
        if nLayers > rows, rows > 0 {
            grid.put("\(scroll + 1)-\(min(nLayers, scroll + rows)) of \(nLayers) layers", x: rect.x, y: y, style: dim, maxX: rect.maxX)
        }
        y = rect.maxY - footer
        // The selected tensor (full screen) or the weights' measured quality.
        if context.focused, nLayers > 0, let ts = cells[selLayer][min(selRole, Self.roles.count - 1)] {
            var line = "\(ts.name.replacingOccurrences(of: ".weight", with: "")) \(ts.format) \(String(format: "%.2f", ts.bitsPerWeight))b"
            if let points = sens[ts.name], !points.isEmpty {
                line += " KL " + points.sorted { $0.bitsPerWeight < $1.bitsPerWeight }
                    .map { "\($0.spec) " + ($0.kl.map(Self.shortKL) ?? "-") }.joined(separator: " ")
            } else {
                line += sens.isEmpty ? " (no scan: effterm quant scan)" : " (not scanned)"
            }
            grid.put(line, x: rect.x, y: y, style: text, maxX: rect.maxX)
        } else if let q = model.weightsQuality {
            grid.put("quality " + q, x: rect.x, y: y, style: text, maxX: rect.maxX)
        } else if !sens.isEmpty {
            grid.put("KL@3b: one matrix at ~3 bits, log scale 1e-4..1 nat", x: rect.x, y: y, style: dim, maxX: rect.maxX)
        }
        if hasInfoLine { y += 1 }
        let formats = byFormat.sorted { $0.value.bytes > $1.value.bytes }
            .map { "\($0.key)×\($0.value.count)" }.joined(separator: " ")
        grid.put("total " + formatBytes(total), x: rect.x, y: y, style: Style(fg: t[.statusValueFg], bg: bg, attrs: .bold), maxX: rect.maxX)
        grid.put("  " + formats, x: rect.x + 6 + formatBytes(total).count, y: y, style: dim, maxX: rect.maxX)
        y += 1
        var x = rect.x
        x = grid.put("bits/w ", x: x, y: y, style: dim, maxX: rect.maxX)
        for (label, bits) in [("2", 2.0), ("3", 3.0), ("4", 4.5), ("5", 5.0), ("6", 6.0), ("8", 8.5), ("16", 16.0), ("32", 32.0)] {
            x = grid.put(label, x: x, y: y, style: Style(fg: .rgb(0, 0, 0), bg: t.bits(bits)), maxX: rect.maxX)
            x = grid.put(" ", x: x, y: y, style: text, maxX: rect.maxX)
        }
        y += 1
        let outside = model.tensors.filter { $0.layer == nil }
        if !outside.isEmpty {
            let s = outside.map { "\($0.name.replacingOccurrences(of: ".weight", with: "")) \($0.format) \(formatBytes($0.bytes))" }.joined(separator: ", ")
            grid.put(s, x: rect.x, y: y, style: dim, maxX: rect.maxX)
        }
    }
}
