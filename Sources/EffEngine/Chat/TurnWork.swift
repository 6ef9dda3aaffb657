import EffCore
import EffTechniques
import Foundation

/// The work of one answer on its compute thread: normal decoding, or Skeleton-of-Thought
/// (in `auto` only when the router says the question suits it). Streams events, publishes
/// live numbers, and returns what the engine records.
struct TurnWork: @unchecked Sendable {
    let backend: ChatBackend
    let conversation: [TurnMessage]
    let settings: GenerationSettings
    let mode: SoTMode
    let cancel: CancellationFlag
    let events: EventQueue<ChatEvent>
    let snapshots: SnapshotBox<ChatSnapshot>

    struct Result: Sendable {
        var answer: String
        var stats: TurnStats
        var sot: SoTTurnRecord?
        var error: String?
    }

    func run() -> Result {
        let question = conversation.last?.content ?? ""
        let started = MonotonicClock.seconds()
        guard mode != .off else { return normal(sot: nil) }
        guard let support = backend.sot else {
            events.push(.notice("this backend cannot run Skeleton-of-Thought; answering normally", isWarning: true))
            return normal(sot: nil)
        }
        var router: SoTRouteDecision?
        if mode == .auto {
            do {
                router = try support.route(question: question)
            } catch {
                events.push(.notice("SoT router failed: \(error); answering normally", isWarning: true))
            }
            guard let decision = router else {
                let why = support.routerUnavailableReason ?? "the router failed"
                var record = SoTTurnRecord(mode: mode.rawValue, router: nil, usedSoT: false)
                record.fallbackReason = why
                return normal(sot: record, status: "no router: \(why)", started: started)
            }
            if !decision.useSoT {
                return normal(sot: SoTTurnRecord(mode: mode.rawValue, router: decision, usedSoT: false),
                              status: decision.reason, started: started)
            }
        }
        var pieces = 0
        let count = {
            pieces += 1
            if pieces % 4 == 0 {
                let rate = Double(pieces) / max(1e-6, MonotonicClock.seconds() - started)
                snapshots.update { [pieces] in $0.liveTokens = pieces; $0.liveTokensPerSecond = rate }
            }
        }
        do {
            let outcome = try SoTTurn(support: support).run(
                question: question, mode: mode, router: router, cancel: cancel, started: started,
                onEvent: { e in
                    switch e {
                    case .stage: return  // the status row carries stages
                    case .skeletonText, .pointText: count()
                    case .skeleton, .fellBack, .waves: break
                    case .fallbackText(let t):
                        count()
                        events.push(.text(t))
                        return
                    }
                    events.push(.sot(e))
                },
                onStatus: { s in snapshots.update { $0.sot = s } })
            return Result(answer: outcome.answer, stats: outcome.stats, sot: outcome.record, error: nil)
        } catch {
            var stats = TurnStats()
            stats.stopReason = .failed
            return Result(answer: "", stats: stats, sot: SoTTurnRecord(mode: mode.rawValue, router: router, usedSoT: true),
                          error: "\(error)")
        }
    }

    /// Normal decoding of the whole conversation; `status` is the router's word when it
    /// chose this path in `auto`.
    private func normal(sot: SoTTurnRecord?, status: String? = nil, started: Double = 0) -> Result {
        if let status {
            snapshots.update {
                var s = SoTStatus(stage: .normal)
                s.router = status
                $0.sot = s
            }
        }
        var answer = ""
        var stats: TurnStats
        var failure: String?
        do {
            var count = 0
            var first = 0.0
            stats = try backend.generate(messages: conversation, settings: settings, cancel: cancel) { piece in
                answer += piece
                count += 1
                events.push(.text(piece))
                let now = MonotonicClock.seconds()
                if count == 1 { first = now }
                if count % 4 == 0 {
                    let rate = Double(count - 1) / (now - first)
                    snapshots.update { $0.liveTokens = count; $0.liveTokensPerSecond = rate }
                }
            }
        } catch {
            stats = TurnStats()
            stats.stopReason = .failed
            failure = "\(error)"
        }
        if status != nil {
            let total = MonotonicClock.seconds() - started
            snapshots.update { $0.sot?.stage = .done; $0.sot?.measured.totalSeconds = total }
        }
        return Result(answer: answer, stats: stats, sot: sot, error: failure)
    }
}
