import EffCore
import EffDiffusion
import EffLLM
import Foundation

/// MixDQ-style mixed precision for the DiT's block linears: measure how much each matrix
/// hurts the final image when it alone is quantized to each candidate format, then choose
/// one format per matrix minimizing the summed damage under a size budget (the exact
/// multiple-choice knapsack the LLM's bit allocation uses).
///
/// Sensitivity is end to end, as MixDQ measures it: the mean squared error of sampled images
/// (same noise, class and sampler) against the f32 model's, over calibration inputs, with
/// every other matrix left in f32 and activations quantized dynamically at the matrix's input.
public enum DiTMixedPrecision {
    public struct Sensitivity: Sendable {
        /// The candidate formats, in the order of `mse`'s last index.
        public var choices: [WeightFormat]
        /// [layer][DiTBlockMatrix.rawValue][choice]: mean squared image error (values in [-1, 1]).
        public var mse: [[[Double]]]
        public var seconds: Double
    }

    public struct Plan: Sendable {
        public var formats: [[WeightFormat?]]
        /// Bytes of the block linears under the plan.
        public var bytes: Int
        /// Summed single-matrix image MSE of the chosen formats (the knapsack's objective).
        public var predictedMSE: Double
        public var bitsPerWeight: Double
        /// How many matrices take each format.
        public var histogram: [String: Int]
    }

    /// Scans every (block, matrix, format) on `inputs`; `progress(done, total)`.
    public static func scan(weights: DiTWeights, sampler: SamplerKind, steps: Int, guidance: Float,
                            inputs: [(classID: Int, seed: UInt64)], choices: [WeightFormat] = [.q8_0, .q4_1],
                            progress: (Int, Int) -> Void = { _, _ in }) throws -> Sensitivity {
        let start = DispatchTime.now().uptimeNanoseconds
        func images(_ model: DiT) -> [[Float]] {
            let g = ImageGenerator(model: model)
            return inputs.map {
                g.generate(GenerationRequest(classID: $0.classID, sampler: sampler, steps: steps, guidance: guidance,
                                             seed: $0.seed)).planar
            }
        }
        let reference = images(DiT(weights: weights))
        let layers = weights.blocks.count, kinds = DiTBlockMatrix.allCases
        let total = layers * kinds.count * choices.count
        var mse = [[[Double]]](repeating: [[Double]](repeating: [], count: kinds.count), count: layers)
        var done = 0
        for l in 0..<layers {
            for m in kinds {
                for format in choices {
                    var formats = DiTQuant.uniform(weights, nil)
                    formats[l][m.rawValue] = format
                    let q = try DiTQuant(weights: weights, formats: formats)
                    let out = images(DiT(weights: weights, quant: q))
                    var sum = 0.0
                    for (a, b) in zip(out, reference) { sum += ImageMetrics.meanSquaredError(a, b) }
                    mse[l][m.rawValue].append(sum / Double(max(1, inputs.count)))
                    done += 1
                    progress(done, total)
                }
            }
        }
        return Sensitivity(choices: choices, mse: mse,
                           seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }

    /// The plan of least summed sensitivity whose block linears fit `bitsPerWeight` on
    /// average (bytes = bitsPerWeight / 8 x weights).
    public static func plan(_ s: Sensitivity, weights: DiTWeights, bitsPerWeight: Double) throws -> Plan {
        let kinds = DiTBlockMatrix.allCases
        var items: [[BitAllocator.Choice]] = []
        let params = weights.blockLinearParameters
        for (l, blk) in weights.blocks.enumerated() {
            for m in kinds {
                let lin = blk[m]
                items.append(s.choices.enumerated().map { i, f in
                    BitAllocator.Choice(bytes: lin.rows * f.rowBytes(lin.cols)!, cost: s.mse[l][m.rawValue][i])
                })
            }
        }
        let budget = Int((bitsPerWeight / 8 * Double(params)).rounded(.down))
        let solution = try BitAllocator.solve(items, budget: budget)
        var formats = DiTQuant.uniform(weights, nil)
        var histogram: [String: Int] = [:]
        for (i, pick) in solution.picks.enumerated() {
            let f = s.choices[pick]
            formats[i / kinds.count][i % kinds.count] = f
            histogram[f.name, default: 0] += 1
        }
        return Plan(formats: formats, bytes: solution.bytes, predictedMSE: solution.cost,
                    bitsPerWeight: Double(solution.bytes * 8) / Double(params), histogram: histogram)
    }
}
