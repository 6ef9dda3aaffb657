import EffEngine
import Foundation

/// The two status lines: model and technique toggles with measured speeds on the first;
/// memory, context and a notice or the main hotkeys on the second.
public enum StatusBar {
    public static func render(into grid: inout CellGrid, y: Int, width: Int, snapshot s: ChatSnapshot,
                              theme t: Theme, notice: (text: String, isWarning: Bool)?, keymap: Keymap) {
        let bg = t[.statusBg]
        let label = Style(fg: t[.statusFg], bg: bg), value = Style(fg: t[.statusValueFg], bg: bg, attrs: .bold)
        let key = Style(fg: t[.statusKeyFg], bg: bg, attrs: .bold)
        grid.fill(Rect(x: 0, y: y, width: width, height: height(for: s)), style: label)
        // Line 1: model | speeds | toggles (compact labels below 110 columns).
        let compact = width < 110
        var x = 1
        var model = s.model?.name ?? "no model"
        if compact, model.count > 12 { model = String(model.prefix(12)) }
        x = grid.put(model, x: x, y: y, style: value)
        x = grid.put(" │ ", x: x, y: y, style: label)
        if s.isGenerating {
            let rate = s.liveTokensPerSecond.map { String(format: " %.1f/s", $0) } ?? ""
            x = grid.put("● \(s.liveTokens) tok\(rate) ", x: x, y: y, style: Style(fg: t[.statusOkFg], bg: bg, attrs: .bold))
        }
        let st = s.lastStats
        let unit = compact ? " t/s" : " tok/s"
        x = grid.put(compact ? "dec " : "decode ", x: x, y: y, style: label)
        x = grid.put(st?.decodeTokensPerSecond.map { String(format: "%.1f", $0) + unit } ?? "-", x: x, y: y, style: value)
        x = grid.put(compact ? " pre " : "  prefill ", x: x, y: y, style: label)
        x = grid.put(st?.prefillTokensPerSecond.map { String(format: "%.0f", $0) + unit } ?? "-", x: x, y: y, style: value)
        x = grid.put(" │ ", x: x, y: y, style: label)
        let tech = s.techniques
        // A KV switch waiting for the answer to end shows as "f32→f16".
        let kv = s.pendingKV.map { tech.kv.name + "→" + $0.name } ?? tech.kv.name
        // Likewise "dense→sink4+win1020+evict" for a queued attention switch.
        let attn = s.pendingAttention.map { tech.attention.description + "→" + $0.description } ?? tech.attention.description
        var toggles = [("W", tech.weights.description), ("KV", kv), ("attn", attn)]
        if height(for: s) == 2 { toggles.append(("SoT", tech.sot.rawValue)) }  // else the SoT row says it
        for (k, v) in toggles {
            x = grid.put("\(k):", x: x, y: y, style: label)
            x = grid.put(v, x: x, y: y, style: value)
            x = grid.put(" ", x: x, y: y, style: label)
        }
        if height(for: s) == 3 { sotLine(into: &grid, y: y + 2, width: width, snapshot: s, theme: t, keymap: keymap) }
        // Line 2: memory | notice or hints.
        let y2 = y + 1
        x = 1
        x = grid.put("weights ", x: x, y: y2, style: label)
        x = grid.put(s.model.map { formatBytes($0.weightBytes) } ?? "-", x: x, y: y2, style: value)
        if let q = s.model?.weightsQuality { x = grid.put(" (\(q))", x: x, y: y2, style: label) }
        x = grid.put("  KV ", x: x, y: y2, style: label)
        x = grid.put(formatBytes(s.kvBytesInUse), x: x, y: y2, style: value)
        x = grid.put("  ctx ", x: x, y: y2, style: label)
        x = grid.put("\(s.contextUsed)/\(s.model?.contextMax ?? 0)", x: x, y: y2, style: value)
        if s.evictedTokens > 0 {
            // Evicted tokens are gone for good, whatever policy is on now.
            x = grid.put("  evicted ", x: x, y: y2, style: label)
            x = grid.put("\(s.evictedTokens)", x: x, y: y2, style: Style(fg: t[.statusWarnFg], bg: bg, attrs: .bold))
        }
        x = grid.put(" │ ", x: x, y: y2, style: label)
        if let notice {
            grid.put(notice.text, x: x, y: y2, style: Style(fg: notice.isWarning ? t[.statusWarnFg] : t[.statusOkFg], bg: bg, attrs: .bold))
        } else if let e = s.saveError {
            // A failed autosave stays on screen until a retry succeeds (issue 14).
            grid.put("not saved, retrying: " + e, x: x, y: y2, style: Style(fg: t[.statusWarnFg], bg: bg, attrs: .bold))
        } else if let w = s.warning {
            grid.put(w, x: x, y: y2, style: Style(fg: t[.statusWarnFg], bg: bg))
        } else {
            for (a, name) in [(Action.help, "help"), (.save, "save"), (.stop, "stop"), (.cyclePanel, "panel"), (.quit, "quit")] {
                guard let k = keymap.keys[a]?.first else { continue }
                x = grid.put(shortName(k), x: x, y: y2, style: key)
                x = grid.put(" \(name)  ", x: x, y: y2, style: label)
            }
        }
    }
}

extension StatusBar {
    /// Rows the status bar takes: a third row for Skeleton-of-Thought once it is on or ran.
    public static func height(for s: ChatSnapshot) -> Int {
        s.sotMode != .off || s.sot != nil ? 3 : 2
    }

    /// "SoT on │ expanding B=5 │ skeleton 312 ms │ expansion 840 ms │ r(B) 2.14 │ 1.15 s vs normal ≈ 1.62 s".
    static func sotLine(into grid: inout CellGrid, y: Int, width: Int, snapshot s: ChatSnapshot,
                        theme t: Theme, keymap: Keymap) {
        let bg = t[.statusBg]
        let label = Style(fg: t[.statusFg], bg: bg), value = Style(fg: t[.statusValueFg], bg: bg, attrs: .bold)
        let live = Style(fg: t[.statusOkFg], bg: bg, attrs: .bold)
        var x = grid.put(" SoT ", x: 0, y: y, style: label)
        x = grid.put(s.sotMode.rawValue, x: x, y: y, style: value)
        func part(_ name: String, _ v: String, _ st: Style? = nil) {
            x = grid.put(" │ ", x: x, y: y, style: label)
            if !name.isEmpty { x = grid.put(name + " ", x: x, y: y, style: label) }
            x = grid.put(v, x: x, y: y, style: st ?? value)
        }
        guard let status = s.sot else {
            let keys = [Action.cycleSoT, .compare].compactMap { a in keymap.keys[a]?.first.map { (shortName($0), a) } }
            for (k, a) in keys { part(k, a == .cycleSoT ? "mode" : "A/B compare") }
            return
        }
        let sot = status.measured
        switch status.stage {
        case .routing: part("", "routing…", live)
        case .calibrating: part("", "measuring r(B) for these weights (once)…", live)
        case .skeleton: part("", "skeleton…", live)
        case .expanding: part("", "expanding B=\(sot.streams)" + Self.waves(sot), live)
        case .fallback: part("", "fell back: \(sot.fallbackReason ?? "")", Style(fg: t[.statusWarnFg], bg: bg, attrs: .bold))
        case .normal: part("", "normal decoding", live)
        case .done:
            if let reason = sot.fallbackReason, sot.streams == 0 {
                part("", "fell back to normal decoding: \(reason)", Style(fg: t[.statusWarnFg], bg: bg, attrs: .bold))
            } else {
                part("", sot.streams > 0 ? "done B=\(sot.streams)" + Self.waves(sot) : "done")
            }
        case .stopped: part("", "stopped")
        }
        if status.stage == .normal || (status.stage == .done && sot.skeletonSeconds == nil), let r = status.router {
            part("router", r)
        }
        let ms: (Double) -> String = { String(format: "%.0f ms", $0 * 1000) }
        if let v = sot.skeletonSeconds { part("skeleton", ms(v)) }
        if let v = sot.expansionSeconds, sot.streams > 0 { part("expansion", ms(v)) }
        if let r = sot.stepRatio { part("r(B)", String(format: "%.2f", r)) }
        if let total = sot.totalSeconds, let normal = sot.normalEstimateSeconds, total > 0 {
            let speed = normal / total
            part("", String(format: "%.2f s vs normal ≈ %.2f s (%.2fx %@)", total, normal,
                            speed >= 1 ? speed : 1 / speed, speed >= 1 ? "faster" : "slower"),
                 Style(fg: speed >= 1 ? t[.statusOkFg] : t[.statusWarnFg], bg: bg, attrs: .bold))
        } else if let total = sot.totalSeconds, status.stage == .done {
            part("total", String(format: "%.2f s", total))
        }
        if let r = status.router, sot.skeletonSeconds != nil { part("router", r) }
    }

    /// " in waves of 4" when the measured r(B) split the points into waves.
    static func waves(_ sot: SoTTurnRecord) -> String {
        guard let w = sot.waveSize, w < sot.streams else { return "" }
        return " in waves of \(w) (r(B) measured)"
    }

    /// Compact key names for the status line: ctrl-s -> ^S, f1 -> F1, esc -> Esc.
    static func shortName(_ k: KeyEvent) -> String {
        switch k {
        case .ctrl(let c): return "^" + c.uppercased()
        case .function(let n): return "F\(n)"
        case .escape: return "Esc"
        case .tab: return "Tab"
        default: return k.name
        }
    }
}
