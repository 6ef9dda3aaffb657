import EffCore
import EffFuzz
import EffTestSupport
import Foundation
import Testing

/// The short fuzz run of the test suite (issue 14): every harness replays its seed corpus
/// and every regression input (each a crash libFuzzer once found, now fixed), then runs a
/// fixed number of deterministic random mutations of the seeds. Coverage-guided runs with
/// libFuzzer and AddressSanitizer are `Tools/fuzz` (see the README).
@Suite struct FuzzCorpusTests {
    static let fuzzRoot = TestPaths.repoRoot.appendingPathComponent("Fuzz")

    static func inputs(_ folder: String, _ harness: FuzzHarness) -> [(name: String, data: Data)] {
        let dir = fuzzRoot.appendingPathComponent(folder).appendingPathComponent(harness.name)
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
        return names.filter { !$0.hasPrefix(".") && !$0.hasSuffix(".md") }.compactMap { name in
            (try? Data(contentsOf: dir.appendingPathComponent(name))).map { (name, $0) }
        }
    }

    /// Seeds are real, well-formed files: each parser accepts every seed (except the ones
    /// named as rejected), so mutations start from deep inside the parser.
    @Test(arguments: FuzzHarness.allCases)
    func seedsParse(_ harness: FuzzHarness) throws {
        let seeds = Self.inputs("Corpus", harness)
        #expect(seeds.count >= 2, "no seed corpus for \(harness.name)")
        let rejectedOnPurpose: Set<String> = ["odd.theme", "conflicts"]
        for seed in seeds {
            let accepted = harness.run(seed.data)
            #expect(accepted != rejectedOnPurpose.contains(seed.name), "\(harness.name)/\(seed.name) accepted: \(accepted)")
        }
    }

    @Test(arguments: FuzzHarness.allCases)
    func regressionsReplay(_ harness: FuzzHarness) {
        for input in Self.inputs("Regressions", harness) { harness.run(input.data) }
    }

    /// 3000 mutants per harness (byte flips, inserts, deletions, duplicated runs, splices of
    /// two seeds, interesting integers); same inputs every run (fixed seed).
    @Test(arguments: FuzzHarness.allCases)
    func mutationsDoNotCrash(_ harness: FuzzHarness) {
        let seeds = Self.inputs("Corpus", harness).map { [UInt8]($0.data) }
        guard !seeds.isEmpty else { Issue.record("no seeds"); return }
        var rng = SplitMix64(seed: 0x5EED_0000 &+ UInt64(harness.name.utf8.reduce(0) { $0 &* 31 &+ Int($1) }))
        var accepted = 0
        for _ in 0..<3000 {
            var bytes = seeds[Int(rng.next() % UInt64(seeds.count))]
            for _ in 0...(rng.next() % 4) { Mutator.mutate(&bytes, seeds: seeds, rng: &rng) }
            if harness.run(Data(bytes)) { accepted += 1 }
        }
        print("fuzz \(harness.name): 3000 mutants, \(accepted) accepted")
    }
}


enum Mutator {
    static let interesting: [UInt64] = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF,
                                        0x7FFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF, 1 << 32, 1 << 40]
    static let tokens = ["{%", "%}", "{{", "}}", "\"", "{", "}", "[", "]", ",", ":", "\n", "=", "#", "\\u00", "-",
                         "for", "endfor", "if", "range(99999)", "*", "null", "1e309", "\u{1F600}", "\0"]

    static func mutate(_ b: inout [UInt8], seeds: [[UInt8]], rng: inout SplitMix64) {
        func pos(_ n: Int) -> Int { n == 0 ? 0 : Int(rng.next() % UInt64(n)) }
        switch rng.next() % 7 {
        case 0 where !b.isEmpty: b[pos(b.count)] ^= UInt8(1 << (rng.next() % 8))
        case 1: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: pos(b.count + 1))
        case 2 where !b.isEmpty:
            let at = pos(b.count); b.removeSubrange(at..<min(b.count, at + 1 + pos(16)))
        case 3 where !b.isEmpty:
            let at = pos(b.count), n = min(b.count - at, 1 + pos(32))
            b.insert(contentsOf: b[at..<(at + n)], at: pos(b.count + 1))
        case 4:
            let other = seeds[pos(seeds.count)]
            let cut = pos(b.count + 1), from = pos(other.count + 1)
            b = Array(b[..<cut]) + Array(other[from...])
        case 5 where b.count >= 8:
            var v = interesting[pos(interesting.count)]
            let at = pos(b.count - 7)
            for i in 0..<8 { b[at + i] = UInt8(truncatingIfNeeded: v); v >>= 8 }
        default:
            b.insert(contentsOf: Array(tokens[pos(tokens.count)].utf8), at: pos(b.count + 1))
        }
    }
}
