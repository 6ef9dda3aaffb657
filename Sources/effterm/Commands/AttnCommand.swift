import ArgumentParser
import EffCore
import EffEngine
import EffLLM
import EffTechniques
import Foundation

/// `effterm attn`: MoA's per-head sparse attention (issue 12): profile, plan search, plans.
struct AttnCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attn",
        abstract: "Profile attention and search MoA per-head span plans under a density budget.",
        subcommands: [AttnProfileCommand.self, AttnPlanCommand.self, AttnShowCommand.self]
    )
}

/// Where attention profiles and plans live.
enum AttnStore {
    /// Profiles: `$XDG_CACHE_HOME/effterm/attn/<fingerprint prefix>/profile-<settings hash>.json`.
    static func profileURL(fingerprint: String, settings: String) -> URL {
        XDGDirectories.current().cache.appendingPathComponent("attn", isDirectory: true)
            .appendingPathComponent(String(fingerprint.prefix(16)), isDirectory: true)
            .appendingPathComponent("profile-\(QuantStore.hash(Array(settings.utf8))).json")
    }

    /// Plans: `$XDG_DATA_HOME/effterm/attn-plans/NAME.json`.
    static var planDirectory: URL {
        XDGDirectories.current().data.appendingPathComponent("attn-plans", isDirectory: true)
    }

    /// A plan given as a path (contains '/' or ends in .json) or as a name in the plan directory.
    static func planURL(_ nameOrPath: String) -> URL {
        if nameOrPath.contains("/") || nameOrPath.hasSuffix(".json") { return URL(fileURLWithPath: nameOrPath) }
        return planDirectory.appendingPathComponent(nameOrPath + ".json")
    }

    /// A resolver for `moa:NAME` spellings, checked against the model.
    static func resolver(fingerprint: String?, layers: Int, kvHeads: Int) -> (String) throws -> MoAPlan {
        { name in try MoAPlan.load(from: planURL(name), fingerprint: fingerprint, layers: layers, kvHeads: kvHeads) }
    }

    /// For option validation before the model is loaded: accepts any `moa:NAME` syntax.
    static func syntaxOnly(_ name: String) throws -> MoAPlan {
        MoAPlan(name: name, modelFingerprint: "", layers: 1, kvHeads: 1, sinkTokens: 0, minSpan: 1,
                rules: [MoARule(alpha: 0, beta: 1)], budget: 1, constrainedLengths: [])
    }

    /// Parses an option's attention specs, loading `moa:NAME` plans checked against the model
    /// file at `modelPath` (hashed only when a plan is named).
    static func specs(_ text: String, option: String, modelPath: String, config: LlamaConfig) throws -> [AttentionSpec] {
        var fingerprint: String?
        do {
            return try AttentionPolicyCatalog.parseList(text, resolve: { name in
                if fingerprint == nil { fingerprint = try QuantStore.fingerprint(modelPath) }
                return try MoAPlan.load(from: planURL(name), fingerprint: fingerprint, layers: config.nLayers, kvHeads: config.nKVHeads)
            })
        } catch let e as ValidationErrorParagraph { throw e } catch {
            throw ValidationErrorParagraph("\(option): \(error)")
        }
    }

    /// The plans in the plan directory made for this model (others and unreadable files are
    /// left out), sorted by name.
    static func plans(fingerprint: String, layers: Int, kvHeads: Int) -> [MoAPlan] {
        let files = (try? FileManager.default.contentsOfDirectory(at: planDirectory, includingPropertiesForKeys: nil)) ?? []
        return files.filter { $0.pathExtension == "json" }.sorted { $0.path < $1.path }.compactMap {
            try? MoAPlan.load(from: $0, fingerprint: fingerprint, layers: layers, kvHeads: kvHeads)
        }
    }

    /// Calibration documents used when none are given: long public licence texts from
    /// Debian's base system. GPL-3 and the LGPLs are left out: gpl-3.txt is the held-out text.
    static let defaultDocuments = ["GPL-2", "GFDL-1.3", "MPL-2.0", "Apache-2.0", "MPL-1.1", "Artistic"]
        .map { "/usr/share/common-licenses/" + $0 }

    /// The profile files' content: the importance maps and the settings they came from.
    struct ProfileFile: Codable {
        var settings: String
        var profiles: [MoAImportance]
        var seconds: Double
    }

    static func log(_ s: String) { FileHandle.standardError.write(Data(("attn: " + s + "\n").utf8)) }
}

/// Options shared by profile and plan: what to profile on.
struct AttnProfileOptions: ParsableArguments {
    @Option(help: "Profile lengths in tokens, comma-separated (multiples of 32).")
    var profileLengths = "512,1024,2048"

    @Option(help: "Samples per profile length.")
    var samples = 12

    @Option(help: "Calibration documents, comma-separated (default: GPL-2, GFDL-1.3, MPL-2.0, Apache-2.0, MPL-1.1 and Artistic from /usr/share/common-licenses).")
    var docs: String?

    @Option(help: "Greedy answer tokens the model appends to each sample (its own answer, as MoA calibrates).")
    var answerTokens = 64

    func validate() throws {
        let lens = LLMBenchCommand.ints(profileLengths)
        guard !lens.isEmpty, lens.allSatisfy({ $0 >= 128 && $0 % 32 == 0 && $0 <= 8192 }) else {
            throw ValidationError("--profile-lengths \(profileLengths): give multiples of 32 between 128 and 8192.")
        }
        guard (1...256).contains(samples) else { throw ValidationError("--samples \(samples): use 1 to 256.") }
        guard (1...512).contains(answerTokens) else { throw ValidationError("--answer-tokens \(answerTokens): use 1 to 512.") }
    }

    var documentPaths: [String] {
        docs.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } } ?? AttnStore.defaultDocuments
    }

    /// The cache key: lengths, samples, answer length and each document's path and size.
    func settings() -> String {
        let docs = documentPaths.map { p -> String in
            let size = (try? FileManager.default.attributesOfItem(atPath: p)[.size] as? Int) ?? -1
            return "\(p):\(size ?? -1)"
        }
        return "v3-response-rows-quote lengths=\(profileLengths) samples=\(samples) answer=\(answerTokens) block=32 docs=\(docs.joined(separator: ","))"
    }

    /// The cached profile for these settings, or a fresh one (saved to the cache).
    func profiles(_ loaded: LoadedModel, fingerprint: String, refresh: Bool) throws -> (profiles: [MoAImportance], url: URL, cached: Bool) {
        let key = settings()
        let url = AttnStore.profileURL(fingerprint: fingerprint, settings: key)
        if !refresh, let data = try? Data(contentsOf: url),
           let file = try? JSONDecoder().decode(AttnStore.ProfileFile.self, from: data), file.settings == key,
           file.profiles.allSatisfy({ $0.layers == loaded.model.config.nLayers && $0.kvHeads == loaded.model.config.nKVHeads }) {
            AttnStore.log("using the cached profile \(url.path)")
            return (file.profiles, url, true)
        }
        var documents: [[Int32]] = []
        for path in documentPaths {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ValidationErrorParagraph("effterm attn: cannot read the calibration document \(path) as UTF-8 (use --docs)")
            }
            documents.append(loaded.tokenizer.encode(text, parseSpecial: false))
        }
        let longest = LLMBenchCommand.ints(profileLengths).max() ?? 0
        if let short = zip(documentPaths, documents).first(where: { $0.1.count < longest / 2 }) {
            AttnStore.log("note: \(short.0) has \(short.1.count) tokens; samples at \(longest) will be padded less with it")
        }
        InterruptFlag.install()
        let t0 = MonotonicClock.seconds()
        let profiles = try MoAProfiler.profile(
            model: loaded.model, tokenizer: loaded.tokenizer, template: loaded.template, stopTokens: loaded.stopTokens,
            documents: documents, lengths: LLMBenchCommand.ints(profileLengths), samples: samples,
            answerTokens: answerTokens, progress: AttnStore.log, cancelled: { InterruptFlag.raised })
        let file = AttnStore.ProfileFile(settings: key, profiles: profiles, seconds: MonotonicClock.seconds() - t0)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try JSONEncoder().encode(file).write(to: url, options: .atomic)
        AttnStore.log(String(format: "profile saved to %@ (%.0f s)", url.path, file.seconds))
        return (profiles, url, false)
    }
}

/// `effterm attn profile`.
struct AttnProfileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Measure per-KV-head attention importance on calibration documents (cached per model).",
        discussion: """
            Each sample is a window of a calibration document rendered as a chat question \
            (in turn "Summarize the text above" and "Quote the sentence that begins with ...", \
            a sentence at any depth) followed by the model's own greedy answer, as long as \
            the profile length. The answer rows' attention probabilities (MoA scores response \
            tokens only) are summed into 32 x 32 \
            blocks, max-reduced over the 3 query heads of each KV head, normalized per row and \
            averaged over samples. This is MoA's profile in a forward-only variant: attention \
            mass instead of attention x gradient. The result is cached under \
            $XDG_CACHE_HOME/effterm/attn/ keyed by model and settings; `attn plan` uses it. \
            Ctrl-C cancels between samples.
            """
    )

    @OptionGroup var options: AttnProfileOptions

    @Flag(help: "Profile again even when a cached profile exists.")
    var refresh = false

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Option(help: "A GGUF file to use instead of the cached model (else EFFTERM_MODEL, else the cache).")
    var model: String?

    @OptionGroup var compute: ComputeOptions

    func run() throws {
        compute.apply()
        let loaded = try LoadedModel.load(explicitPath: model, command: "attn profile")
        let fingerprint = try QuantStore.fingerprint(loaded.path)
        let (profiles, url, cached) = try options.profiles(loaded, fingerprint: fingerprint, refresh: refresh)
        // Summary per length: how much mass lies beyond a local window of 256 tokens.
        let local = MoARule(alpha: 256, beta: 0)
        var rows: [[String: Any]] = []
        for p in profiles {
            let slots = p.layers * p.kvHeads
            let far = (0..<slots).map { p.loss(slot: $0, rule: local, minSpan: 64) / max(1e-12, p.total(slot: $0)) }
            rows.append(["length": p.length, "samples": p.samples, "mean_mass_beyond_256": far.reduce(0, +) / Double(slots),
                         "max_mass_beyond_256": far.max() ?? 0, "min_mass_beyond_256": far.min() ?? 0])
        }
        if json {
            let out: [String: Any] = ["profile": url.path, "cached": cached, "settings": options.settings(), "lengths": rows,
                                      "variant": "forward-only attention mass (not MoA's attention x gradient)"]
            print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
        } else {
            print("profile: \(url.path)\(cached ? " (cached)" : "")")
            for r in rows {
                print(String(format: "length %5d: %2d samples; attention mass beyond sink + 256 recent tokens: mean %.3f, heads %.3f ... %.3f",
                             r["length"] as! Int, r["samples"] as! Int, r["mean_mass_beyond_256"] as! Double,
                             r["min_mass_beyond_256"] as! Double, r["max_mass_beyond_256"] as! Double))
            }
        }
    }
}

/// `effterm attn plan`.
struct AttnPlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Search a MoA plan (one elastic span per KV head) under a mean-density budget and validate it.",
        discussion: """
            Candidates: alpha in -512...2048 step 128, beta in 0, 1/8, ..., 1 (span alpha + \
            beta * N recent tokens, at least 64, plus the first 32 tokens as the sink block), \
            kept when the span is at least 64 at the shortest profile length and fits at the \
            longest length. Loss of a rule: the profiled attention mass outside its mask. The \
            search is an exact multiple-choice knapsack by branch and bound (Lagrangian bound): \
            minimise the weighted loss over the profile lengths subject to mean decode density \
            <= --density at every --lengths value and >= --floor x --density (MoA's lower bound, so \
            long contexts use the budget too). Three weightings of the profile lengths \
            (even, short-heavy, long-heavy) give three plans; each is scored by perplexity on \
            --validate-text at --validate-length (a length the profile did not see) and the \
            best is saved as NAME (default moa-dD). A uniform plan at the same density \
            (StreamingLLM-style sink + span beta*N for every head) is saved as uniform-dD for \
            comparison. Plans go to $XDG_DATA_HOME/effterm/attn-plans/; use them as \
            --policies moa:NAME (eval longctx), --attention moa:NAME (bench llm) or cycle them \
            in the chat (Ctrl-O / F11).
            """
    )

    @Option(help: "Mean decode density budget (positions read / positions cached), 0.05 ... 1.")
    var density = 0.5

    @Option(help: "Lengths at which the density budget must hold, comma-separated.")
    var lengths = "1024,2048,4096,8192"

    @Option(help: "Held-out validation text (default: shared/fixtures/gpl-3.txt when found).")
    var validateText: String?

    @Option(help: "Validation length in tokens (0: skip validation and keep the even-weight plan).")
    var validateLength = 3072

    @Option(help: "Plan name (default moa-d<density>).")
    var name: String?

    @Option(name: .customLong("floor"), help: "Lower bound on the mean density at every length, as a fraction of --density (MoA uses 0.9).")
    var densityFloor = 0.9

    @Option(help: "Branch-and-bound node limit (the gap is reported when it is reached).")
    var nodeLimit = 2_000_000

    @OptionGroup var options: AttnProfileOptions

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Option(help: "A GGUF file to use instead of the cached model (else EFFTERM_MODEL, else the cache).")
    var model: String?

    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        guard density > 0.04 && density <= 1 else { throw ValidationError("--density \(density): use 0.05 ... 1.") }
        guard (0...1).contains(densityFloor) else { throw ValidationError("--floor \(densityFloor): use 0 ... 1.") }
        let lens = LLMBenchCommand.ints(lengths)
        guard !lens.isEmpty, lens.allSatisfy({ $0 >= 128 && $0 <= 1 << 20 }) else {
            throw ValidationError("--lengths \(lengths): give token counts of at least 128, comma-separated.")
        }
        guard validateLength == 0 || (256...8192).contains(validateLength) else {
            throw ValidationError("--validate-length \(validateLength): use 0 (skip) or 256 ... 8192.")
        }
        if let name { guard !name.isEmpty, !name.contains("/"), !name.contains(",") else {
            throw ValidationError("--name '\(name)': a plain name without '/' or ','.")
        } }
    }

    func run() throws {
        compute.apply()
        let loaded = try LoadedModel.load(explicitPath: model, command: "attn plan")
        let c = loaded.model.config
        let fingerprint = try QuantStore.fingerprint(loaded.path)
        let (profiles, profileURL, _) = try options.profiles(loaded, fingerprint: fingerprint, refresh: false)
        let constrained = LLMBenchCommand.ints(lengths)
        let sink = 32, minSpan = 64
        let shortest = profiles.map(\.length).min()!
        let longest = max(profiles.map(\.length).max()!, constrained.max()!)
        let candidates = MoASearch.candidates(shortest: shortest, longest: longest, minSpan: minSpan)
        let n = profiles.count
        let weightings: [(String, [Double])] = [
            ("even", Array(repeating: 1, count: n)),
            ("short-heavy", (0..<n).map { pow(0.5, Double($0)) }),
            ("long-heavy", (0..<n).map { pow(0.5, Double(n - 1 - $0)) }),
        ]
        let slots = c.nLayers * c.nKVHeads
        let capacity = constrained.map { _ in density * Double(slots) }
        let tag = String(format: "d%.2f", density)
        var plans: [MoAPlan] = []
        var searches: [[String: Any]] = []
        for (label, weights) in weightings {
            let t0 = MonotonicClock.seconds()
            var opts = MoASearch.options(profiles: profiles, weights: weights, candidates: candidates, lengths: constrained,
                                         sinkTokens: sink, minSpan: minSpan)
            // MoA's lower bound: at least `floor` x the budget at every length, so long
            // contexts use the budget too (as negated upper bounds).
            for i in opts.indices { opts[i].densities = opts[i].densities.map { d in d + d.map { -$0 } } }
            guard let sol = MoASearch.solve(opts, capacity: capacity + capacity.map { -densityFloor * $0 }, nodeLimit: nodeLimit) else {
                throw ValidationErrorParagraph("effterm attn plan: no plan reaches density \(density) at \(lengths) "
                                               + "(the narrowest rules need more); raise --density")
            }
            let rules = zip(opts, sol.choice).map { $0.0.rules[$0.1] }
            var plan = MoAPlan(name: "\(name ?? "moa-\(tag)")", modelFingerprint: fingerprint, layers: c.nLayers,
                               kvHeads: c.nKVHeads, sinkTokens: sink, minSpan: minSpan, rules: rules, budget: density,
                               constrainedLengths: constrained)
            plan.provenance = [
                "profile": profileURL.lastPathComponent, "profile_lengths": profiles.map { String($0.length) }.joined(separator: ","),
                "profile_samples": String(profiles.first?.samples ?? 0), "weighting": label,
                "importance": "forward-only attention mass, 32x32 blocks, max over each KV head's query heads",
                "solver": sol.optimal ? "branch and bound, optimal" : String(format: "branch and bound, node limit, gap %.4f", sol.gap),
                "candidates": String(candidates.count),
            ]
            plans.append(plan)
            let dt = MonotonicClock.seconds() - t0
            searches.append(["weighting": label, "objective": sol.objective, "bound": sol.bound, "gap": sol.gap,
                             "nodes": sol.nodes, "optimal": sol.optimal, "seconds": dt,
                             "density": constrained.map { plan.density(at: $0) }])
            AttnStore.log(String(format: "search %@: loss %.4f (bound %.4f, %@, %d nodes, %.2f s); density %@", label,
                                 sol.objective, sol.bound, sol.optimal ? "optimal" : "gap \(sol.gap)", sol.nodes, dt,
                                 constrained.map { String(format: "%.3f@%d", plan.density(at: $0), $0) }.joined(separator: " ")))
        }
        // The equal-density uniform baseline: every head sink + beta * N, beta chosen so the
        // density fits at every constrained length.
        var beta = density
        func uniform(_ b: Double) -> MoAPlan {
            MoAPlan(name: "uniform-\(tag)", modelFingerprint: fingerprint, layers: c.nLayers, kvHeads: c.nKVHeads,
                    sinkTokens: sink, minSpan: minSpan, rules: Array(repeating: MoARule(alpha: 0, beta: b), count: slots),
                    budget: density, constrainedLengths: constrained,
                    provenance: ["baseline": "StreamingLLM-style sink block + beta * N recent for every head, equal density"])
        }
        while beta > 0.01 && constrained.contains(where: { uniform(beta).density(at: $0) > density + 1e-9 }) { beta -= 1.0 / 256 }
        var base = uniform(beta)

        var chosen = 0
        var validation: [String: Any] = [:]
        if validateLength > 0 {
            guard let path = validateText ?? EvalLongContextCommand.defaultText(),
                  let body = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ValidationErrorParagraph("effterm attn plan: no readable validation text; pass --validate-text FILE or --validate-length 0")
            }
            let ids = loaded.tokenizer.encode(body, parseSpecial: false)
            guard ids.count > validateLength else {
                throw ValidationErrorParagraph("effterm attn plan: \(path) has \(ids.count) tokens; --validate-length \(validateLength) needs more")
            }
            let v = try MoAProfiler.validate(model: loaded.model, plans: plans + [base], tokens: ids, length: validateLength,
                                             progress: AttnStore.log)
            let scored = Array(v.ppl.prefix(plans.count))
            chosen = scored.indices.min { scored[$0] < scored[$1] } ?? 0
            for i in plans.indices {
                plans[i].validationPPL = scored[i]; plans[i].validationDensePPL = v.densePPL; plans[i].validationLength = validateLength
                searches[i]["validation_ppl"] = scored[i]
            }
            base.validationPPL = v.ppl.last; base.validationDensePPL = v.densePPL; base.validationLength = validateLength
            validation = ["text": path, "length": validateLength, "dense_ppl": v.densePPL, "uniform_ppl": v.ppl.last ?? .nan]
        }
        let plan = plans[chosen]
        let url = AttnStore.planURL(plan.name)
        try plan.save(to: url)
        let baseURL = AttnStore.planURL(base.name)
        try base.save(to: baseURL)

        let hist = Self.densityHistogram(plan, at: constrained.max()!)
        if json {
            let out: [String: Any] = [
                "plan": url.path, "uniform_plan": baseURL.path, "density_budget": density, "lengths": constrained,
                "chosen": weightings[chosen].0, "searches": searches, "validation": validation,
                "candidates": candidates.count, "heads": slots,
                "density_histogram": ["length": constrained.max()!, "bins": hist],
                "rules": plan.rules.map { ["alpha": $0.alpha, "beta": $0.beta] },
            ]
            print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
        } else {
            print("plan \(plan.name): \(url.path)")
            for (i, s) in searches.enumerated() {
                let mark = i == chosen ? "*" : " "
                let vp = (s["validation_ppl"] as? Double).map { String(format: " ppl@%d %.3f", validateLength, $0) } ?? ""
                print(String(format: "%@ %-11@ loss %.4f %@ density %@%@", mark, weightings[i].0, s["objective"] as! Double,
                             (s["optimal"] as! Bool) ? "optimal" : "gap", (s["density"] as! [Double]).map { String(format: "%.3f", $0) }.joined(separator: "/"), vp))
            }
            if let d = validation["dense_ppl"] as? Double {
                print(String(format: "  dense ppl@%d %.3f; uniform (beta %.3f) %.3f", validateLength, d, beta, validation["uniform_ppl"] as! Double))
            }
            print("density per KV head at \(constrained.max()!) tokens (10 bins, 0-1): " + hist.map(String.init).joined(separator: " "))
            print("rules per layer (alpha+beta*N for KV heads 0..\(c.nKVHeads - 1)):")
            for l in 0..<c.nLayers {
                print(String(format: "  %2d  ", l) + (0..<c.nKVHeads).map { plan.rule(layer: l, kvHead: $0).description }.joined(separator: "  "))
            }
        }
    }

    /// How many heads read each tenth of the context at length `n`.
    static func densityHistogram(_ plan: MoAPlan, at n: Int) -> [Int] {
        var bins = [Int](repeating: 0, count: 10)
        for l in 0..<plan.layers {
            for h in 0..<plan.kvHeads {
                let d = Double(plan.readCount(layer: l, kvHead: h, length: n)) / Double(n)
                bins[min(9, Int(d * 10))] += 1
            }
        }
        return bins
    }
}

/// `effterm attn show`: a saved plan.
struct AttnShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print a saved attention plan (rules, densities, validation), or list the plans.")

    @Argument(help: "Plan name or path (omit to list the plans in the plan directory).")
    var plan: String?

    func run() throws {
        guard let plan else {
            let files = (try? FileManager.default.contentsOfDirectory(at: AttnStore.planDirectory, includingPropertiesForKeys: nil)) ?? []
            let names = files.filter { $0.pathExtension == "json" }.map { $0.deletingPathExtension().lastPathComponent }.sorted()
            print(names.isEmpty ? "no attention plans in \(AttnStore.planDirectory.path); run `effterm attn plan`"
                                : names.joined(separator: "\n"))
            return
        }
        let p: MoAPlan
        do { p = try MoAPlan.load(from: AttnStore.planURL(plan)) } catch { throw ValidationErrorParagraph("effterm attn show: \(error)") }
        print("\(p.name): \(p.layers) layers x \(p.kvHeads) KV heads, sink \(p.sinkTokens), budget \(p.budget)")
        for n in [1024, 2048, 4096, 8192] { print(String(format: "  density at %5d tokens: %.3f", n, p.density(at: n))) }
        if let v = p.validationPPL, let d = p.validationDensePPL, let len = p.validationLength {
            print(String(format: "  validation ppl at %d tokens: %.3f (dense %.3f)", len, v, d))
        }
        for (k, v) in p.provenance.sorted(by: { $0.key < $1.key }) { print("  \(k): \(v)") }
    }
}
