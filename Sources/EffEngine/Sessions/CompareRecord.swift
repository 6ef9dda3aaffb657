import Foundation

/// One side of an A/B comparison: an answer to the same question and what it cost.
public struct CompareSide: Codable, Hashable, Sendable {
    /// "A" or "B", as shown (sides are assigned at random and revealed after the vote).
    public var label: String
    /// "normal" or "sot".
    public var mode: String
    public var answer: String
    public var seconds: Double
    public var tokens: Int
    /// SoT streams decoded together (0 for normal decoding or a SoT fallback).
    public var streams: Int
    public var stop: StopReason

    public init(label: String, mode: String, answer: String, seconds: Double, tokens: Int,
                streams: Int, stop: StopReason) {
        self.label = label; self.mode = mode; self.answer = answer; self.seconds = seconds
        self.tokens = tokens; self.streams = streams; self.stop = stop
    }
}

/// A blind A/B comparison of normal decoding against Skeleton-of-Thought on one question,
/// with the person's verdict. Stored in the transcript after the turn it compared.
public struct CompareRecord: Codable, Hashable, Sendable {
    public var type = "compare"
    /// Index of the turn whose question was compared.
    public var turnIndex: Int
    public var time: String
    public var question: String
    /// Side A then side B.
    public var sides: [CompareSide]
    /// "A", "B", "tie" or "skipped".
    public var verdict: String

    public init(turnIndex: Int, question: String, sides: [CompareSide], verdict: String, time: Date = Date()) {
        self.turnIndex = turnIndex; self.question = question; self.sides = sides
        self.verdict = verdict; self.time = Transcript.timestamp(time)
    }

    /// The preferred mode ("normal", "sot", "tie") or nil when skipped.
    public var preferredMode: String? {
        switch verdict {
        case "tie": return "tie"
        case "skipped": return nil
        default: return sides.first { $0.label == verdict }?.mode
        }
    }

    enum CodingKeys: String, CodingKey {
        case type, turnIndex = "turn_index", time, question, sides, verdict
    }
}

/// Live events of an A/B comparison, in order (carried inside `ChatEvent.compare`).
public enum CompareEvent: Sendable, Equatable {
    /// A comparison began; `modes[i]` is side i's mode, hidden from the person until the vote.
    case started(question: String, modes: [String])
    /// Side `side`'s whole answer so far (SoT answers are redrawn as their points grow).
    case text(side: Int, text: String)
    /// Side `side` finished with these numbers.
    case sideDone(side: Int, CompareSide)
    /// Both sides are done: waiting for the verdict.
    case ready
    /// The comparison could not run or was stopped.
    case failed(String)
    /// The verdict was stored (or the comparison skipped); the view can reveal and close.
    case recorded(CompareRecord)
}
