import EffTestSupport
import Foundation
import Testing
@testable import EffEngine

/// Issue 14, soak: many short turns through the real engine (ChatEngine + the real SmolLM2
/// backend + SessionStore, i.e. the chat without its screen), answers capped at 8 tokens.
/// The context is 1024 tokens: when it fills a new session starts (what Ctrl-N does), so
/// each transcript holds about 37 turns and the run cycles through many sessions. Resident
/// memory legitimately grows while a context fills for the first time (the KV cache's pages
/// are touched as positions are used: about 46 KB per token in f32), so warm-up lasts until
/// the first new session (and at least a tenth of the run). Checks: resident memory after
/// warm-up stays within 10% of its value at the end of warm-up, the open file descriptors
/// do not grow, and every turn is in a transcript, in order.
///
/// 100 turns in the suite; `Tools/soak [TURNS]` runs 1000 (EFFTERM_SOAK_TURNS).
@Suite(.serialized, .enabled(if: ModelTier.enabled, "model tier: release build or EFFTERM_MODEL_TIER=1"))
struct SoakTests {
    static var turns: Int { Int(ProcessInfo.processInfo.environment["EFFTERM_SOAK_TURNS"] ?? "") ?? 100 }

    static func residentBytes() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Int(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kib * 1024
    }

    static func openDescriptors() -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).count
    }

    static let questions = [
        "Name a fruit.", "What is 2 + 3?", "Say hi.", "Name a colour.", "What is the capital of France?",
        "Give me one word for happy.", "Name an animal.", "What day comes after Monday?",
        "Write a number between 1 and 9.", "Name a planet.", "What do bees make?", "Say goodbye.",
    ]

    @Test func manyShortTurnsKeepMemoryAndDescriptorsFlat() async throws {
        let n = Self.turns
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("effterm-soak-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let backend = try LlamaChatBackend(modelURL: TestPaths.model, maxContext: 1024)
        var settings = GenerationSettings()
        settings.maxTokens = 8
        let engine = ChatEngine(backend: backend, settings: settings, system: nil, store: SessionStore(directory: dir))
        await engine.beginSession()
        let contextMax = backend.info.contextMax
        var warmup = max(10, n / 10)
        var sent: [[String]] = [[]]
        var baselineRSS = 0, baselineFDs = 0, peakRSS = 0, lowRSS = Int.max, peakFDs = 0
        var warnings: [String] = []
        let t0 = Date()
        for i in 0..<n {
            if backend.contextUsed + 96 > contextMax {
                await engine.newSession()
                sent.append([])
                if sent.count == 2, i + 1 > warmup {   // the KV pages are all touched now
                    warmup = i + 1; peakRSS = 0; lowRSS = .max; peakFDs = 0
                }
            }
            let question = "\(i): " + Self.questions[i % Self.questions.count]
            await engine.send(question)
            await engine.waitUntilIdle()
            sent[sent.count - 1].append(question)
            for case .notice(let text, true) in engine.events.drain() { warnings.append("turn \(i): \(text)") }
            let rss = Self.residentBytes(), fds = Self.openDescriptors()
            if i + 1 == warmup { baselineRSS = rss; baselineFDs = fds }
            if i + 1 > warmup { peakRSS = max(peakRSS, rss); lowRSS = min(lowRSS, rss); peakFDs = max(peakFDs, fds) }
            if (i + 1) % max(1, n / 10) == 0 || i + 1 == warmup {
                print(String(format: "soak: turn %4d  rss %6.1f MiB  fds %3d  ctx %4d/%d  sessions %d  %.0f s",
                             i + 1, Double(rss) / 1_048_576, fds, backend.contextUsed, contextMax, sent.count,
                             Date().timeIntervalSince(t0)))
            }
        }
        let endFDs = Self.openDescriptors()
        print(String(format: "soak: %d turns in %.0f s; after warm-up (%d turns) rss %.1f MiB, then %.1f..%.1f MiB (%+.1f%% max); fds %d -> max %d, end %d",
                     n, Date().timeIntervalSince(t0), warmup, Double(baselineRSS) / 1_048_576,
                     Double(lowRSS) / 1_048_576, Double(peakRSS) / 1_048_576,
                     100 * (Double(peakRSS) / Double(baselineRSS) - 1), baselineFDs, peakFDs, endFDs))
        #expect(warnings.isEmpty, "\(warnings.prefix(5))")
        // Under ASan / TSan, RSS is mostly the sanitizer's shadow memory and quarantine, which
        // grow and shrink on their own schedule: the memory bound means nothing there.
        if ProcessInfo.processInfo.environment["EFFTERM_SANITIZER"] == nil {
            #expect(Double(peakRSS) <= 1.10 * Double(baselineRSS), "resident memory grew more than 10% after warm-up")
            #expect(Double(lowRSS) >= 0.90 * Double(baselineRSS))
        }
        #expect(peakFDs <= baselineFDs + 2 && endFDs <= baselineFDs, "file descriptors grew")

        // Every turn is on disk, in order, in its session's transcript.
        let sessions = SessionStore.list(in: dir).sorted { $0.file.lastPathComponent < $1.file.lastPathComponent }
        #expect(sessions.allSatisfy { $0.error == nil })
        let stored = sessions.compactMap(\.transcript).map { $0.turns.map { $0.messages.first?.content ?? "" } }
        #expect(stored.map(\.count).reduce(0, +) == n)
        #expect(Set(stored) == Set(sent.filter { !$0.isEmpty }), "transcripts differ from the turns sent")
        print("soak: \(sessions.count) transcripts, turns per transcript \(stored.map(\.count))")
    }
}
