import EffTestSupport
import Foundation
import Testing
@testable import EffEngine

/// Issue 14, durability: a transcript cut at any byte still resumes (with a note about the
/// cut line); a save that fails (full disk, read-only or impossible directory) keeps the
/// session in memory, reports the error, retries, and never truncates the file on disk.
///
/// Full disk and read-only use a real 64 KiB tmpfs (mount(8); root with CAP_SYS_ADMIN, as
/// here and in CI); where mounting is not allowed those two tests are skipped and the same
/// paths are covered by an injected failing writer (`injectedDiskFullIsRetried`) and by a
/// sessions path whose parent is a file (`parentIsAFile`), which fails even for root.
@Suite(.serialized) struct SessionDurabilityTests {
    static let realTranscript = TestPaths.repoRoot.appendingPathComponent("Tests/Fixtures/sessions/smollm2-two-turns.jsonl")

    func tempDir() -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("effterm-dur-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    func turn(_ i: Int, _ answer: String) -> TranscriptTurn {
        TranscriptTurn(index: i, messages: [TurnMessage(role: "user", content: "question \(i)"),
                                            TurnMessage(role: "assistant", content: answer)],
                       techniques: TechniqueConfig(), stats: TurnStats())
    }

    func header() -> TranscriptHeader {
        TranscriptHeader(modelName: "m", modelSHA256: "s", templateHash: "h", sampler: GenerationSettings(), system: nil)
    }

    // MARK: cuts

    @Test func everyCutOfARealTranscriptResumesWithANote() throws {
        let bytes = [UInt8](try Data(contentsOf: Self.realTranscript))
        let newlines = bytes.indices.filter { bytes[$0] == 0x0A }
        #expect(newlines.count == 3, "the fixture is a header and two turns")
        let headerEnd = newlines[0]
        var notes = 0
        for n in 0...bytes.count {
            let prefix = Data(bytes[..<n])
            if n == 0 {
                #expect(throws: TranscriptError.empty(file: "cut")) { try Transcript.parse(prefix, file: "cut") }
                continue
            }
            if n < headerEnd {
                #expect(throws: TranscriptError.cutHeader(file: "cut", bytes: n), "cut at \(n)") {
                    try Transcript.parse(prefix, file: "cut")
                }
                continue
            }
            let t: Transcript
            do { t = try Transcript.parse(prefix, file: "cut") } catch {
                Issue.record("cut at byte \(n) of \(bytes.count) does not load: \(error)"); continue
            }
            // Complete lines all load; a tail is either a whole line (cut just before its
            // newline) or reported as cut.
            let complete = newlines.filter { $0 < n }.count
            let tailStart = (newlines.last { $0 < n } ?? -1) + 1
            let tailIsWholeLine = newlines.contains(n)
            let expectedTurns = max(0, complete - 1) + (tailIsWholeLine && complete >= 1 ? 1 : 0)
            #expect(t.turns.count == expectedTurns, "cut at \(n): \(t.turns.count) turns")
            if tailStart < n && !tailIsWholeLine {
                let cut = try #require(t.cutLine, "cut at \(n) has no note")
                #expect(cut.line == complete + 1 && cut.bytes == n - tailStart)
                #expect(cut.note.contains("line \(complete + 1)") && cut.note.contains("cut off"))
                notes += 1
            } else {
                #expect(t.cutLine == nil, "cut at \(n) noted although the last line is whole")
            }
        }
        #expect(notes > bytes.count - headerEnd - 10)
    }

    @Test func resumingACutFileKeepsTheOriginalAndContinues() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let whole = try Data(contentsOf: Self.realTranscript)
        let cutData = whole.prefix(whole.count - 40)   // inside the second turn, mid-emoji bytes included
        let file = dir.appendingPathComponent("s.jsonl")
        try cutData.write(to: file)
        let (t, note) = try SessionStore.loadForResume(file)
        #expect(t.turns.count == 1)
        let text = try #require(note)
        #expect(text.contains("line 3") && text.contains("s.jsonl.cut"), "\(text)")
        #expect(try Data(contentsOf: dir.appendingPathComponent("s.jsonl.cut")) == cutData)
        #expect(SessionStore.list(in: dir).count == 1, "the .cut copy is not listed as a session")

        let backend = ScriptedChatBackend(answers: [["again"]])
        let engine = ChatEngine(backend: backend, settings: GenerationSettings(), system: nil, store: SessionStore(directory: dir))
        await engine.resume(t, file: file)
        #expect(backend.primedMessages == t.messages)
        await engine.send("more")
        await engine.waitUntilIdle()
        let after = try SessionStore.load(file)
        #expect(after.turns.count == 2 && after.cutLine == nil)
        #expect(after.turns[1].messages[1].content == "again")
    }

    // MARK: failing saves

    /// Mounts a tmpfs of `kib` KiB; nil where mounting is not allowed.
    static func mountTmpfs(kib: Int) -> URL? {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("effterm-tmpfs-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        guard run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(kib)k", "tmpfs", dir.path]) else {
            try? FileManager.default.removeItem(at: dir); return nil
        }
        return dir
    }

    static func unmount(_ dir: URL) {
        _ = run("/bin/umount", [dir.path])
        try? FileManager.default.removeItem(at: dir)
    }

    @discardableResult
    static func run(_ tool: String, _ args: [String]) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        do { try p.run() } catch { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    static let canMount: Bool = {
        guard let d = mountTmpfs(kib: 16) else { return false }
        unmount(d); return true
    }()

    final class Statuses: @unchecked Sendable {
        private let lock = NSLock()
        private var items: [String?] = []
        func add(_ s: String?) { lock.lock(); items.append(s); lock.unlock() }
        var all: [String?] { lock.lock(); defer { lock.unlock() }; return items }
    }

    func waitFor(_ what: String, timeout: Double = 10, _ condition: () async -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if await condition() { return }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        Issue.record("timed out waiting for \(what)")
    }

    func leftovers(_ dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.contains(".partial") }
    }

    @Test(.enabled(if: SessionDurabilityTests.canMount, "needs mount(8) for a real tmpfs"))
    func diskFullKeepsTheFileAndRetries() async throws {
        let mnt = try #require(Self.mountTmpfs(kib: 64))
        defer { Self.unmount(mnt) }
        let statuses = Statuses()
        let store = SessionStore(directory: mnt, retryDelay: 0.05, maxRetryDelay: 0.2)
        await store.onSaveStatus { statuses.add($0) }
        await store.begin(header())
        let url = try await store.append(turn(0, "short"))
        let before = try Data(contentsOf: url)
        // Fill the file system with a filler file until it refuses.
        let filler = mnt.appendingPathComponent("filler")
        let fh = try FileHandle(forWritingTo: { FileManager.default.createFile(atPath: filler.path, contents: nil); return filler }())
        let block = Data(repeating: 0x78, count: 4096)
        while (try? fh.write(contentsOf: block)) != nil {}
        try? fh.close()
        do {
            try await store.append(turn(1, String(repeating: "long answer ", count: 2000)))
            Issue.record("a save onto a full disk succeeded")
        } catch {
            #expect("\(error)".contains("No space left on device"), "\(error)")
        }
        #expect(try Data(contentsOf: url) == before, "the transcript on disk changed")
        #expect(leftovers(mnt).isEmpty, "temporary files left: \(leftovers(mnt))")
        #expect(await store.transcript?.turns.count == 2, "the failed turn was dropped from memory")
        #expect(await store.hasUnsavedChanges)
        #expect(statuses.all.last??.contains("No space left on device") == true, "\(statuses.all)")
        // Free the space: the scheduled retry writes both turns.
        try FileManager.default.removeItem(at: filler)
        try await waitFor("the retry") { await !store.hasUnsavedChanges }
        #expect(try SessionStore.load(url).turns.count == 2)
        #expect(statuses.all.last! == nil, "status not cleared: \(statuses.all)")
        #expect(await store.failedSaves >= 1)
    }

    @Test(.enabled(if: SessionDurabilityTests.canMount, "needs mount(8) for a real tmpfs"))
    func readOnlyDirectoryKeepsTheFileAndRetries() async throws {
        let mnt = try #require(Self.mountTmpfs(kib: 256))
        defer { Self.unmount(mnt) }
        let statuses = Statuses()
        let store = SessionStore(directory: mnt, retryDelay: 0.05, maxRetryDelay: 0.2)
        await store.onSaveStatus { statuses.add($0) }
        await store.begin(header())
        let url = try await store.append(turn(0, "first"))
        let before = try Data(contentsOf: url)
        #expect(Self.run("/bin/mount", ["-o", "remount,ro", mnt.path]))
        await #expect(throws: TranscriptError.self) { try await store.append(turn(1, "second")) }
        #expect(statuses.all.last??.contains("Read-only file system") == true, "\(statuses.all)")
        try await Task.sleep(nanoseconds: 300_000_000)   // a few retries fail meanwhile
        #expect(try Data(contentsOf: url) == before)
        #expect(await store.failedSaves >= 2, "no retries while read-only")
        #expect(Self.run("/bin/mount", ["-o", "remount,rw", mnt.path]))
        try await waitFor("the retry") { await !store.hasUnsavedChanges }
        #expect(try SessionStore.load(url).turns.map { $0.messages[1].content } == ["first", "second"])
        #expect(leftovers(mnt).isEmpty)
    }

    /// Fails for root too: no permission bits involved.
    @Test func parentIsAFile() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let notADir = dir.appendingPathComponent("file")
        try Data("x".utf8).write(to: notADir)
        let statuses = Statuses()
        let store = SessionStore(directory: notADir.appendingPathComponent("sessions"), retryDelay: 30)
        await store.onSaveStatus { statuses.add($0) }
        await store.begin(header())
        await #expect(throws: TranscriptError.self) { try await store.append(turn(0, "a")) }
        #expect(await store.transcript?.turns.count == 1)
        #expect(statuses.all.count == 1 && statuses.all[0] != nil)
        // Quitting now writes the session to the fallback directory instead, and says where.
        let fallback = dir.appendingPathComponent("rescue")
        let message = try #require(await store.saveBeforeExit(fallbackDirectory: fallback))
        #expect(message.contains(fallback.path), "\(message)")
        let rescued = try FileManager.default.contentsOfDirectory(atPath: fallback.path)
        #expect(rescued.count == 1)
        #expect(try SessionStore.load(fallback.appendingPathComponent(rescued[0])).turns.count == 1)
    }

    /// Full disk without mount(8): a writer that fails like one twice, then writes.
    @Test func injectedDiskFullIsRetried() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        final class Failures: @unchecked Sendable { var remaining = 0, thrown = 0 }
        let failures = Failures()
        let store = SessionStore(directory: dir, writer: { data, url in
            if failures.remaining > 0 {
                failures.remaining -= 1; failures.thrown += 1
                throw TranscriptError.writeFailed(file: url.path, reason: "write failed: \(String(cString: strerror(ENOSPC)))")
            }
            try SessionStore.writeAtomically(data, to: url)
        }, retryDelay: 0.05, maxRetryDelay: 0.1)
        let statuses = Statuses()
        await store.onSaveStatus { statuses.add($0) }
        await store.begin(header())
        let url = try await store.append(turn(0, "a"))
        let before = try Data(contentsOf: url)
        failures.remaining = 3
        await #expect(throws: TranscriptError.self) { try await store.append(turn(1, String(repeating: "b", count: 500))) }
        #expect(try Data(contentsOf: url) == before)
        try await waitFor("the retry") { await !store.hasUnsavedChanges }
        #expect(failures.thrown == 3, "one failed save and two failed retries")
        #expect(try SessionStore.load(url).turns.count == 2)
        #expect(statuses.all.count == 4 && statuses.all.last! == nil, "\(statuses.all)")
    }
}
