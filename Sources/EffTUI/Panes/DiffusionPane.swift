import EffCore
import EffDiffusion
import EffEngine
import Foundation

/// The diff panel: the DiT's current x̂₀ preview growing sharper step by step (half blocks),
/// a strip of thumbnails for past steps, and the class, sampler, steps, guidance and ms/step.
/// Generation runs on `DiffusionEngine` (its own compute thread); this panel only renders
/// the engine's newest snapshot and sends it commands.
public final class DiffusionPanel: Panel {
    public let id = "diff"
    public let action: Action? = .panelDiff
    public static let stepChoices = [4, 6, 8, 10, 15, 20, 30, 50, 100, 250]
    public static let samplers: [SamplerKind] = [.dpmpp2m, .ddim, .ddpm]
    private let engine: DiffusionEngine
    private let send: (@escaping @Sendable () async -> Void) -> Void
    public private(set) var classID = 0
    public private(set) var stepIndex = 5     // 20 steps
    public private(set) var samplerIndex = 0
    public private(set) var guidance: Float = 3
    public private(set) var seed: UInt64 = 0
    /// What the block linears run as (`w` cycles), and whether a job first samples the f32
    /// baseline on the same noise to show both with their PSNR (`c`).
    public private(set) var weights: DiTWeightsChoice = .f32
    public private(set) var compare = false
    /// DiTFastAttn plan (`a` cycles) and timestep schedule (`u` toggles USF).
    public private(set) var attention: DiTAttentionChoice = .full
    public private(set) var schedule: DiTScheduleChoice = .solver

    /// `send` runs an engine call off the UI thread (default: a detached task).
    public init(engine: DiffusionEngine,
                send: @escaping (@escaping @Sendable () async -> Void) -> Void = { job in Task.detached { await job() } }) {
        self.engine = engine
        self.send = send
    }

    /// Changes whenever the engine publishes (a UI loop can redraw on change).
    public var contentVersion: UInt64 { engine.snapshots.latest.version }

    public var request: GenerationRequest {
        GenerationRequest(classID: classID, sampler: Self.samplers[samplerIndex], steps: Self.stepChoices[stepIndex],
                          guidance: guidance, seed: seed)
    }

    public var helpLines: [(key: String, text: String)] {
        [("enter/g", "generate (n: new seed)"), ("left/right", "class"), ("up/down", "steps"),
         ("s", "sampler"), ("+/-", "guidance"),
         ("w", "weights: f32 -> W8A8 -> W8A8-static -> W4A8 -> mixed 6.5 bpw"),
         ("a", "attention: full -> DiTFastAttn 0.05 -> 0.15 (plan searched on first use, map shown)"),
         ("u", "schedule: default -> USF timesteps -> OMS dit-small/dit-base per step (dpmpp2m)"),
         ("c", "compare with the f32 baseline on the same noise (PSNR, ms)"), ("x", "cancel")]
    }

    public func handle(_ key: KeyEvent) -> Bool {
        let nClasses = max(1, engine.snapshots.latest.value.classes.count)
        switch key {
        case .left: classID = (classID + nClasses - 1) % nClasses
        case .right: classID = (classID + 1) % nClasses
        case .up: stepIndex = min(Self.stepChoices.count - 1, stepIndex + 1)
        case .down: stepIndex = max(0, stepIndex - 1)
        case .char("s"): samplerIndex = (samplerIndex + 1) % Self.samplers.count
        case .char("+"), .char("="): guidance = min(10, guidance + 0.5)
        case .char("-"): guidance = max(0, guidance - 0.5)
        case .char("n"): seed &+= 1; start()
        case .char("w"): weights = weights.next
        case .char("a"): attention = attention.next
        case .char("u"): schedule = schedule.next
        case .char("c"): compare.toggle()
        case .enter, .char("g"): start()
        case .char("x"): let e = engine; send { await e.cancel() }
        default: return false
        }
        return true
    }

    private func start() {
        let e = engine, r = request, w = weights, c = compare, a = attention, u = schedule
        send { await e.generate(r, weights: w, compare: c, attention: a, schedule: u) }
    }

    public func render(into grid: inout CellGrid, rect: Rect, context: PanelContext) {
        let t = context.theme, bg = t[.mainBg]
        let text = Style(fg: t[.mainFg], bg: bg), dim = Style(fg: t[.dimFg], bg: bg)
        let title = Style(fg: t[.title], bg: bg, attrs: .bold)
        grid.fill(rect, style: text)
        let snap = engine.snapshots.latest.value
        var y = rect.y
        let className = snap.classes.indices.contains(classID) ? snap.classes[classID] : "class \(classID)"
        let r = request
        var x = grid.put(className, x: rect.x, y: y, style: title, maxX: rect.maxX)
        grid.put("  \(r.sampler.rawValue) \(r.sampler == .ddpm ? 999 : r.steps) steps  cfg \(String(format: "%.1f", r.guidance))  seed \(r.seed)",
                 x: x, y: y, style: dim, maxX: rect.maxX)
        y += 1
        // The next job's settings; the running job's weights and their size once known.
        var line = "weights \(weights.rawValue)" + (compare ? "  compare: on" : "")
        if snap.weights != weights || snap.blockMiB == nil { line += "  (w: cycle, c: compare)" }
        if snap.weights == weights, let mib = snap.blockMiB { line += String(format: "  blocks %.2f MiB", mib) }
        let plain = weights == .f32 && attention == .full && schedule == .solver
        grid.put(line, x: rect.x, y: y, style: plain ? dim : text, maxX: rect.maxX)
        y += 1
        if attention != .full || schedule != .solver {
            grid.put("attn \(attention.rawValue)  schedule \(schedule.rawValue)", x: rect.x, y: y, style: text, maxX: rect.maxX)
            y += 1
        }
        if let note = snap.scheduleNote, snap.schedule == schedule, schedule != .solver {
            grid.put(note, x: rect.x, y: y, style: dim, maxX: rect.maxX)
            y += 1
        }
        let status: String
        switch snap.phase {
        case .idle: status = snap.classes.isEmpty ? "press enter (focused) to load the DiT and generate" : "ready: enter generates"
        case .loading: status = "loading \(snap.modelName)..."
        case .running: status = "step \(snap.step)/\(snap.steps)  " + String(format: "%.1f ms/step", snap.msPerStep)
        case .done: status = "done \(snap.steps) steps  " + String(format: "%.1f ms/step, %.0f ms/image", snap.msPerStep, snap.msTotal)
        case .cancelled: status = "cancelled at step \(snap.step)/\(snap.steps)"
        case .preparing(let what): status = "\(snap.weights.rawValue): \(what)"
        case .baseline: status = "sampling the f32 baseline for the comparison..."
        case .failed(let m): status = "error: \(m)"
        }
        x = grid.put(status, x: rect.x, y: y, style: snap.phase == .running ? text : dim, maxX: rect.maxX)
        y += 1
        // The DiTFastAttn plan: one row per block, one column per step (F full, W window +
        // residual, C CFG-shared, w both, S step-shared), when the panel has room for it.
        if let map = snap.planMap, snap.attention == attention, rect.height >= 14 + map.count {
            for (l, row) in map.enumerated() {
                let label = "b\(l) "
                let x0 = grid.put(label, x: rect.x, y: y, style: dim, maxX: rect.maxX)
                var cx = x0
                for ch in row where cx < rect.maxX {
                    let st = ch == "F" ? dim : ch == "S" ? Style(fg: t[.title], bg: bg) : text
                    cx = grid.put(String(ch), x: cx, y: y, style: st, maxX: rect.maxX)
                }
                y += 1
            }
        }
        y += 1
        // Preview: as large as fits above a 4-row thumbnail strip (1 cell = 1x2 pixels).
        let stripRows = rect.height >= 16 ? 5 : 0
        let previewRows = max(0, rect.maxY - y - stripRows)
        if let base = snap.baselineImage, previewRows > 2 {
            // Side by side: the f32 baseline and this job's image, each labelled.
            let half = (rect.width - 1) / 2, imgRows = previewRows - 1
            let left = String(format: "f32 %.0f ms", snap.baselineMs ?? 0)
            var right = snap.weights.rawValue
            if snap.phase == .done { right += String(format: " %.0f ms", snap.msTotal) }
            if let p = snap.psnr { right += p.isFinite ? String(format: "  PSNR %.1f dB", p) : "  identical" }
            grid.put(left, x: rect.x, y: y, style: dim, maxX: rect.x + half)
            grid.put(right, x: rect.x + half + 1, y: y, style: text, maxX: rect.maxX)
            let fb = HalfBlockImage.fit(base, maxWidth: half, maxHeight: imgRows * 2)
            HalfBlockImage.draw(fb, into: &grid, x: rect.x + max(0, (half - fb.width) / 2), y: y + 1)
            if let img = snap.preview, snap.phase != .baseline {
                let fi = HalfBlockImage.fit(img, maxWidth: half, maxHeight: imgRows * 2)
                HalfBlockImage.draw(fi, into: &grid, x: rect.x + half + 1 + max(0, (half - fi.width) / 2), y: y + 1)
            }
        } else if let img = snap.preview, previewRows > 0 {
            let fitted = HalfBlockImage.fit(img, maxWidth: rect.width, maxHeight: previewRows * 2)
            let px = rect.x + max(0, (rect.width - fitted.width) / 2)
            HalfBlockImage.draw(fitted, into: &grid, x: px, y: y)
        }
        guard stripRows > 0, !snap.thumbnails.isEmpty else { return }
        // Thumbnail strip: newest last, 8x8 pixels (8 cells x 4 rows) each, one cell apart.
        let sy = rect.maxY - 4, per = 9
        let fitCount = max(1, (rect.width + 1) / per)
        let shown = snap.thumbnails.suffix(fitCount)
        for (i, th) in shown.enumerated() {
            HalfBlockImage.draw(HalfBlockImage.fit(th, maxWidth: 8, maxHeight: 8), into: &grid, x: rect.x + i * per, y: sy)
        }
    }
}
