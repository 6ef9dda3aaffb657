/// One candidate token and its (possibly transformed) logit.
public struct TokenLogit: Sendable, Equatable {
    public var id: Int32
    public var logit: Float
    public init(id: Int32, logit: Float) { self.id = id; self.logit = logit }
}

/// The working set a sampler chain narrows down: a preallocated buffer of candidates.
///
/// Filled from a logits vector in id order (`isIdentityOrder`), then each stage reorders,
/// truncates or rescales it in place. Allocated once per sampler (vocabSize entries).
public final class TokenCandidates {
    public let capacity: Int
    let storage: UnsafeMutablePointer<TokenLogit>
    /// Live candidates: `storage[0..<count]`.
    public internal(set) var count: Int = 0
    /// True when the live candidates are sorted by logit, largest first.
    public internal(set) var isSortedDescending = false
    /// True when entry `i` is token `i` for every token (nothing reordered or removed yet).
    public internal(set) var isIdentityOrder = false

    public init(capacity: Int) {
        self.capacity = capacity
        storage = .allocate(capacity: max(1, capacity))
    }

    deinit { storage.deallocate() }

    /// Loads `n <= capacity` logits as candidates `0..<n` in id order.
    public func load(_ logits: UnsafePointer<Float>, _ n: Int) {
        count = min(n, capacity)
        for i in 0..<count { storage[i] = TokenLogit(id: Int32(i), logit: logits[i]) }
        isSortedDescending = false
        isIdentityOrder = true
    }

    /// Loads explicit candidates (tests).
    public func load(_ items: [TokenLogit]) {
        count = min(items.count, capacity)
        for i in 0..<count { storage[i] = items[i] }
        isSortedDescending = false
        isIdentityOrder = false
    }

    /// The live candidates, in their current order.
    public var items: [TokenLogit] { (0..<count).map { storage[$0] } }

    public subscript(i: Int) -> TokenLogit {
        get { storage[i] }
        set { storage[i] = newValue }
    }

    /// Sorts the live candidates by logit, largest first (ties: lower id first).
    func sortDescending() {
        guard !isSortedDescending else { return }
        var live = UnsafeMutableBufferPointer(start: storage, count: count)
        live.sort(by: Self.before)
        isSortedDescending = true
        isIdentityOrder = false
    }

    /// Moves the `k` largest candidates to the front (quickselect), then sorts them.
    func keepTop(_ k: Int) {
        guard k < count else { sortDescending(); return }
        var lo = 0, hi = count - 1
        let target = k - 1
        while lo < hi {
            // Median-of-three pivot keeps the partition balanced on sorted-ish logits.
            let mid = lo + (hi - lo) / 2
            if Self.before(storage[mid], storage[lo]) { swapAt(mid, lo) }
            if Self.before(storage[hi], storage[lo]) { swapAt(hi, lo) }
            if Self.before(storage[hi], storage[mid]) { swapAt(hi, mid) }
            let pivot = storage[mid]
            var i = lo, j = hi
            while i <= j {
                while Self.before(storage[i], pivot) { i += 1 }
                while Self.before(pivot, storage[j]) { j -= 1 }
                if i <= j { swapAt(i, j); i += 1; j -= 1 }
            }
            if target <= j { hi = j } else if target >= i { lo = i } else { break }
        }
        count = k
        isSortedDescending = false
        sortDescending()
    }

    @inline(__always)
    private func swapAt(_ a: Int, _ b: Int) {
        let t = storage[a]; storage[a] = storage[b]; storage[b] = t
    }

    /// Strict "comes first" order: larger logit, then lower id.
    @inline(__always)
    static func before(_ a: TokenLogit, _ b: TokenLogit) -> Bool {
        a.logit > b.logit || (a.logit == b.logit && a.id < b.id)
    }
}
