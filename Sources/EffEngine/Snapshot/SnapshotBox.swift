import Foundation

/// Holds the newest immutable snapshot of some engine state; readers never see a stale one
/// once a newer one is published, and publishers never wait for readers (newest wins).
public final class SnapshotBox<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    private var version: UInt64 = 0

    public init(_ initial: Value) { value = initial }

    /// Replaces the snapshot; older ones are dropped.
    public func publish(_ newValue: Value) {
        lock.lock(); value = newValue; version &+= 1; lock.unlock()
    }

    /// Edits the snapshot in place under the lock and publishes the result.
    public func update(_ body: (inout Value) -> Void) {
        lock.lock(); body(&value); version &+= 1; lock.unlock()
    }

    /// The newest snapshot and its version (versions grow by one per publish).
    public var latest: (value: Value, version: UInt64) {
        lock.lock(); defer { lock.unlock() }
        return (value, version)
    }
}
