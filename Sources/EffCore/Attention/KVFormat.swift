/// How a KV store holds each cached key and value row.
///
/// `f32` is the reference (bit-identical to the engine before KV formats existed); `f16`
/// halves the bytes (IEEE binary16, round to nearest even); `q8` stores int8 codes in
/// groups of `group` consecutive elements of one token's row, each group with one f32
/// scale (symmetric, `x ≈ scale * code`, code in -127...127), about a quarter of f32.
public enum KVFormat: Hashable, Sendable {
    case f32
    case f16
    case q8(group: Int)

    /// The 8-bit format with the default group (32 elements: two groups per 64-wide head).
    public static let q8 = KVFormat.q8(group: 32)

    /// Formats a user can pick, in the order the chat's hotkey cycles them.
    public static let cycle: [KVFormat] = [.f32, .f16, .q8]

    /// Parses `f32`, `f16`, `q8` (group 32), `q8g32`, `q8g64`.
    public init?(argument: String) {
        switch argument.lowercased() {
        case "f32": self = .f32
        case "f16": self = .f16
        case "q8", "q8g32": self = .q8(group: 32)
        case "q8g64": self = .q8(group: 64)
        default: return nil
        }
    }

    /// Short name for status bars, transcripts and JSON ("f32", "f16", "q8", "q8g64").
    public var name: String {
        switch self {
        case .f32: return "f32"
        case .f16: return "f16"
        case .q8(let g): return g == 32 ? "q8" : "q8g\(g)"
        }
    }

    /// Bytes one row of `width` elements takes in this format (scales included).
    public func rowBytes(width: Int) -> Int {
        switch self {
        case .f32: return 4 * width
        case .f16: return 2 * width
        case .q8(let g): return width + 4 * ((width + g - 1) / g)
        }
    }

    /// The next format in `cycle` (wrapping), for the chat's hotkey.
    public var next: KVFormat {
        let i = KVFormat.cycle.firstIndex(of: self) ?? -1
        return KVFormat.cycle[(i + 1) % KVFormat.cycle.count]
    }
}

extension KVFormat: CustomStringConvertible {
    public var description: String { name }
}

extension KVFormat: Codable {
    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let f = KVFormat(argument: s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                   debugDescription: "unknown KV format '\(s)' (f32, f16, q8, q8g64)"))
        }
        self = f
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(name)
    }
}
