/// Why a tokenizer could not be built; each case names the GGUF key at fault.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    /// A required key is absent from the file.
    case missingKey(String)
    /// `tokenizer.ggml.model` names a tokenizer family this code does not implement.
    case unsupportedModel(key: String, value: String)
    /// `tokenizer.ggml.pre` names a pre-tokenizer split this code does not implement.
    case unsupportedPreTokenizer(key: String, value: String)
    /// An array's length differs from the vocabulary size.
    case lengthMismatch(key: String, count: Int, expected: Int)
    /// A token id (BOS/EOS) lies outside the vocabulary.
    case tokenIDOutOfRange(key: String, id: Int64, vocabSize: Int)
    /// A `tokenizer.ggml.token_type` entry is not one of the known types (0...6).
    case invalidTokenType(key: String, index: Int, value: Int)
    /// The vocabulary is empty.
    case emptyVocabulary(key: String)

    public var description: String {
        switch self {
        case .missingKey(let key):
            return "tokenizer: required key '\(key)' is missing from the model file"
        case .unsupportedModel(let key, let value):
            return "tokenizer: '\(key)' is '\(value)'; only 'gpt2' (byte-level BPE) is supported"
        case .unsupportedPreTokenizer(let key, let value):
            let known = "smollm, starcoder, refact, command-r, codeshell, exaone, minerva-7b, gpt-2, mpt, olmo, jais"
            return "tokenizer: '\(key)' is '\(value)', a pre-tokenizer this build does not implement (supported: \(known))"
        case .lengthMismatch(let key, let count, let expected):
            return "tokenizer: '\(key)' has \(count) entries but the vocabulary has \(expected) tokens"
        case .tokenIDOutOfRange(let key, let id, let vocabSize):
            return "tokenizer: '\(key)' is \(id), outside the vocabulary of \(vocabSize) tokens"
        case .invalidTokenType(let key, let index, let value):
            return "tokenizer: '\(key)'[\(index)] is \(value), not a known token type (0...6)"
        case .emptyVocabulary(let key):
            return "tokenizer: '\(key)' is empty"
        }
    }
}
