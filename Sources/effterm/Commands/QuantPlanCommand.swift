import ArgumentParser
import EffCore
import EffEngine
import EffLLM
import Foundation

/// `effterm quant plan`: the scan's KL-minimizing format per tensor under a size budget.
struct QuantPlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Choose a format per linear tensor minimizing scanned KL under a bits-per-weight or size budget.",
        discussion: """
            An exact multiple-choice knapsack (one scanned candidate per tensor) by dynamic \
            programming over a byte grid: sizes are counted in grid units rounded up, so a \
            plan always fits; the grid is the gcd of the candidates' sizes, coarsened so the \
            budget needs at most 2^19 cells (the plan records the grid and whether it rounded \
            anything). --budget is bits per weight over the linear tensors (outliers \
            included); --size is the whole model's weight bytes (embedding / head and norms \
            as in the file), e.g. 70MiB. The predicted KL is the sum of the chosen tensors' \
            scanned KLs. The plan is saved as $XDG_DATA_HOME/effterm/quant-plans/NAME.json; \
            measure it with `effterm eval quant --plan NAME`.
            """
    )

    @Option(help: "Average bits per weight of the linear tensors (e.g. 3.0).")
    var budget: Double?

    @Option(help: "Whole-model weight size: bytes, or a number with KiB, MiB, KB or MB (e.g. 70MiB).")
    var size: String?

    @Option(help: "The scan JSON (default: the newest full scan of this model in the cache).")
    var scan: String?

    @Option(help: "Plan name (default: mq-<budget>).")
    var name: String?

    @Option(help: "A GGUF file to use instead of the cached model (else EFFTERM_MODEL, else the cache).")
    var model: String?

    @Flag(help: "Print the plan as JSON instead of a summary.")
    var json = false

    func validate() throws {
        guard (budget == nil) != (size == nil) else { throw ValidationError("Give one of --budget BITS or --size SIZE.") }
        if let budget, !(budget > 0 && budget <= 32) { throw ValidationError("--budget \(budget): use bits per weight in (0, 32].") }
        if let size, Self.parseSize(size) == nil { throw ValidationError("--size \(size): use bytes or a number with KiB, MiB, KB or MB (e.g. 70MiB).") }
    }

    /// Bytes from "70MiB", "70MB", "123456".
    static func parseSize(_ s: String) -> Int? {
        let units: [(String, Double)] = [("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("KB", 1000), ("MB", 1e6), ("GB", 1e9), ("B", 1)]
        let t = s.trimmingCharacters(in: .whitespaces)
        for (u, f) in units where t.hasSuffix(u) {
            guard let v = Double(t.dropLast(u.count).trimmingCharacters(in: .whitespaces)), v > 0 else { return nil }
            return Int(v * f)
        }
        guard let v = Int(t), v > 0 else { return nil }
        return v
    }

    func run() throws {
        let loaded = try LoadedModel.load(explicitPath: model, command: "quant plan")
        let fingerprint = try QuantStore.fingerprint(loaded.path)
        guard let scanURL = scan.map({ URL(fileURLWithPath: $0) }) ?? QuantStore.newestFullScan(fingerprint: fingerprint, tensorCount: loaded.model.weights.linearTensors.count) else {
            throw ValidationErrorParagraph("effterm quant plan: no full scan of this model in \(QuantStore.scanDirectory(fingerprint: fingerprint).path); run `effterm quant scan` first or pass --scan FILE")
        }
        let report: ScanReport
        do { report = try QuantStore.loadScan(scanURL) } catch {
            throw ValidationErrorParagraph("effterm quant plan: \(scanURL.path) is not a scan report: \(error)")
        }
        guard report.modelFingerprint == fingerprint else {
            throw ValidationErrorParagraph("effterm quant plan: the scan \(scanURL.path) was made for model \(report.modelFingerprint.prefix(12))..., not this one (\(fingerprint.prefix(12))...)")
        }
        let w = loaded.model.weights
        let linear = w.linearStorage
        // A --size plan also picks the embedding's format when the scan measured it.
        let embeddingScanned = report.entries.contains { $0.role == .embd && $0.kl != nil }
        let embeddingBytes = size != nil && embeddingScanned ? w.tokenEmbedding.byteCount : nil
        let other = w.totalBytes - linear.bytes - (embeddingBytes ?? 0)
        let linearBudget: Int, kind: String, value: Double, defaultName: String
        if let budget {
            linearBudget = Int((budget * Double(linear.elements) / 8).rounded(.down))
            kind = "bits_per_weight"; value = budget
            defaultName = "mq-" + String(format: "%.2f", budget).replacingOccurrences(of: ".", with: "p") + "bpw"
        } else {
            let bytes = Self.parseSize(size!)!
            linearBudget = bytes - other
            kind = "size"; value = Double(bytes)
            defaultName = "mq-" + size!.replacingOccurrences(of: " ", with: "")
            guard linearBudget > 0 else {
                throw ValidationErrorParagraph("effterm quant plan: --size \(size!) is below the \(other) bytes of the tensors outside the plan (\(embeddingBytes == nil ? "embedding / head, " : "")norms)")
            }
        }
        let planName = name ?? defaultName
        var plan: WeightPlan
        do {
            plan = try report.plan(name: planName, tensors: w.linearTensors, linearBudget: linearBudget, budgetKind: kind,
                                   budgetValue: value, linearElements: linear.elements, otherBytes: other, scanPath: scanURL.path,
                                   embeddingBytes: embeddingBytes)
        } catch {
            throw ValidationErrorParagraph("effterm quant plan: \(error)")
        }
        let url = QuantStore.planURL(planName)
        // Keep a measurement of an identical earlier plan.
        if let old = try? WeightPlan.load(from: url), old.tensors == plan.tensors { plan.measured = old.measured }
        try plan.save(to: url)
        if json {
            FileHandle.standardOutput.write(try QuantStore.encoder().encode(plan) + Data("\n".utf8))
            return
        }
        Self.printSummary(plan, weights: w)
        print("saved: \(url.path)")
    }

    /// Bits per weight per layer x role (outliers included), then totals.
    static func printSummary(_ plan: WeightPlan, weights w: LlamaWeights) {
        let roles = LlamaWeights.linearRoles
        var elements: [String: Int] = [:]
        for t in w.summary { elements[t.name] = t.elementCount }
        var byName: [String: WeightPlan.Tensor] = [:]
        for t in plan.tensors { byName[t.tensor] = t }
        print(String(format: "plan %@: %.3f bits/weight on the linear tensors, %.2f MiB linear, %.2f MiB total, predicted KL sum %.4f (grid %d B%@)",
                     plan.name, plan.bitsPerWeight, Double(plan.linearBytes) / 1_048_576, Double(plan.totalBytes) / 1_048_576,
                     plan.predictedKLSum, plan.grid, plan.exact ? ", exact" : ""))
        print("bits/weight per layer x role:")
        print("layer" + roles.map { $0.rawValue.leftPadded(7) }.joined())
        for l in 0..<w.layers.count {
            var line = String(format: "%5d", l)
            for r in roles {
                let name = LinearTensorID(layer: l, role: r).name
                if let t = byName[name], let n = elements[name], n > 0 {
                    line += String(format: "%.2f", Double(t.bytes * 8) / Double(n)).leftPadded(7)
                } else {
                    line += "-".leftPadded(7)
                }
            }
            print(line)
        }
        if let e = byName[LlamaWeights.TensorName.tokenEmbedding] {
            print(String(format: "embedding / output head: %@, %.2f MiB%@", e.spec, Double(e.bytes) / 1_048_576,
                         e.kl.map { String(format: ", KL %.4f", $0) } ?? ""))
        }
        var counts: [String: Int] = [:]
        for t in plan.tensors where t.tensor != LlamaWeights.TensorName.tokenEmbedding { counts[t.spec, default: 0] += 1 }
        print("formats: " + counts.sorted { $0.value > $1.value }.map { "\($0.key) x\($0.value)" }.joined(separator: ", "))
        if let m = plan.measured {
            print(String(format: "measured on %@ (%d x %d): ppl %.4f, KLD %.4f, top-1 %.1f%%", (m.text as NSString).lastPathComponent,
                         m.chunks, m.ctx, m.ppl, m.kld, m.top1 * 100))
        }
    }
}

