import EffCore

/// Keys and values of one sequence, per layer, with an optional shared read-only prefix.
///
/// Layout of each own segment (f32, row-major): `keys[layer][i][kvDim]`, likewise
/// `values`, where own slot `i` holds absolute position `prefixLength + i`. Positions
/// `0..<prefixLength` are read from `prefix` (another cache, never written through this
/// one), so forks of a common prompt (Skeleton-of-Thought points, batched streams) share
/// its keys and values without copying. Attention visits the prefix's segments, then the
/// own segment (`forEachSegment`), so a chain of forks costs one segment per link.
///
/// Sharing rule: a cache that has been forked must not be truncated below the longest
/// fork point (`truncate` refuses); it may keep appending, which forks never see.
public final class KVCache {
    public let nLayers: Int
    public let kvDim: Int
    /// Own slots (positions after the prefix) this cache can hold.
    public let capacity: Int
    /// Shared read-only prefix, or nil.
    public let prefix: KVCache?
    /// Positions `0..<prefixLength` come from `prefix`.
    public let prefixLength: Int
    /// Own slots filled.
    public private(set) var ownCount: Int = 0
    /// Longest prefix any fork of this cache uses; truncation below it is refused.
    public private(set) var forkFloor: Int = 0

    // (nLayers, capacity, kvDim) each; pages are touched only when positions are written.
    let keys: UnsafeMutablePointer<Float>
    let values: UnsafeMutablePointer<Float>

    /// An empty cache of `capacity` positions, optionally continuing `prefix` at its first
    /// `prefixLength` positions.
    public init(nLayers: Int, kvDim: Int, capacity: Int, prefix: KVCache? = nil, prefixLength: Int = 0) {
        self.nLayers = nLayers
        self.kvDim = kvDim
        self.capacity = max(capacity, 0)
        self.prefix = prefix
        self.prefixLength = prefix == nil ? 0 : min(prefixLength, prefix!.length)
        let n = max(1, nLayers * self.capacity * kvDim)
        keys = .allocate(capacity: n)
        values = .allocate(capacity: n)
        if let p = prefix { p.forkFloor = max(p.forkFloor, self.prefixLength) }
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    /// Positions held in total (prefix + own).
    public var length: Int { prefixLength + ownCount }
    /// Largest total length this cache can reach.
    public var maxLength: Int { prefixLength + capacity }
    /// Bytes of this cache's own storage in use (keys and values, all layers).
    public var ownBytesInUse: Int { 2 * nLayers * ownCount * kvDim * MemoryLayout<Float>.stride }

    /// A new cache whose prefix is this cache's first `length` positions (default: all).
    public func fork(capacity: Int, at length: Int? = nil) -> KVCache {
        KVCache(nLayers: nLayers, kvDim: kvDim, capacity: capacity, prefix: self, prefixLength: length ?? self.length)
    }

    /// Drops own positions at and after absolute position `length` (not below the prefix
    /// or below a fork point). Returns false when refused.
    @discardableResult
    public func truncate(to length: Int) -> Bool {
        guard length >= prefixLength, length >= min(forkFloor, self.length) else { return false }
        ownCount = min(ownCount, length - prefixLength)
        return true
    }

    /// Key row to write for absolute position `position` in `layer` (own segment only).
    @inline(__always)
    func keySlot(layer: Int, position: Int) -> UnsafeMutablePointer<Float> {
        keys + (layer * capacity + (position - prefixLength)) * kvDim
    }

    @inline(__always)
    func valueSlot(layer: Int, position: Int) -> UnsafeMutablePointer<Float> {
        values + (layer * capacity + (position - prefixLength)) * kvDim
    }

    /// Marks own slots up to absolute position `end` (exclusive) as filled.
    func commit(upTo end: Int) {
        ownCount = max(ownCount, end - prefixLength)
    }

    /// Visits the contiguous segments that hold positions `0..<end` of `layer`, in order:
    /// `body(firstPosition, count, keys, values)`, rows `kvDim` floats apart.
    @inline(__always)
    public func forEachSegment(layer: Int, end: Int,
                               _ body: (Int, Int, UnsafePointer<Float>, UnsafePointer<Float>) -> Void) {
        if let p = prefix, prefixLength > 0 {
            p.forEachSegment(layer: layer, end: min(end, prefixLength), body)
        }
        let n = end - prefixLength
        if n > 0 {
            let off = layer * capacity * kvDim
            body(prefixLength, n, keys + off, values + off)
        }
    }

    /// Copies positions `0 ..< length` of `source` (through its prefix chain) into this
    /// cache's own storage, so it holds them without sharing: an empty cache with no prefix
    /// and room for `length` positions. Returns false (copying nothing) otherwise.
    @discardableResult
    public func copyPositions(from source: KVCache, length: Int) -> Bool {
        guard prefix == nil, ownCount == 0, length <= capacity, length <= source.length,
              source.nLayers == nLayers, source.kvDim == kvDim else { return false }
        for layer in 0..<nLayers {
            source.forEachSegment(layer: layer, end: length) { first, count, keys, values in
                keySlot(layer: layer, position: first).update(from: keys, count: count * kvDim)
                valueSlot(layer: layer, position: first).update(from: values, count: count * kvDim)
            }
        }
        commit(upTo: length)
        return true
    }

    /// Forgets every own position (the prefix stays); refused while forks use them.
    @discardableResult
    public func reset() -> Bool { truncate(to: prefixLength) }

    /// Declares that no fork of this cache is alive any more, lifting the truncation floor.
    public func releaseForks() { forkFloor = 0 }
}
