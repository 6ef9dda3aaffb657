import Foundation

/// Key-to-screen latency samples: from the moment a key is read to the moment the frame
/// showing its effect has been handed to the terminal.
public final class LatencyStats {
    public private(set) var all: [Double] = []
    public private(set) var whileGenerating: [Double] = []
    /// Longest loop iteration spent away from reading keys (render + drain), in ms.
    public private(set) var maxBusyMs: Double = 0
    public private(set) var frames = 0
    public private(set) var lastRenderMs: Double = 0

    public init() {}

    public func record(_ ms: Double, generating: Bool) {
        all.append(ms)
        if generating { whileGenerating.append(ms) }
        if all.count > 4096 { all.removeFirst(2048) }
        if whileGenerating.count > 4096 { whileGenerating.removeFirst(2048) }
    }

    public func frame(renderMs: Double, busyMs: Double) {
        frames += 1; lastRenderMs = renderMs; maxBusyMs = max(maxBusyMs, busyMs)
    }

    public static func percentile(_ xs: [Double], _ p: Double) -> Double? {
        guard !xs.isEmpty else { return nil }
        let s = xs.sorted()
        return s[min(s.count - 1, Int((Double(s.count - 1) * p).rounded()))]
    }

    /// "n=40 p50 2.1 p95 6.0 max 9.0 ms".
    public static func describe(_ xs: [Double]) -> String {
        guard let p50 = percentile(xs, 0.5), let p95 = percentile(xs, 0.95), let mx = xs.max() else { return "no samples" }
        return String(format: "n=%d p50 %.1f p95 %.1f max %.1f ms", xs.count, p50, p95, mx)
    }

    public var lines: [String] {
        ["key→screen all: " + Self.describe(all),
         "key→screen generating: " + Self.describe(whileGenerating),
         String(format: "frames %d, last render %.2f ms, max busy %.1f ms", frames, lastRenderMs, maxBusyMs)]
    }
}

@inline(__always) func monotonicMs() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) * 1000 + Double(ts.tv_nsec) / 1e6
}
