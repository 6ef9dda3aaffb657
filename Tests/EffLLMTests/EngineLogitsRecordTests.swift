import EffCore
import EffTestSupport
import Foundation
import Testing
@testable import EffLLM

/// Model tier: the engine's logits on four paths (single-sequence prefill + decode, a batch
/// of three forked streams, a fork over a shared prefix, a copied prefix) against the bits
/// recorded from the engine before the forward pass and KV store were rewritten
/// (`EngineLogitsFixture`). With the f32 KV format every recorded row must match exactly:
/// a hash of all `vocabSize` logits' bit patterns plus the top-5 ids and bit patterns.
///
/// Depths stay below 512 so single-query attention is never split over threads (the split
/// count follows the core count and would change the summation order between machines).
/// Run with `EFFTERM_RECORD_ENGINE_LOGITS=<file.swift>` to write a new fixture instead.
@Suite(.serialized, .enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
struct EngineLogitsRecordTests {
    struct Row: Equatable, CustomStringConvertible {
        var hash: UInt64
        var top: [Int32]
        var topBits: [UInt32]
        var description: String { "hash \(String(hash, radix: 16)) top \(top) bits \(topBits.map { String($0, radix: 16) })" }
    }

    static func row(_ logits: UnsafePointer<Float>, _ vocab: Int) -> Row {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a 64 over the little-endian bit patterns
        for i in 0..<vocab {
            var b = logits[i].bitPattern
            for _ in 0..<4 { h = (h ^ UInt64(b & 0xff)) &* 0x100_0000_01b3; b >>= 8 }
        }
        let top = (0..<vocab).sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }.prefix(5)
        return Row(hash: h, top: top.map { Int32($0) }, topBits: top.map { logits[$0].bitPattern })
    }

    static func tokens(_ n: Int, _ a: Int, _ b: Int) -> [Int32] { (0..<n).map { Int32(a + ($0 * b) % 4000) } }

    /// Runs every scenario on `model`, returning named rows in a fixed order.
    static func scenarios(_ model: LlamaModel) throws -> [(String, Row)] {
        let vocab = model.config.vocabSize
        var rows: [(String, Row)] = []
        // 1. Single sequence: a 45-token prefill in chunks of 16, then 4 decode steps.
        let single = model.makeState(maxContext: 64, maxBatch: 16)
        try model.forward(tokens(45, 300, 11), state: single, logits: .last)
        rows.append(("single.prefill", row(single.logits, vocab)))
        for s in 0..<4 {
            try model.forward([Int32(500 + 37 * s)], state: single, logits: .last)
            rows.append(("single.decode\(s)", row(single.logits, vocab)))
        }
        // Every row of a short chunk (.all).
        let all = UnsafeMutablePointer<Float>.allocate(capacity: 6 * vocab)
        defer { all.deallocate() }
        try model.forward(tokens(6, 1000, 3), state: single, logits: .all(all))
        for t in 0..<6 { rows.append(("single.all\(t)", row(all + t * vocab, vocab))) }

        // 2. Batched decode: a root prompt, three forks advanced together for 4 steps.
        let root = model.makeState(maxContext: 40, maxBatch: 32)
        try model.forward(tokens(30, 700, 13), state: root, logits: .none)
        let forks = (0..<3).map { _ in root.fork(maxContext: 40) }
        let decoder = BatchDecoder(model: model, maxStreams: 3)
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: 3 * vocab)
        defer { logits.deallocate() }
        for s in 0..<4 {
            try decoder.step(tokens: (0..<3).map { Int32(100 + 211 * $0 + 17 * s) }, states: forks, logits: logits)
            for i in 0..<3 { rows.append(("batch.step\(s).seq\(i)", row(logits + i * vocab, vocab))) }
        }

        // 3. A fork over a shared prefix: root decodes on, a fork at 20 prefills its tail.
        let base = model.makeState(maxContext: 60, maxBatch: 32)
        try model.forward(tokens(36, 900, 7), state: base, logits: .last)
        for s in 0..<3 { try model.forward([Int32(2000 + s)], state: base, logits: .last) }
        rows.append(("fork.root", row(base.logits, vocab)))
        let fork = base.fork(at: 20, maxContext: 50, maxBatch: 8)
        try model.forward(tokens(12, 1500, 5), state: fork, logits: .last)
        rows.append(("fork.tail", row(fork.logits, vocab)))
        for s in 0..<2 {
            try model.forward([Int32(77 + s)], state: fork, logits: .last)
            rows.append(("fork.decode\(s)", row(fork.logits, vocab)))
        }

        // 4. Prompt reuse: positions copied out of a fork chain, then a tail and 2 steps.
        let copy = model.makeState(maxContext: 60, maxBatch: 32)
        #expect(copy.cache.copyPositions(from: fork.cache, length: 28))
        try model.forward(tokens(10, 2500, 3), state: copy, logits: .last)
        rows.append(("copy.tail", row(copy.logits, vocab)))
        for s in 0..<2 {
            try model.forward([Int32(3000 + s)], state: copy, logits: .last)
            rows.append(("copy.decode\(s)", row(copy.logits, vocab)))
        }
        return rows
    }

    @Test func logitsMatchTheRecordedEngine() throws {
        let model = try LlamaModel(gguf: GGUFFile(path: TestPaths.model.path))
        let rows = try Self.scenarios(model)
        if let path = ProcessInfo.processInfo.environment["EFFTERM_RECORD_ENGINE_LOGITS"] {
            var s = "// Recorded by EngineLogitsRecordTests (EFFTERM_RECORD_ENGINE_LOGITS) from the engine\n"
            s += "// before the unified forward pass and KV store; f32 KV must reproduce these bits.\n"
            s += "extension EngineLogitsRecordTests {\n    static let recorded: [(String, Row)] = [\n"
            for (name, r) in rows {
                s += "        (\"\(name)\", Row(hash: 0x\(String(r.hash, radix: 16)), top: \(r.top), "
                s += "topBits: [\(r.topBits.map { "0x" + String($0, radix: 16) }.joined(separator: ", "))])),\n"
            }
            s += "    ]\n}\n"
            try s.write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        #expect(rows.map(\.0) == Self.recorded.map(\.0))
        for ((name, got), (_, want)) in zip(rows, Self.recorded) {
            #expect(got == want, "\(name): got \(got), recorded \(want)")
        }
    }
}
