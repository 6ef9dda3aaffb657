import Foundation

/// Ctrl-C as a flag checked between tokens (the first press stops generation cleanly).
enum InterruptFlag {
    nonisolated(unsafe) static var raised = false

    static func install() {
        signal(SIGINT) { _ in
            if InterruptFlag.raised { _exit(130) }
            InterruptFlag.raised = true
        }
    }
}
