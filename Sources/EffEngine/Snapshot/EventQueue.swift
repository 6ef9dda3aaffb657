import Foundation

/// A lossless multi-producer queue of events that a synchronous consumer (the UI thread)
/// drains without blocking. Text deltas travel here so no token is ever dropped.
public final class EventQueue<Event: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Event] = []
    private var onPush: (@Sendable () -> Void)?

    public init() {}

    /// Appends an event.
    public func push(_ event: Event) {
        lock.lock(); items.append(event); let hook = onPush; lock.unlock()
        hook?()
    }

    /// Removes and returns every pending event, oldest first.
    public func drain() -> [Event] {
        lock.lock(); defer { lock.unlock() }
        let out = items; items.removeAll(keepingCapacity: true)
        return out
    }

    /// Registers a callback run after each push (for example to wake a waiting reader).
    public func setWakeHandler(_ hook: (@Sendable () -> Void)?) {
        lock.lock(); onPush = hook; lock.unlock()
    }
}
