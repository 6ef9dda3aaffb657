import Foundation

/// One point of a Skeleton-of-Thought skeleton: its number and its few words.
public struct SkeletonPoint: Sendable, Equatable, Codable {
    public var index: Int
    public var text: String
    public init(index: Int, text: String) {
        self.index = index
        self.text = text
    }
}

/// Parses and checks skeletons and point expansions (SoT §2: `N. text` lines; the first
/// of duplicate indices wins).
public enum SkeletonParser {
    /// Points of a skeleton, in order. `text` is the skeleton answer including its `1.`
    /// prefill. Parsing stops at the first non-empty line that is not a numbered point, so
    /// trailing chatter after the list is ignored; empty points are skipped.
    public static func parse(_ text: String) -> [SkeletonPoint] {
        var points: [SkeletonPoint] = []
        var seen = Set<Int>()
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            guard let (index, body) = numbered(line) else { break }
            let point = body.trimmingCharacters(in: .whitespaces)
            if point.isEmpty || seen.contains(index) { continue }
            seen.insert(index)
            points.append(SkeletonPoint(index: index, text: point))
        }
        return points
    }

    /// True when `text` (a skeleton stream so far) has moved past the list: a complete line
    /// that is not a numbered point follows at least one point. The skeleton stage stops
    /// decoding there.
    public static func skeletonIsComplete(_ text: String) -> Bool {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count > 1 else { return false }
        var sawPoint = false
        for line in lines.dropLast() {  // the last line may still be growing
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            if numbered(trimmed) != nil { sawPoint = true } else { return sawPoint }
        }
        // The growing line is decided as soon as its start cannot begin a point ("Question",
        // "In short"): no need to decode the rest of a line the parser will drop.
        let last = lines.last.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        return sawPoint && !last.isEmpty && !couldBeginPoint(last)
    }

    /// True while `prefix` may still grow into `N. text` (1-2 digits, then a dot).
    static func couldBeginPoint(_ prefix: String) -> Bool {
        var digits = 0
        for c in prefix {
            if c.isASCII, c.isNumber {
                digits += 1
                if digits > 2 { return false }
            } else {
                return digits > 0 && c == "."
            }
        }
        return true
    }

    /// `N. rest` -> (N, rest) for 1-2 digit N.
    static func numbered(_ line: String) -> (Int, String)? {
        var digits = ""
        var rest = Substring(line)
        while let c = rest.first, c.isASCII, c.isNumber, digits.count < 3 {
            digits.append(c)
            rest = rest.dropFirst()
        }
        guard !digits.isEmpty, digits.count <= 2, rest.first == ".",
              let n = Int(digits) else { return nil }
        return (n, String(rest.dropFirst()))
    }

    /// Leakage of one expansion (SoT's "point leakage"): it starts writing another point
    /// (a line beginning `k.` for k != index) or runs past three sentences.
    public static func leaks(expansion: String, index: Int) -> Bool {
        for line in expansion.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if let (k, _) = numbered(trimmed), k != index { return true }
        }
        return sentenceCount(expansion) > 3
    }

    /// Sentences ended by `.`, `!` or `?` followed by whitespace or the end, not counting
    /// the `N.` of a numbered prefix or decimals like `3.5`.
    public static func sentenceCount(_ text: String) -> Int {
        let chars = Array(text)
        var count = 0
        var sawWord = false
        for i in chars.indices {
            let c = chars[i]
            if c.isLetter { sawWord = true }
            guard c == "." || c == "!" || c == "?" else { continue }
            let next = i + 1 < chars.count ? chars[i + 1] : " "
            guard next.isWhitespace || next == "\"" || next == ")" else { continue }
            if c == ".", i > 0, chars[i - 1].isNumber, !sawWord { continue }
            if sawWord { count += 1; sawWord = false }
        }
        if sawWord { count += 1 }  // a final sentence without punctuation
        return count
    }
}
