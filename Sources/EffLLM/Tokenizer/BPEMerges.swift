/// Byte-level BPE merging over integer symbols (the merge loop of llama.cpp's
/// `llm_tokenizer_bpe_session::tokenize`, Sennrich et al. 2016 / GPT-2).
///
/// Symbols are interned strings of the vocabulary's byte-level alphabet: ids below
/// `vocabSize` are token ids, ids above name strings that occur only in merges (or a byte
/// stand-in missing from the vocabulary). A merge rule `"A B"` at line `rank` becomes
/// `(sym(A), sym(B)) -> (rank, sym(A+B))`; the word is merged by always applying the lowest
/// rank among adjacent pairs, leftmost first on ties, until none applies.
struct BPEMerges {
    struct Rule {
        var rank: Int32
        var result: Int32
    }

    /// (sym(A) << 32 | sym(B)) -> rule; the first rule for a pair wins, as in llama.cpp.
    let rules: [UInt64: Rule]
    /// Symbol id of each byte's stand-in character.
    let byteSymbol: [Int32]
    /// Strings of the symbols that are not tokens, indexed by `id - vocabSize`.
    let extraTexts: [String]
    let vocabSize: Int

    /// Interns the vocabulary, the 256 byte stand-ins and every merge's parts and result.
    /// `textToID` is the vocabulary's text -> id map (last duplicate wins, as llama.cpp).
    init(merges: [String], textToID: [String: Int32], vocabSize: Int) {
        self.vocabSize = vocabSize
        var extra: [String] = []
        var extraIDs: [String: Int32] = [:]
        func intern(_ s: String) -> Int32 {
            if let id = textToID[s] { return id }
            if let id = extraIDs[s] { return id }
            let id = Int32(vocabSize + extra.count)
            extra.append(s)
            extraIDs[s] = id
            return id
        }
        byteSymbol = (0..<256).map { intern(ByteLevel.string(forByte: UInt8($0))) }
        var rules: [UInt64: Rule] = [:]
        rules.reserveCapacity(merges.count)
        for (rank, line) in merges.enumerated() {
            // llama.cpp splits at the first space after the first byte ("find(' ', 1)").
            let utf8 = line.utf8
            guard utf8.count > 1,
                  let sp = utf8.dropFirst().firstIndex(of: 0x20) else { continue }
            let first = String(line[line.startIndex..<sp])
            let second = String(line[line.index(after: sp)...])
            let a = intern(first), b = intern(second)
            let key = UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
            if rules[key] == nil {
                rules[key] = Rule(rank: Int32(rank), result: intern(first + second))
            }
        }
        self.rules = rules
        self.extraTexts = extra
    }

    @inline(__always)
    func rule(_ a: Int32, _ b: Int32) -> Rule? {
        rules[UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))]
    }

    /// Merges one pre-token word (raw UTF-8 bytes) and returns its final symbols in order.
    /// Uses a binary heap of candidate pairs with lazy invalidation: O(n log n).
    func merge(_ word: ArraySlice<UInt8>) -> [Int32] {
        let n = word.count
        var sym = word.map { byteSymbol[Int($0)] }   // (n) current symbol at each live index
        if n < 2 { return sym }
        var next = [Int32](unsafeUninitializedCapacity: n) { buf, count in
            for i in 0..<n { buf[i] = Int32(i + 1) }
            buf[n - 1] = -1
            count = n
        }
        var prev = (0..<n).map { Int32($0) - 1 }
        var heap = PairHeap()
        for i in 0..<(n - 1) {
            if let r = rule(sym[i], sym[i + 1]) {
                heap.push(.init(rank: r.rank, left: Int32(i), right: Int32(i + 1),
                                leftSym: sym[i], rightSym: sym[i + 1], result: r.result))
            }
        }
        while let p = heap.pop() {
            let l = Int(p.left), r = Int(p.right)
            // Stale candidate: one side was merged since it was queued (texts only grow,
            // so unchanged ids mean unchanged, still adjacent symbols).
            guard sym[l] == p.leftSym, sym[r] == p.rightSym, next[l] == p.right else { continue }
            sym[l] = p.result
            sym[r] = -1
            let nr = next[r]
            next[l] = nr
            if nr >= 0 { prev[Int(nr)] = Int32(l) }
            next[r] = -2  // dead
            let pl = prev[l]
            if pl >= 0, let rr = rule(sym[Int(pl)], sym[l]) {
                heap.push(.init(rank: rr.rank, left: pl, right: Int32(l),
                                leftSym: sym[Int(pl)], rightSym: sym[l], result: rr.result))
            }
            if nr >= 0, let rr = rule(sym[l], sym[Int(nr)]) {
                heap.push(.init(rank: rr.rank, left: Int32(l), right: nr,
                                leftSym: sym[l], rightSym: sym[Int(nr)], result: rr.result))
            }
        }
        var out: [Int32] = []
        var i: Int32 = 0
        while i >= 0 {
            out.append(sym[Int(i)])
            i = next[Int(i)]
        }
        return out
    }

    /// Reference merge loop (oracle for tests): scan all adjacent pairs, apply the lowest
    /// rank (leftmost on ties), repeat. O(n^2), obviously correct.
    func mergeReference(_ word: ArraySlice<UInt8>) -> [Int32] {
        var syms = word.map { byteSymbol[Int($0)] }
        while syms.count > 1 {
            var best: (rank: Int32, at: Int, result: Int32)? = nil
            for i in 0..<(syms.count - 1) {
                if let r = rule(syms[i], syms[i + 1]), best == nil || r.rank < best!.rank {
                    best = (r.rank, i, r.result)
                }
            }
            guard let b = best else { break }
            syms[b.at] = b.result
            syms.remove(at: b.at + 1)
        }
        return syms
    }
}

/// Min-heap of merge candidates ordered by (rank, left index), llama.cpp's
/// `llm_bigram_bpe::comparator`.
struct PairHeap {
    struct Entry {
        var rank: Int32
        var left: Int32
        var right: Int32
        var leftSym: Int32
        var rightSym: Int32
        var result: Int32

        @inline(__always)
        static func precedes(_ a: Entry, _ b: Entry) -> Bool {
            a.rank < b.rank || (a.rank == b.rank && a.left < b.left)
        }
    }

    private var items: [Entry] = []

    mutating func push(_ e: Entry) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Entry.precedes(items[i], items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Entry? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if items.isEmpty { return top }
        items[0] = last
        var i = 0
        let n = items.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n && Entry.precedes(items[l], items[m]) { m = l }
            if r < n && Entry.precedes(items[r], items[m]) { m = r }
            if m == i { break }
            items.swapAt(i, m)
            i = m
        }
        return top
    }
}
