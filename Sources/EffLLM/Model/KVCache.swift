import EffCore
import Foundation

/// The KV store of one sequence: keys and values per layer in a `KVFormat` it owns, with an
/// optional shared read-only prefix.
///
/// **Format.** The forward pass hands the store each new key and value row in f32 (`write`);
/// the store converts on write (f32: a copy; f16: IEEE binary16, round to nearest even; q8:
/// int8 codes with one f32 scale per group of one row, see `KVFormat`) and serves its rows
/// as `KVSegment`s that the attention kernels read in that format directly (converting a row
/// as they read it, never the whole cache). Byte counts come from the format
/// (`KVFormat.rowBytes`). `converted(to:)` re-encodes a whole store in one call (the chat's
/// live format switch); `copyPositions` converts when the formats differ.
///
/// **Keys are stored after RoPE** (rotated at their own position), as llama.cpp does. That
/// keeps the f32 format bit-identical to the engine before the store existed and means a
/// decode step never rotates a cached key. Moving tokens to other positions (dropping a
/// range, StreamingLLM-style eviction) therefore re-rotates the moved keys by the position
/// delta (`removePositions`, like llama.cpp's K-shift): a rotation by `-d` composed with the
/// rotation by `p` equals the rotation by `p - d` up to float rounding (q8 keys are
/// dequantized, rotated and quantized again). Storing keys before RoPE would instead cost a
/// rotation of every cached key on every step.
///
/// **Layout** of each own plane (row-major): `keys[layer][i][kvDim]` elements of the format,
/// likewise `values`, and for q8 `keyScales/valueScales[layer][i][kvDim / group]`; own slot
/// `i` holds absolute position `prefixLength + i`. Positions `0..<prefixLength` are read
/// from `prefix` (another store of the same format, never written through this one), so
/// forks of a common prompt share its rows without copying; a chain of forks costs one
/// segment per link.
///
/// Sharing rule: a store that has been forked must not be truncated below the longest
/// fork point (`truncate` refuses); it may keep appending, which forks never see.
public final class KVCache {
    public let nLayers: Int
    public let kvDim: Int
    public let format: KVFormat
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
    /// Row layout the attention kernels read.
    public let layout: KVRowLayout

    // Planes of (nLayers, capacity, rowElements) elements; pages are touched only when written.
    let keys: UnsafeMutableRawPointer
    let values: UnsafeMutableRawPointer
    let keyScales: UnsafeMutablePointer<Float>
    let valueScales: UnsafeMutablePointer<Float>
    private let rowStride: Int    // bytes per row in the main planes
    private let scaleStride: Int  // scales per row (q8)

    /// An empty store of `capacity` positions in `format`, optionally continuing `prefix` at
    /// its first `prefixLength` positions (a fork always takes its prefix's format).
    public init(nLayers: Int, kvDim: Int, capacity: Int, format: KVFormat = .f32,
                prefix: KVCache? = nil, prefixLength: Int = 0) {
        self.nLayers = nLayers
        self.kvDim = kvDim
        self.format = prefix?.format ?? format
        self.capacity = max(capacity, 0)
        self.prefix = prefix
        self.prefixLength = prefix == nil ? 0 : min(prefixLength, prefix!.length)
        layout = KVRowLayout(format: self.format, kvDim: kvDim)
        rowStride = kvDim * layout.elementBytes
        scaleStride = layout.scalesPerRow
        let rows = max(1, nLayers * self.capacity)
        keys = .allocate(byteCount: rows * rowStride, alignment: 64)
        values = .allocate(byteCount: rows * rowStride, alignment: 64)
        keyScales = .allocate(capacity: max(1, rows * scaleStride))
        valueScales = .allocate(capacity: max(1, rows * scaleStride))
        if let p = prefix { p.forkFloor = max(p.forkFloor, self.prefixLength) }
    }

    deinit {
        keys.deallocate()
        values.deallocate()
        keyScales.deallocate()
        valueScales.deallocate()
    }

    /// Positions held in total (prefix + own).
    public var length: Int { prefixLength + ownCount }
    /// Largest total length this cache can reach.
    public var maxLength: Int { prefixLength + capacity }
    /// Bytes one position takes in this store (keys and values, all layers).
    public var bytesPerPosition: Int { 2 * nLayers * layout.rowBytes }
    /// Bytes of this cache's own storage in use (keys and values, all layers).
    public var ownBytesInUse: Int { ownCount * bytesPerPosition }
    /// Bytes in use including the shared prefix chain.
    public var bytesInUse: Int { length * bytesPerPosition }
    /// Bytes reserved for own positions (at capacity).
    public var reservedBytes: Int { capacity * bytesPerPosition }

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

    @inline(__always)
    private func slot(_ layer: Int, _ position: Int) -> Int { layer * capacity + (position - prefixLength) }

    /// Stores `rows` consecutive positions from `position` of `layer` (own segment only):
    /// `k` and `v` hold `rows * kvDim` f32 each, converted to the store's format.
    func write(layer: Int, position: Int, rows: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>) {
        let s0 = slot(layer, position)
        switch format {
        case .f32:
            (keys + s0 * rowStride).assumingMemoryBound(to: Float.self).update(from: k, count: rows * kvDim)
            (values + s0 * rowStride).assumingMemoryBound(to: Float.self).update(from: v, count: rows * kvDim)
        case .f16, .q8:
            for r in 0..<rows { encode(slot: s0 + r, k: k + r * kvDim, v: v + r * kvDim) }
        }
    }

    /// Converts one f32 key row and value row into slot `s`.
    @inline(__always)
    private func encode(slot s: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>) {
        switch format {
        case .f32:
            (keys + s * rowStride).assumingMemoryBound(to: Float.self).update(from: k, count: kvDim)
            (values + s * rowStride).assumingMemoryBound(to: Float.self).update(from: v, count: kvDim)
        case .f16:
            KVRowCodec.putF16(k, kvDim, (keys + s * rowStride).assumingMemoryBound(to: UInt16.self))
            KVRowCodec.putF16(v, kvDim, (values + s * rowStride).assumingMemoryBound(to: UInt16.self))
        case .q8(let g):
            KVRowCodec.putQ8(k, kvDim, g, (keys + s * rowStride).assumingMemoryBound(to: Int8.self),
                             keyScales + s * scaleStride)
            KVRowCodec.putQ8(v, kvDim, g, (values + s * rowStride).assumingMemoryBound(to: Int8.self),
                             valueScales + s * scaleStride)
        }
    }

    /// Decodes own slot `s` into f32 rows `k` and `v` (kvDim each).
    @inline(__always)
    private func decode(slot s: Int, k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>) {
        switch format {
        case .f32:
            k.update(from: (keys + s * rowStride).assumingMemoryBound(to: Float.self), count: kvDim)
            v.update(from: (values + s * rowStride).assumingMemoryBound(to: Float.self), count: kvDim)
        case .f16:
            KVRowCodec.getF16((keys + s * rowStride).assumingMemoryBound(to: UInt16.self), kvDim, k)
            KVRowCodec.getF16((values + s * rowStride).assumingMemoryBound(to: UInt16.self), kvDim, v)
        case .q8(let g):
            KVRowCodec.getQ8((keys + s * rowStride).assumingMemoryBound(to: Int8.self), keyScales + s * scaleStride,
                             kvDim, g, k)
            KVRowCodec.getQ8((values + s * rowStride).assumingMemoryBound(to: Int8.self),
                             valueScales + s * scaleStride, kvDim, g, v)
        }
    }

    /// The key and value rows of absolute `position` in `layer` as f32 (through the prefix
    /// chain), `kvDim` floats each: what the attention kernels compute with.
    public func readRow(layer: Int, position: Int, key: UnsafeMutablePointer<Float>, value: UnsafeMutablePointer<Float>) {
        if position < prefixLength, let p = prefix {
            p.readRow(layer: layer, position: position, key: key, value: value)
        } else {
            decode(slot: slot(layer, position), k: key, v: value)
        }
    }

    /// Marks own slots up to absolute position `end` (exclusive) as filled.
    func commit(upTo end: Int) {
        ownCount = max(ownCount, end - prefixLength)
    }

    /// Visits the contiguous segments that hold positions `0..<end` of `layer`, in order.
    @inline(__always)
    public func forEachSegment(layer: Int, end: Int, _ body: (KVSegment) -> Void) {
        if let p = prefix, prefixLength > 0 {
            p.forEachSegment(layer: layer, end: min(end, prefixLength), body)
        }
        let n = end - prefixLength
        if n > 0 {
            let s = layer * capacity
            body(KVSegment(first: prefixLength, count: n, keys: keys + s * rowStride, values: values + s * rowStride,
                           keyScales: scaleStride > 0 ? UnsafePointer(keyScales + s * scaleStride) : nil,
                           valueScales: scaleStride > 0 ? UnsafePointer(valueScales + s * scaleStride) : nil))
        }
    }

    /// Copies positions `0 ..< length` of `source` (through its prefix chain) into this
    /// cache's own storage, so it holds them without sharing: an empty cache with no prefix
    /// and room for `length` positions. Rows are copied as stored when the formats match
    /// (bit-identical), converted through f32 otherwise. Returns false (copying nothing)
    /// otherwise.
    @discardableResult
    public func copyPositions(from source: KVCache, length: Int) -> Bool {
        guard prefix == nil, ownCount == 0, length <= capacity, length <= source.length,
              source.nLayers == nLayers, source.kvDim == kvDim else { return false }
        if source.format == format {
            for layer in 0..<nLayers {
                source.forEachSegment(layer: layer, end: length) { seg in
                    let s = slot(layer, seg.first)
                    (keys + s * rowStride).copyMemory(from: seg.keys, byteCount: seg.count * rowStride)
                    (values + s * rowStride).copyMemory(from: seg.values, byteCount: seg.count * rowStride)
                    if scaleStride > 0, let ks = seg.keyScales, let vs = seg.valueScales {
                        (keyScales + s * scaleStride).update(from: ks, count: seg.count * scaleStride)
                        (valueScales + s * scaleStride).update(from: vs, count: seg.count * scaleStride)
                    }
                }
            }
        } else {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * kvDim) { buf in
                let k = buf.baseAddress!, v = k + kvDim
                for layer in 0..<nLayers {
                    for p in 0..<length {
                        source.readRow(layer: layer, position: p, key: k, value: v)
                        encode(slot: slot(layer, p), k: k, v: v)
                    }
                }
            }
        }
        commit(upTo: length)
        return true
    }

    /// This store's positions re-encoded in `format`, in a new store without a prefix (the
    /// prefix chain is flattened) and the same `maxLength`. Same format: an exact copy.
    public func converted(to format: KVFormat) -> KVCache {
        let out = KVCache(nLayers: nLayers, kvDim: kvDim, capacity: maxLength, format: format)
        out.copyPositions(from: self, length: length)
        return out
    }

    /// Drops absolute positions `range` from the own segment and moves every later position
    /// down by `range.count`, re-rotating the moved keys by `-range.count` positions (RoPE
    /// NORM mode with `ropeBase` and `headSize`, as the forward pass rotated them), so they
    /// equal keys rotated at their new positions up to rounding. Values move unchanged.
    /// Refused (false) when the range reaches into the prefix, past the end, or below a
    /// fork point.
    @discardableResult
    public func removePositions(_ range: Range<Int>, headSize: Int, ropeBase: Float) -> Bool {
        guard range.lowerBound >= prefixLength, range.upperBound <= length, forkFloor <= range.lowerBound,
              headSize > 1, kvDim % headSize == 0 else { return false }
        let d = range.count
        guard d > 0 else { return true }
        let half = headSize / 2
        let moved = length - range.upperBound
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * kvDim + 2 * half) { buf in
            let k = buf.baseAddress!, v = k + kvDim, cosT = v + kvDim, sinT = cosT + half
            RoPETable.fill(position: -d, headSize: headSize, base: ropeBase, cos: cosT, sin: sinT)
            for layer in 0..<nLayers {
                for i in 0..<moved {
                    let from = range.upperBound + i, to = range.lowerBound + i
                    decode(slot: slot(layer, from), k: k, v: v)
                    Kernels.ropeNormal(k, nHeads: kvDim / headSize, headSize: headSize, cos: cosT, sin: sinT)
                    if format == .f32 || format == .f16 {
                        encode(slot: slot(layer, to), k: k, v: v)
                    } else {
                        // q8 values move as stored (no requantization error).
                        encode(slot: slot(layer, to), k: k, v: v)
                        (values + slot(layer, to) * rowStride).copyMemory(from: values + slot(layer, from) * rowStride,
                                                                         byteCount: rowStride)
                        (valueScales + slot(layer, to) * scaleStride).update(
                            from: valueScales + slot(layer, from) * scaleStride, count: scaleStride)
                    }
                }
            }
        }
        ownCount -= d
        return true
    }

    /// Forgets every own position (the prefix stays); refused while forks use them.
    @discardableResult
    public func reset() -> Bool { truncate(to: prefixLength) }

    /// Declares that no fork of this cache is alive any more, lifting the truncation floor.
    public func releaseForks() { forkFloor = 0 }
}

/// RoPE angles for one position, as the forward pass computes them (ggml NORM mode):
/// `theta_i = pos * base^(-2i/headSize)`, accumulated in f32 by repeated multiplication.
enum RoPETable {
    static func fill(position: Int, headSize: Int, base: Float, cos: UnsafeMutablePointer<Float>,
                     sin: UnsafeMutablePointer<Float>) {
        let thetaScale = powf(base, -2 / Float(headSize))
        var theta = Float(position)
        for i in 0..<(headSize / 2) {
            cos[i] = cosf(theta)
            sin[i] = sinf(theta)
            theta *= thetaScale
        }
    }
}
