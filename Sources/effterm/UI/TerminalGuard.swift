import EffTUI
import Foundation

/// The one restore path for the terminal, run on every exit: normal quit, Ctrl-C (a key in
/// raw mode), SIGINT/SIGTERM/SIGHUP (flagged, then handled by the UI loop within one step),
/// and SIGSEGV/SIGBUS/SIGFPE/SIGILL/SIGABRT (restored from the handler with async-signal-safe
/// calls only, then the signal is re-raised so the process still dies with it).
///
/// Restoring turns mouse tracking and bracketed paste off, resets colours, shows the cursor,
/// leaves the alternate screen, calls `endwin` and puts back the termios saved at start.
/// It is idempotent: a second call does nothing.
enum TerminalGuard {
    /// Signal number that asked us to stop (0 = none). Written only by handlers.
    nonisolated(unsafe) static let pendingSignal: UnsafeMutablePointer<Int32> = {
        let p = UnsafeMutablePointer<Int32>.allocate(capacity: 1); p.pointee = 0; return p
    }()
    nonisolated(unsafe) static let restored: UnsafeMutablePointer<Int32> = {
        let p = UnsafeMutablePointer<Int32>.allocate(capacity: 1); p.pointee = 0; return p
    }()
    nonisolated(unsafe) static let savedTermios: UnsafeMutablePointer<termios> = .allocate(capacity: 1)
    nonisolated(unsafe) static var haveTermios = false
    nonisolated(unsafe) static var screen: Screen?
    /// Mouse modes off, paste off, attributes reset, cursor shown, alternate screen left.
    static let resetBytes: UnsafeMutableBufferPointer<UInt8> = {
        let s = Array("\u{1B}[?1000l\u{1B}[?1002l\u{1B}[?1003l\u{1B}[?1006l\u{1B}[?2004l\u{1B}[0m\u{1B}[?25h\u{1B}[?1049l".utf8)
        let b = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: s.count)
        _ = b.initialize(from: s)
        return b
    }()

    /// Saves the terminal's modes; call before the screen is initialized.
    static func saveTerminal() {
        haveTermios = tcgetattr(STDIN_FILENO, savedTermios) == 0
        _ = resetBytes
    }

    /// Installs the handlers; call after ncurses is initialized (ncurses installs its own
    /// SIGINT/SIGTERM handlers in `initscr`, which these replace).
    static func install(screen: Screen) {
        self.screen = screen
        // This thread may have been created with signals blocked (threads inherit the mask of
        // a dispatch worker); a blocked SIGSEGV here would kill us without the restore.
        var set = sigset_t()
        sigemptyset(&set)
        for sig in [SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT] { sigaddset(&set, sig) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        for sig in [SIGTERM, SIGHUP, SIGINT, SIGQUIT] {
            signal(sig) { s in TerminalGuard.pendingSignal.pointee = s }
        }
        for sig in [SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT] {
            signal(sig) { s in
                TerminalGuard.emergencyRestore()
                signal(s, SIG_DFL)
                raise(s)
            }
        }
    }

    /// The normal restore: through the screen (endwin), then the raw resets and termios.
    static func restore() {
        guard restored.pointee == 0 else { return }
        restored.pointee = 1
        screen?.restore()
        writeResets()
        if haveTermios { tcsetattr(STDIN_FILENO, TCSANOW, savedTermios) }
    }

    /// From a fatal signal handler: only write(2) and tcsetattr(3), both async-signal-safe.
    static func emergencyRestore() {
        guard restored.pointee == 0 else { return }
        restored.pointee = 1
        writeResets()
        if haveTermios { tcsetattr(STDIN_FILENO, TCSANOW, savedTermios) }
    }

    private static func writeResets() {
        _ = write(STDOUT_FILENO, resetBytes.baseAddress!, resetBytes.count)
    }
}
