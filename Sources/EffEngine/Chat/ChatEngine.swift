import EffCore
import EffTechniques
import Foundation

/// Owns a conversation and its model: accepts user messages, runs each answer on a compute
/// thread (never on the cooperative pool), streams text to the UI through a lossless
/// `EventQueue`, publishes `ChatSnapshot`s (newest wins) and autosaves every turn.
public actor ChatEngine {
    /// A backend handed across threads; only one compute thread uses it at a time.
    final class BackendBox: @unchecked Sendable {
        let backend: ChatBackend
        init(_ b: ChatBackend) { backend = b }
    }

    public nonisolated let events = EventQueue<ChatEvent>()
    public nonisolated let snapshots: SnapshotBox<ChatSnapshot>
    public let store: SessionStore?
    let box: BackendBox
    let settings: GenerationSettings
    private var system: String?
    private var techniques = TechniqueConfig()
    /// A KV format asked for while an answer ran: applied when it finishes (a safe point).
    private var pendingKV: KVFormat?
    /// An attention policy asked for while an answer ran: applied when it finishes.
    private var pendingAttention: AttentionSpec?
    /// Weights asked for while an answer ran: built and installed when it finishes.
    private var pendingWeights: WeightChoice?
    /// What Ctrl-P cycles through (`WeightChoice.chatCycle`), set by the chat command.
    public var weightChoices: [WeightChoice] = []
    /// A finished A/B comparison waiting for the person's verdict.
    var pendingCompare: CompareRecord?
    private(set) var messages: [TurnMessage] = []
    var cancel: CancellationFlag?
    var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init(backend: ChatBackend, settings: GenerationSettings, system: String?, store: SessionStore?) {
        box = BackendBox(backend)
        self.settings = settings
        self.system = system
        self.store = store
        techniques.kv = backend.kvFormat
        techniques.attention = backend.attention
        techniques.weights = backend.weights
        var snap = ChatSnapshot()
        snap.model = backend.info
        snap.techniques = techniques
        snapshots = SnapshotBox(snap)
        if let system, !system.isEmpty { messages = [TurnMessage(role: "system", content: system)] }
    }

    /// The conversation so far (for tests and export).
    public var conversation: [TurnMessage] { messages }
    public var isBusy: Bool { busy }

    /// Starts a fresh transcript file (written at the first autosave).
    public func beginSession() async {
        guard let store else { return }
        let info = box.backend.info
        await store.begin(TranscriptHeader(modelName: info.name, modelSHA256: info.sha256,
                                           templateHash: info.templateHash, sampler: settings, system: system))
        await publishSessionInfo()
    }

    /// Accepts a user message and starts the answer; ignored (with a notice) while busy.
    /// With SoT `on` (or `auto` and the router agreeing) the answer is a Skeleton-of-Thought
    /// answer: skeleton first, then every point expanded at once.
    public func send(_ text: String) async {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return }
        guard !busy else {
            events.push(.notice("still answering: Esc stops the current answer", isWarning: true))
            return
        }
        await settlePendingCompare()
        busy = true
        messages.append(TurnMessage(role: "user", content: text))
        events.push(.userMessage(text))
        let flag = CancellationFlag()
        cancel = flag
        let mode = sotMode
        snapshots.update {
            $0.isGenerating = true; $0.liveTokens = 0; $0.liveTokensPerSecond = nil
            $0.sot = mode == .off ? nil : SoTStatus(stage: mode == .auto ? .routing : .skeleton)
        }
        let work = TurnWork(backend: box.backend, conversation: messages, settings: settings, mode: mode,
                            cancel: flag, events: events, snapshots: snapshots)
        ComputeThread.start(name: "effterm.generate") {
            let result = work.run()
            Task { await self.finishAnswer(result) }
        }
    }

    private func finishAnswer(_ result: TurnWork.Result) async {
        let b = box.backend
        let stats = result.stats
        messages.append(TurnMessage(role: "assistant", content: result.answer))
        let turnMessages = Array(messages.suffix(2))
        events.push(.answerFinished(stats))
        if let error = result.error { events.push(.notice("generation failed: \(error)", isWarning: true)) }
        let attention = b.lastAttention
        snapshots.update {
            $0.lastStats = stats
            $0.kvBytesInUse = b.kvBytesInUse
            $0.contextUsed = b.contextUsed
            $0.evictedTokens = b.evictedTokens
            if let attention { $0.attention = attention; $0.attentionTurn = 0 }
            $0.turns += 1
        }
        var used = techniques
        used.sot = result.sot.flatMap { SoTMode(rawValue: $0.mode) } ?? .off
        if let store {
            let index = await store.turnCount
            do {
                try await store.append(TranscriptTurn(index: index, messages: turnMessages,
                                                      techniques: used, stats: stats, sot: result.sot))
            } catch {
                events.push(.notice("autosave failed: \(error)", isWarning: true))
            }
            await publishSessionInfo()
        }
        if let kv = pendingKV {
            pendingKV = nil
            await applyKV(kv)
        }
        if let spec = pendingAttention {
            pendingAttention = nil
            applyAttention(spec)
        }
        if let w = pendingWeights {
            pendingWeights = nil
            await applyWeights(w)
        }
        finishJob()
    }

    /// Ends the running job: only now does the UI see the engine idle (after the autosave),
    /// so a key pressed as soon as it shows "not generating" is never refused as busy.
    func finishJob() {
        snapshots.update { $0.isGenerating = false }
        busy = false
        cancel = nil
        let w = waiters; waiters.removeAll()
        for c in w { c.resume() }
    }

    /// The Skeleton-of-Thought mode for the next answers.
    public var sotMode: SoTMode { techniques.sot }

    /// The techniques in force for the next answer.
    public var currentTechniques: TechniqueConfig { techniques }

    /// Sets the SoT mode (F7 cycles it); says when this backend cannot run SoT.
    public func setSoTMode(_ mode: SoTMode) {
        if mode != .off, box.backend.sot == nil {
            events.push(.notice("Skeleton-of-Thought needs a model backend that supports it", isWarning: true))
        }
        techniques.sot = mode
        let why = box.backend.sot?.routerUnavailableReason
        snapshots.update { $0.sotMode = mode; $0.techniques.sot = mode }
        switch mode {
        case .off: events.push(.notice("SoT off: normal decoding", isWarning: false))
        case .on: events.push(.notice("SoT on: skeleton first, then every point at once", isWarning: false))
        case .auto:
            if let why { events.push(.notice("SoT auto: \(why); answers will be normal", isWarning: true)) }
            else { events.push(.notice("SoT auto: the router decides per question", isWarning: false)) }
        }
    }

    /// Advances the SoT mode: off -> on -> auto -> off.
    public func cycleSoTMode() { setSoTMode(sotMode.next) }

    /// Switches the KV cache format. Between turns it converts the cache at once (on a
    /// compute thread, the time shown in a notice); during an answer it is queued and
    /// applied when the answer ends, since the running decode writes into the cache.
    public func setKVFormat(_ format: KVFormat) async {
        if busy {
            pendingKV = format
            snapshots.update { $0.pendingKV = format }
            events.push(.notice("KV \(format) after this answer (the cache is in use)", isWarning: false))
            return
        }
        guard format != techniques.kv || format != box.backend.kvFormat else { return }
        busy = true
        await applyKV(format)
        finishJob()
    }

    /// Converts the cache on a compute thread and publishes the result (the caller holds `busy`).
    private func applyKV(_ format: KVFormat) async {
        snapshots.update { $0.pendingKV = format }
        let box = self.box
        do {
            let change = try await ComputeThread.run(name: "effterm.kv") { try box.backend.setKVFormat(format) }
            techniques.kv = box.backend.kvFormat
            let how = change.reprefilled ? "re-prefilled" : "converted"
            let bytes = change.positions > 0
                ? ", KV \(formatBytes(change.bytesBefore)) -> \(formatBytes(change.bytesAfter))" : ""
            events.push(.notice(String(format: "KV %@ -> %@: %d positions %@ in %.0f ms%@", change.from.name,
                                       change.to.name, change.positions, how, change.seconds * 1000, bytes),
                                isWarning: false))
        } catch {
            events.push(.notice("KV \(format) not applied: \(error)", isWarning: true))
        }
        let b = box.backend, applied = techniques
        snapshots.update {
            $0.techniques = applied; $0.pendingKV = nil
            $0.model = b.info; $0.kvBytesInUse = b.kvBytesInUse; $0.contextUsed = b.contextUsed
        }
    }

    /// Advances the KV format: f32 -> f16 -> q8 -> f32 (F9).
    public func cycleKVFormat() async { await setKVFormat((pendingKV ?? techniques.kv).next) }

    /// Switches the weights (Ctrl-P cycles them): between turns the new weights are built on
    /// a compute thread (requantized from the file's tensors, progress in the status line)
    /// and the cached conversation is recomputed with them; during an answer the switch is
    /// queued until it ends. The old weights stay when the new ones cannot be built.
    public func setWeights(_ choice: WeightChoice) async {
        if busy {
            pendingWeights = choice
            snapshots.update { $0.pendingWeights = choice }
            events.push(.notice("weights \(choice) after this answer (the model is in use)", isWarning: false))
            return
        }
        guard choice != box.backend.weights else { return }
        busy = true
        await applyWeights(choice)
        finishJob()
    }

    /// Builds and installs `choice` on a compute thread (the caller holds `busy`).
    private func applyWeights(_ choice: WeightChoice) async {
        snapshots.update { $0.pendingWeights = choice }
        let box = self.box, events = self.events
        do {
            let change = try await ComputeThread.run(name: "effterm.weights") {
                // Progress once a second, only when the build is slow enough to need it.
                let start = MonotonicClock.seconds()
                var shown = start
                return try box.backend.setWeights(choice) { done, total in
                    let now = MonotonicClock.seconds()
                    guard done < total, now - shown >= 1 else { return }
                    shown = now
                    let eta = (now - start) / Double(done) * Double(total - done)
                    events.push(.notice(String(format: "weights %@: requantizing %d/%d tensors, about %.0f s left",
                                               choice.description, done, total, eta.rounded(.up)), isWarning: false))
                }
            }
            techniques.weights = box.backend.weights
            var text = "weights \(change.from) -> \(change.to): \(formatBytes(change.bytesBefore)) -> \(formatBytes(change.bytesAfter))"
            if change.buildSeconds > 0 { text += String(format: ", built in %.1f s", change.buildSeconds) }
            if change.positions > 0 {
                text += String(format: ", %d positions recomputed in %.0f ms", change.positions, change.prefillSeconds * 1000)
            }
            events.push(.notice(text, isWarning: false))
        } catch {
            events.push(.notice("weights \(choice) not applied: \(error)", isWarning: true))
        }
        let b = box.backend, applied = techniques
        snapshots.update {
            $0.techniques = applied; $0.pendingWeights = nil
            $0.model = b.info; $0.kvBytesInUse = b.kvBytesInUse; $0.contextUsed = b.contextUsed
            $0.evictedTokens = b.evictedTokens
        }
    }

    /// Advances the weights through `weightChoices` (the file first); says so when there is
    /// nothing to cycle.
    public func cycleWeights() async {
        guard weightChoices.count > 1 else {
            events.push(.notice("no other weights to switch to (this backend has only its file's)", isWarning: true))
            return
        }
        let current = pendingWeights ?? techniques.weights
        let i = weightChoices.firstIndex(of: current).map { ($0 + 1) % weightChoices.count } ?? 0
        await setWeights(weightChoices[i])
    }

    /// Sets what `cycleWeights` goes through.
    public func setWeightChoices(_ choices: [WeightChoice]) { weightChoices = choices }

    /// Switches the attention policy (F11 / Ctrl-O cycle it). Between turns it applies at
    /// once; during an answer it is queued and applied when the answer ends. Evicted tokens
    /// stay gone: switching back to dense says so.
    public func setAttention(_ spec: AttentionSpec) {
        if busy {
            pendingAttention = spec
            snapshots.update { $0.pendingAttention = spec }
            events.push(.notice("attention \(spec) after this answer (the cache is in use)", isWarning: false))
            return
        }
        applyAttention(spec)
    }

    /// Installs `spec` on the backend and publishes the result (between turns).
    private func applyAttention(_ spec: AttentionSpec) {
        let b = box.backend
        do {
            let change = try b.setAttention(spec)
            techniques.attention = spec
            events.push(.notice(Self.attentionNotice(change), isWarning: change.evicted > 0 && !spec.evicts))
        } catch {
            events.push(.notice("attention \(spec) not applied: \(error)", isWarning: true))
        }
        let applied = techniques
        snapshots.update {
            $0.techniques = applied; $0.pendingAttention = nil
            $0.kvBytesInUse = b.kvBytesInUse; $0.contextUsed = b.contextUsed; $0.evictedTokens = b.evictedTokens
        }
    }

    /// The status line after a policy switch.
    static func attentionNotice(_ c: AttentionChange) -> String {
        var text = "attention \(c.from) -> \(c.to)"
        switch c.to {
        case .dense:
            text += c.evicted > 0
                ? ": \(c.evicted) evicted tokens are gone; dense reads the \(c.positions) kept" : ": every cached key"
        case let .sinkWindow(s, w, true, step):
            text += ": KV bounded to \(s + w) positions (\(s) sinks + \(w) recent"
                + (step > 1 ? ", \(step) evicted at a time" : "") + "); older tokens will be evicted for good"
        case let .sinkWindow(s, w, false, _):
            text += ": reads \(s) sinks + \(w) recent (mask only, nothing evicted)"
                + (c.evicted > 0 ? "; \(c.evicted) tokens were already evicted" : "")
        case let .moa(plan):
            let n = max(c.positions, 1024)
            text += String(format: ": per-head spans, density %.2f at %d tokens (mask only, nothing evicted)",
                           plan.density(at: n), n)
                + (c.evicted > 0 ? "; \(c.evicted) tokens were already evicted and stay gone" : "")
        }
        return text
    }

    /// What `cycleAttention` goes through after dense and StreamingLLM: the MoA plans made
    /// for this model (set by the app from the plan directory).
    public private(set) var attentionPlans: [MoAPlan] = []

    /// Sets the MoA plans `cycleAttention` offers.
    public func setAttentionPlans(_ plans: [MoAPlan]) { attentionPlans = plans }

    /// Advances the attention policy: dense -> StreamingLLM (sink4+win1020, evicting) ->
    /// each MoA plan -> dense.
    public func cycleAttention() {
        let current = pendingAttention ?? techniques.attention
        let cycle: [AttentionSpec] = [.dense, AttentionSpec.streamingDefault] + attentionPlans.map { .moa($0) }
        let i = cycle.firstIndex(of: current).map { ($0 + 1) % cycle.count } ?? 0
        setAttention(cycle[i])
    }

    /// Stops the running answer after the current token; the partial text is kept.
    public func stop() { cancel?.cancel() }

    /// Suspends until no answer is running.
    public func waitUntilIdle() async {
        guard busy else { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    /// Saves the transcript now; returns the path.
    @discardableResult
    public func save() async -> URL? {
        guard let store else { events.push(.notice("sessions are off", isWarning: true)); return nil }
        do {
            let url = try await store.save()
            events.push(.notice("saved \(url.path)", isWarning: false))
            return url
        } catch {
            events.push(.notice("\(error)", isWarning: true))
            return nil
        }
    }

    /// Writes the session as Markdown beside its transcript (`NAME.md`); returns the path.
    @discardableResult
    public func exportMarkdown(to target: URL? = nil) async -> URL? {
        guard let store, let t = await store.transcript, let file = await store.file else {
            events.push(.notice("nothing to export yet", isWarning: true)); return nil
        }
        let url = target ?? file.deletingPathExtension().appendingPathExtension("md")
        do {
            try SessionStore.writeAtomically(Data(t.markdown().utf8), to: url)
            events.push(.notice("exported \(url.path)", isWarning: false))
            return url
        } catch {
            events.push(.notice("\(error)", isWarning: true)); return nil
        }
    }

    /// Clears the conversation and starts a new transcript.
    public func newSession() async {
        if busy { stop(); await waitUntilIdle() }
        await settlePendingCompare()
        box.backend.reset()
        messages = system.map { $0.isEmpty ? [] : [TurnMessage(role: "system", content: $0)] } ?? []
        snapshots.update {
            $0.lastStats = nil; $0.kvBytesInUse = 0; $0.contextUsed = 0; $0.turns = 0; $0.evictedTokens = 0
            $0.attention = nil; $0.warning = nil
        }
        events.push(.conversationLoaded(messages))
        await beginSession()
        events.push(.notice("new session", isWarning: false))
    }

    /// Continues a saved transcript: replays its messages into the KV cache.
    public func resume(_ transcript: Transcript, file: URL) async {
        if busy { stop(); await waitUntilIdle() }
        await settlePendingCompare()
        busy = true
        let info = box.backend.info
        var warning: String?
        if transcript.header.modelSHA256 != info.sha256 {
            warning = "transcript was made with \(transcript.header.modelName) (sha256 \(transcript.header.modelSHA256.prefix(12))), not the loaded model"
        }
        system = transcript.header.system
        messages = transcript.messages
        events.push(.conversationLoaded(messages))
        if let store { await store.adopt(transcript, file: file) }
        let box = self.box, convo = messages
        do {
            let stats = try await ComputeThread.run(name: "effterm.prime") { try box.backend.prime(messages: convo) }
            events.push(.notice(String(format: "resumed %@: %d turns, %d tokens rebuilt in %.2f s",
                                       file.lastPathComponent, transcript.turns.count,
                                       stats.promptTokens, stats.prefillSeconds), isWarning: false))
        } catch {
            events.push(.notice("could not rebuild the cache: \(error)", isWarning: true))
        }
        if let warning { events.push(.notice(warning, isWarning: true)) }
        let b = box.backend
        snapshots.update {
            $0.kvBytesInUse = b.kvBytesInUse; $0.contextUsed = b.contextUsed; $0.evictedTokens = b.evictedTokens
            $0.turns = transcript.turns.count; $0.warning = warning
            $0.lastStats = transcript.turns.last?.stats
        }
        await publishSessionInfo()
        busy = false
    }

    private func publishSessionInfo() async {
        let path = await store?.file?.path
        snapshots.update { $0.sessionFile = path }
    }
}
