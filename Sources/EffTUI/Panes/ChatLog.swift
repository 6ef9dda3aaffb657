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
        /// Set while and after the answer is a Skeleton-of-Thought answer.
        public var sot: SoTAnswerView?
    }

    public private(set) var entries: [Entry] = []
    /// Bumped on every change (wrap caches key on it).
    public private(set) var revision = 0

    public init() {}

    /// The answer still streaming, if any.
    private var live: Int? { entries.lastIndex { $0.kind == .assistant && !$0.finished } }

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
            if let i = live {
                if var view = entries[i].sot {
                    view.apply(.fallbackText(t))
                    entries[i].sot = view
                    entries[i].text = view.text(live: true)
                } else {
                    entries[i].text += t
                }
            }
        case .sot(let e):
            if let i = live {
                var view = entries[i].sot ?? SoTAnswerView()
                view.apply(e)
                entries[i].sot = view
                entries[i].text = view.text(live: true)
            }
        case .answerFinished(let stats):
            if let i = live {
                entries[i].finished = true
                entries[i].stats = stats
                if let view = entries[i].sot { entries[i].text = view.text(live: false) }
            }
        case .compare:
            break  // drawn by the compare view, not part of the conversation
        case .notice(let t, let warn):
            entries.append(Entry(kind: .notice(isWarning: warn), text: t, finished: true))
        }
    }
}
