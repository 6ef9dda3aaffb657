import EffEngine
import EffTechniques
import Foundation
import Testing
@testable import EffTUI

/// Every pane rendered into the in-memory grid and compared as text with committed
/// snapshots (Tests/EffTUITests/Snapshots/NAME_WxH.txt) at 80x24, 120x40 and 40x12.
/// Set EFFTERM_UPDATE_SNAPSHOTS=1 to rewrite them after an intended change.
@Suite struct PaneSnapshotTests {
    static let sizes = [(80, 24), (120, 40), (40, 12)]

    /// A model description shaped like SmolLM2-135M's GGUF: 30 blocks of Q4_1 matrices and
    /// F32 norms, a Q8_0 embedding shared with the output head.
    static func smolInfo() -> ModelInfo {
        var tensors: [TensorSummary] = []
        let q41 = GGMLTypeBits.q4_1, f32 = 32.0
        func bytes(_ n: Int, _ bits: Double) -> Int { Int(Double(n) * bits / 8) }
        for l in 0..<30 {
            for (role, name, n) in [(TensorRole.q, "attn_q", 576 * 576), (.k, "attn_k", 576 * 192),
                                    (.v, "attn_v", 576 * 192), (.o, "attn_output", 576 * 576),
                                    (.gate, "ffn_gate", 576 * 1536), (.up, "ffn_up", 576 * 1536),
                                    (.down, "ffn_down", 1536 * 576)] {
                tensors.append(TensorSummary(name: "blk.\(l).\(name).weight", layer: l, role: role, format: "Q4_1",
                                             elementCount: n, bytes: bytes(n, q41)))
            }
            for name in ["attn_norm", "ffn_norm"] {
                tensors.append(TensorSummary(name: "blk.\(l).\(name).weight", layer: l, role: .norm, format: "F32",
                                             elementCount: 576, bytes: Int(576 * f32 / 8)))
            }
        }
        tensors.append(TensorSummary(name: "token_embd.weight", layer: nil, role: .embd, format: "Q8_0",
                                     elementCount: 49152 * 576, bytes: bytes(49152 * 576, 8.5)))
        tensors.append(TensorSummary(name: "output_norm.weight", layer: nil, role: .norm, format: "F32",
                                     elementCount: 576, bytes: 576 * 4))
        let total = tensors.map(\.bytes).reduce(0, +)
        return ModelInfo(name: "SmolLM2-135M-Instruct", sha256: String(repeating: "a", count: 64), templateHash: "t",
                         contextMax: 8192, nLayers: 30, nHeads: 9, weightBytes: total, tensors: tensors)
    }

    /// A deterministic attention summary: density grows with depth, sink mass with head.
    static func attention() -> AttentionSummary {
        let c = AttentionStatsCollector(nLayers: 30, nHeads: 9, patternBins: 24)
        var probs = [Float](repeating: 0, count: 40)
        for l in 0..<30 {
            for h in 0..<9 {
                let sharp = Float(1 + (29 - l) / 3 + h)
                var sum: Float = 0
                for i in 0..<probs.count { probs[i] = expf(-Float(abs(39 - i)) / (40 / sharp)) + (i == 0 ? Float(h) * 0.2 : 0); sum += probs[i] }
                for i in 0..<probs.count { probs[i] /= sum }
                probs.withUnsafeBufferPointer { c.observe(layer: l, head: h, probs: $0) }
            }
        }
        return c.summary()
    }

    static func makeApp(width: Int, height: Int) -> (ChatApp, MemoryScreen, ChatEngine) {
        let screen = MemoryScreen(width: width, height: height)
        let backend = ScriptedChatBackend(answers: [], info: smolInfo())
        let engine = ChatEngine(backend: backend, settings: GenerationSettings(), system: nil, store: nil)
        var stats = TurnStats()
        stats.promptTokens = 31; stats.prefillSeconds = 0.124; stats.generatedTokens = 57; stats.decodeSeconds = 1.4
        stats.contextUsed = 88
        engine.snapshots.update {
            $0.lastStats = stats; $0.kvBytesInUse = 88 * 30 * 2 * 192 * 4; $0.contextUsed = 88
            $0.attention = attention()
        }
        let app = ChatApp(screen: screen, engine: engine, theme: .builtin, panels: [BitsPanel(), AttnPanel()])
        return (app, screen, engine)
    }

    static func conversation(_ app: ChatApp) {
        var stats = TurnStats()
        stats.promptTokens = 31; stats.prefillSeconds = 0.124; stats.generatedTokens = 57; stats.decodeSeconds = 1.4
        for e: ChatEvent in [
            .userMessage("How can I improve my time management skills?"),
            .text("## Plan\nHere are **three** ideas:\n1. Set clear goals - know what matters.\n"),
            .text("- Use a `todo` list 日本語 and 😀 emoji\n```\nlet x = 1\n```\nDone."),
            .answerFinished(stats),
        ] { app.apply(e) }
    }

    func check(_ name: String, _ grid: CellGrid) throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Snapshots")
        let file = dir.appendingPathComponent("\(name)_\(grid.width)x\(grid.height).txt")
        let text = grid.text() + "\n"
        if ProcessInfo.processInfo.environment["EFFTERM_UPDATE_SNAPSHOTS"] == "1" {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try text.write(to: file, atomically: true, encoding: .utf8)
            return
        }
        let expected = try String(contentsOf: file, encoding: .utf8)
        #expect(text == expected, "snapshot \(file.lastPathComponent) differs:\n\(text)")
    }

    func render(_ app: ChatApp, _ engine: ChatEngine) -> CellGrid {
        app.frame(snapshot: engine.snapshots.latest.value).0
    }

    @Test(arguments: sizes) func chatPaneWithBitsPanel(size: (Int, Int)) throws {
        let (app, _, engine) = Self.makeApp(width: size.0, height: size.1)
        Self.conversation(app)
        try check("chat_bits", render(app, engine))
    }

    @Test(arguments: sizes) func chatPaneAlone(size: (Int, Int)) throws {
        let (app, _, engine) = Self.makeApp(width: size.0, height: size.1)
        Self.conversation(app)
        if size.0 >= ChatApp.panelMinWidth {
            app.perform(.cyclePanel); app.perform(.cyclePanel)   // bits -> attn -> none
            #expect(app.panelIndex == nil)
        } else {
            #expect(!app.fullPanel)                              // narrow: no side panel by default
        }
        for c in "Next question, typed but not sent" { app.handle(.char(c)) }
        try check("chat", render(app, engine))
    }

    @Test(arguments: sizes) func bitsPanelFullScreen(size: (Int, Int)) throws {
        let (app, _, engine) = Self.makeApp(width: size.0, height: size.1)
        app.perform(.fullPanel)
        try check("bits_full", render(app, engine))
    }

    /// A mixed plan (3-bit down, 2-bit v in some layers) with a sensitivity scan: per-layer
    /// KL bars, the selected tensor's KL at every scanned format, the plan's quality.
    @Test(arguments: sizes) func bitsPanelWithPlanAndScan(size: (Int, Int)) throws {
        let (app, _, engine) = Self.makeApp(width: size.0, height: size.1)
        var info = Self.smolInfo()
        for i in info.tensors.indices {
            guard let l = info.tensors[i].layer, info.tensors[i].role != .norm else { continue }
            if info.tensors[i].role == .down && l % 3 == 0 { info.tensors[i].format = "Q3G64"; info.tensors[i].bytes = info.tensors[i].elementCount * 7 / 16 }
            if info.tensors[i].role == .v && l > 20 { info.tensors[i].format = "Q2G32"; info.tensors[i].bytes = info.tensors[i].elementCount * 3 / 8 }
            let scale = pow(10, -Double(l % 7) / 2)
            info.sensitivity[info.tensors[i].name] = [
                SensitivityPoint(spec: "Q2G32", bitsPerWeight: 3, kl: 0.6 * scale),
                SensitivityPoint(spec: "Q3G64", bitsPerWeight: 3.5, kl: 0.1 * scale),
                SensitivityPoint(spec: "Q4G32", bitsPerWeight: 5, kl: 0.001 * scale),
            ]
        }
        info.weightsQuality = "KLD 0.085 ppl 17.90"
        engine.snapshots.update { $0.model = info; $0.techniques.weights = .plan("b3.5") }
        try check("bits_plan", render(app, engine))
        app.perform(.fullPanel)
        app.handle(.down); app.handle(.down); app.handle(.right); app.handle(.right)
        try check("bits_plan_full", render(app, engine))
    }

    @Test(arguments: sizes) func attnPanelFullScreenWithSelectedHead(size: (Int, Int)) throws {
        let (app, _, engine) = Self.makeApp(width: size.0, height: size.1)
        app.perform(.panelAttn)
        app.perform(.fullPanel)
        app.handle(.down); app.handle(.down); app.handle(.right)
        try check("attn_full", render(app, engine))
    }

    /// A MoA plan for SmolLM2's shape (30 layers x 3 KV heads): local heads with short
    /// spans, middle heads reading a quarter, a few wide heads.
    static func moaPlan() -> MoAPlan {
        var rules: [MoARule] = []
        for l in 0..<30 {
            for kv in 0..<3 {
                switch (l + kv) % 3 {
                case 0: rules.append(MoARule(alpha: 64, beta: 0.05))
                case 1: rules.append(MoARule(alpha: 128, beta: 0.25))
                default: rules.append(MoARule(alpha: 0, beta: l < 4 ? 1 : 0.6))
                }
            }
        }
        return MoAPlan(name: "moa-d0.50", modelFingerprint: String(repeating: "a", count: 64), layers: 30, kvHeads: 3,
                       sinkTokens: 4, minSpan: 64, rules: rules, budget: 0.5, constrainedLengths: [2048, 4096])
    }

    /// Attention over 3072 keys: a recent window, a sink, and a far-back bump whose weight
    /// grows with the head (what a short span loses); kept mass measured for `keep`.
    static func longAttention(keep: MoAPlan?) -> AttentionSummary {
        let n = 3072
        let c = AttentionStatsCollector(nLayers: 30, nHeads: 9, patternBins: 24)
        c.keepPlan = keep
        var probs = [Float](repeating: 0, count: n)
        for l in 0..<30 {
            for h in 0..<9 {
                let tau = Float(40 + 20 * (l % 5)), far = Float(h) * 0.02 + Float(l % 4) * 0.01
                var sum: Float = 0
                for i in 0..<n {
                    probs[i] = expf(-Float(n - 1 - i) / tau) / tau + (i == 0 ? 0.3 : 0) + (abs(i - n / 3) < 32 ? far / 64 : 0)
                    sum += probs[i]
                }
                for i in 0..<n { probs[i] /= sum }
                probs.withUnsafeBufferPointer { c.observe(layer: l, head: h, probs: $0) }
            }
        }
        return c.summary()
    }

    /// The attn panel's plan metric with a MoA plan in force (spans, no kept mass: it is
    /// measured under dense), and under dense with the plan's kept mass measured beside its
    /// reads; the selected head's span over 3072 keys under its measured pattern.
    @Test(arguments: sizes) func attnPanelPlanMetric(size: (Int, Int)) throws {
        let (app, _, engine) = Self.makeApp(width: size.0, height: size.1)
        let plan = Self.moaPlan()
        engine.snapshots.update {
            $0.techniques.attention = .moa(plan); $0.contextUsed = 3072; $0.attention = Self.longAttention(keep: nil)
        }
        app.perform(.panelAttn)
        if !app.fullPanel { app.perform(.fullPanel) }
        #expect(app.fullPanel)
        app.handle(.char("m")); app.handle(.char("m"))
        app.handle(.down); app.handle(.down); app.handle(.down); app.handle(.down)
        app.handle(.right); app.handle(.right); app.handle(.right); app.handle(.right)
        let active = render(app, engine)
        #expect(active.text().contains("moa:moa-d0.50, density 0.34"))
        #expect(active.text().contains("mass not measured under dense yet"))
        try check("attn_plan", active)
        engine.snapshots.update { $0.techniques.attention = .dense; $0.attention = Self.longAttention(keep: plan) }
        let dense = render(app, engine)
        #expect(dense.text().contains("measuring moa:moa-d0.50"))
        #expect(dense.text().contains("keeps 94.3% of measured mass"))
        try check("attn_plan_dense", dense)
    }

    @Test func attnPanelPlanMetricWithoutAPlanSaysSo() {
        let (app, _, engine) = Self.makeApp(width: 80, height: 24)
        app.perform(.panelAttn)
        app.handle(.char("m")); app.handle(.char("m"))
        let text = render(app, engine).text()
        #expect(text.contains("policy dense"))
        #expect(text.contains("no MoA plan active or measured"))
    }

    @Test(arguments: sizes) func helpOverlay(size: (Int, Int)) throws {
        let (app, _, engine) = Self.makeApp(width: size.0, height: size.1)
        app.handle(.char("?"))
        #expect(app.showHelp)
        try check("help", render(app, engine))
    }

    @Test func narrowTabWalksPanelsFullScreen() {
        let (app, _, engine) = Self.makeApp(width: 80, height: 24)
        #expect(!render(app, engine).text().contains(" bits "))
        app.handle(.tab)
        #expect(app.fullPanel && app.panelIndex == 0)
        #expect(render(app, engine).text().contains("Q4_1×210"))
        app.handle(.tab)
        #expect(render(app, engine).text().contains("keys for 95% mass"))
        app.handle(.tab)
        #expect(!app.fullPanel)
        app.handle(.function(3))
        #expect(app.fullPanel && app.panelIndex == 1)
        app.handle(.escape)
        #expect(!app.fullPanel)
    }

    @Test func tooSmallNotice() throws {
        let (app, _, engine) = Self.makeApp(width: 30, height: 8)
        let g = render(app, engine)
        #expect(g.text().contains("terminal too small"))
        #expect(g.text().contains("have 30x8"))
    }

    @Test func onlyChangedCellsAreWritten() {
        let (app, screen, _) = Self.makeApp(width: 80, height: 24)
        app.step(timeoutMs: 0)
        #expect(screen.lastWriteCount == 80 * 24)
        app.handle(.char("x"))
        app.step(timeoutMs: 0)
        // The typed character, the placeholder text it replaced, nothing else.
        #expect(screen.lastWriteCount > 0 && screen.lastWriteCount <= 40)
    }
}

enum GGMLTypeBits { static let q4_1 = 5.0 }
