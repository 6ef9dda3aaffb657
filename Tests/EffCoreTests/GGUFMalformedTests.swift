import EffCore
import EffTestSupport
import Testing

/// The reader's rejection of malformed files, one test per case of llama.cpp's
/// `tests/test-gguf.cpp` handcrafted family plus the checks effterm adds. Each must throw a
/// specific `GGUFError` (never crash, trap or allocate what the file merely claims).
@Suite("GGUF malformed files")
struct GGUFMalformedTests {
    /// The error reading `w` produces, or nil when it parses.
    func rejection(_ w: GGUFWriter, limits: GGUFLimits = GGUFLimits()) -> GGUFError? {
        rejection(w.bytes(), limits: limits)
    }

    func rejection(_ bytes: [UInt8], limits: GGUFLimits = GGUFLimits()) -> GGUFError? {
        do {
            _ = try GGUFFile(bytes: bytes, limits: limits)
            return nil
        } catch let e as GGUFError {
            return e
        } catch {
            Issue.record("non-GGUF error: \(error)")
            return nil
        }
    }

    /// A writer holding only a header and `entries` (no tensors).
    func metadataOnly(_ entries: [GGUFWriter.Entry]) -> GGUFWriter {
        var w = GGUFWriter()
        w.entries = entries
        return w
    }

    /// A writer with one good Q4_1 tensor `blk.0.w` of dims [32, 2] and `t` after it.
    func withTensor(_ t: GGUFWriter.Tensor) -> GGUFWriter {
        var w = GGUFWriter()
        w.add("general.architecture", .string("llama"))
        w.tensors = [.pattern("blk.0.w", dims: [32, 2], type: .q4_1), t]
        return w
    }

    // MARK: header (HANDCRAFTED_HEADER_*)

    @Test func badMagic() {
        var w = sampleWriter()
        w.magic = Array("FUGG".utf8)
        let e = rejection(w)
        #expect(e == .badMagic(found: Array("FUGG".utf8)))
        #expect(e?.description.contains("not a GGUF file") == true)
    }

    @Test(arguments: [UInt32(0), 1, 4, 0x0300_0000])
    func badVersion(version: UInt32) {
        var w = sampleWriter()
        w.version = version
        let e = rejection(w)
        #expect(e == .unsupportedVersion(version))
        if version == 0x0300_0000 { #expect(e?.description.contains("big-endian") == true) }
    }

    @Test func hugeTensorCount() {
        var w = sampleWriter()
        w.rawTensorCount = UInt64.max
        #expect(rejection(w) == .tooManyTensors(count: .max, limit: GGUFLimits().maxTensors))
        // With the cap lifted, 2^60 claimed tensors still allocate nothing: the bytes left
        // cannot hold them, which is checked before any reservation.
        var open = GGUFLimits()
        open.maxTensors = .max
        w.rawTensorCount = 1 << 60
        guard case .truncated(let what, _, _, _)? = rejection(w, limits: open) else {
            Issue.record("expected truncated"); return
        }
        #expect(what.contains("1152921504606846976 tensor infos"))
    }

    @Test func hugeKeyCount() {
        var w = sampleWriter()
        w.rawKeyCount = UInt64.max
        #expect(rejection(w) == .tooManyKeys(count: .max, limit: GGUFLimits().maxKeys))
        var open = GGUFLimits()
        open.maxKeys = .max
        w.rawKeyCount = 1 << 60
        guard case .truncated(_, 24, _, _)? = rejection(w, limits: open) else {
            Issue.record("expected truncated at the first key"); return
        }
    }

    @Test func emptyFileAndHeaderOnly() {
        #expect(rejection([]) == .truncated(what: "magic", offset: 0, needed: 4, available: 0))
        // HANDCRAFTED_HEADER_EMPTY: a header with no keys and no tensors is a valid file.
        #expect(rejection(GGUFWriter()) == nil)
    }

    // MARK: key/value pairs (HANDCRAFTED_KV_*)

    @Test func badKeySize() {
        var entry = GGUFWriter.Entry("general.name", .string("x"))
        entry.rawKeyLength = UInt64.max
        #expect(rejection(metadataOnly([entry]))
                == .stringTooLong(what: "metadata key #0", offset: 24, length: .max, limit: GGUFLimits().maxKeyBytes))
        entry.rawKeyLength = 60_000  // under the cap, past the end of the file
        guard case .truncated(let what, 32, 60_000, _)? = rejection(metadataOnly([entry])) else {
            Issue.record("expected truncated key"); return
        }
        #expect(what == "metadata key #0")
    }

    @Test func emptyKey() {
        #expect(rejection(metadataOnly([.init("", .uint8(1))])) == .emptyKey(index: 0, offset: 24))
    }

    @Test func badValueType() {
        var entry = GGUFWriter.Entry("my.key", .uint8(1))
        entry.rawType = 13  // GGUF_TYPE_COUNT
        #expect(rejection(metadataOnly([.init("a.b", .bool(false)), entry]))
                == .unknownValueType(key: "my.key", offset: 24 + 8 + 3 + 4 + 1 + 8 + 6, rawType: 13))
    }

    @Test func badArrayType() {
        var entry = GGUFWriter.Entry("my.array", .array(.uint8([1])))
        var raw: [UInt8] = []
        GGUFWriter.append(UInt32(13), to: &raw)
        GGUFWriter.append(UInt64(1), to: &raw)
        raw.append(0)
        entry.rawValue = raw
        let e = rejection(metadataOnly([entry]))
        #expect(e == .unknownArrayType(key: "my.array", offset: 24 + 8 + 8 + 4, rawType: 13))
        #expect(e?.description.contains("'my.array'") == true)
    }

    @Test func hugeArrayLength() {
        var entry = GGUFWriter.Entry("tokenizer.ggml.tokens", .array(.string([])))
        var raw: [UInt8] = []
        GGUFWriter.append(GGUFValueType.string.rawValue, to: &raw)
        GGUFWriter.append(UInt64.max, to: &raw)
        entry.rawValue = raw
        #expect(rejection(metadataOnly([entry])) == .arrayTooLong(
            key: "tokenizer.ggml.tokens", offset: 24 + 8 + 21 + 4, count: .max, limit: GGUFLimits().maxArrayLength))
        // Under the cap but far beyond the bytes left: rejected before reserving.
        raw = []
        GGUFWriter.append(GGUFValueType.uint64.rawValue, to: &raw)
        GGUFWriter.append(UInt64(1 << 23), to: &raw)
        entry.rawValue = raw
        guard case .truncated(let what, _, let needed, _)? = rejection(metadataOnly([entry])) else {
            Issue.record("expected truncated array"); return
        }
        #expect(what.contains("tokenizer.ggml.tokens") && needed == 8 << 23)
    }

    @Test func arrayNestingTooDeep() {
        var a = GGUFArray.uint8([1])
        for _ in 0..<5 { a = .array([a]) }  // 6 levels
        guard case .arrayNestingTooDeep(let key, _, 4)? = rejection(metadataOnly([.init("deep", .array(a))])) else {
            Issue.record("expected nesting error"); return
        }
        #expect(key == "deep")
    }

    @Test func duplicateKey() {
        let w = metadataOnly([.init("my_key_0", .uint8(1)), .init("my_key_1", .uint8(2)), .init("my_key_0", .uint8(3))])
        #expect(rejection(w) == .duplicateKey(key: "my_key_0", offset: 24 + 2 * (8 + 8 + 4 + 1)))
    }

    @Test(arguments: [UInt32(0), 13, 48])
    func badAlignment(value: UInt32) {
        var w = sampleWriter()
        w.add("general.alignment", .uint32(value))
        w.layoutAlignment = 32
        #expect(rejection(w) == .alignmentNotPowerOfTwo(UInt64(value)))
    }

    @Test func wrongTypeAlignment() {
        var w = sampleWriter()
        w.add("general.alignment", .int32(32))
        let e = rejection(w)
        #expect(e == .alignmentWrongType(found: "i32"))
        #expect(e?.description == "'general.alignment' must be a u32, found i32")
    }

    @Test func invalidUTF8() {
        // In a key.
        var key = GGUFWriter.Entry("x", .uint8(0))
        key.keyBytes = [0x61, 0xC3, 0x28]
        #expect(rejection(metadataOnly([key])) == .invalidUTF8(what: "metadata key #0", offset: 32))
        // In a string value (a lone continuation byte, and a truncated 4-byte sequence of
        // the same length as its replacement character).
        for bad: [UInt8] in [[0x80], [0xF0, 0x90, 0x80], [0xED, 0xA0, 0x80]] {
            var v = GGUFWriter.Entry("general.name", .string(""))
            var raw: [UInt8] = []
            GGUFWriter.encodeString(bad, to: &raw)
            v.rawValue = raw
            let e = rejection(metadataOnly([v]))
            #expect(e == .invalidUTF8(what: "value of key 'general.name'", offset: 24 + 8 + 12 + 4 + 8))
            #expect(e?.description.contains("'general.name'") == true)
        }
        // In an array element.
        var arr = GGUFWriter.Entry("tokenizer.ggml.tokens", .array(.string([])))
        var raw: [UInt8] = []
        GGUFWriter.append(GGUFValueType.string.rawValue, to: &raw)
        GGUFWriter.append(UInt64(2), to: &raw)
        GGUFWriter.encodeString(Array("ok".utf8), to: &raw)
        GGUFWriter.encodeString([0xFF, 0x41], to: &raw)
        arr.rawValue = raw
        guard case .invalidUTF8(let what, _)? = rejection(metadataOnly([arr])) else {
            Issue.record("expected invalid UTF-8"); return
        }
        #expect(what == "element 1 of key 'tokenizer.ggml.tokens'")
    }

    // MARK: tensor infos (HANDCRAFTED_TENSORS_*)

    @Test func tensorNameTooLong() {
        let name = "blk.0.a_very_long_name_which_is_longer_than_what_ggml_allows_for_tensors"
        guard case .stringTooLong(let what, _, let length, 63)? = rejection(withTensor(.pattern(name, dims: [4], type: .f32))) else {
            Issue.record("expected name too long"); return
        }
        #expect(what == "name of tensor #1" && length == UInt64(name.utf8.count))
    }

    @Test func emptyTensorName() {
        guard case .emptyTensorName(1, _)? = rejection(withTensor(.pattern("", dims: [4], type: .f32))) else {
            Issue.record("expected empty name"); return
        }
    }

    @Test(arguments: [UInt32(0), 5, UInt32.max])
    func badDimensionCount(count: UInt32) {
        var t = GGUFWriter.Tensor.pattern("blk.0.bad", dims: [4], type: .f32)
        t.rawDimCount = count
        guard case .badDimensionCount("blk.0.bad", _, count, 4)? = rejection(withTensor(t)) else {
            Issue.record("expected bad n_dims"); return
        }
    }

    @Test(arguments: [Int64(-1), 0, Int64.min])
    func badDimension(value: Int64) {
        var t = GGUFWriter.Tensor.pattern("blk.0.bad", dims: [32, 1], type: .q4_1)
        t.dims[1] = UInt64(bitPattern: value)
        let e = rejection(withTensor(t))
        guard case .badDimension("blk.0.bad", _, 1, value)? = e else {
            Issue.record("expected bad dimension, got \(String(describing: e))"); return
        }
        #expect(e?.description.contains("must be positive") == true)
    }

    @Test func elementCountOverflow() {
        // HANDCRAFTED_TENSORS_NE_TOO_BIG: two dims of 4 * INT32_MAX.
        let big = 4 * Int(Int32.max)
        let e = rejection(withTensor(GGUFWriter.Tensor(name: "blk.0.big", dims: [big, big], type: .f32, data: [])))
        #expect(e == .elementCountOverflow(tensor: "blk.0.big", dims: [big, big]))
    }

    @Test func byteSizeOverflow() {
        // HANDCRAFTED_TENSORS_NBYTES_TOO_BIG: the element count fits, its byte size does not.
        let e = rejection(withTensor(GGUFWriter.Tensor(name: "blk.0.i64", dims: [1 << 31, 1 << 31], type: .i64, data: [])))
        #expect(e == .byteSizeOverflow(tensor: "blk.0.i64", dims: [1 << 31, 1 << 31], type: "I64"))
        // A single row whose byte size overflows (F32: 4 bytes per element).
        let row = rejection(withTensor(GGUFWriter.Tensor(name: "blk.0.row", dims: [1 << 62], type: .f32, data: [])))
        #expect(row == .byteSizeOverflow(tensor: "blk.0.row", dims: [1 << 62], type: "F32"))
    }

    @Test(arguments: [UInt32(40), 4, 5, 31, 1000, UInt32.max])
    func badTensorType(raw: UInt32) {
        var t = GGUFWriter.Tensor.pattern("blk.0.t", dims: [32], type: .f32)
        t.type = raw
        guard case .unknownTensorType("blk.0.t", _, raw)? = rejection(withTensor(t)) else {
            Issue.record("expected unknown type"); return
        }
    }

    @Test func rowNotBlockMultiple() {
        let e = rejection(withTensor(GGUFWriter.Tensor(name: "blk.0.q", dims: [48, 2], type: .q4_1, data: [UInt8](repeating: 0, count: 60))))
        #expect(e == .rowNotBlockMultiple(tensor: "blk.0.q", type: "Q4_1", rowLength: 48, blockSize: 32))
    }

    @Test(arguments: [UInt64.max, 1, 33])
    func misalignedOffset(offset: UInt64) {
        var t = GGUFWriter.Tensor.pattern("blk.0.t", dims: [8], type: .f32)
        t.rawOffset = offset
        #expect(rejection(withTensor(t)) == .misalignedTensorOffset(tensor: "blk.0.t", offset: offset, alignment: 32))
    }

    @Test(arguments: [UInt64(1) << 62, UInt64.max - 31, 96])
    func offsetOutsideFile(offset: UInt64) {
        var t = GGUFWriter.Tensor.pattern("blk.0.t", dims: [8], type: .f32)
        t.rawOffset = offset
        let e = rejection(withTensor(t))
        guard case .tensorOutOfFile("blk.0.t", _, 32, _)? = e else {
            Issue.record("expected out of file, got \(String(describing: e))"); return
        }
    }

    @Test func duplicateTensorName() {
        let w = withTensor(.pattern("blk.0.w", dims: [8], type: .f32))
        guard case .duplicateTensor("blk.0.w", _)? = rejection(w) else {
            Issue.record("expected duplicate tensor"); return
        }
    }

    @Test func overlappingTensors() {
        var t = GGUFWriter.Tensor.pattern("blk.0.t", dims: [8], type: .f32)
        t.rawOffset = 32  // inside blk.0.w's 40 bytes
        #expect(rejection(withTensor(t)) == .tensorsOverlap(first: "blk.0.w", second: "blk.0.t"))
    }

    @Test func inconsistentAlignment() {
        // HANDCRAFTED_TENSORS_INCONSISTENT_ALIGN: laid out with alignment 1, declared 32.
        var w = withTensor(.pattern("blk.0.t", dims: [8], type: .f32))
        w.layoutAlignment = 1
        #expect(rejection(w) == .misalignedTensorOffset(tensor: "blk.0.t", offset: 40, alignment: 32))
        // HANDCRAFTED_TENSORS_BAD_ALIGN: declared 13, laid out with 13.
        w.add("general.alignment", .uint32(13))
        w.layoutAlignment = 13
        #expect(rejection(w) == .alignmentNotPowerOfTwo(13))
    }

    // MARK: data (HANDCRAFTED_DATA_*)

    @Test func notEnoughData() {
        let bytes = sampleWriter().bytes()
        let e = rejection(Array(bytes.dropLast()))
        guard case .tensorOutOfFile("output_norm.weight", _, 32, let size)? = e else {
            Issue.record("expected out of file"); return
        }
        #expect(size == bytes.count - 1)
    }

    @Test func dataSizeOverflow() {
        // HANDCRAFTED_DATA_MEM_SIZE_OVERFLOW: two I8 tensors of 0x7FFFFFFFFFFFFFC0 bytes each.
        var w = GGUFWriter()
        let n = 0x7FFF_FFFF_FFFF_FFC0
        var a = GGUFWriter.Tensor(name: "a", dims: [n], type: .i8, data: [])
        var b = GGUFWriter.Tensor(name: "b", dims: [n], type: .i8, data: [])
        a.rawOffset = 0
        b.rawOffset = UInt64(n)
        w.tensors = [a, b]
        guard case .tensorOutOfFile("a", _, n, _)? = rejection(w) else {
            Issue.record("expected out of file"); return
        }
    }

    @Test func everyPrefixOfAValidFileIsRejected() {
        let bytes = sampleWriter().bytes()
        #expect(rejection(bytes) == nil)
        for n in 0..<bytes.count {
            let e = rejection(Array(bytes[..<n]))
            switch e {
            case .truncated?, .tensorOutOfFile?: break
            default: Issue.record("prefix of \(n) bytes: \(String(describing: e))")
            }
        }
    }

    @Test func randomCorruptionNeverCrashes() {
        let good = sampleWriter().bytes()
        var rng = SplitMix64(seed: 0x6767_7566)
        var rejected = 0
        for round in 0..<3000 {
            var bytes = good
            for _ in 0..<(1 + round % 4) {
                let i = Int(rng.next() % UInt64(bytes.count))
                bytes[i] = round % 3 == 0 ? 0xFF : UInt8(truncatingIfNeeded: rng.next())
            }
            if rejection(bytes) != nil { rejected += 1 }
        }
        #expect(rejected > 0)
    }
}

