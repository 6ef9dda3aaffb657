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
    public static func run<T: Sendable>(name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, Error>) in
            start(name: name) {
                do { cont.resume(returning: try body()) } catch { cont.resume(throwing: error) }
            }
        }
    }
}
