import EffCore

extension Tokenizer {
    /// Builds the tokenizer a GGUF file describes (`tokenizer.ggml.*` keys, see
    /// `GGUFTokenizerKey`). Throws `TokenizerError` or `GGUFError`, each naming the key at
    /// fault: wrong model family, unknown pre-tokenizer, array lengths unequal to the
    /// vocabulary size, BOS/EOS outside the vocabulary.
    public convenience init(gguf: GGUFFile) throws {
        let model = try gguf.string(GGUFTokenizerKey.model)
        guard model == "gpt2" else {
            throw TokenizerError.unsupportedModel(key: GGUFTokenizerKey.model, value: model)
        }
        guard gguf.has(GGUFTokenizerKey.pre) else { throw TokenizerError.missingKey(GGUFTokenizerKey.pre) }
        let pre = try gguf.string(GGUFTokenizerKey.pre)
        let tokens = try gguf.stringArray(GGUFTokenizerKey.tokens)
        let types = try gguf.intArray(GGUFTokenizerKey.tokenType)
        let merges = try gguf.stringArray(GGUFTokenizerKey.merges)
        func tokenID(_ key: String) throws -> Int32 {
            let id = try gguf.int(key)
            guard id >= 0, id < tokens.count else {
                throw TokenizerError.tokenIDOutOfRange(key: key, id: Int64(id), vocabSize: tokens.count)
            }
            return Int32(id)
        }
        guard !tokens.isEmpty else { throw TokenizerError.emptyVocabulary(key: GGUFTokenizerKey.tokens) }
        try self.init(tokens: tokens, merges: merges, tokenTypes: types,
                      bosID: try tokenID(GGUFTokenizerKey.bosID), eosID: try tokenID(GGUFTokenizerKey.eosID),
                      preTokenizer: pre)
    }
}
