import ArgumentParser
import EffCore

/// `--threads N` for every command that runs a model: the size of the compute pool the
/// kernels split their rows and heads over (never Swift's cooperative pool); `--isa` caps
/// the instruction set, to measure the AVX2 baseline on a machine that has more.
struct ComputeOptions: ParsableArguments {
    @Option(help: "Compute threads for the kernels (default: one per core).")
    var threads: Int?

    @Option(help: "Widest instruction set for the quantized kernels: avx2, avx-vnni or avx512 (default: the widest this CPU has; every path gives the same bits).")
    var isa: String?

    func validate() throws {
        if let threads, !(1...256).contains(threads) {
            throw ValidationError("--threads \(threads): use 1 to 256 (default: one per core).")
        }
        if let isa, FastKernels.ISALimit(rawValue: isa) == nil {
            throw ValidationError("--isa \(isa): use avx2, avx-vnni or avx512.")
        }
    }

    /// Resizes the shared pool before any model work starts.
    func apply() {
        if let threads { ComputePool.configureShared(threads: threads) }
        if let limit = isa.flatMap(FastKernels.ISALimit.init(rawValue:)) { FastKernels.limit(to: limit) }
    }
}

/// `--kv f32|f16|q8|q8g64` for every command that runs the language model: the format the
/// KV store keeps keys and values in (`KVFormat`; f32 is the reference).
struct KVOption: ParsableArguments {
    @Option(name: .customLong("kv"), help: "KV cache format: f32 (default, reference), f16, q8 (int8, group 32) or q8g64.")
    var name: String?

    func validate() throws {
        if let name, KVFormat(argument: name) == nil {
            throw ValidationError("--kv \(name): use f32, f16, q8 or q8g64.")
        }
    }

    var format: KVFormat { name.flatMap(KVFormat.init(argument:)) ?? .f32 }
}
