import Foundation

/// Whether the real-model tier runs: always in optimized builds (the test command builds
/// release), and in debug builds only with `EFFTERM_MODEL_TIER=1`, since unoptimized
/// kernels take many minutes over the 135M model. A missing model file still fails the
/// tier's tests rather than skipping them.
public enum ModelTier {
    public static var enabled: Bool {
        #if DEBUG
        return ProcessInfo.processInfo.environment["EFFTERM_MODEL_TIER"] == "1"
        #else
        return true
        #endif
    }
}
