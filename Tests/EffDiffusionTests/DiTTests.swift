import EffCore
import Foundation
import Testing
@testable import EffDiffusion

/// Reference tensors written by Tools/dit/export.py with the same fp16 weights the bundle ships.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static func reference(_ model: String = "dit-base") throws -> SafeTensorsFile {
        try SafeTensorsFile(contentsOf: directory.appendingPathComponent("\(model)-reference.safetensors"))
    }

    /// `model` on the fixture's forward-pass inputs: its output and PyTorch's.
    static func forward(_ model: DiT) throws -> (out: [Float], expected: [Float]) {
        let f = try reference()
        let x = try f.floats("forward.x"), expected = try f.floats("forward.out")
        let tau = try f.floats("forward.tau").map(Double.init), labels = try f.floats("forward.labels").map { Int($0) }
        let state = DiTState(config: model.config, batch: 2)
        var out = [Float](repeating: 0, count: expected.count)
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                model.forward(x: xp.baseAddress!, tau: tau, labels: labels, state: state, out: op.baseAddress!)
            }
        }
        return (out, expected)
    }
}

@Suite struct DiTTests {
    /// Max |Swift − PyTorch| allowed on the network output: both run f32 on identical
    /// weights; differences come from summation order and libm (measured ~1e-5).
    static let forwardTolerance: Float = 1e-3
    /// Same for a 6-step guided DPM-Solver++ trajectory (errors compound through steps and CFG).
    static let trajectoryTolerance: Float = 5e-3

    @Test func shippedBundleLoadsAndNamesItsClasses() throws {
        let b = try DiTBundle.bundled()
        #expect(b.classes.count == b.config.numClasses)
        #expect(try b.classID(for: "hand") == 3)
        #expect(try b.classID(for: "HAND") == 3)
        #expect(try b.classID(for: "5") == 5)
        #expect(throws: DiTError.unknownClass("unicorn")) { try b.classID(for: "unicorn") }
        #expect(b.weights.parameterCount > 1_000_000)
    }

    @Test func forwardMatchesPyTorchOnTheFixture() throws {
        let (out, expected) = try Fixtures.forward(try DiTBundle.bundled().model)
        let err = zip(out, expected).map { abs($0 - $1) }.max()!
        let scale = expected.map(abs).max()!
        #expect(scale > 0.1, "fixture output is not trivially zero")
        #expect(err <= Self.forwardTolerance, "max abs error \(err)")
    }

    @Test func guidedDPMSolverTrajectoryMatchesPyTorch() throws {
        let b = try DiTBundle.bundled()
        let f = try Fixtures.reference()
        let steps = Int(f.metadata["steps"] ?? "") ?? 0, cls = Int(f.metadata["class"] ?? "") ?? -1
        let guidance = Float(f.metadata["guidance"] ?? "") ?? 0
        #expect(f.metadata["sampler"] == "dpmpp2m" && steps > 0)
        var x = try f.floats("trajectory.noise")
        let expectedX0 = try f.floats("trajectory.x0"), expectedTau = try f.floats("trajectory.tau")
        var model = GuidedDiT(model: b.model, classID: cls, guidance: guidance)
        var noise = GaussianNoise(seed: 0)
        var x0s: [[Float]] = [], taus: [Double] = []
        Sampler(kind: .dpmpp2m, steps: steps, schedule: model.schedule).run(&x, model: &model, noise: &noise) {
            x0s.append($0.x0); taus.append($0.tau)
        }
        #expect(x0s.count == steps)
        for (i, t) in taus.enumerated() { #expect(abs(Float(t) - expectedTau[i]) < 1e-3, "tau \(i)") }
        let n = b.config.imageFloats
        for (i, x0) in x0s.enumerated() {
            let err = (0..<n).map { abs(x0[$0] - expectedX0[i * n + $0]) }.max()!
            #expect(err <= Self.trajectoryTolerance, "step \(i) x0 error \(err)")
        }
        let finalErr = zip(x, try f.floats("trajectory.final")).map { abs($0 - $1) }.max()!
        #expect(finalErr <= Self.trajectoryTolerance, "final error \(finalErr)")
    }

    @Test func generationIsReproducibleForASeed() throws {
        let g = ImageGenerator(model: try DiTBundle.bundled().model)
        let r = GenerationRequest(classID: 0, sampler: .dpmpp2m, steps: 3, guidance: 2, seed: 11)
        let a = g.generate(r), b = g.generate(r)
        var other = r; other.seed = 12
        #expect(a.planar == b.planar)
        #expect(a.planar != g.generate(other).planar)
        #expect(a.evaluations == 3)
    }

    @Test func configValidationNamesTheField() {
        let bad = #"{"image_size":32,"channels":3,"patch":5,"hidden":128,"depth":6,"heads":4,"mlp_ratio":4,"num_classes":12,"freq_dim":256,"timesteps":1000,"prediction":"v","schedule":"cosine","layer_norm_eps":1e-6}"#
        #expect(throws: DiTError.badConfig("patch 5 must divide image_size 32")) { try DiTConfig.load(from: Data(bad.utf8)) }
        let pred = bad.replacingOccurrences(of: #""patch":5"#, with: #""patch":4"#).replacingOccurrences(of: #""v""#, with: #""x0""#)
        #expect(throws: DiTError.badConfig("prediction 'x0' is not v or eps")) { try DiTConfig.load(from: Data(pred.utf8)) }
    }

    @Test func weightsRejectAMisshapenTensorByName() throws {
        let b = try DiTBundle.bundled()
        var c = b.config
        c.dim = 64  // the shipped file holds hidden = 128 tensors
        c.nHeads = 4
        let file = try SafeTensorsFile(contentsOf: DiTBundle.resourceDirectory.appendingPathComponent("dit-base.safetensors"))
        #expect(throws: DiTError.weights(.init(text: "safetensors: tensor 'patch_embed.weight' has shape [128, 48], expected [64, 48]"))) {
            try DiTWeights(config: c, file: file)
        }
    }
}

@Suite struct GuidanceTests {
    /// Guidance 1 must reproduce the conditional row alone and 0 the unconditional row: checks
    /// the batch order (cond, uncond) and the v → x̂₀ conversion against a plain batch-1 forward.
    @Test func guidanceScaleSelectsConditionalAndUnconditionalRows() throws {
        let b = try DiTBundle.bundled()
        let c = b.config, n = c.imageFloats
        var rng = GaussianNoise(seed: 3)
        let x = rng.fill(n)
        let tau = 600.0
        let (a, s) = NoiseSchedule(cosineWithTimesteps: c.timesteps).alphaSigma(at: tau)
        func plain(_ label: Int) -> [Float] {
            let state = DiTState(config: c, batch: 1)
            var v = [Float](repeating: 0, count: n)
            x.withUnsafeBufferPointer { xp in v.withUnsafeMutableBufferPointer { vp in
                b.model.forward(x: xp.baseAddress!, tau: [tau], labels: [label], state: state, out: vp.baseAddress!)
            } }
            return (0..<n).map { Float(a) * x[$0] - Float(s) * v[$0] }
        }
        for (g, label) in [(Float(1), 4), (Float(0), c.numClasses)] {
            var guided = GuidedDiT(model: b.model, classID: 4, guidance: g)
            var x0 = [Float](repeating: 0, count: n)
            guided.predictX0(x, tau: tau, into: &x0)
            let err = zip(x0, plain(label)).map { abs($0 - $1) }.max()!
            #expect(err < 1e-4, "guidance \(g): \(err)")
        }
    }
}

@Suite struct SiblingModelTests {
    /// The smaller sibling ships too (for model-schedule work) and runs through the same code.
    @Test func ditSmallLoadsAndGenerates() throws {
        let b = try DiTBundle.bundled("dit-small")
        #expect(b.config.dim == 96 && b.config.nLayers == 3)
        let base = try DiTBundle.bundled()
        #expect(b.weights.parameterCount < base.weights.parameterCount / 3)
        let r = ImageGenerator(model: b.model).generate(GenerationRequest(classID: 6, steps: 2, seed: 1))
        #expect(r.evaluations == 2 && r.planar.allSatisfy(\.isFinite))
    }
}
