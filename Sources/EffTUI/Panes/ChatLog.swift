import EffEngine
import Foundation

/// The UI's copy of the conversation, built only from the engine's lossless events.
public struct ChatLog: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case system, user, assistant, notice(isWarning: Bool) }

    public struct Entry: Sendable, Equatable {
        public var kind: Kind
        public var text: String
        /// False while the answer is still streaming.
        public var finished: Bool
        public var stats: TurnStats?
    }

    public private(set) var entries: [Entry] = []
    /// Bumped on every change (wrap caches key on it).
    public private(set) var revision = 0

    public init() {}

    public mutating func apply(_ event: ChatEvent) {
        revision &+= 1
        switch event {
        case .conversationLoaded(let messages):
            entries = messages.map { m in
                let kind: Kind = m.role == "user" ? .user : m.role == "system" ? .system : .assistant
                return Entry(kind: kind, text: m.content, finished: true, stats: nil)
            }
        case .userMessage(let t):
            entries.append(Entry(kind: .user, text: t, finished: true))
            entries.append(Entry(kind: .assistant, text: "", finished: false))
        case .text(let t):
            if let i = entries.lastIndex(where: { $0.kind == .assistant && !$0.finished }) {
                entries[i].text += t
            }
        case .answerFinished(let stats):
            if let i = entries.lastIndex(where: { $0.kind == .assistant && !$0.finished }) {
                entries[i].finished = true
                entries[i].stats = stats
            }
        case .notice(let t, let warn):
            entries.append(Entry(kind: .notice(isWarning: warn), text: t, finished: true))
        }
    }
}
