import Foundation

/// The XDG base directories effterm uses (cache for models, config for keymap/themes,
/// data for sessions), each under an `effterm` subfolder.
///
/// Follows the XDG Base Directory Specification: an environment variable that is unset,
/// empty or not absolute is ignored in favour of the default under `$HOME`.
public struct XDGDirectories: Sendable, Equatable {
    public var cache: URL
    public var config: URL
    public var data: URL

    public init(cache: URL, config: URL, data: URL) {
        self.cache = cache
        self.config = config
        self.data = data
    }

    /// Directories from an environment (the process's by default).
    public static func current(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> XDGDirectories {
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? FileManager.default.homeDirectoryForCurrentUser.path
        func base(_ variable: String, _ fallback: String) -> URL {
            if let value = environment[variable], value.hasPrefix("/") {
                return URL(fileURLWithPath: value, isDirectory: true)
            }
            return URL(fileURLWithPath: home, isDirectory: true).appendingPathComponent(fallback)
        }
        return XDGDirectories(
            cache: base("XDG_CACHE_HOME", ".cache").appendingPathComponent("effterm"),
            config: base("XDG_CONFIG_HOME", ".config").appendingPathComponent("effterm"),
            data: base("XDG_DATA_HOME", ".local/share").appendingPathComponent("effterm"))
    }

    /// Where pulled models live: `$XDG_CACHE_HOME/effterm/models`.
    public var models: URL { cache.appendingPathComponent("models", isDirectory: true) }
}
