/// Where a block's linear tensors read their input (`W(out, in) · x(in)`): what a
/// `LinearInputObserver` is shown.
public enum LinearInput: Int, Sendable, CaseIterable {
    /// rmsnorm(x) * attn_norm, read by Wq, Wk, Wv (width dim).
    case attention
    /// The attention heads' output, read by Wo (width dim).
    case attentionOutput
    /// rmsnorm(x) * ffn_norm, read by Wgate, Wup (width dim).
    case feedForward
    /// silu(Wgate n') * (Wup n'), read by Wdown (width hiddenDim).
    case feedForwardHidden
}

/// Receives the inputs of every block's linear tensors as a forward pass computes them
/// (calibration statistics such as the quantization scan's per-column second moments).
///
/// Like `ResidualObserver`: a nil observer costs one branch per site. `rows` is the input of
/// shape (nTokens, width) for the call's rows and is only valid during the call.
public protocol LinearInputObserver: AnyObject {
    func linearInput(layer: Int, site: LinearInput, rows: UnsafePointer<Float>, nTokens: Int, width: Int)
}
