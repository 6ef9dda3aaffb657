import EffEngine
import EffTechniques
import Foundation
import Testing
@testable import EffTUI

/// The status bar shows the attention policy (and a queued switch), KV bytes, and how many
/// tokens an evicting policy dropped; F11 and Ctrl-O cycle the policy.
@Suite struct StatusBarAttentionTests {
    static func render(_ s: ChatSnapshot, width: Int = 140) -> [String] {
        var grid = CellGrid(width: width, height: 2)
        StatusBar.render(into: &grid, y: 0, width: width, snapshot: s, theme: .builtin, notice: nil, keymap: Keymap())
        return grid.text().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    @Test func showsPolicyKVBytesAndEvictedTokens() {
        var s = ChatSnapshot()
        s.model = PaneSnapshotTests.smolInfo()
        s.techniques.attention = AttentionSpec.streamingDefault
        s.kvBytesInUse = 1024 * 30 * 2 * 192 * 4
        s.contextUsed = 1024
        s.evictedTokens = 178
        var lines = Self.render(s)
        #expect(lines[0].contains("attn:sink4+win1020+evict/64"), "\(lines[0])")
        #expect(lines[1].contains("KV 45.0 MiB") && lines[1].contains("ctx 1024/8192") && lines[1].contains("evicted 178"),
                "\(lines[1])")
        s.techniques.attention = .dense
        s.pendingAttention = AttentionSpec.streamingDefault
        s.evictedTokens = 0
        lines = Self.render(s)
        #expect(lines[0].contains("attn:dense→sink4+win1020+evict/64"), "\(lines[0])")
        #expect(!lines[1].contains("evicted"))
    }

    @Test func f11AndCtrlOCycleTheAttentionPolicy() {
        let k = Keymap()
        #expect(k.action(for: .function(11)) == .cycleAttention)
        #expect(k.action(for: .ctrl("o")) == .cycleAttention)
    }
}
