import CEffKernels
import EffCore
import Foundation
import Testing
@testable import EffDiffusion

/// A random guided batch (pairs of conditional / null-class rows) for forward-pass checks.
private struct Batch {
    let model: DiT
    let x: [Float]
    let tau: [Double]
    let labels: [Int]
    var n: Int { model.config.imageFloats * labels.count }

    init(model: DiT, pairs: Int, seed: UInt64, sameLabel: Bool = false) {
        self.model = model
        var g = GaussianNoise(seed: seed)
        let one = g.fill(model.config.imageFloats * pairs)
        var x: [Float] = []
        for p in 0..<pairs {
            let img = Array(one[(p * model.config.imageFloats)..<((p + 1) * model.config.imageFloats)])
            x += img + img
        }
        self.x = x
        tau = Array(repeating: 500, count: 2 * pairs)
        labels = (0..<pairs).flatMap { p in [p % model.config.numClasses, sameLabel ? p % model.config.numClasses : model.config.numClasses] }
    }

    func run(_ state: DiTState, _ ctx: DiTStepContext = DiTStepContext()) -> [Float] {
        var out = [Float](repeating: 0, count: n)
        x.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { op in
            model.forward(x: xp.baseAddress!, tau: tau, labels: labels, state: state, out: op.baseAddress!, context: ctx)
        } }
        return out
    }
}

private func maxAbs(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? 0 }

@Suite struct DiTKernelTests {
    /// The packed-panel GEMM against the plain-loop reference for shapes with row and token
    /// tails (rows not a multiple of 16, tokens not a multiple of 6). Both sum in f32 over
    /// `cols` terms; the bound is a few ulps of the magnitudes involved.
    @Test func packedGEMMMatchesTheReferenceLoop() {
        var g = GaussianNoise(seed: 5)
        for (rows, cols, tokens) in [(48, 128, 128), (37, 20, 7), (16, 512, 1), (130, 33, 13)] {
            let w = g.fill(rows * cols), x = g.fill(tokens * cols), bias = g.fill(rows)
            var packed = [Float](repeating: .nan, count: eff_dit_packed16_floats(Int32(rows), Int32(cols)))
            eff_dit_pack16_f32(w, Int32(rows), Int32(cols), &packed)
            var y = [Float](repeating: .nan, count: tokens * rows)
            eff_dit_gemm_f32(packed, bias, Int32(rows), Int32(cols), 0, Int32((rows + 15) / 16), x, Int32(cols),
                             Int32(tokens), &y, Int32(rows))
            var err: Float = 0
            for t in 0..<tokens { for r in 0..<rows {
                var s = Double(bias[r])
                for k in 0..<cols { s += Double(x[t * cols + k]) * Double(w[r * cols + k]) }
                err = max(err, abs(Float(s) - y[t * rows + r]))
            } }
            #expect(err < 1e-4, "\(rows)x\(cols) x \(tokens) tokens: max error \(err)")
        }
    }

    /// The vectorized GELU (tanh via e^x) against libm's tanh, over the range activations take.
    @Test func vectorGELUAndSiLUMatchLibm() {
        var x = (0..<1001).map { Float($0 - 500) / 50 }   // -10 ... 10
        var s = x
        eff_dit_gelu_tanh_f32(&x, Int32(x.count))
        eff_dit_silu_f32(&s, Int32(s.count))
        for i in x.indices {
            let v = Float(i - 500) / 50
            let gelu = 0.5 * v * (1 + Foundation.tanh(0.7978845608 * (v + 0.044715 * v * v * v)))
            #expect(abs(x[i] - gelu) <= 2e-6 * max(1, abs(gelu)), "gelu(\(v)) = \(x[i]), libm \(gelu)")
            let silu = v / (1 + Foundation.exp(-v))
            #expect(abs(s[i] - silu) <= 2e-6 * max(1, abs(silu)), "silu(\(v)) = \(s[i]), libm \(silu)")
        }
    }

    /// The DiT kernels and EffCore's general kernel surface run the same network: outputs
    /// agree to float rounding (the PyTorch fixture test bounds both at 1e-3).
    @Test func ditKernelsMatchTheSurfaceKernels() throws {
        let w = try DiTBundle.bundled().weights
        let fast = Batch(model: DiT(weights: w, kernels: .dit), pairs: 2, seed: 1)
        let slow = Batch(model: DiT(weights: w, kernels: .surface), pairs: 2, seed: 1)
        let a = fast.run(DiTState(config: w.config, batch: 4)), b = slow.run(DiTState(config: w.config, batch: 4))
        #expect(maxAbs(a, b) < 1e-4, "max difference \(maxAbs(a, b))")
        #expect(a.map(abs).max()! > 0.1)
    }
}

@Suite struct FastAttnForwardTests {
    let weights: DiTWeights
    var config: DiTConfig { weights.config }
    init() throws { weights = try DiTBundle.bundled().weights }

    func modes(_ m: DiTAttentionMode) -> [DiTAttentionMode] { Array(repeating: m, count: config.nLayers) }

    /// A band at least as wide as the image is full attention: same kernel, same key range,
    /// so the same bits.
    @Test func windowCoveringTheImageEqualsFullAttentionBitForBit() {
        let model = DiT(weights: weights)
        let b = Batch(model: model, pairs: 1, seed: 2)
        let s = DiTState(config: config, batch: 2)
        _ = b.run(s, DiTStepContext(step: 0, modes: modes(.full), storeResidual: Array(repeating: true, count: config.nLayers),
                                     window: config.nTokens))
        // The residual O_full − O_window is exactly 0 when the window covers every token.
        for l in 0..<config.nLayers {
            let r = UnsafeBufferPointer(start: s.residual[l], count: 2 * config.nTokens * config.dim)
            #expect(r.allSatisfy { $0 == 0 }, "block \(l) residual is not zero")
        }
        let full = b.run(DiTState(config: config, batch: 2))
        let win = b.run(s, DiTStepContext(step: 1, modes: modes(.window), window: config.nTokens))
        #expect(win == full)
    }

    /// WA-RS on the same input as the full step that cached the residual gives back the full
    /// output: O_window + (O_full − O_window) = O_full up to one rounding per element.
    @Test func windowPlusResidualReproducesTheFullStep() {
        let model = DiT(weights: weights)
        let b = Batch(model: model, pairs: 1, seed: 3)
        let s = DiTState(config: config, batch: 2)
        let full = b.run(s, DiTStepContext(step: 0, modes: modes(.full), storeResidual: Array(repeating: true, count: config.nLayers), window: 8))
        let plain = b.run(s, DiTStepContext(step: 1, modes: modes(.window), window: 8, updateCaches: false))
        #expect(maxAbs(plain, full) < 1e-4, "window + residual vs full: \(maxAbs(plain, full))")
        #expect(s.fallbacks == 0)
        // Without the residual the narrow band really differs (the test above is not vacuous).
        let noRes = DiTState(config: config, batch: 2)
        _ = b.run(noRes, DiTStepContext(step: 0, modes: modes(.full), window: 8))
        var ctx = DiTStepContext(step: 1, modes: modes(.window), window: 8)
        ctx.updateCaches = false
        _ = b.run(noRes, ctx)
        #expect(noRes.fallbacks == config.nLayers, "window without a stored residual runs full attention and says so")
    }

    /// The band kernel really restricts keys: a narrow band changes the output.
    @Test func narrowWindowDiffersFromFull() {
        let model = DiT(weights: weights)
        let b = Batch(model: model, pairs: 1, seed: 4)
        let s = DiTState(config: config, batch: 2)
        _ = b.run(s, DiTStepContext(step: 0, modes: modes(.full), storeResidual: Array(repeating: true, count: config.nLayers), window: 2))
        // Zero the residuals: what is left is pure band attention.
        for l in 0..<config.nLayers { s.residual[l].update(repeating: 0, count: 2 * config.nTokens * config.dim) }
        let band = b.run(s, DiTStepContext(step: 1, modes: modes(.window), window: 2, updateCaches: false))
        let full = b.run(DiTState(config: config, batch: 2))
        #expect(maxAbs(band, full) > 1e-2)
    }

    /// AST on an unchanged input reuses exactly the attention outputs the previous step made.
    @Test func sharingAcrossStepsOnTheSameInputIsExact() {
        let model = DiT(weights: weights)
        let b = Batch(model: model, pairs: 1, seed: 5)
        let s = DiTState(config: config, batch: 2)
        let first = b.run(s, DiTStepContext(step: 0))
        let shared = b.run(s, DiTStepContext(step: 1, modes: modes(.sharedStep)))
        #expect(shared == first)
        #expect(s.fallbacks == 0)
    }

    /// ASC is exact when the conditional and unconditional rows are the same image and class.
    @Test func sharingAcrossCFGIsExactWhenCondEqualsUncond() {
        let model = DiT(weights: weights)
        let b = Batch(model: model, pairs: 2, seed: 6, sameLabel: true)
        let full = b.run(DiTState(config: config, batch: 4))
        let asc = b.run(DiTState(config: config, batch: 4), DiTStepContext(step: 0, modes: modes(.sharedCFG)))
        #expect(asc == full)
        // With a real null class the two rows differ, so sharing changes the unconditional rows only.
        let g = Batch(model: model, pairs: 1, seed: 6)
        let gf = g.run(DiTState(config: config, batch: 2))
        let ga = g.run(DiTState(config: config, batch: 2), DiTStepContext(step: 0, modes: modes(.sharedCFG)))
        let n = config.imageFloats
        #expect(Array(ga[0..<n]) == Array(gf[0..<n]), "conditional row is computed exactly")
        #expect(maxAbs(Array(ga[n...]), Array(gf[n...])) > 1e-3, "unconditional row now uses the conditional attention")
    }

    /// A batch of several guided images gives each image the bits it gets alone.
    @Test func batchedGuidedImagesMatchSingleImages() throws {
        let model = DiT(weights: weights)
        let n = config.imageFloats
        var g = GaussianNoise(seed: 8)
        let x = g.fill(2 * n)
        var both = GuidedDiT(model: model, classIDs: [3, 7], guidance: 3)
        both.evaluate(x, tau: 700, context: DiTStepContext())
        for (k, cls) in [3, 7].enumerated() {
            var one = GuidedDiT(model: model, classID: cls, guidance: 3)
            one.evaluate(Array(x[(k * n)..<((k + 1) * n)]), tau: 700, context: DiTStepContext())
            #expect(maxAbs(one.guidedOutput, Array(both.guidedOutput[(k * n)..<((k + 1) * n)])) < 1e-5)
        }
    }
}

@Suite struct AttentionScheduleTests {
    @Test func validationNamesStepAndBlock() {
        #expect(throws: DiTAttentionSchedule.Invalid.needsPriorStep(step: 0, layer: 0, mode: "sharedStep")) {
            try DiTAttentionSchedule(modes: [[.sharedStep, .full]], window: 8, layers: 2)
        }
        #expect(throws: DiTAttentionSchedule.Invalid.needsPriorStep(step: 0, layer: 1, mode: "window")) {
            try DiTAttentionSchedule(modes: [[.full, .window], [.full, .full]], window: 8, layers: 2)
        }
        #expect(throws: DiTAttentionSchedule.Invalid.ragged(step: 1, count: 1, expected: 2)) {
            try DiTAttentionSchedule(modes: [[.full, .full], [.full]], window: 8, layers: 2)
        }
    }

    /// Residuals are computed only at the full step a later window step reads.
    @Test func residualsAreStoredWhereALaterWindowStepReadsThem() throws {
        let s = try DiTAttentionSchedule(modes: [[.full], [.full], [.sharedStep], [.window], [.sharedCFG], [.full], [.windowSharedCFG]],
                                         window: 4, layers: 1)
        #expect(s.storeResidual.map { $0[0] } == [false, true, false, false, false, true, false])
    }

    /// MAC accounting: AST everywhere after step 0 leaves 1/steps of the work; ASC halves it;
    /// the band of ±w over N tokens costs the pairs it covers.
    @Test func attentionMACsFollowTheModes() throws {
        let c = try DiTBundle.bundled().config
        let steps = 10, L = c.nLayers
        let full = DiTAttentionSchedule.fullAttentionMACs(steps: steps, config: c)
        #expect(full.core == steps * L * 2 * (2 * c.nTokens * c.nTokens * c.dim))
        var modes = Array(repeating: Array(repeating: DiTAttentionMode.sharedStep, count: L), count: steps)
        modes[0] = Array(repeating: .full, count: L)
        let ast = try DiTAttentionSchedule(modes: modes, window: 8, layers: L).attentionMACs(config: c)
        #expect(ast.core * steps == full.core && ast.module * steps == full.module)
        let asc = try DiTAttentionSchedule.uniform(.sharedCFG, steps: steps, layers: L).attentionMACs(config: c)
        #expect(asc.core * 2 == full.core && asc.module * 2 == full.module)
    }
}

@Suite struct ImageMetricsTests {
    @Test func psnrAndSSIMOfKnownPairs() {
        let a = [Float](repeating: 0.5, count: 3 * 32 * 32)
        #expect(ImageMetrics.psnr(a, a) == .infinity)
        #expect(abs(ImageMetrics.ssim(a, a, channels: 3, size: 32) - 1) < 1e-12)
        // A uniform error of 0.02 on a range of 2: PSNR = 10·log10(4 / 0.0004) = 40 dB.
        let b = a.map { $0 + 0.02 }
        #expect(abs(ImageMetrics.psnr(a, b) - 40) < 1e-3)
        // Clipping: values past ±1 count as ±1.
        #expect(ImageMetrics.psnr([1, -1], [3, -5]) == .infinity)
        var g = GaussianNoise(seed: 1)
        let noise = g.fill(a.count).map { $0 * 0.3 }
        let noisy = zip(a, noise).map { $0 + $1 }
        let s = ImageMetrics.ssim(a, noisy, channels: 3, size: 32)
        #expect(s < 0.9 && s > -1)
    }
}

@Suite struct SamplerCursorTests {
    /// Driving the cursor by hand gives the bits of `Sampler.run`.
    @Test func cursorStepsEqualRun() {
        let schedule = NoiseSchedule(cosineWithTimesteps: 1000)
        let sampler = Sampler(kind: .dpmpp2m, steps: 7, schedule: schedule)
        var g = GaussianNoise(seed: 4)
        let start = g.fill(48)
        struct Shrink: DataPredictor {
            mutating func predictX0(_ x: [Float], tau: Double, into x0: inout [Float]) {
                for i in x.indices { x0[i] = 0.5 * x[i] * Float(1 - tau / 2000) }
            }
        }
        var a = start, m = Shrink(), noise = GaussianNoise(seed: 0)
        sampler.run(&a, model: &m, noise: &noise)
        var b = start, cursor = SamplerCursor(sampler, count: b.count), x0 = b
        while !cursor.isFinished {
            m.predictX0(b, tau: cursor.tau, into: &x0)
            cursor.advance(&b, x0: &x0, noise: &noise)
        }
        #expect(a == b && cursor.index == 7)
    }
}
