import EffEngine
import Foundation

/// The `effterm chat` workbench: owns the terminal side of the loop. Each step reads keys,
/// turns them into edits or engine commands, drains the engine's events, takes its newest
/// snapshot and, when anything changed, renders every pane into a `CellGrid` and presents it
/// (the screen writes only changed cells). Runs on one thread; talks to the engine actor
/// only through a serial command stream, so it never waits for generation.
public final class ChatApp {
    enum Command: Sendable { case send(String), stop, save, export, newSession, cycleSoT, cycleKV, cycleAttention, cycleWeights, compare, vote(String) }

    public let screen: Screen
    public let engine: ChatEngine
    public private(set) var theme: Theme
    public var themeNames: [String]
    let catalog: ThemeCatalog?
    public private(set) var keymap: Keymap
    public let panels: [Panel]
    public private(set) var panelIndex: Int?
    public private(set) var fullPanel = false
    public private(set) var editor = LineEditor()
    public private(set) var log = ChatLog()
    public internal(set) var scroll = 0
    public private(set) var showHelp = false
    /// The A/B comparison on screen, if any.
    public private(set) var compareView: CompareView?
    public var showStats: Bool
    public private(set) var running = true
    public let latency = LatencyStats()
    var notice: (text: String, isWarning: Bool, until: Double)?
    private var snapshotVersion: UInt64 = .max
    private var dirty = true
    /// The open panel's `contentVersion` at the last frame.
    private var panelVersion: UInt64 = 0
    private var pendingKeyTimes: [Double] = []
    private let commands: AsyncStream<Command>.Continuation
    var lineCache: [Int: (key: String, lines: [StyledLine])] = [:]
    var chatPageHeight = 10

    public init(screen: Screen, engine: ChatEngine, theme: Theme, themeNames: [String] = [],
                catalog: ThemeCatalog? = nil, keymap: Keymap = Keymap(), panels: [Panel],
                showStats: Bool = false, startupNotices: [String] = []) {
        self.screen = screen; self.engine = engine; self.theme = theme
        self.themeNames = themeNames; self.catalog = catalog; self.keymap = keymap
        self.panels = panels; self.showStats = showStats
        panelIndex = panels.isEmpty ? nil : 0
        let (stream, cont) = AsyncStream.makeStream(of: Command.self)
        commands = cont
        Task.detached { [engine] in
            for await c in stream {
                switch c {
                case .send(let t): await engine.send(t)
                case .stop: await engine.stop()
                case .save: await engine.save()
                case .export: await engine.exportMarkdown()
                case .newSession: await engine.newSession()
                case .cycleSoT: await engine.cycleSoTMode()
                case .cycleKV: await engine.cycleKVFormat()
                case .cycleAttention: await engine.cycleAttention()
                case .cycleWeights: await engine.cycleWeights()
                case .compare: await engine.compare()
                case .vote(let v): await engine.vote(v)
                }
            }
        }
        for n in startupNotices { log.apply(.notice(n, isWarning: true)) }
    }

    deinit { commands.finish() }

    /// Runs until quit or until `interrupted()` returns true (checked every step).
    public func run(interrupted: () -> Bool) {
        while running && !interrupted() { step(timeoutMs: 16) }
    }

    /// One loop iteration: waits up to `timeoutMs` for a key unless a redraw is pending.
    public func step(timeoutMs: Int) {
        var handled = 0
        if let k = screen.readKey(timeoutMs: dirty ? 0 : timeoutMs) {
            let t0 = monotonicMs()
            handle(k); handled += 1
            pendingKeyTimes.append(t0)
            // Keys typed (or pasted without bracketing) faster than a frame go in one frame.
            while handled < 512, let k2 = screen.readKey(timeoutMs: 0) {
                handle(k2); handled += 1
            }
        }
        let busyStart = monotonicMs()
        for e in engine.events.drain() { apply(e); dirty = true }
        let snap = engine.snapshots.latest
        if snap.version != snapshotVersion { snapshotVersion = snap.version; dirty = true }
        if let panel = currentPanel, panel.contentVersion != panelVersion {
            panelVersion = panel.contentVersion
            dirty = true
        }
        if let n = notice, n.until < busyStart { notice = nil; dirty = true }
        guard dirty else { return }
        let r0 = monotonicMs()
        let (grid, cursor) = frame(snapshot: snap.value)
        let r1 = monotonicMs()
        screen.present(grid, cursor: cursor)
        let done = monotonicMs()
        dirty = false
        for t in pendingKeyTimes { latency.record(done - t, generating: snap.value.isGenerating) }
        pendingKeyTimes.removeAll()
        latency.frame(renderMs: r1 - r0, busyMs: done - busyStart)
    }

    func apply(_ e: ChatEvent) {
        if case .notice(let text, let warn) = e { flash(text, warn) }
        if case .compare(let c) = e {
            if case .started(let q, let modes) = c { compareView = CompareView(question: q, modes: modes) }
            else { compareView?.apply(c) }
        }
        if case .userMessage = e { scroll = 0 }
        log.apply(e)
    }

    func flash(_ text: String, _ warning: Bool) {
        notice = (text, warning, monotonicMs() + (warning ? 8000 : 5000))
    }

    // MARK: keys

    public func handle(_ key: KeyEvent) {
        dirty = true
        if key == .resize { screen.invalidate(); return }
        if showHelp {
            if key == .escape || keymap.action(for: key) == .help || key == .char("?") { showHelp = false }
            else if let a = keymap.action(for: key), a == .quit { running = false }
            return
        }
        let focusedPanel = currentPanel.flatMap { _ in isPanelFullScreen ? currentPanel : nil }
        if let p = focusedPanel, fullPanel {
            if key == .escape { fullPanel = false; return }
            if p.handle(key) { return }
        }
        if compareView != nil, handleCompare(key) { return }
        if key == .char("?") && editor.isEmpty { showHelp = true; return }
        if let action = keymap.action(for: key) { perform(action); return }
        switch editor.handle(key) {
        case .submitted(let text): commands.yield(.send(text)); scroll = 0
        case .edited, .ignored: break
        }
    }

    var currentPanel: Panel? { panelIndex.map { panels[$0] } }
    var isPanelFullScreen: Bool { panelIndex != nil && fullPanel }
    var isNarrow: Bool { screen.size.width < ChatApp.panelMinWidth }

    /// Below this width the side panel is hidden (Tab shows it full screen instead).
    public static let panelMinWidth = 100

    public func perform(_ action: Action) {
        dirty = true
        switch action {
        case .help: showHelp.toggle()
        case .quit: running = false
        case .stop:
            if engine.snapshots.latest.value.isGenerating { commands.yield(.stop) }
            else if fullPanel { fullPanel = false }
        case .save: commands.yield(.save)
        case .exportMarkdown: commands.yield(.export)
        case .newSession: commands.yield(.newSession)
        case .cycleTheme: cycleTheme()
        case .cyclePanel:
            guard !panels.isEmpty else { flash("no panels", true); return }
            if isNarrow {
                // No room beside the chat: Tab walks chat -> each panel full screen -> chat.
                if !fullPanel { fullPanel = true; panelIndex = panelIndex ?? 0 }
                else if let i = panelIndex, i + 1 < panels.count { panelIndex = i + 1 }
                else { fullPanel = false; panelIndex = 0 }
            } else {
                if let i = panelIndex { panelIndex = i + 1 < panels.count ? i + 1 : nil } else { panelIndex = 0 }
                if panelIndex == nil { fullPanel = false }
            }
        case .fullPanel:
            if panelIndex == nil { panelIndex = panels.isEmpty ? nil : 0 }
            fullPanel = panelIndex != nil && !fullPanel
        case .panelBits, .panelAttn, .panelDiff:
            if let i = panels.firstIndex(where: { $0.action == action }) {
                if isNarrow {
                    let open = fullPanel && panelIndex == i
                    panelIndex = i; fullPanel = !open
                } else {
                    panelIndex = panelIndex == i && !fullPanel ? nil : i
                }
            } else { flash("that panel is not available in this build", true) }
        case .scrollUp: scroll += max(1, chatPageHeight - 1)
        case .scrollDown: scroll = max(0, scroll - max(1, chatPageHeight - 1))
        case .scrollTop: scroll = Int.max / 2
        case .scrollBottom: scroll = 0
        case .stats: showStats.toggle()
        case .cycleSoT: commands.yield(.cycleSoT)
        case .cycleKV: commands.yield(.cycleKV)
        case .cycleAttention: commands.yield(.cycleAttention)
        case .cycleWeights: commands.yield(.cycleWeights)
        case .compare: commands.yield(.compare)
        }
    }

    /// Keys while the A/B comparison is on screen; false lets the key fall through (quit).
    func handleCompare(_ key: KeyEvent) -> Bool {
        guard let view = compareView else { return false }
        if let a = keymap.action(for: key), a == .quit || a == .help { return false }
        switch key {
        case .pageUp, .wheelUp: compareView?.scroll = max(0, view.scroll - max(1, chatPageHeight / 2)); return true
        case .pageDown, .wheelDown: compareView?.scroll = view.scroll + max(1, chatPageHeight / 2); return true
        default: break
        }
        switch view.phase {
        case .running:
            if key == .escape { commands.yield(.stop) }
        case .ready:
            switch key {
            case .char("1"), .char("a"), .char("A"): commands.yield(.vote("A"))
            case .char("2"), .char("b"), .char("B"): commands.yield(.vote("B"))
            case .char("3"), .char("t"), .char("="): commands.yield(.vote("tie"))
            case .escape: commands.yield(.vote("skipped"))
            default: break
            }
        case .recorded, .failed:
            if key == .escape || key == .enter || key == .char("q") { compareView = nil }
        }
        return true
    }

    func cycleTheme() {
        guard let catalog, !themeNames.isEmpty else { flash("no theme files found", true); return }
        let i = themeNames.firstIndex(of: theme.name).map { ($0 + 1) % themeNames.count } ?? 0
        setTheme(catalog.load(themeNames[i]))
    }

    /// Switches theme live; diagnostics from the file show as a warning.
    public func setTheme(_ loaded: (Theme, [ThemeDiagnostic])) {
        theme = loaded.0
        lineCache.removeAll()
        if let d = loaded.1.first {
            flash("theme \(theme.name): \(d)" + (loaded.1.count > 1 ? " (+\(loaded.1.count - 1) more)" : ""), true)
        } else { flash("theme \(theme.name)", false) }
        dirty = true
    }
}
