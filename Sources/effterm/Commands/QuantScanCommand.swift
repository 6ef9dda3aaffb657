import ArgumentParser
import EffCore
import EffEngine
import EffLLM
import Foundation

/// `effterm quant scan`: KL of next-token distributions when only one linear tensor is
/// quantized, for every tensor and candidate format, plus the activation-weighted proxy.
struct QuantScanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Measure each linear tensor's sensitivity: KL vs the f32 reference when only it is quantized.",
        discussion: """
            The reference is the model file's weights dequantized to f32 (as in `eval quant`). \
            For every linear tensor (30 blocks x q, k, v, o, gate, up, down) and every \
            candidate spec, the tensor alone is requantized from the reference and the mean \
            KL(P_ref || P) over every position of --chunks chunks of --ctx calibration tokens \
            is measured; blocks before the tensor's block are not rerun (their residual stream \
            is cached). The tied embedding / output head (Q8_0 in the file) is scanned too, \
            at --embedding-candidates, from block 0 (it is both the lookup table and the head), \
            over every whole --ctx chunk of the calibration text (a few seconds). \
            Candidates ending in +gptq are quantized by GPTQ, which first runs the model over \
            4096 tokens of other licence texts (MPL-2.0, GFDL-1.3, ...) to collect every \
            linear's input Gram matrix (about 20 s). \
            The proxy is sum_j E[x_j^2] ||W[:,j] - Q(W)[:,j]||^2 \
            with E[x_j^2] the calibration inputs' second moments; Spearman's rho between proxy \
            and KL is reported. The calibration text must not be the evaluation text: the \
            default is the Apache-2.0 licence text every Debian ships, disjoint from gpl-3.txt. \
            Results are cached per model sha256 and settings under \
            $XDG_CACHE_HOME/effterm/quant/; a rerun with the same settings reads the cache. \
            Progress and ETA go to stderr; Ctrl-C cancels (nothing is cached).
            """
    )

    static let defaultCandidates = "Q2G64+mse+gptq+act,Q2G32+mse+gptq+act,Q3S,Q3G64+gptq+act,Q3G32+mse+gptq+act,Q4S,Q4G64+mse+gptq+act,Q4G32"
    static let defaultEmbeddingCandidates = "Q6G32,Q5G32,Q4G32,Q4G64"

    @Option(help: "Calibration text (not the evaluation text).")
    var calib = "/usr/share/common-licenses/Apache-2.0"

    @Option(help: "Comma-separated candidate specs (Q<bits>G<group>[+o<percent>%][+mse], ...).")
    var candidates = QuantScanCommand.defaultCandidates

    @Option(help: "Comma-separated formats for the embedding / output head (no outliers, no GPTQ); \"\" scans none.")
    var embeddingCandidates = QuantScanCommand.defaultEmbeddingCandidates

    @Option(help: "Calibration chunks.")
    var chunks = 1

    @Option(help: "Tokens per calibration chunk.")
    var ctx = 128

    @Option(help: "Only these tensors: comma-separated LAYER.ROLE (e.g. 0.q,3.down) or file names (default: all 210).")
    var tensors: String?

    @Flag(help: "Only the proxy (no KL; a plan needs KL).")
    var proxyOnly = false

    @Flag(help: "Ignore a cached result (the new one replaces it).")
    var noCache = false

    @Option(help: "A GGUF file to use instead of the cached model (else EFFTERM_MODEL, else the cache).")
    var model: String?

    @Flag(help: "Print the whole scan as JSON instead of a summary.")
    var json = false

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        do { _ = try WeightSpec.list(candidates) } catch { throw ValidationError("--candidates: \(error)") }
        do {
            if try embeddingSpecs().contains(where: { $0.gptq || $0.outlierFraction > 0 }) {
                throw ValidationError("--embedding-candidates take no outliers and no GPTQ (the embedding is read by row lookups too).")
            }
        } catch let e as ValidationError { throw e } catch { throw ValidationError("--embedding-candidates: \(error)") }
        guard chunks >= 1 else { throw ValidationError("--chunks must be at least 1.") }
        guard ctx >= 8 else { throw ValidationError("--ctx must be at least 8.") }
    }

    func embeddingSpecs() throws -> [WeightSpec] {
        embeddingCandidates.trimmingCharacters(in: .whitespaces).isEmpty ? [] : try WeightSpec.list(embeddingCandidates)
    }

    /// Parses `--tensors` against the model's tensors.
    static func selectTensors(_ text: String?, all: [LinearTensorID]) throws -> [LinearTensorID] {
        guard let text else { return all }
        var out: [LinearTensorID] = []
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if let id = all.first(where: { $0.name == part }) { out.append(id); continue }
            let lr = part.split(separator: ".")
            guard lr.count == 2, let l = Int(lr[0]), let role = TensorRole(rawValue: String(lr[1])),
                  let id = all.first(where: { $0.layer == l && $0.role == role }) else {
                throw ValidationError("--tensors: '\(part)' is not LAYER.ROLE (roles q,k,v,o,gate,up,down; layers 0..<\(all.count / 7)) or a tensor name")
            }
            out.append(id)
        }
        return out
    }

    func run() throws {
        compute.apply()
        let specs = try WeightSpec.list(candidates)
        let embeddingSpecs = tensors == nil ? try embeddingSpecs() : []
        guard let text = try? String(contentsOfFile: calib, encoding: .utf8) else {
            throw ValidationErrorParagraph("effterm quant scan: cannot read the calibration text \(calib) (use --calib FILE)")
        }
        let loaded = try LoadedModel.load(explicitPath: model, command: "quant scan")
        let ids = try Self.selectTensors(tensors, all: loaded.model.weights.linearTensors)
        let tokens = loaded.tokenizer.encode(text, parseSpecial: false)
        guard tokens.count >= chunks * ctx else {
            throw ValidationErrorParagraph("effterm quant scan: \(calib) has \(tokens.count) tokens, \(chunks * ctx) needed (--chunks x --ctx)")
        }
        let calibTokens = Array(tokens.prefix(chunks * ctx))
        let embeddingTokens = Array(tokens.prefix(tokens.count / ctx * ctx))
        let calibHash = QuantStore.hash(calibTokens.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) })
        let fingerprint = try QuantStore.fingerprint(loaded.path)
        let settings = [fingerprint, calibHash, "\(chunks)x\(ctx)", specs.map(\.description).joined(separator: ","),
                        ids.map(\.name).joined(separator: ","), proxyOnly ? "proxy" : "kl",
                        "emb:" + embeddingSpecs.map(\.description).joined(separator: ",") + "@\(embeddingTokens.count)",
                        specs.contains(where: \.gptq) ? "gptq:\(CalibrationGrams.defaultTokenCount)" : ""].joined(separator: "|")
        let cacheURL = QuantStore.scanDirectory(fingerprint: fingerprint)
            .appendingPathComponent("scan-\(QuantStore.hash(Array(settings.utf8))).json")
        func log(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }

        let report: ScanReport
        if !noCache, let cached = try? QuantStore.loadScan(cacheURL) {
            log("quant scan: read from the cache \(cacheURL.path)\n")
            report = cached
        } else {
            report = try scan(loaded: loaded, ids: ids, specs: specs, embeddingSpecs: embeddingSpecs,
                              tokens: calibTokens, embeddingTokens: embeddingTokens, calibHash: calibHash,
                              fingerprint: fingerprint, log: log)
            try FileManager.default.createDirectory(at: cacheURL.deletingLastPathComponent(), withIntermediateDirectories: true)
            try QuantStore.encoder().encode(report).write(to: cacheURL, options: .atomic)
            log("quant scan: saved \(cacheURL.path)\n")
        }
        if json {
            FileHandle.standardOutput.write(try QuantStore.encoder().encode(report) + Data("\n".utf8))
            return
        }
        printSummary(report, cacheURL: cacheURL)
    }

    private func scan(loaded: LoadedModel, ids: [LinearTensorID], specs: [WeightSpec], embeddingSpecs: [WeightSpec],
                      tokens: [Int32], embeddingTokens: [Int32], calibHash: String,
                      fingerprint: String, log: @escaping (String) -> Void) throws -> ScanReport {
        let start = Date()
        let calibration = specs.contains(where: \.gptq) ? try gptqCalibration(loaded) { log("quant scan: " + $0 + "\n") } : nil
        let ref = try requantize(loaded.model, WeightSpec(format: .f32))
        log("quant scan: reference pass over \(chunks) x \(ctx) calibration tokens\n")
        let scan = try SensitivityScan(reference: ref, tokens: tokens, chunks: chunks, ctx: ctx)
        log(String(format: "quant scan: reference %.1f s; %d tensors x %d candidates%@\n", scan.referenceSeconds, ids.count, specs.count,
                   embeddingSpecs.isEmpty ? "" : ", embedding x \(embeddingSpecs.count)"))
        InterruptFlag.install()
        let interactive = isatty(STDERR_FILENO) == 1
        let t0 = Date()
        var lastDraw = Date.distantPast
        let entries: [SensitivityScan.Entry]
        do {
            entries = try scan.run(tensors: ids, candidates: specs, embedding: embeddingSpecs, embeddingTokens: embeddingTokens,
                                   calibration: calibration,
                                   measureKL: !proxyOnly, progress: { done, total, e in
                let now = Date()
                guard now.timeIntervalSince(lastDraw) > (interactive ? 0.2 : 10) || done == total else { return }
                lastDraw = now
                let elapsed = now.timeIntervalSince(t0)
                let eta = elapsed / Double(done) * Double(total - done)
                let kl = e.kl.map { String(format: "KL %.5f", $0) } ?? "proxy only"
                let line = String(format: "scan %d/%d %@ %@ %@  %.0f s, ETA %.0f s", done, total, e.tensor, e.spec, kl, elapsed, eta)
                log(interactive ? "\r\u{1B}[2K" + line + (done == total ? "\n" : "") : line + "\n")
            }, isCancelled: { InterruptFlag.raised })
        } catch SensitivityScan.ScanError.cancelled {
            log("\nquant scan: cancelled (nothing cached)\n")
            throw ExitCode(130)
        }
        return ScanReport(modelFingerprint: fingerprint, calibration: calib, calibrationHash: calibHash, chunks: chunks, ctx: ctx,
                          candidates: specs.map(\.description), embeddingCandidates: embeddingSpecs.map(\.description),
                          measuredKL: !proxyOnly, entries: entries,
                          referenceSeconds: scan.referenceSeconds, seconds: Date().timeIntervalSince(start))
    }

    private func printSummary(_ r: ScanReport, cacheURL: URL) {
        let tensors = Set(r.entries.map(\.tensor)).count
        print(String(format: "scan: %d tensors x %d candidates on %d x %d tokens of %@, %.0f s (reference %.1f s)",
                     tensors, r.candidates.count, r.chunks, r.ctx, (r.calibration as NSString).lastPathComponent,
                     r.seconds, r.referenceSeconds))
        if let rho = r.spearman { print(String(format: "Spearman rho(proxy, KL) over %d pairs: %.3f", r.entries.count, rho)) }
        print("candidate            mean KL    max KL  (tensor)")
        for c in r.candidates {
            let es = r.entries.filter { $0.spec == c && $0.role != .embd }
            guard let worst = es.max(by: { ($0.kl ?? $0.proxy) < ($1.kl ?? $1.proxy) }) else { continue }
            let mean = es.reduce(0.0) { $0 + ($1.kl ?? 0) } / Double(max(1, es.count))
            print(String(format: "%@ %9.5f %9.5f  (%@)", c.padding(toLength: max(18, c.count), withPad: " ", startingAt: 0), mean,
                         worst.kl ?? 0, worst.tensor))
        }
        for e in r.entries where e.role == .embd {
            print(String(format: "%@ %9.5f  (%@, %.2f MiB)", e.spec.padding(toLength: 18, withPad: " ", startingAt: 0), e.kl ?? 0,
                         e.tensor, Double(e.bytes) / 1_048_576))
        }
        print("cache: \(cacheURL.path)")
    }
}
