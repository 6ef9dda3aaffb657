import EffCore

/// Advances several independent sequences by one token each in one forward call: a thin
/// wrapper over `LlamaModel.forward(batch:scratch:)` that owns the batch's row buffers.
///
/// Every matmul runs once for the whole batch (`nTokens = B`), so each weight block is read
/// once per step and shared across the B activations; that is what makes a batch of B
/// cheaper than B single steps (r(B) = t_B / t_1, reported by `effterm bench`). Each
/// sequence keeps its own position and KV store (`LlamaState`), which may be a fork over a
/// shared prompt prefix (`LlamaState.fork`): the prefix is computed once and never copied.
/// A step takes whichever sequences are still running, so sequences join and leave the
/// batch between steps. Observers and attention policies of each state apply as in a
/// single-sequence call (it is the same forward pass).
public final class BatchDecoder {
    public let model: LlamaModel
    /// Most sequences one step can advance.
    public let maxStreams: Int
    private let scratch: ForwardScratch

    public init(model: LlamaModel, maxStreams: Int) {
        self.model = model
        self.maxStreams = max(1, maxStreams)
        scratch = ForwardScratch(config: model.config, rows: self.maxStreams)
    }

    /// Feeds `tokens[i]` to `states[i]` at its next position for every i, and writes each
    /// sequence's next-token logits to `logits + i * vocabSize`. The states must be distinct
    /// (a fork is a distinct state) and each must have room for one more position.
    public func step(tokens: UnsafeBufferPointer<Int32>, states: [LlamaState],
                     logits: UnsafeMutablePointer<Float>) throws {
        let n = states.count
        guard n > 0, tokens.count == n, let base = tokens.baseAddress else { throw LlamaModelError.batchEmpty }
        guard n <= maxStreams else { throw BatchDecoderError.tooManyStreams(n, max: maxStreams) }
        let vocab = model.config.vocabSize
        try withUnsafeTemporaryAllocation(of: LlamaModel.SequenceInput.self, capacity: n) { inputs in
            for i in 0..<n {
                inputs.initializeElement(at: i, to: LlamaModel.SequenceInput(
                    state: states[i], tokens: UnsafeBufferPointer(start: base + i, count: 1), logits: logits + i * vocab))
            }
            defer { inputs.baseAddress!.deinitialize(count: n) }
            try model.forward(batch: UnsafeBufferPointer(inputs), scratch: scratch)
        }
    }

    /// Convenience over arrays.
    public func step(tokens: [Int32], states: [LlamaState], logits: UnsafeMutablePointer<Float>) throws {
        try tokens.withUnsafeBufferPointer { try step(tokens: $0, states: states, logits: logits) }
    }
}

/// Misuse of a batched forward call.
public enum BatchDecoderError: Error, Equatable, CustomStringConvertible {
    case tooManyStreams(Int, max: Int)
    case duplicateState(index: Int)

    public var description: String {
        switch self {
        case .tooManyStreams(let n, let m): return "batch of \(n) rows exceeds the decoder's \(m)"
        case .duplicateState(let i): return "sequence \(i) repeats a state already in the batch (fork it instead)"
        }
    }
}
