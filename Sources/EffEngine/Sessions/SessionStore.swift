import Foundation

/// Owns the session transcript on disk: autosaves after every turn, atomically.
///
/// A write replaces the whole file: temp file in the same directory, `fsync`, `rename`, then
/// `fsync` of the directory, so a crash leaves either the previous or the new transcript,
/// never a torn one.
public actor SessionStore {
    public nonisolated let directory: URL
    public private(set) var transcript: Transcript?
    public private(set) var file: URL?

    public init(directory: URL) { self.directory = directory }

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

    /// Writes the transcript now and returns its path.
    @discardableResult
    public func save() throws -> URL {
        guard let transcript, let file else {
            throw TranscriptError.writeFailed(file: "(none)", reason: "no session started")
        }
        try Self.writeAtomically(try transcript.jsonLines(), to: file)
        return file
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
            throw TranscriptError.writeFailed(file: url.path, reason: failure.description)
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
