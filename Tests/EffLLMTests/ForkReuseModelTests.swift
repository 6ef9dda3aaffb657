import EffCore
import EffTestSupport
import Foundation
import Testing
@testable import EffLLM

/// Model tier: a state forked part-way into another prompt's cache, after that prompt went
/// on decoding, gives bit for bit the logits of prefilling from scratch (prompt caching).
@Suite(.serialized, .enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
struct ForkReuseModelTests {
    @Test(arguments: [(40, 24, 8), (300, 280, 16), (300, 280, 1), (300, 20, 280)])
    func forkAtSharedPrefixMatchesFreshPrefill(n: Int, shared: Int, tail: Int) throws {
        let model = try LlamaModel(gguf: GGUFFile(path: TestPaths.model.path))
        let vocab = model.config.vocabSize
        let p1 = (0..<n).map { Int32(200 + ($0 * 7) % 5000) }
        let p2 = Array(p1[..<shared]) + (0..<tail).map { Int32(900 + ($0 * 13) % 3000) }
        let root = model.makeState(maxContext: n + 40, maxBatch: min(256, n))
        try model.forward(p1, state: root, logits: .last)
        for t in 0..<5 { try model.forward([Int32(1234 + t)], state: root, logits: .last) }
        let fork = root.fork(at: shared, maxContext: p2.count + 8, maxBatch: min(256, tail))
        try model.forward(Array(p2[shared...]), state: fork, logits: .last)
        let fresh = model.makeState(maxContext: p2.count + 8, maxBatch: min(256, p2.count))
        try model.forward(p2, state: fresh, logits: .last)
        var d: Float = 0
        for v in 0..<vocab { d = max(d, abs(fork.logits[v] - fresh.logits[v])) }
        #expect(d == 0, "max logit difference \(d)")
        // And one decode step more on each.
        try model.forward([42], state: fork, logits: .last)
        try model.forward([42], state: fresh, logits: .last)
        d = 0
        for v in 0..<vocab { d = max(d, abs(fork.logits[v] - fresh.logits[v])) }
        #expect(d == 0, "after a step: max logit difference \(d)")
    }
}

extension ForkReuseModelTests {
    @Test func copiedPrefixMatchesFreshPrefill() throws {
        let model = try LlamaModel(gguf: GGUFFile(path: TestPaths.model.path))
        let vocab = model.config.vocabSize
        let p1 = (0..<120).map { Int32(300 + ($0 * 11) % 4000) }
        let p2 = Array(p1[..<40]) + (0..<60).map { Int32(700 + ($0 * 5) % 2000) }
        // The source is itself a fork, so the copy walks a prefix chain.
        let base = model.makeState(maxContext: 40, maxBatch: 40)
        try model.forward(Array(p1[..<20]), state: base, logits: .none)
        let source = base.fork(maxContext: 130, maxBatch: 100)
        try model.forward(Array(p1[20...]), state: source, logits: .last)
        let copy = model.makeState(maxContext: 110, maxBatch: 64)
        #expect(copy.cache.copyPositions(from: source.cache, length: 40))
        #expect(copy.position == 40 && copy.cache.prefix == nil)
        #expect(!copy.cache.copyPositions(from: source.cache, length: 40), "only into an empty cache")
        try model.forward(Array(p2[40...]), state: copy, logits: .last)
        let fresh = model.makeState(maxContext: 110, maxBatch: 64)
        try model.forward(p2, state: fresh, logits: .last)
        var d: Float = 0
        for v in 0..<vocab { d = max(d, abs(copy.logits[v] - fresh.logits[v])) }
        #expect(d == 0, "max logit difference \(d)")
    }
}
