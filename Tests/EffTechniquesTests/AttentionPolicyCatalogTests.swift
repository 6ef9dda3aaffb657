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
        for text in ["dense", "sink4+win1020", "sink4+win1020+evict", "sink0+win1024+evict"] {
            #expect(try AttentionPolicyCatalog.parse(text).description == text)
        }
        #expect(try AttentionPolicyCatalog.parseList("dense, sink4+win1020+evict,,sink0+win1024")
                == [.dense, .sinkWindow(sinks: 4, window: 1020, evict: true), .sinkWindow(sinks: 0, window: 1024)])
    }

    @Test(arguments: ["", "sparse", "sink4", "win1020", "sink-1+win8", "sink4+win0", "sink4+win8+drop",
                      "sink4+win8+evict+evict", "sinkx+win8", "sink4+window8", "+"])
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
}
