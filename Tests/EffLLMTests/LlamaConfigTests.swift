import EffCore
import EffTestSupport
import Testing
@testable import EffLLM

/// Binding a llama GGUF: a small well-formed file loads and runs; each malformed variant
/// fails with an error naming the key or tensor at fault.
@Suite struct LlamaConfigTests {
    static let dim = 64, hidden = 128, layers = 2, heads = 4, kvHeads = 2, vocab = 96
    static var kvDim: Int { kvHeads * dim / heads }

    /// Deterministic quantized bytes for a `rows x cols` matrix.
    static func matrix(_ name: String, rows: Int, cols: Int, type: GGMLType, seed: UInt64) throws -> GGUFWriter.Tensor {
        var bytes: [UInt8] = []
        let values = LlamaTestModel.values(rows * cols, seed: seed, scale: 1.7 / Float(cols).squareRoot())
        for r in 0..<rows { bytes += try type.quantize(Array(values[(r * cols)..<((r + 1) * cols)])) }
        return GGUFWriter.Tensor(name: name, dims: [cols, rows], type: type, data: bytes)
    }

    static func norm(_ name: String, seed: UInt64) -> GGUFWriter.Tensor {
        .f32(name, dims: [dim], values: LlamaTestModel.values(dim, seed: seed, scale: 0.2).map { 1 + $0 })
    }

    /// A complete small llama file; `edit` breaks it on purpose.
    static func file(_ edit: (inout GGUFWriter) -> Void = { _ in }) throws -> GGUFFile {
        var w = GGUFWriter()
        w.add("general.architecture", .string("llama"))
        w.add("llama.embedding_length", .uint32(UInt32(dim)))
        w.add("llama.feed_forward_length", .uint32(UInt32(hidden)))
        w.add("llama.block_count", .uint32(UInt32(layers)))
        w.add("llama.attention.head_count", .uint32(UInt32(heads)))
        w.add("llama.attention.head_count_kv", .uint32(UInt32(kvHeads)))
        w.add("llama.context_length", .uint32(256))
        w.add("llama.rope.freq_base", .float32(100000))
        w.add("llama.attention.layer_norm_rms_epsilon", .float32(1e-5))
        w.add("llama.vocab_size", .uint32(UInt32(vocab)))
        w.add("llama.rope.dimension_count", .uint32(UInt32(dim / heads)))
        w.add("tokenizer.ggml.tokens", .array(.string((0..<vocab).map { "t\($0)" })))
        w.add("tokenizer.ggml.token_type", .array(.int32([Int32](repeating: 1, count: vocab))))
        var seed: UInt64 = 100
        func next() -> UInt64 { seed += 1; return seed }
        w.tensors.append(try matrix("token_embd.weight", rows: vocab, cols: dim, type: .q8_0, seed: next()))
        for l in 0..<layers {
            w.tensors.append(norm("blk.\(l).attn_norm.weight", seed: next()))
            w.tensors.append(try matrix("blk.\(l).attn_q.weight", rows: dim, cols: dim, type: .q4_1, seed: next()))
            w.tensors.append(try matrix("blk.\(l).attn_k.weight", rows: kvDim, cols: dim, type: .q4_1, seed: next()))
            w.tensors.append(try matrix("blk.\(l).attn_v.weight", rows: kvDim, cols: dim, type: .q4_0, seed: next()))
            w.tensors.append(try matrix("blk.\(l).attn_output.weight", rows: dim, cols: dim, type: .q8_0, seed: next()))
            w.tensors.append(norm("blk.\(l).ffn_norm.weight", seed: next()))
            w.tensors.append(try matrix("blk.\(l).ffn_gate.weight", rows: hidden, cols: dim, type: .f16, seed: next()))
            w.tensors.append(try matrix("blk.\(l).ffn_up.weight", rows: hidden, cols: dim, type: .q4_1, seed: next()))
            w.tensors.append(try matrix("blk.\(l).ffn_down.weight", rows: dim, cols: hidden, type: .q4_1, seed: next()))
        }
        w.tensors.append(norm("output_norm.weight", seed: next()))
        edit(&w)
        return try GGUFFile(bytes: w.bytes())
    }

    static func set(_ w: inout GGUFWriter, _ key: String, _ value: GGUFValue) {
        if let i = w.entries.firstIndex(where: { $0.keyBytes == Array(key.utf8) }) { w.entries[i].value = value }
    }

    @Test func wellFormedFileBindsAndRuns() throws {
        let gguf = try Self.file()
        let model = try LlamaModel(gguf: gguf)
        #expect(model.config.dim == 64 && model.config.kvDim == 32 && model.config.groupSize == 2)
        #expect(model.config.ropeFreqBase == 100000 && model.config.seqLen == 256)
        #expect(model.weights.tiedOutput)
        #expect(model.weights.summary.count == 1 + 2 * 9 + 1)
        #expect(model.weights.summary.first { $0.role == .gate }?.format == "F16")
        let state = model.makeState()
        try model.forward([1, 2, 3, 4], state: state)
        let logits = UnsafeBufferPointer(start: state.logits, count: Self.vocab)
        #expect(logits.allSatisfy(\.isFinite) && logits.contains { $0 != 0 })
    }

    @Test func unsupportedArchitectureIsNamed() throws {
        #expect(throws: LlamaModelError.unsupportedArchitecture("gpt2")) {
            try LlamaConfig(gguf: try Self.file { Self.set(&$0, "general.architecture", .string("gpt2")) })
        }
    }

    @Test func headCountsMustDivide() throws {
        #expect(throws: LlamaModelError.invalidValue(key: "llama.attention.head_count", value: "5",
                                                     expected: "a divisor of llama.embedding_length = 64")) {
            try LlamaConfig(gguf: try Self.file { Self.set(&$0, "llama.attention.head_count", .uint32(5)) })
        }
        #expect(throws: LlamaModelError.invalidValue(key: "llama.attention.head_count_kv", value: "3",
                                                     expected: "a divisor of llama.attention.head_count = 4")) {
            try LlamaConfig(gguf: try Self.file { Self.set(&$0, "llama.attention.head_count_kv", .uint32(3)) })
        }
    }

    @Test func arrayLengthsMustEqualVocabSize() throws {
        #expect(throws: LlamaModelError.self) {
            try LlamaConfig(gguf: try Self.file { Self.set(&$0, "llama.vocab_size", .uint32(97)) })
        }
        do {
            _ = try LlamaConfig(gguf: try Self.file {
                Self.set(&$0, "tokenizer.ggml.token_type", .array(.int32([1, 1, 1])))
            })
            Issue.record("a short token_type array was accepted")
        } catch let e as LlamaModelError {
            guard case .invalidValue(let key, _, _) = e else { Issue.record("\(e)"); return }
            #expect(key == "tokenizer.ggml.token_type")
        }
    }

    @Test func missingOrMistypedKeysAreNamed() throws {
        #expect(throws: GGUFError.missingKey("llama.block_count")) {
            try LlamaConfig(gguf: try Self.file { $0.entries.removeAll { $0.keyBytes == Array("llama.block_count".utf8) } })
        }
        #expect(throws: GGUFError.self) {
            try LlamaConfig(gguf: try Self.file { Self.set(&$0, "llama.embedding_length", .string("576")) })
        }
        #expect(throws: LlamaModelError.invalidValue(key: "llama.block_count", value: "0", expected: "1...1024")) {
            try LlamaConfig(gguf: try Self.file { Self.set(&$0, "llama.block_count", .uint32(0)) })
        }
    }

    @Test func tensorsAreCheckedByNameShapeAndType() throws {
        #expect(throws: LlamaModelError.missingTensor("blk.1.ffn_up.weight")) {
            try LlamaModel(gguf: try Self.file { $0.tensors.removeAll { $0.nameBytes == Array("blk.1.ffn_up.weight".utf8) } })
        }
        #expect(throws: LlamaModelError.tensorShape(tensor: "blk.0.attn_k.weight", found: [64, 64], expected: [64, 32])) {
            try LlamaModel(gguf: try Self.file {
                let i = $0.tensors.firstIndex { $0.nameBytes == Array("blk.0.attn_k.weight".utf8) }!
                $0.tensors[i] = try! Self.matrix("blk.0.attn_k.weight", rows: 64, cols: 64, type: .q4_1, seed: 1)
            })
        }
        #expect(throws: LlamaModelError.tensorType(tensor: "blk.0.attn_q.weight", type: "I8",
                                                   reason: "no kernels for this format (computable: F32, F16, Q4_0, Q4_1, Q8_0)")) {
            try LlamaModel(gguf: try Self.file {
                let i = $0.tensors.firstIndex { $0.nameBytes == Array("blk.0.attn_q.weight".utf8) }!
                $0.tensors[i] = .pattern("blk.0.attn_q.weight", dims: [64, 64], type: .i8)
            })
        }
    }
}
