import EffEngine
import Foundation

/// The semantic colour slots a theme sets. Panes ask for a slot, never for a colour.
public enum ThemeKey: String, CaseIterable, Sendable {
    case mainBg = "main_bg", mainFg = "main_fg", dimFg = "dim_fg", title
    case border, borderFocus = "border_focus"
    case chatUserFg = "chat_user_fg", chatAssistantFg = "chat_assistant_fg"
    case chatSystemFg = "chat_system_fg", chatNoticeFg = "chat_notice_fg"
    case chatHeadingFg = "chat_heading_fg", chatBoldFg = "chat_bold_fg"
    case chatCodeFg = "chat_code_fg", chatCodeBg = "chat_code_bg", chatListFg = "chat_list_fg"
    case inputFg = "input_fg", inputBg = "input_bg", inputPromptFg = "input_prompt_fg"
    case statusFg = "status_fg", statusBg = "status_bg", statusKeyFg = "status_key_fg"
    case statusValueFg = "status_value_fg", statusWarnFg = "status_warn_fg", statusOkFg = "status_ok_fg"
    case selectedFg = "selected_fg", selectedBg = "selected_bg"
    case helpFg = "help_fg", helpBg = "help_bg", helpKeyFg = "help_key_fg"
    case heatStart = "heat_start", heatMid = "heat_mid", heatEnd = "heat_end"
    case bits2 = "bits_2", bits3 = "bits_3", bits4 = "bits_4", bits5 = "bits_5"
    case bits6 = "bits_6", bits8 = "bits_8", bits16 = "bits_16", bits32 = "bits_32"

    /// The compiled-in dark default, used for any key a theme file does not set.
    public var fallback: Color {
        switch self {
        case .mainBg: return .default
        case .mainFg: return .rgb(0xd0, 0xd0, 0xd0)
        case .dimFg: return .rgb(0x80, 0x80, 0x80)
        case .title: return .rgb(0xee, 0xee, 0xee)
        case .border: return .rgb(0x58, 0x58, 0x58)
        case .borderFocus: return .rgb(0x5f, 0xaf, 0xd7)
        case .chatUserFg: return .rgb(0x87, 0xd7, 0xff)
        case .chatAssistantFg: return .rgb(0xaf, 0xd7, 0x87)
        case .chatSystemFg: return .rgb(0xaf, 0x87, 0xd7)
        case .chatNoticeFg: return .rgb(0xd7, 0xaf, 0x5f)
        case .chatHeadingFg: return .rgb(0xff, 0xd7, 0x87)
        case .chatBoldFg: return .rgb(0xff, 0xff, 0xff)
        case .chatCodeFg: return .rgb(0xff, 0xaf, 0x87)
        case .chatCodeBg: return .rgb(0x26, 0x26, 0x26)
        case .chatListFg: return .rgb(0x5f, 0xd7, 0xaf)
        case .inputFg: return .rgb(0xee, 0xee, 0xee)
        case .inputBg: return .rgb(0x1c, 0x1c, 0x1c)
        case .inputPromptFg: return .rgb(0x5f, 0xaf, 0xd7)
        case .statusFg: return .rgb(0xbc, 0xbc, 0xbc)
        case .statusBg: return .rgb(0x30, 0x30, 0x30)
        case .statusKeyFg: return .rgb(0x87, 0xaf, 0xd7)
        case .statusValueFg: return .rgb(0xff, 0xff, 0xff)
        case .statusWarnFg: return .rgb(0xff, 0x87, 0x5f)
        case .statusOkFg: return .rgb(0x87, 0xd7, 0x87)
        case .selectedFg: return .rgb(0x00, 0x00, 0x00)
        case .selectedBg: return .rgb(0x5f, 0xaf, 0xd7)
        case .helpFg: return .rgb(0xd0, 0xd0, 0xd0)
        case .helpBg: return .rgb(0x26, 0x26, 0x3a)
        case .helpKeyFg: return .rgb(0xff, 0xd7, 0x5f)
        case .heatStart: return .rgb(0x1c, 0x2b, 0x5a)
        case .heatMid: return .rgb(0xc0, 0x3a, 0x6b)
        case .heatEnd: return .rgb(0xff, 0xe0, 0x66)
        case .bits2: return .rgb(0xd7, 0x00, 0x00)
        case .bits3: return .rgb(0xff, 0x5f, 0x00)
        case .bits4: return .rgb(0xff, 0xaf, 0x00)
        case .bits5: return .rgb(0xd7, 0xd7, 0x00)
        case .bits6: return .rgb(0x87, 0xd7, 0x00)
        case .bits8: return .rgb(0x00, 0xaf, 0x5f)
        case .bits16: return .rgb(0x00, 0x87, 0xaf)
        case .bits32: return .rgb(0x5f, 0x5f, 0xd7)
        }
    }
}

/// A named set of colours; keys a theme file leaves out fall back to `ThemeKey.fallback`.
public struct Theme: Sendable, Equatable {
    public var name: String
    public var colors: [ThemeKey: Color]

    public init(name: String, colors: [ThemeKey: Color] = [:]) {
        self.name = name; self.colors = colors
    }

    /// The compiled-in default (dark).
    public static let builtin = Theme(name: "builtin")

    public subscript(_ key: ThemeKey) -> Color { colors[key] ?? key.fallback }

    /// Foreground `fg` on background `bg` (default: the main background).
    public func style(_ fg: ThemeKey, _ bg: ThemeKey = .mainBg, _ attrs: TextAttributes = []) -> Style {
        Style(fg: self[fg], bg: self[bg], attrs: attrs)
    }

    /// Heat gradient colour for t in 0...1 (start -> mid -> end).
    public func heat(_ t: Double) -> Color {
        let u = min(1, max(0, t.isFinite ? t : 0))
        return u < 0.5 ? Color.blend(self[.heatStart], self[.heatMid], u * 2)
                       : Color.blend(self[.heatMid], self[.heatEnd], (u - 0.5) * 2)
    }

    /// The colour for a storage width of `bits` per weight (nearest slot at or above it).
    public func bits(_ bits: Double) -> Color {
        let slots: [(Double, ThemeKey)] = [(2.5, .bits2), (3.5, .bits3), (4.75, .bits4), (5.75, .bits5),
                                           (7, .bits6), (12, .bits8), (24, .bits16)]
        for (limit, key) in slots where bits < limit { return self[key] }
        return self[.bits32]
    }
}

/// One problem found while reading a theme file (the file still loads, minus that line).
public struct ThemeDiagnostic: Equatable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var message: String
    public var description: String { "\(file):\(line): \(message)" }
}

/// Reads btop-style theme files: `key="value"` lines, `#` comments, values `#rrggbb`,
/// `#rgb`, a palette index `0`-`255`, an ANSI name (`red`, `bright_blue`, ...) or `default`.
public enum ThemeParser {
    public static func parse(_ text: String, name: String, file: String) -> (Theme, [ThemeDiagnostic]) {
        var theme = Theme(name: name)
        var diags: [ThemeDiagnostic] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            func fail(_ m: String) { diags.append(ThemeDiagnostic(file: file, line: i + 1, message: m)) }
            guard let eq = line.firstIndex(of: "=") else { fail("expected key=\"value\", found \"\(line)\""); continue }
            var key = line[..<eq].trimmingCharacters(in: .whitespaces)
            if key.hasPrefix("theme["), key.hasSuffix("]") { key = String(key.dropFirst(6).dropLast()) }
            var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            guard value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") else {
                fail("value for \(key) must be in double quotes"); continue
            }
            value = String(value.dropFirst().dropLast())
            guard let k = ThemeKey(rawValue: key) else { fail("unknown key \"\(key)\""); continue }
            guard let c = parseColor(value) else { fail("cannot read colour \"\(value)\" for \(key)"); continue }
            theme.colors[k] = c
        }
        return (theme, diags)
    }

    static let names: [String: UInt8] = [
        "black": 0, "red": 1, "green": 2, "yellow": 3, "blue": 4, "magenta": 5, "cyan": 6, "white": 7,
        "bright_black": 8, "bright_red": 9, "bright_green": 10, "bright_yellow": 11,
        "bright_blue": 12, "bright_magenta": 13, "bright_cyan": 14, "bright_white": 15,
    ]

    public static func parseColor(_ s: String) -> Color? {
        let v = s.trimmingCharacters(in: .whitespaces).lowercased()
        if v == "default" || v.isEmpty { return .default }
        if let n = names[v] { return .ansi(n) }
        if let i = UInt8(v) { return .indexed(i) }
        if v.hasPrefix("#") {
            let hex = v.dropFirst()
            guard hex.allSatisfy(\.isHexDigit) else { return nil }
            if hex.count == 6, let n = UInt32(hex, radix: 16) {
                return .rgb(UInt8(n >> 16), UInt8((n >> 8) & 0xff), UInt8(n & 0xff))
            }
            if hex.count == 3, let n = UInt32(hex, radix: 16) {
                let r = UInt8((n >> 8) & 0xf) * 17, g = UInt8((n >> 4) & 0xf) * 17, b = UInt8(n & 0xf) * 17
                return .rgb(r, g, b)
            }
        }
        return nil
    }
}

/// Finds theme files: `Themes/` in the working directory, beside the executable's package
/// checkout, and `$XDG_CONFIG_HOME/effterm/themes`.
public struct ThemeCatalog {
    public var directories: [URL]

    public init(directories: [URL]) { self.directories = directories }

    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) -> ThemeCatalog {
        var dirs: [URL] = []
        if let d = environment["EFFTERM_THEMES"] { dirs.append(URL(fileURLWithPath: d)) }
        dirs.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("Themes"))
        // The package's Themes/ next to a built binary: .build/<config>/effterm, where
        // <config> may be a symlink to .build/<triple>/<config>; the nearest ancestor wins.
        let exe = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                      ?? CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
        var up = exe.deletingLastPathComponent()
        for _ in 0..<4 {
            up = up.deletingLastPathComponent()
            let themes = up.appendingPathComponent("Themes")
            if FileManager.default.fileExists(atPath: themes.appendingPathComponent("default.theme").path) {
                dirs.append(themes)
                break
            }
        }
        dirs.append(XDGDirectories.current(environment: environment).config.appendingPathComponent("themes"))
        return ThemeCatalog(directories: dirs)
    }

    /// Theme names found, sorted, "default" first; each name once (first directory wins).
    public func names() -> [String] {
        var seen = Set<String>()
        for d in directories {
            for f in (try? FileManager.default.contentsOfDirectory(atPath: d.path)) ?? [] where f.hasSuffix(".theme") {
                seen.insert(String(f.dropLast(6)))
            }
        }
        return seen.sorted { ($0 == "default" ? 0 : 1, $0) < ($1 == "default" ? 0 : 1, $1) }
    }

    /// Loads a theme by name or path; unknown names give the builtin theme and a diagnostic.
    public func load(_ nameOrPath: String) -> (Theme, [ThemeDiagnostic]) {
        var candidates: [URL] = []
        if nameOrPath.contains("/") || nameOrPath.hasSuffix(".theme") {
            candidates.append(URL(fileURLWithPath: nameOrPath))
        }
        candidates += directories.map { $0.appendingPathComponent("\(nameOrPath).theme") }
        for url in candidates {
            if let data = FileManager.default.contents(atPath: url.path) {
                let text = String(decoding: data, as: UTF8.self)
                let name = url.deletingPathExtension().lastPathComponent
                return ThemeParser.parse(text, name: name, file: url.path)
            }
        }
        // The builtin theme is the default one: no theme files installed is not an error.
        if nameOrPath == "default" { return (.builtin, []) }
        return (.builtin, [ThemeDiagnostic(file: nameOrPath, line: 0, message: "theme not found (looked in \(directories.map(\.path).joined(separator: ", ")))")])
    }
}
