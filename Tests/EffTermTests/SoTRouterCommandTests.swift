import EffTestSupport
import Foundation
import Testing

/// `effterm sot --mode auto` and `effterm bench sot --router-only` on the release binary
/// with the real model and the bundled router.
@Suite(.serialized, .enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
struct SoTRouterCommandTests {
    @Test func autoModeRoutesMathToNormalDecodingAndSaysWhy() throws {
        let result = try ProcessRunner.effterm(["sot", "--prompt", "Solve for x: 5x - 3 = 12.", "--mode", "auto",
                                                "--normal-tokens", "8", "--json"],
                                               environment: ["EFFTERM_MODEL": TestPaths.model.path])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["decoding"] as? String == "normal")
        let router = try #require(object["router"] as? [String: Any])
        #expect(router["useSoT"] as? Bool == false)
        #expect((router["reason"] as? String)?.hasSuffix("normal decoding") == true)
        #expect((router["score"] as? Double).map { $0 < (router["threshold"] as? Double ?? 0) } == true)
    }

    @Test func routerOnlyBenchReportsPrecisionRecallAndPerCategoryRates() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("effterm-router-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: file) }
        let lines = [
            #"{"question": "What are the main causes of air pollution in cities?", "category": "knowledge"}"#,
            #"{"question": "Write a Python function that returns the sum of a list.", "category": "coding"}"#,
        ]
        try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        let result = try ProcessRunner.effterm(["bench", "sot", "--questions", file.path, "--router-only", "--json"],
                                               environment: ["EFFTERM_MODEL": TestPaths.model.path])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["questions"] as? Int == 2)
        #expect(object["router_precision"] as? Double == 1)
        #expect(object["router_recall"] as? Double == 1)
        let rates = try #require(object["router_sot_rate_by_category"] as? [String: Double])
        #expect(rates == ["knowledge": 1, "coding": 0])
    }
}
