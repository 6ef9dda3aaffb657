import EffTechniques
import ArgumentParser
import EffEngine
import EffTUI
import Foundation

/// `effterm chat`: the interactive workbench.
struct ChatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat with the local LLM in the terminal workbench (panels, themes, transcripts).",
        discussion: """
        Keys: F1 or ? (empty input) shows every binding. Enter sends, Alt-Enter or Ctrl-J adds \
        a line, Esc stops an answer (its text is kept), Tab cycles the side panels (bits, attn), \
        Ctrl-S saves, Ctrl-T switches theme, Ctrl-Q quits. F7 cycles Skeleton-of-Thought \
        (off, on: skeleton first then every point expanded at once; auto: a router on the \
        model's hidden states decides per question), F8 reruns the last question both ways \
        and shows the answers blind as A and B for your verdict. Every turn is autosaved as JSON \
        Lines in Sessions/ (when it exists in the working directory) or \
        $XDG_DATA_HOME/effterm/sessions. Bindings can be changed in \
        $XDG_CONFIG_HOME/effterm/keymap (`action = key, key`).
        """)

    @Option(help: "GGUF model file (default: EFFTERM_MODEL, else the cached SmolLM2, pulled on first use).")
    var model: String?

    @Option(help: "Theme name (a file Themes/NAME.theme) or path to a .theme file.")
    var theme: String = "default"

    @Option(help: "Where transcripts are written and looked up.")
    var sessionsDir: String?

    @Option(help: "Continue a session: `latest` or a transcript file.")
    var resume: String?

    @Option(help: "System prompt for a new session.")
    var system: String?

    @Option(help: "Sampling temperature (0 = greedy).")
    var temp: Double = 0.2

    @Option(help: "Random seed (recorded in the transcript).")
    var seed: UInt64 = 42

    @Option(help: "Most tokens per answer.")
    var maxTokens: Int = 512

    @Flag(help: "Show the latency/frame stats overlay and print the latency summary on exit.")
    var stats = false

    @Flag(help: "Do not capture the mouse (wheel scrolling off; terminal selection works).")
    var noMouse = false

    @Option(help: "Force a colour depth: truecolor, 256 or 8 (default: detect).")
    var colors: String?

    @Option(help: "Measure attention for the attn panel every N decode steps (observed steps use the slower reference attention; 0 = never).")
    var attentionEvery: Int = 8

    @Option(help: "Skeleton-of-Thought mode to start in: off, on or auto (F7 cycles it).")
    var sot: String = "off"

    @Option(help: .hidden)
    var scriptedBackend: String?

    func validate() throws {
        guard SoTMode(rawValue: sot) != nil else {
            throw ValidationError("--sot must be off, on or auto (found \(sot))")
        }
    }

    @OptionGroup var compute: ComputeOptions
    @OptionGroup var kv: KVOption

    func run() async throws {
        compute.apply()
        var settings = GenerationSettings(maxTokens: maxTokens)
        settings.sampler.temperature = Float(temp)
        settings.sampler.seed = seed
        // Greedy decoding is argmax: no repetition penalty (as `effterm run --temp 0`).
        if temp == 0 { settings.sampler.repeatPenalty = 1 }
        let backend = try makeBackend(settings: settings)
        let dir = sessionsDir.map { URL(fileURLWithPath: $0) } ?? SessionStore.defaultDirectory()
        let store = SessionStore(directory: dir)
        // Saved weight plans and the newest sensitivity scan of this model file (Ctrl-P, bits panel).
        let weightChoices = (backend as? LlamaChatBackend).map { ChatWeights.attach(to: $0) } ?? []
        let engine = ChatEngine(backend: backend, settings: settings, system: system, store: store)
        if let mode = SoTMode(rawValue: sot), mode != .off { await engine.setSoTMode(mode) }
        await engine.setWeightChoices(weightChoices)
        // Saved MoA plans for this model join the attention cycle (Ctrl-O / F11).
        if let llama = backend as? LlamaChatBackend {
            let c = llama.config
            let plans = AttnStore.plans(fingerprint: llama.info.sha256, layers: c.nLayers, kvHeads: c.nKVHeads)
            await engine.setAttentionPlans(plans)
            // Dense answers measure how much attention mass the first plan would keep (attn panel).
            llama.setMeasuredPlan(plans.first)
        }
        var notices: [String] = []
        // A failed autosave shows in the status bar until a retry succeeds.
        let snapshots = engine.snapshots
        await store.onSaveStatus { error in snapshots.update { $0.saveError = error } }
        if let resume {
            let url = try SessionStore.resolve(resume, in: dir)
            let (transcript, note) = try SessionStore.loadForResume(url)
            await engine.resume(transcript, file: url)
            // After the resume's own events, so the conversation view keeps it.
            if let note { engine.events.push(.notice(note, isWarning: true)) }
        } else {
            await engine.beginSession()
        }
        var keymap = Keymap()
        let keymapFile = Keymap.defaultFile()
        if let data = FileManager.default.contents(atPath: keymapFile.path) {
            notices += keymap.apply(String(decoding: data, as: UTF8.self), file: keymapFile.path)
        }
        let catalog = ThemeCatalog.standard()
        let loaded = catalog.load(theme)
        notices += loaded.1.map(\.description)
        let depth = try colors.map { c -> ColorDepth in
            guard let d = ColorDepth(rawValue: c) else { throw ValidationError("--colors must be truecolor, 256 or 8") }
            return d
        }
        let options = UIOptions(mouse: !noMouse, depth: depth, stats: stats)
        let exit = await ChatUI.run(engine: engine, theme: loaded.0, themeNames: catalog.names(), catalog: catalog,
                                    keymap: keymap, notices: notices, options: options)
        if let unsaved = await store.saveBeforeExit() { FileHandle.standardError.write(Data(unsaved.utf8)) }
        if stats { FileHandle.standardError.write(Data(exit.statsSummary.utf8)) }
        if exit.signal != 0 { Foundation.exit(128 + exit.signal) }
    }

    func makeBackend(settings: GenerationSettings) throws -> ChatBackend {
        if let script = scriptedBackend {
            // Development aid: a scripted fake (no model) that streams the given text.
            let words = script.split(separator: " ", omittingEmptySubsequences: false).map { String($0) + " " }
            let backend = ScriptedChatBackend(answers: [words], delayPerPiece: 0.05)
            backend.sotScript = ScriptedSoTSupport(
                skeleton: " Plan the day\n2. Take breaks\n3. Sleep well\n", expansionWords: words.prefix(40).map { $0.trimmingCharacters(in: .whitespaces) },
                delayPerStep: 0.05)
            return backend
        }
        return try ChatBackendLoader.open(explicitPath: model, command: "chat",
                                          attentionSampleEvery: max(0, attentionEvery), kv: kv.format).backend
    }
}
