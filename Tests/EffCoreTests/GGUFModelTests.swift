import EffCore
import EffTestSupport
import Foundation
import Testing

/// Model tier: the real SmolLM2-135M-Instruct Q4_1 file (fails, not skips, when absent).
@Suite("GGUF model tier")
struct GGUFModelTests {
    @Test("real model file parses with the expected shape")
    func realModel() throws {
        let path = TestPaths.model.path
        // Opening maps the file and parses the header only (two ~49k-string arrays); the
        // best of a few opens guards against quadratic or copying regressions.
        var ms = Double.infinity
        var opened: GGUFFile?
        for _ in 0..<3 {
            let start = DispatchTime.now().uptimeNanoseconds
            opened = try GGUFFile(path: path)
            ms = min(ms, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        let file = try #require(opened)
        #expect(ms < 250, "opening the model took \(ms) ms")

        var perType: [String: Int] = [:]
        for t in file.tensors { perType[t.type.traits.name, default: 0] += 1 }
        let tokens = try file.stringArray("tokenizer.ggml.tokens")
        let merges = try file.stringArray("tokenizer.ggml.merges")
        let embd = file.tensor(named: "token_embd.weight")
        print("""
            GGUF model: version \(file.version), alignment \(file.alignment), \
            \(file.metadataKeys.count) keys, \(file.tensors.count) tensors \(perType.sorted { $0.key < $1.key }), \
            arch \((try? file.string("general.architecture")) ?? "?"), tokens \(tokens.count), merges \(merges.count), \
            blocks \((try? file.int("llama.block_count")) ?? -1), embd \((try? file.int("llama.embedding_length")) ?? -1), \
            token_embd \(embd.map { "\($0.type.traits.name) \($0.dims)" } ?? "missing"), \
            data offset \(file.dataOffset), file \(file.fileSize) bytes, open \(String(format: "%.1f", ms)) ms
            """)

        #expect(file.version == 3)
        #expect(file.tensors.count == 272)
        #expect(perType == ["Q4_1": 210, "F32": 61, "Q8_0": 1])
        #expect(try file.string("general.architecture") == "llama")
        #expect(tokens.count == 49152)
        #expect(merges.count == 48900)
        #expect(try file.int("llama.block_count") == 30)
        #expect(try file.int("llama.embedding_length") == 576)
        #expect(embd?.type == .q8_0)
        #expect(embd?.dims == [576, 49152])
        #expect(file.tensor(named: "output.weight") == nil)  // tied embeddings

        // Every tensor lies inside the file, aligned, and its view has the right size.
        for t in file.tensors {
            #expect(t.offset % file.alignment == 0)
            #expect(t.offset + t.byteCount <= file.fileSize)
            #expect(file.data(for: t).count == t.byteCount)
        }
        // A norm weight decodes to plausible floats (RMSNorm gains are O(1), finite).
        if let norm = file.tensor(named: "output_norm.weight") {
            let values = file.data(for: norm).withMemoryRebound(to: Float.self) { Array($0) }
            #expect(values.count == 576)
            #expect(values.allSatisfy { $0.isFinite && abs($0) < 100 })
        } else {
            Issue.record("output_norm.weight missing")
        }
    }
}
