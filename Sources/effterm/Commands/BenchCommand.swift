import ArgumentParser
import EffCore
import EffEngine
import EffLLM
import EffTechniques
import Foundation

/// `effterm bench`: measurements printed as tables or JSON. `effterm bench` alone (or
/// `bench llm`) measures the LLM engine; `bench sot` measures Skeleton-of-Thought.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the engines: LLM speed (default) or Skeleton-of-Thought against normal decoding.",
        subcommands: [LLMBenchCommand.self, SoTBenchCommand.self,
                       DiffuseBenchCommand.self],  // diffusion: DiffuseBenchCommand.swift
        defaultSubcommand: LLMBenchCommand.self)
}

/// `effterm bench llm`: prefill, decode and batched-decode speed of the chat model, side by
/// side with `llama-bench` / `llama-batched-bench` (Tools/bench/compare-llama.sh).
struct LLMBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "llm",
        abstract: "Measure prefill, decode and batched-decode speed of the chat model.",
        discussion: """
        prefill: tok/s over N prompt tokens (llama-bench pp N). decode: tok/s of 128 single-token \
        steps after a context of depth D (llama-bench tg128 -d D). batched: B forked streams \
        over a shared 64-token prompt advance one token each per step; step_ratio = t_B / t_1. \
        Each figure is the median of --reps timed runs after one warm-up run. Token ids are \
        pseudo-random (as llama-bench's), so the numbers do not depend on a prompt. --isa avx2 \
        measures the AVX2 baseline on a CPU that has more.
        """
    )

    @Option(help: "A GGUF file to use instead of the cached model (else EFFTERM_MODEL, else the cache).")
    var model: String?

    @OptionGroup var compute: ComputeOptions

    @Option(help: "Timed repetitions per figure; the median is reported.")
    var reps = 3

    @Option(help: "Prefill lengths, comma-separated.")
    var prefill = "128,512,2048"

    @Option(help: "Decode depths (context before the timed tokens), comma-separated.")
    var depths = "0,1024,4096"

    @Option(help: "Timed decode tokens per run.")
    var decodeTokens = 128

    @Option(help: "KV cache formats, comma-separated (f32, f16, q8, q8g64). Prefill and batched runs use the first; with more than one, decode runs every format interleaved at each depth and reports bytes per token and the ratio to f32.")
    var kv = "f32"

    @Option(help: "Attention policies, comma-separated (dense, sinkS+winW, sinkS+winW+evict). With any but dense alone, decode runs every policy interleaved at each depth and reports ms/token and KV bytes.")
    var attention = "dense"

    @Option(help: "Also stream this many single-token decode steps under each evicting policy (and dense until its context ends), reporting ms/token at --checkpoints.")
    var generate = 0

    @Option(help: "Generated-token counts at which --generate reports ms/token (mean of the 128 tokens before).")
    var checkpoints = "2048,4096,8192,16384"

    @Option(help: "Batched stream counts, comma-separated.")
    var streams = "1,2,4,8"

    @Option(help: "Timed steps per batched run.")
    var batchSteps = 32

    @Option(help: "Only these sections: prefill, decode, batched (comma-separated).")
    var only: String?

    @Option(help: "Weights: file (default), or a format to requantize the 210 linear tensors to, e.g. Q4G32, Q3G64+o0.5%. With several (comma-separated), decode runs every variant interleaved at each depth and reports weight MiB, bits per weight and the ratio to the first; the other sections use the first.")
    var weights = "file"

    @Option(help: "A weight plan (name in $XDG_DATA_HOME/effterm/quant-plans, or a path) to decode interleaved with the --weights variants; repeatable.")
    var plan: [String] = []

    @Flag(help: "A quick subset: prefill 128, decode at depth 0, streams 1 and 4, 2 reps.")
    var quick = false

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        do { _ = try WeightSpec.list(weights) } catch { throw ValidationError("--\(error)") }
        let names = kv.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !names.isEmpty else { throw ValidationError("--kv: name at least one format (f32, f16, q8, q8g64).") }
        for n in names where KVFormat(argument: n) == nil {
            throw ValidationError("--kv \(n): use f32, f16, q8 or q8g64.")
        }
        do { _ = try AttentionPolicyCatalog.parseList(attention, resolve: AttnStore.syntaxOnly) } catch { throw ValidationError("--attention: \(error)") }
        guard generate >= 0 else { throw ValidationError("--generate \(generate): use 0 (off) or a token count.") }
    }

    var formats: [KVFormat] {
        var out: [KVFormat] = []
        for n in kv.split(separator: ",") {
            if let f = KVFormat(argument: n.trimmingCharacters(in: .whitespaces)), !out.contains(f) { out.append(f) }
        }
        return out
    }

    func run() throws {
        compute.apply()
        let pool = ComputePool.shared
        let weightSpecs = try WeightSpec.list(weights)
        let spec = weightSpecs[0]
        let loaded = try LoadedModel.load(explicitPath: model, command: "bench", weights: spec)
        let path = loaded.path, llm = loaded.model
        let formats = self.formats
        llm.kvFormat = formats[0]
        let sections = Set((only ?? "prefill,decode,batched").split(separator: ",").map(String.init))
        let reps = quick ? min(self.reps, 2) : max(1, self.reps)
        let prefillSizes = quick ? [128] : Self.ints(prefill)
        let depthList = quick ? [0] : Self.ints(depths)
        let streamList = quick ? [1, 4] : Self.ints(streams)
        let bench = ModelBench(model: llm, reps: reps, log: json ? { _ in } : { print($0) })

        var result: [String: Any] = [:]
        let c = llm.config
        let weightBytes = llm.weights.layers.reduce(0) { acc, lw in
            acc + [lw.wq, lw.wk, lw.wv, lw.wo, lw.wGate, lw.wUp, lw.wDown].reduce(0) { $0 + $1.byteCount }
                + (lw.outliers?.byteCount ?? 0) + 2 * c.dim * 4
        } + llm.weights.output.byteCount + c.dim * 4
        let linear = llm.weights.linearStorage
        result["model"] = ["path": path, "weight_bytes_per_token": weightBytes, "weights": spec.description,
                           "linear_bits_per_weight": Double(linear.bytes * 8) / Double(max(1, linear.elements)),
                           "kv_format": formats[0].name,
                           "kv_bytes_per_token": 2 * c.nLayers * formats[0].rowBytes(width: c.kvDim),
                           "layers": c.nLayers, "dim": c.dim, "vocab": c.vocabSize]
        result["machine"] = Self.machine(threads: pool.threadCount)
        result["reps"] = reps
        if sections.contains("prefill") {
            result["prefill"] = try prefillSizes.map { n in
                let r = try bench.prefill(tokens: n)
                return ["tokens": n, "tok_s": r.tokPerSec, "seconds": r.seconds] as [String: Any]
            }
        }
        let specs = try AttnStore.specs(attention, option: "--attention", modelPath: loaded.path, config: c)
        if sections.contains("decode"), specs != [.dense] {
            let rows = try bench.decodePolicies(specs.map(\.configuration), depths: depthList, tokens: decodeTokens)
            result["attention"] = rows.map { row in
                [
                    "policy": row.name,
                    "decode": row.decode.map { d in
                        ["depth": d.depth, "tokens": decodeTokens, "tok_s": d.rate.tokPerSec,
                         "ms_per_token": d.rate.seconds / Double(decodeTokens) * 1000, "kv_bytes": d.kvBytes] as [String: Any]
                    },
                ] as [String: Any]
            }
        } else if sections.contains("decode"), weightSpecs.count > 1 || !plan.isEmpty {
            // The first variant is loaded; the others are requantized from the same file.
            let baseLoaded = spec.isFile ? loaded : try LoadedModel.load(explicitPath: model, command: "bench")
            let base = baseLoaded.model
            var models = [llm]
            var labels = [spec.description]
            for s in weightSpecs.dropFirst() { models.append(s.isFile ? base : try requantize(base, s)); labels.append(s.description) }
            let fingerprint = plan.isEmpty ? "" : try QuantStore.fingerprint(loaded.path)
            var calibration: CalibrationGrams?
            for p in plan {
                let specs: [String: WeightSpec]
                do { specs = try WeightPlan.load(from: QuantStore.planURL(p), fingerprint: fingerprint).specs() } catch {
                    throw ValidationErrorParagraph("effterm bench: --plan \(p): \(error)")
                }
                if calibration == nil, specs.values.contains(where: \.gptq) {
                    calibration = try gptqCalibration(baseLoaded) { if !json { print($0) } }
                }
                models.append(LlamaModel(weights: try base.weights.requantized(plan: specs, calibration: calibration)))
                labels.append("plan:" + p)
            }
            for m in models { m.kvFormat = formats[0] }
            let rows = try ModelBench.decodeModels(models, reps: reps, depths: depthList, tokens: decodeTokens,
                                                   log: json ? { _ in } : { print($0) })
            result["decode"] = rows[0].map {
                ["depth": $0.depth, "tokens": decodeTokens, "tok_s": $0.rate.tokPerSec, "seconds": $0.rate.seconds] as [String: Any]
            }
            result["weights"] = zip(labels, zip(models, rows)).map { label, mr in
                let (m, row) = mr
                let lin = m.weights.linearStorage
                return [
                    "weights": label,
                    "weight_mib": Double(m.weights.totalBytes) / 1_048_576,
                    "linear_mib": Double(lin.bytes) / 1_048_576,
                    "linear_bits_per_weight": Double(lin.bytes * 8) / Double(max(1, lin.elements)),
                    "decode": row.enumerated().map { i, d in
                        ["depth": d.depth, "tok_s": d.rate.tokPerSec, "ratio_vs_first": d.rate.tokPerSec / rows[0][i].rate.tokPerSec] as [String: Any]
                    },
                ] as [String: Any]
            }
        } else if sections.contains("decode"), formats.count > 1 {
            let rows = try bench.decodeFormats(formats, depths: depthList, tokens: decodeTokens)
            let f32 = rows.first { $0.format == .f32 }
            result["decode"] = rows[0].decode.map {
                ["depth": $0.depth, "tokens": decodeTokens, "tok_s": $0.rate.tokPerSec, "seconds": $0.rate.seconds] as [String: Any]
            }
            result["kv"] = rows.map { row in
                [
                    "format": row.format.name,
                    "bytes_per_token": row.bytesPerToken,
                    "bytes_vs_f32": Double(row.bytesPerToken) / Double(2 * c.nLayers * c.kvDim * 4),
                    "convert_from_f32_ms": row.convertSeconds * 1000,
                    "convert_positions": row.decode.map { $0.depth }.max() ?? 0,
                    "decode": row.decode.enumerated().map { i, d in
                        var e: [String: Any] = ["depth": d.depth, "tok_s": d.rate.tokPerSec]
                        if let f32 { e["ratio_vs_f32"] = d.rate.tokPerSec / f32.decode[i].rate.tokPerSec }
                        return e
                    },
                ] as [String: Any]
            }
        } else if sections.contains("decode") {
            result["decode"] = try depthList.map { d in
                let r = try bench.decode(depth: d, tokens: decodeTokens)
                return ["depth": d, "tokens": decodeTokens, "tok_s": r.tokPerSec, "seconds": r.seconds] as [String: Any]
            }
        }
        if generate > 0 {
            let marks = Self.ints(checkpoints).filter { $0 > 0 && $0 <= generate } + [generate]
            result["generate"] = try specs.map { spec in
                let points = try bench.stream(spec.configuration, checkpoints: Array(Set(marks)).sorted())
                return ["policy": spec.description, "points": points.map {
                    ["generated": $0.generated, "ms_per_token": $0.msPerToken, "kv_bytes": $0.kvBytes] as [String: Any]
                }] as [String: Any]
            }
        }
        if sections.contains("batched") {
            let rows = try bench.batched(streams: streamList, steps: quick ? 16 : batchSteps)
            result["batched"] = rows.map {
                ["streams": $0.streams, "step_ms": $0.stepSeconds * 1000, "step_ratio": $0.stepRatio,
                 "tok_s": $0.tokPerSec] as [String: Any]
            }
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        }
    }

    static func ints(_ s: String) -> [Int] {
        s.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// CPU model, the flags that matter to the kernels, and the kernel path in use.
    static func machine(threads: Int) -> [String: Any] {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        var modelName = "unknown", flags: Set<Substring> = []
        for line in info.split(separator: "\n") {
            if modelName == "unknown", line.hasPrefix("model name") { modelName = line.split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" }
            if flags.isEmpty, line.hasPrefix("flags") { flags = Set(line.split(separator: ":").last?.split(separator: " ") ?? []) }
        }
        let wanted = ["avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512_vnni", "amx_tile"]
        return [
            "cpu": modelName,
            "cores": ProcessInfo.processInfo.activeProcessorCount,
            "threads": threads,
            "flags": wanted.filter { flags.contains(Substring($0)) },
            "kernels": FastKernels.pathDescription,
        ]
    }
}
