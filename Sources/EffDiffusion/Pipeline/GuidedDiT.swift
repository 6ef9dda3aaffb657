import Foundation

/// The DiT with classifier-free guidance, as a `DataPredictor` for the samplers.
///
/// One forward pass over a batch of 2 (conditional row, unconditional row with the null
/// class), then `out = out_u + scale·(out_c − out_u)` on every channel, then conversion of
/// the guided output to x̂₀ (v: x̂₀ = α·x − σ·v; ε: x̂₀ = (x − σ·ε)/α).
public struct GuidedDiT: DataPredictor {
    public let model: DiT
    public let schedule: NoiseSchedule
    public var classID: Int
    public var guidance: Float
    private let state: DiTState
    private var input: [Float]    // (2, C, S, S)
    private var output: [Float]   // (2, C, S, S)
    /// Model evaluations so far and the wall time they took.
    public private(set) var evaluations = 0
    public private(set) var forwardSeconds = 0.0

    public init(model: DiT, classID: Int, guidance: Float) {
        self.model = model
        self.schedule = NoiseSchedule(cosineWithTimesteps: model.config.timesteps)
        self.classID = classID
        self.guidance = guidance
        state = DiTState(config: model.config, batch: 2)
        input = [Float](repeating: 0, count: 2 * model.config.imageFloats)
        output = input
    }

    public mutating func predictX0(_ x: [Float], tau: Double, into x0: inout [Float]) {
        let n = model.config.imageFloats
        precondition(x.count == n && x0.count == n, "GuidedDiT: latent size mismatch")
        for i in 0..<n { input[i] = x[i]; input[n + i] = x[i] }
        let start = DispatchTime.now().uptimeNanoseconds
        let labels = [classID, model.config.numClasses]
        input.withUnsafeBufferPointer { inp in
            output.withUnsafeMutableBufferPointer { out in
                model.forward(x: inp.baseAddress!, tau: [tau, tau], labels: labels, state: state, out: out.baseAddress!)
            }
        }
        forwardSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        evaluations += 1
        let (a, s) = schedule.alphaSigma(at: tau)
        let alpha = Float(a), sigma = Float(s), g = guidance
        let isV = model.config.prediction == "v"
        for i in 0..<n {
            let o = output[n + i] + g * (output[i] - output[n + i])
            x0[i] = isV ? alpha * x[i] - sigma * o : (x[i] - sigma * o) / alpha
        }
    }
}
