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
