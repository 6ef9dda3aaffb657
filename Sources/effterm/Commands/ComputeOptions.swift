import ArgumentParser
import EffCore

/// `--threads N` for every command that runs a model: the size of the compute pool the
/// kernels split their rows and heads over (never Swift's cooperative pool).
struct ComputeOptions: ParsableArguments {
    @Option(help: "Compute threads for the kernels (default: one per core).")
    var threads: Int?

    func validate() throws {
        if let threads, !(1...256).contains(threads) {
            throw ValidationError("--threads \(threads): use 1 to 256 (default: one per core).")
        }
    }

    /// Resizes the shared pool before any model work starts.
    func apply() {
        if let threads { ComputePool.configureShared(threads: threads) }
    }
}
