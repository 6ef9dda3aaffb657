import EffCore

extension KVCache {
    /// Most links in a prefix chain `withSegments` gathers without allocating.
    static let maxSegments = 16

    /// Runs `body` with the segments holding positions `0 ..< end` of `layer` (as
    /// `forEachSegment` visits them), gathered on the stack. Returns false, without calling
    /// `body`, when the fork chain is deeper than `maxSegments`.
    func withSegments(layer: Int, end: Int, _ body: (UnsafeBufferPointer<KVSegment>) -> Void) -> Bool {
        withUnsafeTemporaryAllocation(of: KVSegment.self, capacity: Self.maxSegments) { buf in
            var n = 0
            var overflow = false
            forEachSegment(layer: layer, end: end) { first, count, keys, values in
                if n < Self.maxSegments {
                    buf.initializeElement(at: n, to: KVSegment(first: first, count: count, keys: keys, values: values))
                    n += 1
                } else {
                    overflow = true
                }
            }
            if overflow { return false }
            body(UnsafeBufferPointer(rebasing: buf[0..<n]))
            return true
        }
    }
}
