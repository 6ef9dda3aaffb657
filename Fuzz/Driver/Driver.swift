import EffFuzz
import Foundation

// libFuzzer entry point (built by Tools/fuzz with `--sanitize fuzzer --sanitize address`;
// libFuzzer supplies main). EFFTERM_FUZZ_TARGET picks the harness: gguf, safetensors,
// template, transcript, theme or keymap.
let harness: FuzzHarness = {
    let name = ProcessInfo.processInfo.environment["EFFTERM_FUZZ_TARGET"] ?? ""
    guard let h = FuzzHarness(rawValue: name) else {
        FileHandle.standardError.write(Data("effterm-fuzz: set EFFTERM_FUZZ_TARGET to one of \(FuzzHarness.allCases.map(\.name).joined(separator: ", ")) (found \"\(name)\")\n".utf8))
        exit(2)
    }
    return h
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    let data = bytes.map { Data(bytes: $0, count: count) } ?? Data()
    harness.run(data)
    return 0
}
