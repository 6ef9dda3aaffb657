import EffCore
import EffLLM
import EffTechniques
import EffTestSupport
import Foundation
import Testing
@testable import EffEngine

/// The bundled router resource, and routing with the real model: the mismatch refusal,
/// the question span the features pool over, and obvious held-out questions.
@Suite struct SoTRouterResourceTests {
    @Test func bundledWeightsLoadAndDescribeTheirTraining() throws {
        let w = try HiddenStateRouter.bundledWeights()
        #expect(w.model.name == ModelSpec.smolLM2.fileName)
        #expect(w.model.fileSHA256 == ModelSpec.smolLM2.sha256)
        #expect(w.model.weightsFingerprint.count == 64)
        #expect(w.standardizer.dim == w.recipe.layers.count * w.recipe.pools.count * 576)
        #expect(w.threshold > 0 && w.threshold < 1)
        let t = try #require(w.training)
        #expect(t.split == "train" && t.rows >= 100)
        #expect(t.loss.falsePositiveWeight == 0.7 && t.loss.falseNegativeWeight == 0.3 && t.loss.positiveTarget == 0.9)
        #expect(Set(w.categoryHead?.labels ?? []) == ["generic", "knowledge", "common-sense", "counterfactual",
                                                       "roleplay", "fermi", "coding", "math", "writing"])
    }
}

@Suite(.serialized, .enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
struct SoTRouterModelTests {
    static let loaded: (LlamaModel, Tokenizer, ChatTemplate)? = {
        guard let gguf = try? GGUFFile(path: TestPaths.model.path), let model = try? LlamaModel(gguf: gguf),
              let tokenizer = try? Tokenizer(gguf: gguf) else { return nil }
        return (model, tokenizer, ChatTemplate.fromModel(gguf).template)
    }()

    @Test func mismatchedModelIsRefused() throws {
        let (model, tokenizer, template) = try #require(Self.loaded, "model file at \(TestPaths.model.path)")
        var w = try HiddenStateRouter.bundledWeights()
        w.model.weightsFingerprint = String(repeating: "0", count: 64)
        do {
            _ = try HiddenStateRouter(model: model, tokenizer: tokenizer, template: template, weights: w)
            Issue.record("a router with another model's fingerprint was accepted")
        } catch let error as SoTRouterError {
            guard case .modelMismatch = error else { Issue.record("wrong error \(error)"); return }
            #expect(error.description.contains("refusing auto mode"))
        }
    }

    @Test func chatPromptPoolsExactlyTheQuestionTokens() throws {
        let (model, tokenizer, template) = try #require(Self.loaded, "model file at \(TestPaths.model.path)")
        let f = HiddenStateFeatures(model: model, tokenizer: tokenizer, template: template)
        let q = "What are the main causes of inflation?"
        let (tokens, span) = try f.prompt(q, input: .chat)
        #expect(tokenizer.decode(Array(tokens[span])) == q)
        // Same tokens as encoding the whole rendered prompt at once.
        let whole = try template.render([ChatMessage(role: "user", content: q)], addGenerationPrompt: true)
        #expect(tokens == tokenizer.encode(whole, parseSpecial: true))
        let (raw, rawSpan) = try f.prompt(q, input: .raw)
        #expect(rawSpan == 0..<raw.count)
    }

    @Test func routesObviousHeldOutQuestions() throws {
        let (model, tokenizer, template) = try #require(Self.loaded, "model file at \(TestPaths.model.path)")
        let router = try HiddenStateRouter.bundled(model: model, tokenizer: tokenizer, template: template)
        let questions = try SoTQuestion.load(TestPaths.repoRoot.appendingPathComponent("Tools/sot/questions.jsonl"))
        // The first two held-out questions of a clearly list-like and two clearly sequential categories.
        for category in ["generic", "knowledge", "math", "coding"] {
            for q in questions.filter({ $0.split == "test" && $0.category == category }).prefix(2) {
                let d = try router.route(question: q.question)
                #expect(d.useSoT == q.isSuitable, "\(category): \(q.question) -> \(d.reason)")
                #expect(d.seconds > 0 && d.seconds < 5)
            }
        }
    }
}
