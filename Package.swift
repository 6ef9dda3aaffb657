// swift-tools-version:6.0
// effterm: a terminal workbench for efficient generative inference (see README.md).
import PackageDescription

/// Hot numeric code is built for the CPU baseline the project supports (AVX2 + FMA + F16C,
/// i.e. Haswell and later) with bounds checks off in release. AVX-512 is not assumed.
///
/// Tools/fuzz's build (EFFTERM_FUZZ=1) keeps the checks (plain -O: bounds, overflow and
/// precondition traps are what the fuzzer looks for).
let fuzzBuild = Context.environment["EFFTERM_FUZZ"] == "1"
let fastSwift: [SwiftSetting] = [
    .unsafeFlags((fuzzBuild ? [] : ["-Ounchecked"])
                     + ["-target-cpu", "haswell", "-Xcc", "-march=haswell"],
                 .when(configuration: .release)),
]
let fastC: [CSetting] = [
    .unsafeFlags(["-O3", "-march=haswell", "-mno-avx512f"]),
]

let package = Package(
    name: "effterm",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "effterm", targets: ["effterm"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
    ],
    targets: [
        // Wide-character ncurses, wrapped by one EffTUI file.
        .systemLibrary(name: "CNCursesW", path: "Sources/CNCursesW"),
        // Intrinsic kernels behind EffCore's kernel surface (AVX2 baseline).
        .target(name: "CEffKernels", path: "Sources/CEffKernels", cSettings: fastC),
        // Numerics with no model knowledge: mmap, GGUF, quant formats, kernels, thread pool.
        .target(name: "EffCore", dependencies: ["CEffKernels"], swiftSettings: fastSwift),
        // The Llama family: config, weights, forward pass, KV cache, tokenizer, template, samplers.
        .target(name: "EffLLM", dependencies: ["EffCore"], swiftSettings: fastSwift),
        // The diffusion transformer: weights, forward pass, schedules, samplers.
        .target(name: "EffDiffusion", dependencies: ["EffCore"],
                resources: [.copy("Resources")], swiftSettings: fastSwift),
        // The efficiency methods, reaching models through protocols declared in EffCore.
        .target(name: "EffTechniques", dependencies: ["EffCore"], swiftSettings: fastSwift),
        // Actors that own model state and run jobs; model supply; sessions.
        .target(name: "EffEngine",
                dependencies: ["EffCore", "EffLLM", "EffDiffusion", "EffTechniques",
                               .product(name: "Crypto", package: "swift-crypto"),
                               .product(name: "ZIPFoundation", package: "ZIPFoundation")],
                resources: [.copy("Resources")], swiftSettings: fastSwift),
        // Pure rendering into a cell grid, panes, keymap, themes; one ncurses backend file.
        .target(name: "EffTUI", dependencies: ["EffEngine", "EffTechniques", "CNCursesW"], swiftSettings: fastSwift),
        .executableTarget(
            name: "effterm",
            dependencies: ["EffTUI", "EffEngine",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: fastSwift),
        // Test helpers: a GGUF writer, fixture loading, paths to the model and binary.
        .target(name: "EffTestSupport", dependencies: ["EffCore"], path: "Sources/EffTestSupport"),

        .testTarget(name: "EffCoreTests", dependencies: ["EffCore", "EffTestSupport"]),
        .testTarget(name: "EffLLMTests", dependencies: ["EffLLM", "EffTechniques", "EffTestSupport"]),
        .testTarget(name: "EffDiffusionTests", dependencies: ["EffDiffusion", "EffTestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "EffEngineTests",
                    dependencies: ["EffEngine", "EffTestSupport",
                                   .product(name: "Crypto", package: "swift-crypto"),
                                   .product(name: "ZIPFoundation", package: "ZIPFoundation")]),
        .testTarget(name: "EffTechniquesTests", dependencies: ["EffTechniques"]),
        .testTarget(name: "EffTUITests", dependencies: ["EffTUI", "EffTechniques", "EffTestSupport"]),
        // Drives the real release binary (headless commands and tmux sessions).
        .testTarget(name: "EffTermTests", dependencies: ["EffTestSupport"]),
        // Fuzz harnesses for every file parser (issue 14): libFuzzer runs them via Tools/fuzz,
        // the tests replay their seed corpora and regression inputs.
        .target(name: "EffFuzz", dependencies: ["EffCore", "EffLLM", "EffEngine", "EffTUI"],
                path: "Fuzz/Harnesses"),
        .testTarget(name: "EffFuzzTests", dependencies: ["EffFuzz", "EffTestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)

// The libFuzzer driver exists only in Tools/fuzz's build (EFFTERM_FUZZ=1, built with
// `--sanitize fuzzer`): it has no main of its own, libFuzzer supplies it.
if fuzzBuild {
    package.targets.append(.executableTarget(
        name: "effterm-fuzz", dependencies: ["EffFuzz"], path: "Fuzz/Driver",
        swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
}
