import EffTestSupport
import Foundation
import Testing

/// The headless subcommands, run as a person would run them: the release binary, real
/// arguments, real files, exit status and output checked.
@Suite struct HeadlessCommandTests {
    @Test func helpListsEverySubcommand() throws {
        let result = try ProcessRunner.effterm(["--help"])
        #expect(result.status == 0)
        for command in ["models", "inspect", "tokenize", "chat", "sessions"] {
            #expect(result.stdout.contains(command), "--help does not mention \(command)")
        }
    }

    @Test func modelsPathHonoursExplicitChoices() throws {
        let missing = try ProcessRunner.effterm(["models", "path", "--model", "/no/such/file.gguf"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("/no/such/file.gguf"))
        #expect(missing.stderr.contains("--model"))

        let env = try ProcessRunner.effterm(["models", "path"],
                                            environment: ["EFFTERM_MODEL": TestPaths.model.path])
        #expect(env.status == 0)
        #expect(env.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == TestPaths.model.path)
    }

    @Test func modelsListReportsTheVerifiedModel() throws {
        let cache = TestPaths.model.deletingLastPathComponent()  // .../effterm/models
        let xdg = cache.deletingLastPathComponent().deletingLastPathComponent()
        let result = try ProcessRunner.effterm(["models", "list", "--json"],
                                               environment: ["XDG_CACHE_HOME": xdg.path])
        #expect(result.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let models = object?["models"] as? [[String: Any]]
        #expect(models?.first?["state"] as? String == "ok")
        #expect(models?.first?["bytes"] as? Int == 98_362_432)
    }

    @Test func inspectDescribesTheModel() throws {
        let result = try ProcessRunner.effterm(["inspect", TestPaths.model.path, "--json"])
        #expect(result.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(object?["version"] as? Int == 3)
        let text = try ProcessRunner.effterm(["inspect", TestPaths.model.path, "--tensors"])
        #expect(text.stdout.contains("token_embd.weight"))
        #expect(text.stdout.contains("Q8_0"))
    }

    @Test func inspectRejectsATruncatedFileWithAReason() throws {
        let cut = FileManager.default.temporaryDirectory
            .appendingPathComponent("effterm-truncated-\(UUID().uuidString).gguf")
        defer { try? FileManager.default.removeItem(at: cut) }
        let handle = try FileHandle(forReadingFrom: TestPaths.model)
        let head = try handle.read(upToCount: 5_000_000) ?? Data()
        try handle.close()
        try head.write(to: cut)
        let result = try ProcessRunner.effterm(["inspect", cut.path])
        #expect(result.status == 1)
        #expect(!result.stderr.isEmpty)
        #expect(result.stdout.isEmpty)
    }

    @Test func tokenizeMatchesTheFixtureIds() throws {
        // "How can I improve my time management skills?" from tokenizer.jsonl.
        let result = try ProcessRunner.effterm(
            ["tokenize", "How can I improve my time management skills?", "--json"])
        #expect(result.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(object?["ids"] as? [Int] == [2020, 416, 339, 1947, 957, 655, 2343, 1954, 47])
        let special = try ProcessRunner.effterm(["tokenize", "<|im_start|>user", "--special", "--json"])
        let ids = (try JSONSerialization.jsonObject(with: Data(special.stdout.utf8)) as? [String: Any])?["ids"] as? [Int]
        #expect(ids?.first == 1)
    }

    @Test(.enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
    func runAnswersGreedilyWithTimings() throws {
        let result = try ProcessRunner.effterm(
            ["run", "--prompt", "How can I improve my time management skills?",
             "--temp", "0", "--max-tokens", "12", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let text = object?["text"] as? String ?? ""
        // llama.cpp's greedy answer to this prompt begins "Improving time management".
        #expect(text.hasPrefix("Improving time management"), "\(text)")
        #expect(result.stdout.contains("tok_s"))
    }

    @Test(.enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
    func evalFixturesReportsEveryCheck() throws {
        let result = try ProcessRunner.effterm(
            ["eval", "fixtures", TestPaths.fixtures.path, "--json", "--ppl-chunks", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        for key in ["tokenizer_exact", "template_exact", "top1_agreement", "mean_abs_logprob_diff",
                    "greedy_prefix_ok", "greedy_prompts", "ppl", "ppl_ref"] {
            #expect(object[key] != nil, "missing \(key)")
        }
        #expect(object["tokenizer_exact"] as? Double == 1.0)
        #expect(object["template_exact"] as? Double == 1.0)
        #expect((object["top1_agreement"] as? Double ?? 0) >= 0.95)
        #expect((object["mean_abs_logprob_diff"] as? Double ?? 1) <= 0.1)
    }

    @Test func runRejectsAMissingModelClearly() throws {
        let result = try ProcessRunner.effterm(["run", "--prompt", "hi", "--model", "/no/model.gguf"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("/no/model.gguf"))
    }

    @Test func threadsAreValidatedBeforeAnyWork() throws {
        for command in [["run", "--prompt", "hi"], ["sot", "--prompt", "hi"], ["eval", "fixtures", "."]] {
            let result = try ProcessRunner.effterm(command + ["--threads", "0"])
            #expect(result.status != 0)
            #expect(result.stderr.contains("--threads 0"), "\(command): \(result.stderr)")
        }
    }
}
