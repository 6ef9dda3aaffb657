import EffCore

/// The blueprint of a Llama-architecture model, decoded and validated from GGUF metadata.
///
/// Key names follow llama.cpp's `LLM_KV_*` table for `general.architecture = "llama"`
/// (`llama.embedding_length`, `llama.attention.head_count`, ...). Every value is checked
/// (positive, within caps, head counts dividing the width) and a failure names the key.
public struct LlamaConfig: Sendable, Equatable, Codable {
    /// Residual stream width (`llama.embedding_length`), 576 for SmolLM2-135M.
    public var dim: Int
    /// SwiGLU inner width (`llama.feed_forward_length`), 1536.
    public var hiddenDim: Int
    /// Transformer blocks (`llama.block_count`), 30.
    public var nLayers: Int
    /// Query heads (`llama.attention.head_count`), 9.
    public var nHeads: Int
    /// Key/value heads (`llama.attention.head_count_kv`), 3; `nHeads / nKVHeads` queries share one.
    public var nKVHeads: Int
    /// Vocabulary size (`tokenizer.ggml.tokens` length, equal to `llama.vocab_size` when present).
    public var vocabSize: Int
    /// Trained context length (`llama.context_length`), 8192.
    public var seqLen: Int
    /// RoPE base frequency (`llama.rope.freq_base`, default 10000), 1e5 here.
    public var ropeFreqBase: Float
    /// RMSNorm epsilon (`llama.attention.layer_norm_rms_epsilon`), 1e-5.
    public var normEps: Float

    /// Width of one head: `dim / nHeads` (64).
    public var headSize: Int { dim / nHeads }
    /// Width of all key (or value) heads: `nKVHeads * headSize` (192).
    public var kvDim: Int { nKVHeads * headSize }
    /// Query heads per KV head (3).
    public var groupSize: Int { nHeads / nKVHeads }

    /// Caps that keep a hostile file from asking for absurd allocations.
    public static let maxDim = 1 << 16, maxLayers = 1024, maxVocab = 1 << 22, maxContext = 1 << 20

    public init(dim: Int, hiddenDim: Int, nLayers: Int, nHeads: Int, nKVHeads: Int, vocabSize: Int,
                seqLen: Int, ropeFreqBase: Float = 10000, normEps: Float = 1e-5) throws {
        self.dim = dim
        self.hiddenDim = hiddenDim
        self.nLayers = nLayers
        self.nHeads = nHeads
        self.nKVHeads = nKVHeads
        self.vocabSize = vocabSize
        self.seqLen = seqLen
        self.ropeFreqBase = ropeFreqBase
        self.normEps = normEps
        try validate()
    }

    /// Metadata keys, one table (llama.cpp `LLM_KV_*` names for the llama architecture).
    public enum Key {
        public static let architecture = "general.architecture"
        public static let dim = "llama.embedding_length"
        public static let hiddenDim = "llama.feed_forward_length"
        public static let nLayers = "llama.block_count"
        public static let nHeads = "llama.attention.head_count"
        public static let nKVHeads = "llama.attention.head_count_kv"
        public static let seqLen = "llama.context_length"
        public static let ropeFreqBase = "llama.rope.freq_base"
        public static let ropeDimensionCount = "llama.rope.dimension_count"
        public static let normEps = "llama.attention.layer_norm_rms_epsilon"
        public static let vocabSize = "llama.vocab_size"
        public static let tokens = "tokenizer.ggml.tokens"
        public static let tokenTypes = "tokenizer.ggml.token_type"
        public static let scores = "tokenizer.ggml.scores"
    }

    /// Decodes and validates the blueprint from a GGUF file's metadata.
    public init(gguf: GGUFFile) throws {
        let arch = try gguf.string(Key.architecture)
        guard arch == "llama" else {
            throw LlamaModelError.unsupportedArchitecture(arch)
        }
        dim = try gguf.int(Key.dim)
        hiddenDim = try gguf.int(Key.hiddenDim)
        nLayers = try gguf.int(Key.nLayers)
        nHeads = try gguf.int(Key.nHeads)
        nKVHeads = gguf.has(Key.nKVHeads) ? try gguf.int(Key.nKVHeads) : nHeads
        seqLen = try gguf.int(Key.seqLen)
        ropeFreqBase = gguf.has(Key.ropeFreqBase) ? try gguf.float(Key.ropeFreqBase) : 10000
        normEps = try gguf.float(Key.normEps)
        let tokenCount = try gguf.array(Key.tokens).count
        vocabSize = tokenCount
        try validate()
        if gguf.has(Key.vocabSize) {
            let declared = try gguf.int(Key.vocabSize)
            guard declared == tokenCount else {
                throw LlamaModelError.invalidValue(key: Key.vocabSize, value: "\(declared)",
                                                   expected: "equal to the \(tokenCount) entries of \(Key.tokens)")
            }
        }
        for key in [Key.tokenTypes, Key.scores] where gguf.has(key) {
            let n = try gguf.array(key).count
            guard n == tokenCount else {
                throw LlamaModelError.invalidValue(key: key, value: "\(n) entries",
                                                   expected: "\(tokenCount) entries, one per token of \(Key.tokens)")
            }
        }
        if gguf.has(Key.ropeDimensionCount) {
            let r = try gguf.int(Key.ropeDimensionCount)
            guard r == headSize else {
                throw LlamaModelError.invalidValue(key: Key.ropeDimensionCount, value: "\(r)",
                                                   expected: "the head size \(headSize) (partial rotary is not supported)")
            }
        }
    }

    /// Checks every field; the error names the GGUF key of the offending value.
    public func validate() throws {
        func check(_ ok: Bool, _ key: String, _ value: Any, _ expected: String) throws {
            if !ok { throw LlamaModelError.invalidValue(key: key, value: "\(value)", expected: expected) }
        }
        try check(dim > 0 && dim <= Self.maxDim, Key.dim, dim, "1...\(Self.maxDim)")
        try check(hiddenDim > 0 && hiddenDim <= Self.maxDim * 8, Key.hiddenDim, hiddenDim, "1...\(Self.maxDim * 8)")
        try check(nLayers > 0 && nLayers <= Self.maxLayers, Key.nLayers, nLayers, "1...\(Self.maxLayers)")
        try check(nHeads > 0 && nHeads <= dim, Key.nHeads, nHeads, "1...\(dim)")
        try check(dim % nHeads == 0, Key.nHeads, nHeads, "a divisor of \(Key.dim) = \(dim)")
        try check(headSize % 2 == 0, Key.nHeads, nHeads, "a head count giving an even head size (RoPE rotates pairs)")
        try check(nKVHeads > 0 && nKVHeads <= nHeads && nHeads % nKVHeads == 0, Key.nKVHeads, nKVHeads,
                  "a divisor of \(Key.nHeads) = \(nHeads)")
        try check(vocabSize > 0 && vocabSize <= Self.maxVocab, Key.tokens, vocabSize, "1...\(Self.maxVocab) tokens")
        try check(seqLen > 0 && seqLen <= Self.maxContext, Key.seqLen, seqLen, "1...\(Self.maxContext)")
        try check(ropeFreqBase.isFinite && ropeFreqBase > 0, Key.ropeFreqBase, ropeFreqBase, "a positive finite number")
        try check(normEps.isFinite && normEps > 0 && normEps < 1, Key.normEps, normEps, "in (0, 1)")
    }
}

/// Why a model could not be bound or run; each case names the key, tensor or value at fault.
public enum LlamaModelError: Error, Equatable, CustomStringConvertible {
    case unsupportedArchitecture(String)
    case invalidValue(key: String, value: String, expected: String)
    case missingTensor(String)
    case tensorShape(tensor: String, found: [Int], expected: [Int])
    case tensorType(tensor: String, type: String, reason: String)
    case tokenOutOfRange(token: Int32, vocabSize: Int)
    case contextFull(position: Int, capacity: Int)
    case batchEmpty
    case evictionRefused(range: Range<Int>, length: Int)
    case chunkTooLong(tokens: Int, max: Int)
    case weightsMismatch

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let a):
            return "general.architecture is '\(a)'; effterm runs only 'llama' models"
        case .invalidValue(let key, let value, let expected):
            return "metadata key \(key) = \(value); expected \(expected)"
        case .missingTensor(let name):
            return "tensor \(name) is missing from the model file"
        case .tensorShape(let name, let found, let expected):
            return "tensor \(name) has dims \(found) (ggml order); expected \(expected)"
        case .tensorType(let name, let type, let reason):
            return "tensor \(name) has type \(type): \(reason)"
        case .tokenOutOfRange(let t, let v):
            return "token id \(t) is outside the vocabulary 0..<\(v)"
        case .contextFull(let p, let c):
            return "position \(p) does not fit the KV cache of \(c) positions"
        case .evictionRefused(let r, let n):
            return "the KV cache of \(n) positions cannot evict \(r.lowerBound)..<\(r.upperBound) (a shared prefix or fork point)"
        case .chunkTooLong(let n, let m):
            return "\(n) tokens in one batch row group exceed the eviction policy's \(m) per chunk"
        case .batchEmpty:
            return "forward pass called with no tokens"
        case .weightsMismatch:
            return "the new weights belong to a model of another shape"
        }
    }
}
