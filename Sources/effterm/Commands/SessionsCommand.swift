import ArgumentParser
import EffEngine
import Foundation

/// `effterm sessions`: read saved chat transcripts without the TUI.
struct SessionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessions",
        abstract: "List, show and export saved chat sessions (JSON Lines transcripts).",
        discussion: """
        Transcripts live in Sessions/ when that folder exists in the working directory, else \
        in $XDG_DATA_HOME/effterm/sessions (default ~/.local/share/effterm/sessions). A \
        session is named by its file or `latest`.
        """,
        subcommands: [List.self, Show.self, Export.self],
        defaultSubcommand: List.self)

    struct Location: ParsableArguments {
        @Option(help: "Directory holding the transcripts.")
        var sessionsDir: String?
        var directory: URL { sessionsDir.map { URL(fileURLWithPath: $0) } ?? SessionStore.defaultDirectory() }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List sessions, newest first.")
        @OptionGroup var location: Location
        @Flag(help: "Print one JSON object.") var json = false

        func run() throws {
            let entries = SessionStore.list(in: location.directory)
            if json {
                let rows: [[String: Any]] = entries.map { e in
                    var r: [String: Any] = ["file": e.file.path]
                    if let t = e.transcript {
                        r["created"] = t.header.created; r["model"] = t.header.modelName
                        r["turns"] = t.turns.count
                        r["first_message"] = t.turns.first?.messages.first?.content ?? ""
                    }
                    if let err = e.error { r["error"] = err }
                    return r
                }
                let obj: [String: Any] = ["directory": location.directory.path, "sessions": rows]
                let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .prettyPrinted])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            if entries.isEmpty { print("no sessions in \(location.directory.path)"); return }
            for e in entries {
                if let t = e.transcript {
                    let first = t.turns.first?.messages.first?.content.replacingOccurrences(of: "\n", with: " ") ?? ""
                    print("\(e.file.lastPathComponent)  \(t.turns.count) turns  \(t.header.modelName)  \(first.prefix(50))")
                } else {
                    print("\(e.file.lastPathComponent)  unreadable: \(e.error ?? "?")")
                }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a session as Markdown (or its JSON Lines with --json).")
        @OptionGroup var location: Location
        @Argument(help: "Transcript file or `latest`.") var session: String = "latest"
        @Flag(help: "Print the transcript's JSON Lines.") var json = false

        func run() throws {
            let url = try SessionStore.resolve(session, in: location.directory)
            let t = try SessionStore.load(url)
            if json { print(String(decoding: try t.jsonLines(), as: UTF8.self), terminator: "") }
            else { print(t.markdown(), terminator: "") }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Export a session to a Markdown file.")
        @OptionGroup var location: Location
        @Argument(help: "Transcript file or `latest`.") var session: String = "latest"
        @Option(help: "Markdown file to write.") var markdown: String

        func run() throws {
            let url = try SessionStore.resolve(session, in: location.directory)
            let t = try SessionStore.load(url)
            try SessionStore.writeAtomically(Data(t.markdown().utf8), to: URL(fileURLWithPath: markdown))
            print("wrote \(markdown) (\(t.turns.count) turns from \(url.lastPathComponent))")
        }
    }
}
