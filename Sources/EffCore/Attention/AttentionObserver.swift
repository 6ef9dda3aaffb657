/// Receives attention probabilities as a forward pass computes them (the TUI's heatmap).
///
/// A model's per-sequence state holds an optional observer; when it is nil the forward pass
/// skips the call entirely (one branch per head, no other cost). Calls arrive synchronously
/// on the computing thread, in layer order, once per (layer, head, query position); the
/// buffer is only valid during the call (copy what you keep).
public protocol AttentionObserver: AnyObject {
    /// `probabilities[p]` is the softmax weight the query at `queryPosition` gives key
    /// position `p`, for `p` in `0...queryPosition` (post-softmax, sums to 1).
    func attention(layer: Int, head: Int, queryPosition: Int, probabilities: UnsafeBufferPointer<Float>)
}
