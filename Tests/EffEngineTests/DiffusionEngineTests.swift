import EffDiffusion
import Foundation
import Testing
@testable import EffEngine

@Suite struct DiffusionEngineTests {
    /// Polls the snapshot until `done` holds or `seconds` pass.
    func wait(_ engine: DiffusionEngine, seconds: Double, until done: (DiffusionSnapshot) -> Bool) async -> DiffusionSnapshot {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            let s = engine.snapshots.latest.value
            if done(s) { return s }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return engine.snapshots.latest.value
    }

    @Test func generatesWithAPreviewPerStepOffThePool() async {
        let engine = DiffusionEngine()
        await engine.generate(GenerationRequest(classID: 2, sampler: .dpmpp2m, steps: 3, guidance: 3, seed: 1))
        let s = await wait(engine, seconds: 300) { $0.phase == .done }
        #expect(s.phase == .done)
        #expect(s.step == 3 && s.steps == 3 && s.thumbnails.count == 3)
        #expect(s.classes.count == 12 && s.preview?.width == 32)
        // The final preview is the generated image itself.
        let direct = ImageGenerator(model: try! DiTBundle.bundled().model)
            .generate(GenerationRequest(classID: 2, sampler: .dpmpp2m, steps: 3, guidance: 3, seed: 1))
        #expect(s.preview == direct.image)
    }

    /// A comparison job samples the f32 baseline, then the W8A8 image on the same noise: both
    /// images, the PSNR between them and the quantized blocks' size reach the snapshot, and
    /// the W8A8 image is exactly what a W8A8 generator makes alone.
    @Test func w8a8ComparisonShowsBothImagesAndThePSNR() async throws {
        let engine = DiffusionEngine()
        let r = GenerationRequest(classID: 4, sampler: .dpmpp2m, steps: 4, guidance: 3, seed: 3)
        await engine.generate(r, weights: .w8a8, compare: true)
        let s = await wait(engine, seconds: 300) { $0.phase == .done }
        #expect(s.phase == .done && s.weights == .w8a8)
        let b = try DiTBundle.bundled()
        let f32 = ImageGenerator(model: b.model).generate(r)
        let w8 = ImageGenerator(model: DiT(weights: b.weights, quant: try DiTQuant.w8a8(weights: b.weights))).generate(r)
        #expect(s.baselineImage == f32.image && s.preview == w8.image)
        #expect(s.psnr == ImageMetrics.psnr(w8.planar, f32.planar))
        #expect((s.psnr ?? 0) > 30 && (s.psnr ?? 0).isFinite)
        #expect((s.blockMiB ?? 99) < 2 && (s.blockMiB ?? 0) > 1)
        #expect(DiTWeightsChoice.f32.next == .w8a8 && DiTWeightsChoice.mixed.next == .f32)
    }

    /// A USF schedule and a DiTFastAttn plan are searched on first use for the job's steps;
    /// the plan's map and the schedule's note reach the snapshot, and the comparison still
    /// samples the plain f32 baseline.
    @Test func usfScheduleAndFastAttnPlanAreSearchedAndShown() async throws {
        let engine = DiffusionEngine()
        let r = GenerationRequest(classID: 6, sampler: .dpmpp2m, steps: 6, guidance: 3, seed: 8)
        await engine.generate(r, compare: true, attention: .fastAttn, schedule: .usf)
        let s = await wait(engine, seconds: 600) { $0.phase == .done || { if case .failed = $0.phase { return true } else { return false } }($0) }
        #expect(s.phase == .done, "\(s.phase)")
        #expect(s.planMap?.count == 6 && s.planMap?.allSatisfy { $0.count == 6 } == true, "\(s.planMap ?? [])")
        #expect(s.scheduleNote?.hasPrefix("USF 6 steps") == true, "\(s.scheduleNote ?? "")")
        let f32 = ImageGenerator(model: try DiTBundle.bundled().model).generate(r)
        #expect(s.baselineImage == f32.image)
        #expect((s.psnr ?? 0) > 10 && (s.psnr ?? 0) < 100)
    }

    /// An OMS schedule picks dit-small or dit-base per step (from measured timings, so which
    /// steps depends on the machine's load): the image is what the model-scheduled generator
    /// makes with the schedule the note names.
    @Test func omsScheduleRunsBothModels() async throws {
        let engine = DiffusionEngine()
        let r = GenerationRequest(classID: 2, sampler: .dpmpp2m, steps: 6, guidance: 3, seed: 2)
        await engine.generate(r, schedule: .oms)
        let s = await wait(engine, seconds: 600) { $0.phase == .done || { if case .failed = $0.phase { return true } else { return false } }($0) }
        #expect(s.phase == .done, "\(s.phase)")
        let note = try #require(s.scheduleNote)
        #expect(note.hasPrefix("OMS: ") && note.contains("s"), "\(note)")
        let map = String(note.dropFirst(5).prefix(6))
        let perStep = map.map { $0 == "s" ? 1 : 0 }
        #expect(map.count == 6 && map.allSatisfy { $0 == "s" || $0 == "b" }, "\(map)")
        let direct = ImageGenerator.generate(r, models: [try DiTBundle.bundled().model, try DiTBundle.bundled("dit-small").model],
                                             perStep: perStep)
        #expect(s.preview == direct.image)
        #expect(DiTScheduleChoice.oms.next == .solver)
    }

    @Test func cancelStopsBetweenSteps() async {
        let engine = DiffusionEngine()
        // 1000 ancestral steps take seconds even in release, so the cancel lands mid-run
        // however late a loaded machine schedules this task.
        await engine.generate(GenerationRequest(classID: 0, sampler: .ddpm, steps: 1000, guidance: 3, seed: 2))
        _ = await wait(engine, seconds: 300) { $0.step >= 1 }
        await engine.cancel()
        let s = await wait(engine, seconds: 60) { $0.phase == .cancelled }
        #expect(s.phase == .cancelled)
        #expect(s.step < 1000)
    }

    @Test func aMissingModelIsReportedNotFatal() async {
        let engine = DiffusionEngine(loader: { throw DiTError.resourceMissing("/nowhere/dit.json") })
        await engine.generate(GenerationRequest(classID: 0))
        #expect(engine.snapshots.latest.value.phase == .failed("DiT resource missing: /nowhere/dit.json"))
    }
}
