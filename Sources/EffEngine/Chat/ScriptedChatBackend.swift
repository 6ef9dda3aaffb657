import EffCore
import EffTechniques
import Foundation

/// A fake `ChatBackend` that answers from a script, for tests of the engine and the UI
/// without a model. It streams its answer one piece at a time with an optional delay,
/// honours cancellation between pieces, and reports stats from its own counters.
public final class ScriptedChatBackend: ChatBackend, @unchecked Sendable {
    public let info: ModelInfo
    /// Answers by turn index, repeated cyclically; each is split into pieces.
    public var answers: [[String]]
    public var delayPerPiece: TimeInterval
    public private(set) var primedMessages: [TurnMessage] = []
    private var turn = 0
    private var positions = 0
    public var lastAttention: AttentionSummary?
    /// Scripted Skeleton-of-Thought (nil: this backend cannot run SoT).
    public var sotScript: ScriptedSoTSupport?
    public var sot: ChatSoTSupport? { sotScript }
    public private(set) var kvFormat: KVFormat = .f32
    public private(set) var attention: AttentionSpec = .dense
    /// Positions an evicting policy dropped (the scripted cache keeps at most its budget).
    public private(set) var evictedTokens = 0

    public func setAttention(_ spec: AttentionSpec) throws -> AttentionChange {
        let change = AttentionChange(from: attention, to: spec, positions: positions, evicted: evictedTokens)
        attention = spec
        return change
    }

    /// Applies the evicting policy's budget to the scripted positions.
    private func evict() {
        guard let budget = attention.kvBudget, positions > budget else { return }
        evictedTokens += positions - budget
        positions = budget
    }

    /// Bytes the scripted cache would hold: positions x layers x 2 rows of 64 elements.
    private func bytes(_ f: KVFormat) -> Int { positions * info.nLayers * 2 * f.rowBytes(width: 64) }

    public func setKVFormat(_ format: KVFormat) throws -> KVFormatChange {
        let change = KVFormatChange(from: kvFormat, to: format, positions: positions, seconds: 0,
                                    bytesBefore: bytes(kvFormat), bytesAfter: bytes(format), reprefilled: false)
        kvFormat = format
        return change
    }

    public init(answers: [[String]], delayPerPiece: TimeInterval = 0, info: ModelInfo? = nil) {
        self.answers = answers
        self.delayPerPiece = delayPerPiece
        self.info = info ?? ModelInfo(name: "scripted", sha256: String(repeating: "0", count: 64),
                                      templateHash: "none", contextMax: 2048, nLayers: 2, nHeads: 2,
                                      weightBytes: 0, tensors: [])
    }

    public func generate(messages: [TurnMessage], settings: GenerationSettings, cancel: CancellationFlag,
                         onText: (String) -> Void) throws -> TurnStats {
        var stats = TurnStats()
        let pieces = answers.isEmpty ? [] : answers[turn % answers.count]
        turn += 1
        let promptChars = messages.map(\.content.count).reduce(0, +)
        stats.promptTokens = max(1, promptChars / 4 - positions)
        stats.prefillSeconds = 0.001
        let start = Date()
        for p in pieces {
            if cancel.isCancelled { stats.stopReason = .cancelled; break }
            if delayPerPiece > 0 { Thread.sleep(forTimeInterval: delayPerPiece) }
            onText(p)
            stats.generatedTokens += 1
        }
        stats.decodeSeconds = Date().timeIntervalSince(start)
        positions += stats.promptTokens + stats.generatedTokens
        evict()
        stats.contextUsed = positions
        let c = AttentionStatsCollector(nLayers: info.nLayers, nHeads: info.nHeads, patternBins: 8)
        let probs: [Float] = [0.5, 0.25, 0.125, 0.125]
        probs.withUnsafeBufferPointer { b in
            for l in 0..<info.nLayers { for h in 0..<info.nHeads { c.observe(layer: l, head: h, probs: b) } }
        }
        lastAttention = c.summary()
        return stats
    }

    public func prime(messages: [TurnMessage]) throws -> TurnStats {
        primedMessages = messages
        positions = messages.map(\.content.count).reduce(0, +) / 4
        var s = TurnStats(); s.promptTokens = positions; s.contextUsed = positions
        return s
    }

    public func reset() { positions = 0; turn = 0; evictedTokens = 0 }
    public var kvBytesInUse: Int { bytes(kvFormat) }
    public var contextUsed: Int { positions }
}
