import EffCore
import EffTestSupport
import Foundation
import Testing

/// A small valid file: every scalar type, string and (nested) arrays, four tensors. The last
/// tensor's data is a whole number of alignment units, so the file has no trailing padding
/// and every strict prefix of it is malformed.
func sampleWriter() -> GGUFWriter {
    var w = GGUFWriter()
    w.add("general.architecture", .string("llama"))
    w.add("general.name", .string("tiny ✓ test"))
    w.add("test.u8", .uint8(200))
    w.add("test.i8", .int8(-100))
    w.add("test.u16", .uint16(60_000))
    w.add("test.i16", .int16(-30_000))
    w.add("test.u32", .uint32(4_000_000_000))
    w.add("test.i32", .int32(-2_000_000_000))
    w.add("test.u64", .uint64(UInt64.max))
    w.add("test.i64", .int64(Int64.min))
    w.add("test.f32", .float32(1e-5))
    w.add("test.f64", .float64(-2.5e300))
    w.add("test.bool", .bool(true))
    w.add("tokenizer.ggml.tokens", .array(.string(["<|endoftext|>", "a", "Ġthe", "é", ""])))
    w.add("tokenizer.ggml.token_type", .array(.int32([3, 1, 1, 1, 1])))
    w.add("test.scores", .array(.float32([0, -1.5, 2])))
    w.add("test.f64s", .array(.float64([0.25, 1e-3])))
    w.add("test.bools", .array(.bool([true, false])))
    w.add("test.u64s", .array(.uint64([1, UInt64.max])))
    w.add("test.nested", .array(.array([.int16([1, -2]), .string(["x"]), .array([.uint8([])])])))
    w.add("test.empty", .array(.uint32([])))
    w.tensors = [
        .pattern("blk.0.attn_q.weight", dims: [64, 3], type: .q4_1),
        .pattern("token_embd.weight", dims: [32, 5], type: .q8_0, seed: 7),
        .pattern("blk.0.ffn_up.weight", dims: [16, 2, 3, 2], type: .f16, seed: 3),
        .f32("output_norm.weight", dims: [8], values: [1, 2, 3, 4, -5, 0.5, 1e-3, 7]),
    ]
    return w
}

@Suite("GGUF reader")
struct GGUFFileTests {
    @Test("write -> read round trip keeps metadata, order, tensor infos and bytes")
    func roundTrip() throws {
        let w = sampleWriter()
        let bytes = w.bytes()
        let file = try GGUFFile(bytes: bytes)
        #expect(file.version == 3)
        #expect(file.alignment == 32)
        #expect(file.metadataKeys == w.entries.map { String(decoding: $0.keyBytes, as: UTF8.self) })
        for e in w.entries {
            #expect(file.metadata[String(decoding: e.keyBytes, as: UTF8.self)] == e.value)
        }
        #expect(file.tensors.map(\.name) == w.tensors.map { String(decoding: $0.nameBytes, as: UTF8.self) })
        #expect(file.dataOffset % 32 == 0)
        for (info, t) in zip(file.tensors, w.tensors) {
            #expect(info.dims == t.dims.map { Int($0) })
            #expect(info.type.rawValue == t.type)
            #expect(info.byteCount == t.data.count)
            #expect(info.offset % 32 == 0)
            #expect(Array(file.data(for: info)) == t.data)
        }
        let q = try #require(file.tensor(named: "blk.0.attn_q.weight"))
        #expect(q.rowLength == 64 && q.rowCount == 3 && q.elementCount == 192 && q.byteCount == 3 * 40)
        let up = try #require(file.tensor(named: "blk.0.ffn_up.weight"))
        #expect(up.rowCount == 12 && up.elementCount == 192 && up.byteCount == 384)
        #expect(file.tensor(named: "missing") == nil)
        #expect(bytes.count == file.tensors.last!.offset + 32)  // no trailing padding
    }

    @Test("version 2 files and a custom alignment are read")
    func versionTwoAndCustomAlignment() throws {
        for alignment: UInt32 in [1, 8, 64] {
            var w = sampleWriter()
            w.version = 2
            w.add("general.alignment", .uint32(alignment))
            let file = try GGUFFile(bytes: w.bytes())
            #expect(file.version == 2)
            #expect(file.alignment == Int(alignment))
            for (info, t) in zip(file.tensors, w.tensors) {
                #expect(info.offset % Int(alignment) == 0)
                #expect(Array(file.data(for: info)) == t.data)
            }
        }
    }

    @Test("typed accessors convert, range-check and name the key")
    func accessors() throws {
        let file = try GGUFFile(bytes: sampleWriter().bytes())
        #expect(try file.string("general.name") == "tiny ✓ test")
        #expect(try file.int("test.u8") == 200)
        #expect(try file.int("test.i8") == -100)
        #expect(try file.int("test.u16") == 60_000)
        #expect(try file.int("test.i16") == -30_000)
        #expect(try file.int("test.u32") == 4_000_000_000)
        #expect(try file.int("test.i32") == -2_000_000_000)
        #expect(try file.int("test.i64") == Int(Int64.min))
        #expect(try file.float("test.f32") == 1e-5)
        #expect(try file.float("test.f64") == -.infinity)  // narrowed from -2.5e300
        #expect(try file.bool("test.bool"))
        #expect(try file.stringArray("tokenizer.ggml.tokens") == ["<|endoftext|>", "a", "Ġthe", "é", ""])
        #expect(try file.intArray("tokenizer.ggml.token_type") == [3, 1, 1, 1, 1])
        #expect(try file.floatArray("test.scores") == [0, -1.5, 2])
        #expect(try file.floatArray("test.f64s") == [0.25, 1e-3])
        #expect(try file.intArray("test.empty") == [])
        #expect(file.has("test.bool") && !file.has("nope"))

        #expect(throws: GGUFError.missingKey("llama.block_count")) { try file.int("llama.block_count") }
        #expect(throws: GGUFError.typeMismatch(key: "general.name", expected: "an integer", found: "string")) {
            try file.int("general.name")
        }
        #expect(throws: GGUFError.typeMismatch(key: "test.u32", expected: "string", found: "u32")) {
            try file.string("test.u32")
        }
        #expect(throws: GGUFError.typeMismatch(key: "test.scores", expected: "[string]", found: "[f32]")) {
            try file.stringArray("test.scores")
        }
        #expect(throws: GGUFError.typeMismatch(key: "tokenizer.ggml.tokens", expected: "an integer array", found: "[string]")) {
            try file.intArray("tokenizer.ggml.tokens")
        }
        #expect(throws: GGUFError.typeMismatch(key: "test.bool", expected: "f32 or f64", found: "bool")) {
            try file.float("test.bool")
        }
        #expect(throws: GGUFError.valueOutOfRange(key: "test.u64", value: "18446744073709551615", expected: "an Int")) {
            try file.int("test.u64")
        }
        #expect(throws: GGUFError.valueOutOfRange(key: "test.u64s", value: "element 1 = 18446744073709551615", expected: "an Int")) {
            try file.intArray("test.u64s")
        }
        let e = GGUFError.typeMismatch(key: "general.name", expected: "an integer", found: "string")
        #expect(e.description == "metadata key 'general.name' is string, expected an integer")
    }

    @Test("summaries shorten long arrays to type, length and first items")
    func summaries() throws {
        let file = try GGUFFile(bytes: sampleWriter().bytes())
        let tokens = try #require(file.metadata["tokenizer.ggml.tokens"])
        #expect(tokens.summary(maxItems: 2) == #"[string] x 5: ["<|endoftext|>", "a", ...]"#)
        #expect(file.metadata["test.nested"]?.typeName == "[[i16]]")
        #expect(GGUFValue.string("a\nb").summary() == #""a\nb""#)
    }

    @Test("mapped files: real path reads, missing path and directory throw naming the path")
    func mappedFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-test-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        let w = sampleWriter()
        let good = dir.appendingPathComponent("good.gguf")
        try Data(w.bytes()).write(to: good)
        let file = try GGUFFile(path: good.path)
        #expect(file.path == good.path)
        #expect(Array(file.data(for: file.tensors[1])) == w.tensors[1].data)

        let missing = dir.appendingPathComponent("missing.gguf").path
        #expect(throws: GGUFError.cannotOpen(path: missing, reason: "No such file or directory")) {
            try GGUFFile(path: missing)
        }
        #expect(throws: GGUFError.cannotOpen(path: dir.path, reason: "not a regular file")) {
            try GGUFFile(path: dir.path)
        }
        let empty = dir.appendingPathComponent("empty.gguf")
        try Data().write(to: empty)
        #expect(throws: GGUFError.inFile(path: empty.path, error: .truncated(what: "magic", offset: 0, needed: 4, available: 0))) {
            try GGUFFile(path: empty.path)
        }
        let cut = dir.appendingPathComponent("cut.gguf")
        try Data(w.bytes().dropLast(1)).write(to: cut)
        do {
            _ = try GGUFFile(path: cut.path)
            Issue.record("truncated file was accepted")
        } catch let e as GGUFError {
            #expect(e.description.hasPrefix(cut.path + ": tensor 'output_norm.weight'"))
            guard case .tensorOutOfFile = e.underlying else { Issue.record("unexpected \(e)"); return }
        }
    }
}
