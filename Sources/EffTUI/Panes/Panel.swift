import EffEngine

/// What a side panel gets to draw from.
public struct PanelContext {
    public var chat: ChatSnapshot
    public var theme: Theme
    /// True when the panel is full screen and receives the arrow keys.
    public var focused: Bool
    public init(chat: ChatSnapshot, theme: Theme, focused: Bool) {
        self.chat = chat; self.theme = theme; self.focused = focused
    }
}

/// A side panel (bits, attn, diff, ...): a pure renderer over snapshots plus a little view
/// state of its own (selection, scroll). Panels plug into `ChatApp` by being listed.
public protocol Panel: AnyObject {
    /// Short id shown in the panel tabs ("bits").
    var id: String { get }
    /// The hotkey action that opens it, if any.
    var action: Action? { get }
    /// Draws into `rect` (inside the border the app draws).
    func render(into grid: inout CellGrid, rect: Rect, context: PanelContext)
    /// Handles a key while focused; returns false to let the app handle it.
    func handle(_ key: KeyEvent) -> Bool
    /// Keys this panel understands when focused, for the help overlay.
    var helpLines: [(key: String, text: String)] { get }
    /// Changes whenever the panel's own source of data publishes (the diff panel's
    /// engine), so the app redraws an open panel that the chat snapshot knows nothing of.
    var contentVersion: UInt64 { get }
}

extension Panel {
    public var helpLines: [(key: String, text: String)] { [] }
    public var contentVersion: UInt64 { 0 }
}


import Foundation
