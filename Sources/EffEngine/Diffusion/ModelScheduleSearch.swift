import EffCore
import EffDiffusion
import EffLLM
import Foundation

/// A model schedule (OMS-DPM-style): which of the shipped DiTs (dit-small, dit-base) runs at
/// each sampler step.
public struct ModelSchedule: Sendable, Equatable {
    public var modelNames: [String]
    /// Index into `modelNames` per step.
    public var perStep: [Int]
    /// Measured ms per guided evaluation of each model, the schedule's predicted time as a
    /// fraction of the largest model everywhere, and its summed single-step sensitivity.
    public var msPerEvaluation: [Double]
    public var predictedTimeFraction: Double
    public var predictedError: Double

    /// "bbsssbbb...": the first letter of each step's model.
    public var map: String { perStep.map { String(modelNames[$0].split(separator: "-").last?.first ?? "?") }.joined() }
}

/// OMS-DPM (Liu et al., "OMS-DPM: Optimizing the Model Schedule for Diffusion Probabilistic
/// Models", 2023), reduced: instead of the authors' learned performance predictor and
/// evolutionary search, each step's cost of swapping the large model for the small one is
/// measured directly (image MSE against the large model everywhere, only that step swapped,
/// on calibration inputs) and the schedule minimizing the summed cost under a time budget is
/// the exact knapsack over steps (the LLM bit allocator, time in place of bytes).
public enum ModelScheduleSearch {
    /// `models[0]` is the large (reference) model; `timeFraction` of its all-steps time is
    /// the budget. A budget below the cheapest schedule throws, or with `clampToFeasible`
    /// gives the cheapest schedule (timings are measured, so on a loaded machine the small
    /// model may look slower than the budget needs).
    public static func search(models: [(name: String, model: DiT)], steps: Int, guidance: Float,
                              inputs: [(classID: Int, seed: UInt64)], timeFractions: [Double],
                              clampToFeasible: Bool = false,
                              progress: (Int, Int) -> Void = { _, _ in }) throws -> [ModelSchedule] {
        precondition(models.count >= 2, "ModelScheduleSearch: two models or more")
        let dits = models.map(\.model)
        func request(_ input: (classID: Int, seed: UInt64)) -> GenerationRequest {
            GenerationRequest(classID: input.classID, sampler: .dpmpp2m, steps: steps, guidance: guidance, seed: input.seed)
        }
        // Time per guided evaluation of each model (median over the inputs of one full run);
        // the large model's runs are also the reference images.
        var ms: [Double] = []
        var reference: [[Float]] = []
        for m in models.indices {
            let runs = inputs.map { ImageGenerator.generate(request($0), models: dits, perStep: [m]) }
            let per = runs.map { $0.forwardMilliseconds / Double(max(1, $0.evaluations)) }.sorted()
            ms.append(per[per.count / 2])
            if m == 0 { reference = runs.map(\.planar) }
        }
        // cost[step][model]: MSE with only that step on that model.
        let total = steps * (models.count - 1)
        var cost = [[Double]](repeating: [0], count: steps)
        var done = 0
        for i in 0..<steps {
            for m in 1..<models.count {
                var perStep = [Int](repeating: 0, count: steps)
                perStep[i] = m
                var sum = 0.0
                for (input, ref) in zip(inputs, reference) {
                    let img = ImageGenerator.generate(request(input), models: dits, perStep: perStep).planar
                    sum += ImageMetrics.meanSquaredError(img, ref)
                }
                cost[i].append(sum / Double(max(1, inputs.count)))
                done += 1
                progress(done, total)
            }
        }
        // Time in microsecond units per step and model.
        let units = ms.map { max(1, Int(($0 * 1000).rounded())) }
        let items = (0..<steps).map { i in models.indices.map { BitAllocator.Choice(bytes: units[$0], cost: cost[i][$0]) } }
        let full = steps * units[0]
        let cheapest = steps * (units.min() ?? units[0])
        return try timeFractions.map { f in
            let budget = Int(Double(full) * f)
            let s = try BitAllocator.solve(items, budget: clampToFeasible ? max(budget, cheapest) : budget)
            return ModelSchedule(modelNames: models.map(\.name), perStep: s.picks, msPerEvaluation: ms,
                                 predictedTimeFraction: Double(s.bytes) / Double(full), predictedError: s.cost)
        }
    }
}
