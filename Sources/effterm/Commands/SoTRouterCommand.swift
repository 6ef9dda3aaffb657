import ArgumentParser
import EffEngine
import EffLLM
import EffTechniques
import Foundation

/// `effterm sot train-router`: fits the hidden-state SoT router on a labelled split and
/// writes its weights file (the bundled one lives in Sources/EffEngine/Resources).
struct SoTTrainRouterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-router",
        abstract: "Train the Skeleton-of-Thought router on SmolLM2's hidden states and write its weights.",
        discussion: """
        Each question of --split is run through the model once per input mode; every block's \
        residual stream is RMS-normalized and pooled (mean over the question's tokens, and the \
        prompt's last token). A logistic head is trained full-batch with Adam on z-scored \
        features with SoT-R's loss (0.25 CE + 0.75 Tversky, alpha 0.7 on false positives, \
        beta 0.3 on false negatives, positives smoothed to 0.9) plus L2. L2 is chosen by \
        5-fold cross-validation on the same split, and the threshold is the one with the \
        highest out-of-fold recall at --min-precision. Questions of other splits are never \
        read. --explore cross-validates a grid of recipes (input, layers, pools) and trains \
        the best. The weights file records the model's weights fingerprint; the router \
        refuses other models.
        """)

    @Option(help: "JSON Lines questions file.")
    var questions = "Tools/sot/questions.jsonl"

    @Option(help: "The split to train on (other splits are not used).")
    var split = "train"

    @Option(help: "Where to write the weights JSON.")
    var out = "Sources/EffEngine/Resources/sot-router.json"

    @Option(help: "Input: `chat` (the user turn in the chat template) or `raw` (the bare question).")
    var input: String = "chat"

    @Option(help: "Comma-separated block indices to pool (0-based; 29 is the last of SmolLM2-135M's 30).")
    var layers = "29"

    @Option(help: "Comma-separated pools: mean (over the question's tokens), last (the prompt's last token).")
    var pools = "mean"

    @Option(help: "Threshold choice: highest out-of-fold recall with at least this precision.")
    var minPrecision = 0.9

    @Flag(help: "Cross-validate a grid of recipes and train the best one.")
    var explore = false

    @Option(help: "A GGUF file to use instead of the cached model (else EFFTERM_MODEL, else the cache).")
    var model: String?

    @OptionGroup var compute: ComputeOptions
    @OptionGroup var kv: KVOption

    func run() throws {
        compute.apply()
        let log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        var qs: [SoTQuestion]
        do {
            qs = try SoTQuestion.load(URL(fileURLWithPath: questions))
        } catch {
            throw ValidationErrorParagraph("effterm sot train-router: \(error)")
        }
        qs = qs.filter { $0.split == split }
        guard qs.count >= 10, Set(qs.map(\.isSuitable)).count == 2 else {
            throw ValidationErrorParagraph("effterm sot train-router: split \(split) of \(questions) has \(qs.count) questions; need >= 10 with both labels")
        }
        let loaded = try LoadedModel.load(explicitPath: model, command: "sot train-router", kv: kv.format)
        let extractor = HiddenStateFeatures(model: loaded.model, tokenizer: loaded.tokenizer, template: loaded.template)
        let nLayers = loaded.model.config.nLayers

        let given = try recipe(nLayers: nLayers)
        let recipes = explore ? Self.grid(nLayers: nLayers) : [given]
        var banks: [HiddenStateRecipe.Input: [HiddenStateFeatures.Bank]] = [:]
        for inputMode in Set(recipes.map(\.input)).sorted(by: { $0.rawValue < $1.rawValue }) {
            log("features (\(inputMode.rawValue)) for \(qs.count) \(split) questions...")
            let start = Date()
            banks[inputMode] = try qs.map { try extractor.bank($0.question, input: inputMode) }
            log(String(format: "  %.1f s", Date().timeIntervalSince(start)))
        }

        var fit = SoTRouterFit()
        fit.minPrecision = minPrecision
        let labels = qs.map(\.isSuitable), groups = qs.map(\.category)
        var best: (recipe: HiddenStateRecipe, eval: SoTRouterFit.Evaluation)?
        for r in recipes {
            let rows = banks[r.input]!.map { $0.features(r) }
            guard let e = SoTRouterFit.best(fit.evaluate(rows: rows, labels: labels, groups: groups)) else { continue }
            log(String(format: "%@ l2 %-6g AP %.3f log-loss %.3f  at P>=%.2f: threshold %@ precision %@ recall %@",
                       r.description.padding(toLength: 24, withPad: " ", startingAt: 0), e.l2, e.averagePrecision,
                       e.logLoss, minPrecision, fmt(e.threshold), fmt(e.precision), fmt(e.recall)))
            if best == nil || e.rank > best!.eval.rank {
                best = (r, e)
            }
        }
        guard let best else { throw ValidationErrorParagraph("effterm sot train-router: nothing to train") }
        let rows = banks[best.recipe.input]!.map { $0.features(best.recipe) }
        let heads = fit.fit(rows: rows, labels: labels, categories: groups, evaluation: best.eval)
        let categoryAccuracy = fit.categoryAccuracy(rows: rows, categories: groups)
        let modelURL = URL(fileURLWithPath: loaded.path)
        let identity = RouterModelIdentity(name: modelURL.lastPathComponent,
                                           fileSHA256: try? ModelStore.sha256(of: modelURL),
                                           weightsFingerprint: HiddenStateRouter.fingerprint(loaded.model.weights))
        var lossUsed = fit.loss
        lossUsed.l2 = best.eval.l2
        let record = RouterTrainingRecord(
            questionsFile: questions, split: split, rows: qs.count, positives: labels.filter { $0 }.count,
            folds: fit.folds, minPrecision: minPrecision, loss: lossUsed, optimizer: fit.optimizer,
            cvPrecision: best.eval.precision, cvRecall: best.eval.recall,
            cvAveragePrecision: best.eval.averagePrecision, cvCategoryAccuracy: categoryAccuracy,
            note: explore ? "recipe chosen by cross-validation over \(recipes.count) recipes on split \(split)"
                          : "recipe given on the command line")
        let weights = SoTRouterWeights(model: identity, recipe: best.recipe, standardizer: heads.standardizer,
                                       head: heads.head, threshold: heads.threshold, categoryHead: heads.categoryHead,
                                       suitableCategories: SoTQuestion.suitableCategories.sorted(), training: record)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(weights).write(to: URL(fileURLWithPath: out))
        print(String(format: "wrote %@: recipe %@, l2 %g, threshold %.3f; out-of-fold on %@ (%d questions): precision %@ recall %@ AP %.3f; category accuracy %.2f",
                     out, best.recipe.description, best.eval.l2, heads.threshold, split, qs.count,
                     fmt(best.eval.precision), fmt(best.eval.recall), best.eval.averagePrecision, categoryAccuracy))
    }

    func recipe(nLayers: Int) throws -> HiddenStateRecipe {
        guard let i = HiddenStateRecipe.Input(rawValue: input) else {
            throw ValidationError("--input \(input): expected chat or raw")
        }
        let ls = layers.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !ls.isEmpty, ls.allSatisfy({ (0..<nLayers).contains($0) }) else {
            throw ValidationError("--layers \(layers): expected block indices in 0..<\(nLayers)")
        }
        let ps = try pools.split(separator: ",").map { p -> HiddenStateRecipe.Pool in
            guard let pool = HiddenStateRecipe.Pool(rawValue: String(p)) else {
                throw ValidationError("--pools \(pools): expected mean and/or last")
            }
            return pool
        }
        return HiddenStateRecipe(input: i, layers: ls, pools: ps)
    }

    /// The recipes --explore cross-validates.
    static func grid(nLayers: Int) -> [HiddenStateRecipe] {
        let last = nLayers - 1, mid = nLayers / 2
        let layerSets = [[last], [last * 3 / 4], [mid], [nLayers / 4], [last, mid]]
        var out: [HiddenStateRecipe] = []
        for input in HiddenStateRecipe.Input.allCases {
            for ls in layerSets {
                for pools in [[HiddenStateRecipe.Pool.mean], [.last], [.mean, .last]] {
                    out.append(HiddenStateRecipe(input: input, layers: ls, pools: pools))
                }
            }
        }
        return out
    }
}

private func fmt(_ x: Double?) -> String { x.map { String(format: "%.3f", $0) } ?? "n/a" }
