import Foundation

/// Owns the session transcript on disk: autosaves after every turn, atomically.
///
/// A write replaces the whole file: temp file in the same directory, `fsync`, `rename`, then
/// `fsync` of the directory, so a crash leaves either the previous or the new transcript,
/// never a torn one, and a failed write (full disk, read-only directory) leaves the
/// previous file as it was. After a failure the transcript stays in memory, the error is
/// reported through `onSaveStatus`, and the save is retried (after 2 s, doubling to 30 s)
/// until it succeeds; every later turn's save also writes everything still unsaved.
public actor SessionStore {
    /// Writes a whole transcript file (the atomic writer; tests inject failures).
    public typealias Writer = @Sendable (Data, URL) throws -> Void

    public nonisolated let directory: URL
    public private(set) var transcript: Transcript?
    public private(set) var file: URL?
    /// Why the last save failed; nil once the transcript is on disk.
    public private(set) var lastSaveError: String?
    /// Save attempts that failed since the store was made (tests, diagnostics).
    public private(set) var failedSaves = 0
    private let writer: Writer
    private let retryDelays: (first: Double, max: Double)
    private var retryTask: Task<Void, Never>?
    private var statusHandler: (@Sendable (String?) -> Void)?

    public init(directory: URL, writer: @escaping Writer = SessionStore.writeAtomically,
                retryDelay: Double = 2, maxRetryDelay: Double = 30) {
        self.directory = directory
        self.writer = writer
        retryDelays = (retryDelay, max(retryDelay, maxRetryDelay))
    }

    /// `handler` hears the outcome of every save: nil when the transcript is on disk, else
    /// the error (for the status bar). Called on the store's executor; keep it short.
    public func onSaveStatus(_ handler: @escaping @Sendable (String?) -> Void) {
        statusHandler = handler
    }

    /// True while turns exist only in memory (the last save failed).
    public var hasUnsavedChanges: Bool { lastSaveError != nil }

    /// `Sessions/` in the working directory when it exists, else the XDG data directory.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment,
                                        cwd: String = FileManager.default.currentDirectoryPath) -> URL {
        let local = URL(fileURLWithPath: cwd).appendingPathComponent("Sessions")
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: local.path, isDirectory: &isDir), isDir.boolValue {
            return local
        }
        return XDGDirectories.current(environment: environment).data.appendingPathComponent("sessions")
    }

    /// Starts a new transcript (written at the first save).
    public func begin(_ header: TranscriptHeader, file: URL? = nil) {
        transcript = Transcript(header: header)
        self.file = file ?? directory.appendingPathComponent(Self.fileName(for: Date()))
    }

    /// Continues an existing transcript file.
    public func adopt(_ t: Transcript, file: URL) {
        transcript = t; self.file = file
    }

    /// Appends a turn and saves at once.
    @discardableResult
    public func append(_ turn: TranscriptTurn) throws -> URL {
        guard transcript != nil else { throw TranscriptError.writeFailed(file: "(none)", reason: "no session started") }
        transcript!.turns.append(turn)
        return try save()
    }

    /// Appends an A/B comparison and saves at once.
    @discardableResult
    public func append(_ compare: CompareRecord) throws -> URL {
        guard transcript != nil else { throw TranscriptError.writeFailed(file: "(none)", reason: "no session started") }
        transcript!.compares.append(compare)
        return try save()
    }

    /// Writes the transcript now and returns its path. On failure the transcript stays in
    /// memory, the error is reported and a retry is scheduled.
    @discardableResult
    public func save() throws -> URL {
        do {
            let url = try attemptSave()
            retryTask?.cancel(); retryTask = nil
            return url
        } catch {
            if lastSaveError != nil { scheduleRetry() }
            throw error
        }
    }

    /// One write of the whole transcript, reporting the outcome; schedules nothing.
    private func attemptSave() throws -> URL {
        guard let transcript, let file else {
            throw TranscriptError.writeFailed(file: "(none)", reason: "no session started")
        }
        do {
            try writer(try transcript.jsonLines(), file)
        } catch {
            failedSaves += 1
            let text = (error as? TranscriptError)?.description ?? "could not save \(file.path): \(error)"
            lastSaveError = text
            if case .writeFailed(_, let reason)? = error as? TranscriptError {
                statusHandler?("\(file.lastPathComponent): \(reason)")
            } else {
                statusHandler?(text)
            }
            throw error
        }
        if lastSaveError != nil {
            lastSaveError = nil
            statusHandler?(nil)
        }
        return file
    }

    private func scheduleRetry() {
        guard retryTask == nil else { return }
        let delays = retryDelays
        retryTask = Task { [weak self] in
            var delay = delays.first
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                guard !Task.isCancelled, let self else { return }
                if await self.retrySave() { return }
                delay = min(delay * 2, delays.max)
            }
        }
    }

    /// One scheduled retry: true when the transcript is on disk (the retries stop).
    private func retrySave() -> Bool {
        if lastSaveError == nil || (try? attemptSave()) != nil {
            retryTask = nil
            return true
        }
        return false
    }

    /// Last chance before the process exits: saves when something is unsaved, and when the
    /// sessions directory still refuses, writes the transcript to `fallbackDirectory`.
    /// Returns a sentence for the person when anything was not saved where expected.
    public func saveBeforeExit(fallbackDirectory: URL = FileManager.default.temporaryDirectory) -> String? {
        retryTask?.cancel(); retryTask = nil
        guard lastSaveError != nil, let transcript, let file else { return nil }
        if (try? attemptSave()) != nil { return nil }
        let error = lastSaveError ?? "unknown error"
        let rescue = fallbackDirectory.appendingPathComponent("effterm-unsaved-" + file.lastPathComponent)
        do {
            try Self.writeAtomically(try transcript.jsonLines(), to: rescue)
            return "effterm: \(error)\neffterm: the session (\(transcript.turns.count) turns) was written to \(rescue.path) instead\n"
        } catch {
            return "effterm: \(lastSaveError ?? "")\neffterm: the session could not be written anywhere (\(error)); \(transcript.turns.count) turns are lost\n"
        }
    }

    /// Next turn index.
    public var turnCount: Int { transcript?.turns.count ?? 0 }

    static func fileName(for date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd'T'HH-mm-ss"
        let suffix = String(UInt32.random(in: 0...0xFFFF), radix: 16)
        return "\(f.string(from: date))Z-\(suffix).jsonl"
    }

    /// temp + fsync + rename + directory fsync.
    public static func writeAtomically(_ data: Data, to url: URL) throws {
        let dir = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        } catch {
            throw TranscriptError.writeFailed(file: url.path, reason: "cannot create \(dir.path): \(error.localizedDescription)")
        }
        do {
            try AtomicFileWriter.write(data, to: url)
        } catch let failure as AtomicFileWriter.Failure {
            throw TranscriptError.writeFailed(file: url.path,
                                              reason: "\(failure.operation) failed: \(String(cString: strerror(failure.errno)))")
        }
    }

    // MARK: reading (headless, no actor state)

    /// One saved session, for listings.
    public struct Entry: Sendable {
        public var file: URL
        public var modified: Date
        public var transcript: Transcript?
        public var error: String?
    }

    /// Transcripts in `directory`, newest first (unreadable files listed with their error).
    public static func list(in directory: URL) -> [Entry] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: directory.path) else { return [] }
        var out: [Entry] = []
        for name in names where name.hasSuffix(".jsonl") && !name.hasPrefix(".") {
            let url = directory.appendingPathComponent(name)
            let mod = (try? fm.attributesOfItem(atPath: url.path)[.modificationDate] as? Date) ?? .distantPast
            do {
                out.append(Entry(file: url, modified: mod, transcript: try load(url)))
            } catch {
                out.append(Entry(file: url, modified: mod, transcript: nil, error: "\(error)"))
            }
        }
        return out.sorted { ($0.modified, $0.file.lastPathComponent) > ($1.modified, $1.file.lastPathComponent) }
    }

    /// Reads one transcript.
    public static func load(_ url: URL) throws -> Transcript {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw TranscriptError.notFound(url.path)
        }
        return try Transcript.parse(data, file: url.path)
    }

    /// Reads a transcript to continue it. When its last line was cut off (see
    /// `Transcript.cutLine`), the file as found is first copied to `NAME.jsonl.cut` (the
    /// next autosave rewrites the transcript without that line) and a note says so.
    public static func loadForResume(_ url: URL) throws -> (transcript: Transcript, note: String?) {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw TranscriptError.notFound(url.path)
        }
        let t = try Transcript.parse(data, file: url.path)
        guard let cut = t.cutLine else { return (t, nil) }
        let keep = url.appendingPathExtension("cut")
        var note = "\(url.lastPathComponent): \(cut.note)"
        do {
            try writeAtomically(data, to: keep)
            note += "; the file as found is kept as \(keep.lastPathComponent)"
        } catch {
            note += "; could not keep a copy of the file as found (\(error))"
        }
        return (t, note)
    }

    /// Resolves `latest` (newest readable transcript in `directory`) or a path.
    public static func resolve(_ spec: String, in directory: URL) throws -> URL {
        if spec == "latest" {
            guard let e = list(in: directory).first(where: { $0.transcript != nil }) else {
                throw TranscriptError.notFound("no transcripts in \(directory.path)")
            }
            return e.file
        }
        let url = URL(fileURLWithPath: spec)
        if FileManager.default.fileExists(atPath: url.path) { return url }
        let inDir = directory.appendingPathComponent(spec)
        if FileManager.default.fileExists(atPath: inDir.path) { return inDir }
        throw TranscriptError.notFound(spec)
    }
}
