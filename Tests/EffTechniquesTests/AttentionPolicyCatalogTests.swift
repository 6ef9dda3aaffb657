import EffCore
import Testing
@testable import EffTechniques

/// Attention specs: spellings, round trips, errors, and StreamingLLM's eviction arithmetic.
@Suite struct AttentionPolicyCatalogTests {
    @Test func parsesEverySpelling() throws {
        #expect(try AttentionPolicyCatalog.parse("dense") == .dense)
        #expect(try AttentionPolicyCatalog.parse("sink4+win1020") == .sinkWindow(sinks: 4, window: 1020, evict: false))
        #expect(try AttentionPolicyCatalog.parse("sink4+win1020+evict") == .sinkWindow(sinks: 4, window: 1020, evict: true))
        #expect(try AttentionPolicyCatalog.parse(" Sink0+Win256+EVICT ") == .sinkWindow(sinks: 0, window: 256, evict: true))
        #expect(try AttentionPolicyCatalog.parse("sink4+win1020+evict/64")
                == .sinkWindow(sinks: 4, window: 1020, evict: true, step: 64))
        for text in ["dense", "sink4+win1020", "sink4+win1020+evict", "sink0+win1024+evict", "sink4+win1020+evict/64"] {
            #expect(try AttentionPolicyCatalog.parse(text).description == text)
        }
        #expect(try AttentionPolicyCatalog.parseList("dense, sink4+win1020+evict,,sink0+win1024")
                == [.dense, .sinkWindow(sinks: 4, window: 1020, evict: true), .sinkWindow(sinks: 0, window: 1024)])
    }

    @Test(arguments: ["", "sparse", "sink4", "win1020", "sink-1+win8", "sink4+win0", "sink4+win8+drop",
                      "sink4+win8+evict+evict", "sinkx+win8", "sink4+window8", "+",
                      "sink4+win8+evict/0", "sink4+win8+evict/9", "sink4+win8+evict/", "sink4+win8/2",
                      "sink4+win8+evict/2/2", "sink4+win8+drop/2"])
    func rejectsMalformedSpecs(_ text: String) {
        #expect(AttentionSpec(text) == nil)
        #expect(throws: AttentionPolicyCatalog.ParseError.self) { try AttentionPolicyCatalog.parse(text) }
    }

    @Test func errorsNameTheSpecAndTheSpellings() {
        do {
            _ = try AttentionPolicyCatalog.parseList("dense,sinks4")
            Issue.record("expected an error")
        } catch {
            let text = "\(error)"
            #expect(text.contains("'sinks4'") && text.contains("sink4+win1020+evict"))
        }
        #expect(throws: AttentionPolicyCatalog.ParseError.self) { try AttentionPolicyCatalog.parseList(" , ") }
    }

    @Test func specsMakeTheirPolicies() {
        #expect(AttentionSpec.dense.makeReadPolicy() == nil && AttentionSpec.dense.makeEvictionPolicy() == nil)
        let mask = AttentionSpec.sinkWindow(sinks: 4, window: 64)
        #expect((mask.makeReadPolicy() as? SinkWindowAttentionPolicy)?.window == 64)
        #expect(mask.makeEvictionPolicy() == nil && !mask.evicts && mask.kvBudget == nil)
        let evict = AttentionSpec.sinkWindow(sinks: 4, window: 64, evict: true)
        #expect(evict.makeReadPolicy() == nil, "an evicting cache is read whole")
        let e = evict.makeEvictionPolicy()
        #expect(e?.budget == 68 && e?.pinned == 4 && e?.name == "sink4+win64+evict")
        #expect(evict.evicts && evict.kvBudget == 68)
    }

    /// Before `incoming` tokens, the oldest non-sink positions leave so that sinks + window fit.
    @Test func streamingEvictsTheOldestNonSinkTokens() {
        let p = StreamingLLMEviction(sinks: 4, window: 16)
        #expect(p.budget == 20 && p.maxChunk == 16)
        #expect(p.positionsToEvict(length: 0, incoming: 16).isEmpty)
        #expect(p.positionsToEvict(length: 19, incoming: 1).isEmpty)
        #expect(p.positionsToEvict(length: 20, incoming: 1) == 4..<5)
        #expect(p.positionsToEvict(length: 20, incoming: 16) == 4..<20)
        #expect(p.positionsToEvict(length: 10, incoming: 16) == 4..<10)
        #expect(p.positionsToEvict(length: 3, incoming: 30).isEmpty, "nothing but sinks to keep")
        let window = StreamingLLMEviction(sinks: 0, window: 8)
        #expect(window.positionsToEvict(length: 8, incoming: 2) == 0..<2)
        #expect(window.maxChunk == 8)
    }

    /// With a step, a full cache sheds `step` positions at once (never fewer than it must),
    /// so the window holds window - step + 1 ... window tokens and memory stays bounded.
    @Test func evictionInStepsKeepsTheBudget() {
        let p = StreamingLLMEviction(sinks: 4, window: 16, step: 8)
        #expect(p.name == "sink4+win16+evict/8" && p.budget == 20)
        #expect(p.positionsToEvict(length: 19, incoming: 1).isEmpty)
        #expect(p.positionsToEvict(length: 20, incoming: 1) == 4..<12)
        #expect(p.positionsToEvict(length: 20, incoming: 12) == 4..<16, "more than a step when more must go")
        #expect(p.positionsToEvict(length: 7, incoming: 16) == 4..<7, "never past the cache")
        var length = 0, evicted = 0
        for _ in 0..<1000 {
            let r = p.positionsToEvict(length: length, incoming: 1)
            evicted += r.count; length -= r.count
            #expect(r.isEmpty || r.count == 8)
            length += 1
            #expect(length <= p.budget)
            if evicted > 0 { #expect(length - 4 >= 16 - 8 + 1, "the window never drops below window - step + 1") }
        }
        #expect(evicted == 1000 - length && evicted > 0)
        #expect(StreamingLLMEviction(sinks: 4, window: 16, step: 99).step == 16)
        #expect(AttentionSpec.sinkWindow(sinks: 4, window: 16, evict: true, step: 8).makeEvictionPolicy()?.name
                == "sink4+win16+evict/8")
    }
}
