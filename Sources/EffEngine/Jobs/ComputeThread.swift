import Foundation

/// A flag set by the UI (Esc, quit) and read by a generation loop between tokens.
public final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var raised = false
    public init() {}
    public func cancel() { lock.lock(); raised = true; lock.unlock() }
    public var isCancelled: Bool { lock.lock(); defer { lock.unlock() }; return raised }
}

/// Runs blocking compute (a token loop, a denoising loop) on a dedicated thread so it never
/// occupies a thread of Swift's cooperative pool (2 threads on 2 cores: one matmul there
/// would starve every actor and the UI's commands).
public enum ComputeThread {
    /// Starts `body` on a new thread and returns at once.
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread { body() }
        thread.name = name
        thread.stackSize = 8 << 20
        thread.qualityOfService = .userInitiated
        thread.start()
    }

    /// Runs `body` on a new thread and suspends the caller (not blocking a pool thread)
    /// until it finishes.
    ///
    /// The result crosses back through a lock, so whatever `body` wrote is ordered before
    /// whatever the caller does next by a mutex that ThreadSanitizer sees (a continuation's
    /// resume alone left TSan reporting the caller's later reads of state `body` wrote,
    /// e.g. a backend's KV format after `setKVFormat`, as races).
    public static func run<T: Sendable>(name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        let handoff = Handoff<T>()
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            start(name: name) {
                handoff.put(Result { try body() })
                cont.resume()
            }
        }
        return try handoff.take().get()
    }
}

/// One result passed from a compute thread to the task waiting for it, under a lock.
private final class Handoff<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<T, Error>?

    func put(_ r: Result<T, Error>) { lock.lock(); result = r; lock.unlock() }

    func take() -> Result<T, Error> {
        lock.lock(); defer { lock.unlock() }
        guard let result else { preconditionFailure("ComputeThread.run resumed before its body finished") }
        return result
    }
}
