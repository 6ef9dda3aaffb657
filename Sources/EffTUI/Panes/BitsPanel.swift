import EffEngine
import Foundation

/// The bits panel: the loaded model's real tensor formats as a layers x {q,k,v,o,gate,up,down}
/// map, each cell coloured by storage bits per weight, with bytes per layer and the total.
public final class BitsPanel: Panel {
    public let id = "bits"
    public let action: Action? = .panelBits
    public static let roles: [TensorRole] = [.q, .k, .v, .o, .gate, .up, .down]
    private var scroll = 0

    public init() {}

    public var helpLines: [(key: String, text: String)] { [("up/down", "scroll layers")] }

    public func handle(_ key: KeyEvent) -> Bool {
        switch key {
        case .up: scroll = max(0, scroll - 1); return true
        case .down: scroll += 1; return true
        default: return false
        }
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
        // Column widths: label 3, 7 cells of cw, bytes.
        let cw = rect.width >= 48 ? 5 : rect.width >= 38 ? 4 : 3
        let bytesX = rect.x + 3 + Self.roles.count * cw + 1
        var y = rect.y
        var header = "L  "
        for r in Self.roles { header += String(r.rawValue.prefix(cw - 1)).padding(toLength: cw, withPad: " ", startingAt: 0) }
        grid.put(header, x: rect.x, y: y, style: Style(fg: t[.title], bg: bg, attrs: .bold), maxX: rect.maxX)
        grid.put("bytes", x: bytesX, y: y, style: Style(fg: t[.title], bg: bg, attrs: .bold), maxX: rect.maxX)
        y += 1
        let footer = 3
        var rows = max(0, rect.maxY - y - footer)
        if rows < nLayers { rows = max(0, rows - 1) }   // one row for "a-b of n layers"
        scroll = min(scroll, max(0, nLayers - rows))
        for l in scroll..<min(nLayers, scroll + rows) {
            grid.put(String(format: "%2d", l), x: rect.x, y: y, style: dim, maxX: rect.maxX)
            for (ri, ts) in cells[l].enumerated() {
                let x = rect.x + 3 + ri * cw
                guard let ts else { grid.put("  ·", x: x, y: y, style: dim, maxX: rect.maxX); continue }
                let label = cw >= 4 ? String(format: "%.1f", ts.bitsPerWeight) : String(format: "%.0f", ts.bitsPerWeight.rounded())
                let pad = max(0, cw - 1 - label.count)
                let cellText = String(repeating: " ", count: pad) + label
                grid.put(cellText, x: x, y: y, style: Style(fg: .rgb(0, 0, 0), bg: t.bits(ts.bitsPerWeight)), maxX: min(rect.maxX, x + cw - 1))
            }
            grid.put(formatBytes(layerBytes[l]), x: bytesX, y: y, style: text, maxX: rect.maxX)
            y += 1
        }
        if nLayers > rows, rows > 0 {
            grid.put("\(scroll + 1)-\(min(nLayers, scroll + rows)) of \(nLayers) layers", x: rect.x, y: y, style: dim, maxX: rect.maxX)
        }
        y = rect.maxY - footer
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
