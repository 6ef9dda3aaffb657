import EffEngine
import Foundation

/// Everything a hotkey can do in `effterm chat`.
public enum Action: String, CaseIterable, Sendable {
    case help, quit, stop
    case cycleSoT = "sot-mode", compare, cycleKV = "kv-format", cycleAttention = "attention", cycleWeights = "weights"
    case save, exportMarkdown = "export", newSession = "new-session"
    case cycleTheme = "theme", cyclePanel = "panel-next", fullPanel = "panel-full"
    case panelBits = "panel-bits", panelAttn = "panel-attn", panelDiff = "panel-diff"
    case scrollUp = "scroll-up", scrollDown = "scroll-down", scrollTop = "scroll-top", scrollBottom = "scroll-bottom"
    case stats

    /// One line for the help overlay.
    public var summary: String {
        switch self {
        case .help: return "this help"
        case .quit: return "quit (the session is already saved)"
        case .stop: return "stop the answer, keep its text"
        case .save: return "save the transcript now, show where"
        case .exportMarkdown: return "export the session as Markdown"
        case .newSession: return "new session"
        case .cycleTheme: return "next theme"
        case .cyclePanel: return "next side panel (or none)"
        case .fullPanel: return "panel full screen (arrows select, Esc back)"
        case .panelBits: return "bits panel: formats per layer"
        case .panelAttn: return "attn panel: attention density"
        case .panelDiff: return "diff panel: diffusion preview"
        case .scrollUp: return "scroll the chat up a page"
        case .scrollDown: return "scroll the chat down a page"
        case .scrollTop: return "scroll to the first message"
        case .scrollBottom: return "follow the newest text"
        case .stats: return "latency/frame stats overlay"
        case .cycleSoT: return "Skeleton-of-Thought: off -> on -> auto (router)"
        case .compare: return "A/B: rerun the last question normal vs SoT, blind"
        case .cycleKV: return "KV cache format: f32 -> f16 -> q8 (cache converted)"
        case .cycleAttention: return "attention: dense -> StreamingLLM (evicts) -> MoA plans -> dense"
        case .cycleWeights: return "weights: file -> uniform 4/3/2-bit -> saved plans"
        }
    }

    public var defaultKeys: [KeyEvent] {
        switch self {
        case .help: return [.function(1)]
        case .quit: return [.ctrl("q"), .ctrl("c"), .function(10)]
        case .stop: return [.escape]
        case .save: return [.ctrl("s")]
        case .exportMarkdown: return [.ctrl("e")]
        case .newSession: return [.ctrl("n")]
        case .cycleTheme: return [.ctrl("t"), .function(5)]
        case .cyclePanel: return [.tab]
        case .fullPanel: return [.function(6), .ctrl("f")]
        case .panelBits: return [.function(2)]
        case .panelAttn: return [.function(3)]
        case .panelDiff: return [.function(4)]
        case .scrollUp: return [.pageUp, .wheelUp]
        case .scrollDown: return [.pageDown, .wheelDown]
        case .scrollTop: return [.ctrl("g")]
        case .scrollBottom: return [.ctrl("b")]
        case .stats: return [.function(12)]
        case .cycleSoT: return [.function(7)]
        case .compare: return [.function(8)]
        case .cycleKV: return [.function(9)]
        case .cycleAttention: return [.function(11), .ctrl("o")]
        case .cycleWeights: return [.ctrl("p")]
        }
    }
}

/// Key -> action bindings: the defaults, overridden by a keymap file.
///
/// File format (`$XDG_CONFIG_HOME/effterm/keymap`): `action = key[, key...]` per line, `#`
/// comments. A file line replaces that action's default keys. A key claimed by two actions
/// is a conflict: it is reported and the file line that caused it is not applied.
public struct Keymap: Sendable {
    public private(set) var bindings: [KeyEvent: Action] = [:]
    public private(set) var keys: [Action: [KeyEvent]] = [:]

    public init() {
        for a in Action.allCases { keys[a] = a.defaultKeys }
        rebuild()
    }

    private mutating func rebuild() {
        bindings = [:]
        for a in Action.allCases { for k in keys[a] ?? [] { bindings[k] = a } }
    }

    public func action(for key: KeyEvent) -> Action? { bindings[key] }

    /// `$XDG_CONFIG_HOME/effterm/keymap`.
    public static func defaultFile(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        XDGDirectories.current(environment: environment).config.appendingPathComponent("keymap")
    }

    /// Applies a keymap file's text; returns one message per rejected line.
    public mutating func apply(_ text: String, file: String) -> [String] {
        var problems: [String] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first
                .map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            if line.isEmpty { continue }
            let at = "\(file):\(i + 1)"
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { problems.append("\(at): expected action = key, found \"\(line)\""); continue }
            guard let action = Action(rawValue: parts[0]) else {
                problems.append("\(at): unknown action \"\(parts[0])\" (known: \(Action.allCases.map(\.rawValue).joined(separator: ", ")))")
                continue
            }
            var newKeys: [KeyEvent] = []
            var bad = false
            for name in parts[1].split(separator: ",") {
                guard let k = KeyEvent(name: String(name)) else {
                    problems.append("\(at): unknown key \"\(name.trimmingCharacters(in: .whitespaces))\""); bad = true; break
                }
                newKeys.append(k)
            }
            if bad { continue }
            let clashes = newKeys.compactMap { k -> String? in
                guard let other = bindings[k], other != action else { return nil }
                return "\(k.name) is already bound to \(other.rawValue)"
            }
            if !clashes.isEmpty {
                problems.append("\(at): conflict: \(clashes.joined(separator: "; ")); \(action.rawValue) keeps \(keyNames(action))")
                continue
            }
            keys[action] = newKeys
            rebuild()
        }
        return problems
    }

    /// The keys of an action, comma separated ("ctrl-q, ctrl-c").
    public func keyNames(_ action: Action) -> String {
        (keys[action] ?? []).map(\.name).joined(separator: ", ")
    }
}
