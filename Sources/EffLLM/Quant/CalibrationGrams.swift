import EffCore
import Foundation

/// The Gram matrices `X^T X` of every block linear's inputs over calibration tokens: what
/// GPTQ (`WeightSpec.gptq`) needs to know which weight errors the model's inputs expose.
/// q/k/v share one input site, gate/up another (`LinearInput`), so a block keeps four
/// matrices: three of (dim, dim) and one of (hiddenDim, hiddenDim), f32, about 13 MiB a
/// block here.
///
/// The inputs come from `model` as it is (the file's weights), in chunks of `ctx` tokens
/// from the start of the text.
public final class CalibrationGrams: @unchecked Sendable {
    public let tokenCount: Int
    public let chunks: Int
    private let widths: [Int]
    /// `grams[layer][site]`, (width, width) row-major.
    private var grams: [[[Float]]]
    /// The factors of the most recently asked layer (requantization goes block by block).
    private var factors: [Int: GPTQ.Factor] = [:]
    private var factorLayer = -1
    private let lock = NSLock()

    public enum CalibrationError: Error, CustomStringConvertible {
        case tooShort(have: Int, need: Int)
        case cancelled

        public var description: String {
            switch self {
            case .tooShort(let have, let need): return "the calibration text has \(have) tokens, at least \(need) needed"
            case .cancelled: return "cancelled"
            }
        }
    }

    private final class Recorder: LinearInputObserver {
        var grams: [[[Float]]]
        init(_ g: [[[Float]]]) { grams = g }
        func linearInput(layer: Int, site: LinearInput, rows: UnsafePointer<Float>, nTokens: Int, width: Int) {
            grams[layer][site.rawValue].withUnsafeMutableBufferPointer {
                GPTQ.accumulateGram(rows, nTokens: nTokens, width: width, into: $0.baseAddress!)
            }
        }
    }

    /// Runs `model` over `tokens` in chunks of `ctx` (a last partial chunk of at least 16
    /// tokens counts too) and keeps the inputs' Gram matrices. `progress(done, total)` per chunk.
    public init(model: LlamaModel, tokens: [Int32], ctx: Int = 512,
                progress: ((Int, Int) -> Void)? = nil, isCancelled: () -> Bool = { false }) throws {
        let c = model.config
        let need = min(ctx, 64)
        guard tokens.count >= need else { throw CalibrationError.tooShort(have: tokens.count, need: need) }
        let widths = LinearInput.allCases.map { $0 == .feedForwardHidden ? c.hiddenDim : c.dim }
        self.widths = widths
        let empty = (0..<c.nLayers).map { _ in widths.map { [Float](repeating: 0, count: $0 * $0) } }
        let recorder = Recorder(empty)
        var starts = Array(stride(from: 0, to: tokens.count, by: ctx))
        if let last = starts.last, tokens.count - last < 16, starts.count > 1 { starts.removeLast() }
        let state = model.makeState(maxContext: ctx, maxBatch: ctx)
        state.linearInputObserver = recorder
        var logits = [Float](repeating: 0, count: ctx * c.vocabSize)
        for (i, s) in starts.enumerated() {
            if isCancelled() { throw CalibrationError.cancelled }
            _ = state.rewind(to: 0)
            let chunk = Array(tokens[s..<min(tokens.count, s + ctx)])
            try chunk.withUnsafeBufferPointer { t in
                try logits.withUnsafeMutableBufferPointer {
                    try model.forward(t, fromLayer: 0, residual: nil, state: state, logits: $0.baseAddress!)
                }
            }
            progress?(i + 1, starts.count)
        }
        state.linearInputObserver = nil
        grams = recorder.grams
        tokenCount = starts.reduce(0) { $0 + min(ctx, tokens.count - $1) }
        chunks = starts.count
    }

    /// GPTQ's default calibration texts: licences every Debian ships under
    /// /usr/share/common-licenses, none of them the GPL family (the evaluation text is
    /// gpl-3.txt) and none the sensitivity scan's Apache-2.0 alone.
    public static let defaultTextPaths = ["/usr/share/common-licenses/MPL-2.0", "/usr/share/common-licenses/GFDL-1.3",
                                          "/usr/share/common-licenses/Apache-2.0", "/usr/share/common-licenses/Artistic"]
    /// Calibration tokens GPTQ uses by default (8 chunks of 512).
    public static let defaultTokenCount = 4096

    /// The first `count` tokens of the default texts that exist here, concatenated
    /// (without BOS), and the files they came from.
    public static func defaultTokens(tokenizer: Tokenizer, count: Int = defaultTokenCount) -> (tokens: [Int32], files: [String]) {
        var tokens: [Int32] = [], files: [String] = []
        for path in defaultTextPaths where tokens.count < count {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            tokens += tokenizer.encode(text, parseSpecial: false)
            files.append(path)
        }
        return (Array(tokens.prefix(count)), files)
    }

    /// The Gram matrix of one input site (width, width).
    public func gram(layer: Int, site: LinearInput) -> [Float] { grams[layer][site.rawValue] }

    /// GPTQ's factor of the Gram matrix read by `id`, in natural or act order (computed
    /// once per site and order of the latest layer asked for).
    public func factor(for id: LinearTensorID, actOrder: Bool) throws -> GPTQ.Factor {
        let site = SensitivityScan.site(id.role)
        let key = site.rawValue * 2 + (actOrder ? 1 : 0)
        lock.lock()
        defer { lock.unlock() }
        if factorLayer != id.layer { factors = [:]; factorLayer = id.layer }
        if let f = factors[key] { return f }
        let n = widths[site.rawValue]
        let f = try grams[id.layer][site.rawValue].withUnsafeBufferPointer {
            try GPTQ.Factor.make(gram: $0.baseAddress!, n: n, actOrder: actOrder)
        }
        factors[key] = f
        return f
    }
}
