/// Receives the residual stream as a forward pass computes it (hidden-state features such
/// as the SoT router's).
///
/// Like `AttentionObserver`: a nil observer costs one branch per block. Calls arrive
/// synchronously, once per (chunk, layer) after block `layer` added its feed-forward
/// output, in layer order; `rows` is `x` of shape (nTokens, dim) for positions
/// `position0 ..< position0 + nTokens` and is only valid during the call (copy what you keep).
/// The final RMSNorm is not applied (apply `weights.outputNorm` for the head's input).
public protocol ResidualObserver: AnyObject {
    func residual(layer: Int, position0: Int, rows: UnsafeBufferPointer<Float>, nTokens: Int)
}
