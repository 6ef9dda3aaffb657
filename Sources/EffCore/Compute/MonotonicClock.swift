import Foundation

/// Seconds on the monotonic clock (never steps with wall-clock changes), for timing work.
public enum MonotonicClock {
    /// Now, in seconds since an arbitrary fixed point; subtract two readings for a span.
    public static func seconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
