import EffTestSupport
import Foundation

/// A private tmux server (its own socket, `tmux -L NAME`) running one pane, for driving the
/// real `effterm` binary in a real terminal. Always `kill()` it (tests use `defer`).
final class TmuxSession {
    let socket: String
    let dir: URL

    /// Starts `command` (run by sh) in a detached 120x40 session inside a fresh temp dir.
    init(name: String, width: Int = 120, height: Int = 40, command: String) throws {
        socket = "effterm-\(name)-\(getpid())-\(UInt32.random(in: 0...0xFFFFFF))"
        dir = FileManager.default.temporaryDirectory.appendingPathComponent(socket)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let script = "cd '\(dir.path)' && \(command)"
        let out = try tmux(["new-session", "-d", "-x", "\(width)", "-y", "\(height)", "-s", "t",
                            "-e", "TERM=tmux-256color", "-e", "LANG=C.UTF-8", "sh", "-c", script])
        guard out.status == 0 else { throw HarnessError("tmux new-session failed: \(out.text)") }
    }

    struct Output { var status: Int32; var text: String }

    @discardableResult
    func tmux(_ args: [String]) throws -> Output {
        try Self.spawn(["tmux", "-L", socket, "-f", "/dev/null"] + args)
    }

    /// Runs a program via posix_spawn with every signal unblocked and at its default action.
    /// Foundation's Process passes on the spawning thread's signal mask, and test threads
    /// (dispatch workers) block nearly everything: a tmux server started that way never sees
    /// SIGCHLD/SIGTERM and hangs. Output goes to a file, not a pipe, because the server that
    /// `new-session` forks would inherit a pipe's write end and keep it open.
    static func spawn(_ argv: [String]) throws -> Output {
        let outPath = FileManager.default.temporaryDirectory.appendingPathComponent("tmux-\(UUID().uuidString).out").path
        defer { unlink(outPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty); sigfillset(&all)
        sigdelset(&all, SIGKILL); sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, argv[0], &actions, &attr, &cargs, environ)
        guard rc == 0 else { throw HarnessError("posix_spawn \(argv[0]) failed: \(rc)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Output(status: exit, text: text)
    }

    /// The visible pane as text.
    func capture() -> String { (try? tmux(["capture-pane", "-p", "-t", "t"]).text) ?? "" }

    /// A pane variable, e.g. `mouse_any_flag`, `alternate_on`, `pane_pid`.
    func paneVar(_ name: String) -> String {
        ((try? tmux(["display-message", "-p", "-t", "t", "#{\(name)}"]).text) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func send(_ keys: String...) throws { try tmux(["send-keys", "-t", "t"] + keys) }
    func type(_ text: String) throws { try tmux(["send-keys", "-t", "t", "-l", text]) }

    /// Polls `capture-pane` until `condition` holds; returns the matching screen.
    @discardableResult
    func waitFor(_ what: String, timeout: Double, every interval: Double = 0.05,
                 _ condition: (String) -> Bool) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var screen = ""
        while Date() < deadline {
            screen = capture()
            if condition(screen) { return screen }
            Thread.sleep(forTimeInterval: interval)
        }
        throw HarnessError("timed out after \(timeout) s waiting for \(what); screen:\n\(screen)")
    }

    /// Polls until a file exists (and is non-empty).
    func waitForFile(_ url: URL, timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let a = try? FileManager.default.attributesOfItem(atPath: url.path),
               (a[.size] as? Int ?? 0) > 0 { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw HarnessError("timed out waiting for \(url.path)\nscreen:\n\(capture())")
    }

    /// Pid of the pane's first child process (the program sh started).
    func childPid() -> pid_t? {
        guard let shell = Int32(paneVar("pane_pid")) else { return nil }
        let path = "/proc/\(shell)/task/\(shell)/children"
        if let s = try? String(contentsOfFile: path, encoding: .utf8),
           let first = s.split(separator: " ").first, let pid = Int32(first) { return pid }
        return nil
    }

    func kill() {
        _ = try? tmux(["kill-server"])
        let base = ProcessInfo.processInfo.environment["TMUX_TMPDIR"] ?? "/tmp"
        unlink("\(base)/tmux-\(getuid())/\(socket)")   // the server may leave its socket behind
        try? FileManager.default.removeItem(at: dir)
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Shell-quotes one argument.
func shq(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
