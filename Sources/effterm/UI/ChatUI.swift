import EffEngine
import EffTUI
import Foundation

struct UIOptions: Sendable {
    var mouse: Bool
    var depth: ColorDepth?
    var stats: Bool
}

/// Runs the workbench loop on a dedicated UI thread (ncurses is single-threaded and the loop
/// blocks in `getch`; it must not occupy a thread of the cooperative pool the engine uses).
enum ChatUI {
    struct Exit: Sendable {
        var signal: Int32
        var statsSummary: String
    }

    static func run(engine: ChatEngine, theme: Theme, themeNames: [String], catalog: ThemeCatalog,
                    keymap: Keymap, notices: [String], options: UIOptions) async -> Exit {
        let box = UncheckedBox((theme, themeNames, catalog, keymap, notices))
        let exit: Exit = await withCheckedContinuation { cont in
            let thread = Thread {
                let (theme, names, catalog, keymap, notices) = box.value
                TerminalGuard.saveTerminal()
                let screen = NCursesScreen(mouse: options.mouse, forceDepth: options.depth)
                TerminalGuard.install(screen: screen)
                let app = ChatApp(screen: screen, engine: engine, theme: theme, themeNames: names,
                                  catalog: catalog, keymap: keymap,
                                  panels: [BitsPanel(), AttnPanel(), DiffusionPanel(engine: DiffusionEngine())],
                                  showStats: options.stats,
                                  startupNotices: notices)
                app.run { TerminalGuard.pendingSignal.pointee != 0 }
                let sig = TerminalGuard.pendingSignal.pointee
                if sig == 0 {
                    // Normal quit: stop a running answer so its partial turn is saved too.
                    let done = DispatchSemaphore(value: 0)
                    Task {
                        await engine.stop(); await engine.waitUntilIdle()
                        await engine.settlePendingCompare()
                        done.signal()
                    }
                    _ = done.wait(timeout: .now() + 2)
                }
                TerminalGuard.restore()
                let summary = app.latency.lines.joined(separator: "\n") + "\n"
                cont.resume(returning: Exit(signal: sig, statsSummary: summary))
            }
            thread.name = "effterm.ui"
            thread.stackSize = 8 << 20
            thread.start()
        }
        return exit
    }
}

/// Moves non-Sendable setup values onto the UI thread (used there only).
final class UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}
