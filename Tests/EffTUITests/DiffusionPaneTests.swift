import EffCore
import EffDiffusion
import EffEngine
import Testing
@testable import EffTUI

@Suite struct DiffusionPaneTests {
    func context() -> PanelContext { PanelContext(chat: ChatSnapshot(), theme: .builtin, focused: true) }

    @Test func rendersHeaderStatusPreviewAndThumbnailsFromTheSnapshot() {
        let engine = DiffusionEngine(loader: { throw DiTError.resourceMissing("not used") })
        var snap = DiffusionSnapshot()
        snap.phase = .running; snap.classes = ["face", "heart"]; snap.step = 3; snap.steps = 20; snap.msPerStep = 21.5
        let red = RGBImage(width: 32, height: 32, pixels: [UInt8](repeating: 0, count: 32 * 32 * 3).enumerated().map { $0.offset % 3 == 0 ? 200 : 10 })
        snap.preview = red
        snap.thumbnails = [red, red, red]
        engine.snapshots.publish(snap)
        let panel = DiffusionPanel(engine: engine, send: { _ in })
        _ = panel.handle(.right)   // class 1 = heart
        for (w, h) in [(40, 24), (60, 30), (30, 10)] {
            var grid = CellGrid(width: w, height: h)
            panel.render(into: &grid, rect: Rect(x: 0, y: 0, width: w, height: h), context: context())
            let text = grid.text()
            #expect(text.contains("heart"), "\(w)x\(h)")
            #expect(text.contains("dpmpp2m 20 steps"), "\(w)x\(h)")
            #expect(text.contains("step 3/20  21.5 ms/step"), "\(w)x\(h)")
            let blocks = grid.cells.filter { $0.char == HalfBlockImage.upperHalf && $0.style.fg == .rgb(200, 10, 10) }
            #expect(blocks.count >= min(w, (h - 3) * 2) / 2, "preview drawn at \(w)x\(h)")
        }
    }

    /// A comparison draws the f32 baseline and the job's image side by side, labelled with
    /// their times and the PSNR; `w` and `c` change what the next job runs.
    @Test func comparisonDrawsBothImagesWithTheirLabels() {
        let engine = DiffusionEngine(loader: { throw DiTError.resourceMissing("not used") })
        func image(_ r: UInt8, _ g: UInt8) -> RGBImage {
            RGBImage(width: 32, height: 32, pixels: (0..<(32 * 32 * 3)).map { $0 % 3 == 0 ? r : $0 % 3 == 1 ? g : 10 })
        }
        var snap = DiffusionSnapshot()
        snap.phase = .done; snap.classes = ["face"]; snap.steps = 20; snap.msTotal = 97; snap.msPerStep = 4.85
        snap.weights = .w8a8; snap.blockMiB = 1.79
        snap.baselineImage = image(200, 10); snap.baselineMs = 140; snap.preview = image(10, 200); snap.psnr = 46.94
        engine.snapshots.publish(snap)
        let panel = DiffusionPanel(engine: engine, send: { _ in })
        #expect(panel.handle(.char("w")) && panel.weights == .w8a8)
        #expect(panel.handle(.char("c")) && panel.compare)
        #expect(panel.handle(.char("a")) && panel.attention == .fastAttn)
        #expect(panel.handle(.char("u")) && panel.schedule == .usf)
        snap.attention = .fastAttn; snap.schedule = .usf
        snap.planMap = ["FFSSWF", "FSSSFF"]; snap.scheduleNote = "USF 20 steps: error vs DDIM-250 0.0012 (default 0.0030)"
        engine.snapshots.publish(snap)
        var grid = CellGrid(width: 60, height: 24)
        panel.render(into: &grid, rect: Rect(x: 0, y: 0, width: 60, height: 24), context: context())
        let text = grid.text()
        #expect(text.contains("weights W8A8  compare: on  blocks 1.79 MiB"), "\(text)")
        #expect(text.contains("attn DiTFastAttn-0.05  schedule USF") && text.contains("USF 20 steps: error"), "\(text)")
        #expect(text.contains("b0 FFSSWF") && text.contains("b1 FSSSFF"), "\(text)")
        #expect(text.contains("f32 140 ms") && text.contains("W8A8 97 ms  PSNR 46.9 dB"), "\(text)")
        let red = grid.cells.indices.filter { grid.cells[$0].char == HalfBlockImage.upperHalf && grid.cells[$0].style.fg == .rgb(200, 10, 10) }
        let green = grid.cells.indices.filter { grid.cells[$0].char == HalfBlockImage.upperHalf && grid.cells[$0].style.fg == .rgb(10, 200, 10) }
        #expect(!red.isEmpty && !green.isEmpty)
        // Baseline on the left half, the job's image on the right.
        #expect(red.allSatisfy { $0 % 60 < 30 } && green.allSatisfy { $0 % 60 >= 30 })
    }

    @Test func keysChangeTheRequestAndStartAJob() {
        let engine = DiffusionEngine(loader: { throw DiTError.resourceMissing("not used") })
        var sent = 0
        let panel = DiffusionPanel(engine: engine, send: { _ in sent += 1 })
        #expect(panel.request.steps == 20 && panel.request.sampler == .dpmpp2m)
        _ = panel.handle(.down); _ = panel.handle(.char("s")); _ = panel.handle(.char("+"))
        #expect(panel.request.steps == 15 && panel.request.sampler == .ddim && panel.request.guidance == 3.5)
        #expect(panel.handle(.enter) && sent == 1)
        #expect(panel.handle(.char("x")) && sent == 2)
        #expect(!panel.handle(.char("q")))
    }
}
