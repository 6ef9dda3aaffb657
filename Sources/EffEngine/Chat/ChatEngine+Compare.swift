import EffCore
import Foundation

/// A/B comparison: the last question answered both ways, normal decoding and
/// Skeleton-of-Thought, one after the other on the same machine, shown blind as A and B;
/// the person's verdict goes into the transcript. Quality is judged by a person, not a
/// judge model (there is none on this machine).
extension ChatEngine {
    /// Starts a comparison of the last question; refused (with a notice) while busy, before
    /// any question, or when the backend cannot run SoT.
    public func compare() async {
        guard !busy else {
            events.push(.notice("still answering: Esc stops the current answer", isWarning: true))
            return
        }
        guard let support = box.backend.sot else {
            events.push(.notice("A/B compare needs a model backend that runs Skeleton-of-Thought", isWarning: true))
            return
        }
        guard let q = messages.lastIndex(where: { $0.role == "user" }) else {
            events.push(.notice("ask something first: A/B compare reruns the last question", isWarning: true))
            return
        }
        await settlePendingCompare()
        busy = true
        let flag = CancellationFlag()
        cancel = flag
        let question = messages[q].content
        let turnIndex = messages[...q].filter { $0.role == "user" }.count - 1
        let modes = Bool.random() ? ["normal", "sot"] : ["sot", "normal"]
        events.push(.compare(.started(question: question, modes: modes)))
        snapshots.update { $0.isGenerating = true; $0.liveTokens = 0 }
        let work = CompareWork(backend: box.backend, support: support, context: Array(messages[...q]),
                               question: question, settings: settings, cancel: flag, events: events)
        ComputeThread.start(name: "effterm.compare") {
            let sides = work.run(modes: modes)
            Task { await self.finishCompare(turnIndex: turnIndex, question: question, sides: sides, cancelled: flag.isCancelled) }
        }
    }

    private func finishCompare(turnIndex: Int, question: String, sides: [CompareSide], cancelled: Bool) async {
        if cancelled || sides.count < 2 {
            let record = CompareRecord(turnIndex: turnIndex, question: question, sides: sides, verdict: "skipped")
            await store(record)
            events.push(.compare(.failed("comparison stopped; recorded as skipped")))
        } else {
            pendingCompare = CompareRecord(turnIndex: turnIndex, question: question, sides: sides, verdict: "pending")
            events.push(.compare(.ready))
        }
        finishJob()
    }

    /// Records the person's verdict on the finished comparison: "A", "B", "tie" or "skipped".
    public func vote(_ verdict: String) async {
        guard var record = pendingCompare else { return }
        guard ["A", "B", "tie", "skipped"].contains(verdict) else { return }
        pendingCompare = nil
        record.verdict = verdict
        await store(record)
        events.push(.compare(.recorded(record)))
        let what = record.preferredMode.map { $0 == "tie" ? "tie" : "\(verdict) (\($0)) better" } ?? "skipped"
        events.push(.notice("A/B verdict saved: \(what)", isWarning: false))
    }

    /// A comparison left without a verdict is stored as skipped before anything else runs
    /// (the next question, a new session, quitting), so no comparison is lost.
    public func settlePendingCompare() async {
        guard var record = pendingCompare else { return }
        pendingCompare = nil
        record.verdict = "skipped"
        await store(record)
        events.push(.compare(.recorded(record)))
    }

    private func store(_ record: CompareRecord) async {
        guard let store else { return }
        do { try await store.append(record) } catch {
            events.push(.notice("autosave failed: \(error)", isWarning: true))
        }
    }
}

/// The two runs of a comparison, on its compute thread: normal decoding of the conversation
/// up to the question, then SoT on the question. Always in that order, whatever the labels.
struct CompareWork: @unchecked Sendable {
    let backend: ChatBackend
    let support: ChatSoTSupport
    let context: [TurnMessage]
    let question: String
    let settings: GenerationSettings
    let cancel: CancellationFlag
    let events: EventQueue<ChatEvent>

    func run(modes: [String]) -> [CompareSide] {
        var bySide: [Int: CompareSide] = [:]
        for mode in ["normal", "sot"] {
            guard let side = modes.firstIndex(of: mode), !cancel.isCancelled else { continue }
            let label = side == 0 ? "A" : "B"
            do {
                let result = try mode == "normal" ? normal(side: side, label: label) : sot(side: side, label: label)
                bySide[side] = result
                events.push(.compare(.sideDone(side: side, result)))
            } catch {
                events.push(.compare(.failed("\(mode) run failed: \(error)")))
                return []
            }
        }
        return (0..<2).compactMap { bySide[$0] }
    }

    private func normal(side: Int, label: String) throws -> CompareSide {
        let t0 = MonotonicClock.seconds()
        var answer = ""
        let stats = try backend.generate(messages: context, settings: settings, cancel: cancel) { piece in
            answer += piece
            events.push(.compare(.text(side: side, text: answer)))
        }
        return CompareSide(label: label, mode: "normal", answer: answer, seconds: MonotonicClock.seconds() - t0,
                           tokens: stats.generatedTokens, streams: 0, stop: stats.stopReason)
    }

    private func sot(side: Int, label: String) throws -> CompareSide {
        let t0 = MonotonicClock.seconds()
        var view = SoTAnswerView()
        let outcome = try SoTTurn(support: support).run(
            question: question, mode: .on, router: nil, cancel: cancel, started: t0,
            onEvent: { e in
                if case .stage = e { return }
                view.apply(e)
                var isFallback = false
                if case .fallbackText = e { isFallback = true }
                events.push(.compare(.text(side: side, text: view.text(live: !isFallback))))
            },
            onStatus: { _ in })
        let r = outcome.record
        return CompareSide(label: label, mode: "sot", answer: outcome.answer, seconds: MonotonicClock.seconds() - t0,
                           tokens: r.answerTokens, streams: r.fallbackReason == nil ? r.streams : 0,
                           stop: outcome.stats.stopReason)
    }
}
