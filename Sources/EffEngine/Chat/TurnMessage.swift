/// One message of a conversation as the engine and transcripts store it.
public struct TurnMessage: Codable, Hashable, Sendable {
    /// "system", "user" or "assistant".
    public var role: String
    public var content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
}
