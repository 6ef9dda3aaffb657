import EffCore
import EffEngine
import EffLLM
import Foundation

/// What `effterm chat` offers on Ctrl-P and draws in the bits panel: the saved weight plans
/// made for this model file, and its newest sensitivity scan.
enum ChatWeights {
    /// Names of the plans in the plan directory made for the model with `fingerprint`
    /// (others, and files that do not load, are left out).
    static func planNames(fingerprint: String) -> [String] {
        let dir = QuantStore.planDirectory
        let files = (try? FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)) ?? []
        return files.filter { $0.pathExtension == "json" }.compactMap { url in
            (try? WeightPlan.load(from: url, fingerprint: fingerprint)) == nil ? nil : url.deletingPathExtension().lastPathComponent
        }.sorted()
    }

    /// The most recently written scan of this model file with KL values, as the bits panel's
    /// per-tensor sensitivity (bits per weight from the tensors' element counts).
    static func sensitivity(fingerprint: String, tensors: [TensorSummary]) -> [String: [SensitivityPoint]] {
        let dir = QuantStore.scanDirectory(fingerprint: fingerprint)
        let files = (try? FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: [.contentModificationDateKey])) ?? []
        let newest = files.filter { $0.lastPathComponent.hasPrefix("scan-") && $0.pathExtension == "json" }
            .compactMap { url -> (URL, Date, ScanReport)? in
                guard let data = try? Data(contentsOf: url),
                      let r = try? JSONDecoder().decode(ScanReport.self, from: data),
                      r.measuredKL, r.modelFingerprint == fingerprint else { return nil }
                let date = (try? url.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate) ?? .distantPast
                return (url, date, r)
            }
            .max { $0.1 < $1.1 }
        guard let report = newest?.2 else { return [:] }
        let elements = Dictionary(tensors.map { ($0.name, $0.elementCount) }, uniquingKeysWith: { a, _ in a })
        var out: [String: [SensitivityPoint]] = [:]
        for e in report.entries {
            guard let n = elements[e.tensor], n > 0 else { continue }
            out[e.tensor, default: []].append(SensitivityPoint(spec: e.spec, bitsPerWeight: Double(e.bytes * 8) / Double(n), kl: e.kl))
        }
        return out
    }

    /// Installs the plan builder and the scan on `backend`; returns what Ctrl-P cycles.
    static func attach(to backend: LlamaChatBackend) -> [WeightChoice] {
        let fingerprint = backend.info.sha256
        let tokenizer = backend.tokenizer
        // GPTQ plans need the inputs' Gram matrices; computed once (the first GPTQ plan) and kept.
        var calibration: CalibrationGrams?
        backend.planBuilder = { name, file, progress in
            let plan = try WeightPlan.load(from: QuantStore.planURL(name), fingerprint: fingerprint)
            let specs = try plan.specs()
            if calibration == nil, specs.values.contains(where: \.gptq) {
                let tokens = CalibrationGrams.defaultTokens(tokenizer: tokenizer).tokens
                calibration = try CalibrationGrams(model: LlamaModel(weights: file), tokens: tokens) { done, total in
                    progress(done, total + file.linearTensors.count)
                }
            }
            let weights = try file.requantized(plan: specs, calibration: calibration, progress: progress)
            let quality = plan.measured.map { String(format: "KLD %.3f ppl %.2f", $0.kld, $0.ppl) }
                ?? String(format: "predicted KL sum %.3f", plan.predictedKLSum)
            return (weights, quality)
        }
        backend.setSensitivity(sensitivity(fingerprint: fingerprint, tensors: backend.info.tensors))
        return WeightChoice.chatCycle(file: backend.weights, plans: planNames(fingerprint: fingerprint))
    }
}
