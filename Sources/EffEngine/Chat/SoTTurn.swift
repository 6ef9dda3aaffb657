import EffCore
import EffTechniques
import Foundation

/// One chat question answered with Skeleton-of-Thought, on the calling compute thread:
/// the skeleton, then every point expanded in one batch, with the live events the chat
/// pane draws and the numbers the status line and the transcript keep.
///
/// SoT answers the latest question on its own, as in the paper: earlier turns are not in
/// its prompts (the conversation still records the answer, and the next normal turn sees it).
struct SoTTurn {
    struct Outcome {
        var answer: String
        var stats: TurnStats
        var record: SoTTurnRecord
    }

    let support: ChatSoTSupport
    var config = SoTRunner.Config()

    /// Runs SoT for `question`. `onEvent` gets the runner's live events (fallback text
    /// included); `onStatus` the status-line state at each stage and every few tokens.
    func run(question: String, mode: SoTMode, router: SoTRouteDecision?, cancel: CancellationFlag,
             started: Double, onEvent: (SoTRunner.Event) -> Void,
             onStatus: (SoTStatus) -> Void) throws -> Outcome {
        support.watch(cancel)
        var status = SoTStatus(stage: .skeleton)
        // The router chose SoT: its score is enough here, the stage timings need the room.
        status.router = router.map { String(format: "SoT (P %.2f >= %.2f)", $0.score, $0.threshold) }
        onStatus(status)
        var expansionStart = 0.0
        var deltas = 0
        var config = self.config
        var started = started
        if config.stepRatios == nil {
            // Measured once per weights (a few seconds), not counted as skeleton time.
            let t0 = MonotonicClock.seconds()
            status.stage = .calibrating
            onStatus(status)
            config.stepRatios = support.stepRatios()
            started += MonotonicClock.seconds() - t0
            status.stage = .skeleton
            onStatus(status)
        }
        let result = try SoTRunner(config: config).run(question: question, model: support.sotModel) { event in
            switch event {
            case .stage(let stage):
                switch stage {
                case .skeleton: status.stage = .skeleton
                case .expanding:
                    status.stage = .expanding
                    status.measured.skeletonSeconds = MonotonicClock.seconds() - started
                    expansionStart = MonotonicClock.seconds()
                case .fallback:
                    status.stage = .fallback
                    status.measured.skeletonSeconds = MonotonicClock.seconds() - started
                    expansionStart = MonotonicClock.seconds()
                case .done: break
                }
                onStatus(status)
            case .skeletonText, .fallbackText: break
            case .skeleton(let points): status.measured.streams = points.count
            case .pointText:
                deltas += 1
                if deltas % 4 == 0 {
                    status.measured.expansionSeconds = MonotonicClock.seconds() - expansionStart
                    onStatus(status)
                }
            case .fellBack(let reason): status.measured.fallbackReason = reason
            case .waves(let size, _):
                status.measured.waveSize = size
                onStatus(status)
            }
            onEvent(event)
        }
        return outcome(result, mode: mode, router: router, status: status, cancelled: cancel.isCancelled,
                       question: question, onStatus: onStatus)
    }

    /// Folds the runner's result into turn stats, the transcript record and the final status.
    private func outcome(_ r: SoTRunner.Result, mode: SoTMode, router: SoTRouteDecision?,
                         status: SoTStatus, cancelled: Bool, question: String,
                         onStatus: (SoTStatus) -> Void) -> Outcome {
        var record = SoTTurnRecord(mode: mode.rawValue, router: router, usedSoT: true)
        record.skeleton = r.skeletonText
        record.fallbackReason = r.fallbackReason
        record.leakedPoints = r.leakedPoints
        record.skeletonSeconds = r.skeletonSeconds
        record.expansionSeconds = r.expansionSeconds
        record.totalSeconds = r.totalSeconds

        var stats = TurnStats()
        stats.promptTokens = r.skeleton.promptTokens
        stats.prefillSeconds = r.skeleton.prefillSeconds
        stats.generatedTokens = r.skeleton.generatedTokens
        stats.decodeSeconds = r.skeleton.decodeSeconds
        // Single-stream step time, measured on the skeleton (its first token came from prefill).
        let skeletonSteps = max(1, r.skeleton.generatedTokens - 1)
        let t1 = r.skeleton.decodeSeconds / Double(skeletonSteps)
        if r.skeleton.generatedTokens >= 3 { record.singleStepMs = t1 * 1000 }

        if let batch = r.batch {
            record.streams = r.points.count
            record.waveSize = r.waveSize
            record.batchSteps = batch.steps
            record.sharedPrefixTokens = batch.sharedPrefixTokens
            record.points = zip(r.points, batch.completions).map { point, c in
                SoTTurnRecord.Point(index: point.index, text: point.text, expansion: c.text, tokens: c.generatedTokens)
            }
            stats.promptTokens += batch.completions.reduce(batch.sharedPrefixTokens) {
                $0 + $1.promptTokens - batch.sharedPrefixTokens
            }
            stats.prefillSeconds += batch.prefillSeconds
            stats.generatedTokens += batch.completions.reduce(0) { $0 + $1.generatedTokens }
            stats.decodeSeconds += batch.decodeSeconds
            if batch.steps > 0, record.singleStepMs != nil, t1 > 0 {
                record.stepRatio = (batch.decodeSeconds / Double(batch.steps)) / t1
            }
        }
        if let f = r.fallback {
            stats.promptTokens += f.promptTokens
            stats.prefillSeconds += f.prefillSeconds
            stats.generatedTokens += f.generatedTokens
            stats.decodeSeconds += f.decodeSeconds
        }
        // Throughput over all streams: every generated token per decode second.
        stats.decodeSteps = stats.generatedTokens
        stats.stopReason = cancelled ? .cancelled : .endOfTurn

        // Normal decoding of an answer this long: prefill the question, then one
        // single-stream step per token, at this turn's measured speeds.
        record.answerTokens = support.tokenCount(r.answer)
        if let ms = record.singleStepMs, r.skeleton.prefillSeconds > 0, r.skeleton.promptTokens > 0 {
            let prefillRate = Double(r.skeleton.promptTokens) / r.skeleton.prefillSeconds
            let q = support.promptTokenCount(question: question)
            record.normalEstimateSeconds = Double(q) / prefillRate + Double(record.answerTokens) * ms / 1000
        }

        var final = status
        final.stage = cancelled ? .stopped : .done
        final.measured = record
        onStatus(final)
        return Outcome(answer: r.answer, stats: stats, record: record)
    }
}
