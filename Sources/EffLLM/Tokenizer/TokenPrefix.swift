extension Array where Element == Int32 {
    /// How many leading tokens this sequence shares with `other` (prompt caching: the
    /// positions whose keys and values another prompt's cache already holds).
    public func commonPrefixLength(with other: [Int32]) -> Int {
        let limit = Swift.min(count, other.count)
        var n = 0
        while n < limit, self[n] == other[n] { n += 1 }
        return n
    }
}
