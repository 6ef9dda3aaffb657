import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes a file so that readers only ever see the old contents or the complete new ones:
/// bytes go to a temporary sibling, are fsync'ed, then renamed over the target, and the
/// directory is fsync'ed so the rename survives a crash.
///
/// Errors carry the POSIX error number so callers can tell a full disk (`ENOSPC`) apart.
public final class AtomicFileWriter {
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let path: String
        public let errno: Int32
        public let operation: String
        public var isDiskFull: Bool { errno == ENOSPC || errno == EDQUOT }
        public var description: String {
            "\(operation) \(path): \(String(cString: strerror(errno)))"
        }
    }

    public let destination: URL
    public let temporary: URL
    private var fd: Int32
    private var finished = false

    /// Creates the temporary sibling `.<name>.partial-<pid>` next to `destination`.
    public init(destination: URL) throws {
        self.destination = destination
        let dir = destination.deletingLastPathComponent()
        temporary = dir.appendingPathComponent(
            ".\(destination.lastPathComponent).partial-\(getpid())")
        unlink(temporary.path)
        fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 { throw Failure(path: temporary.path, errno: errno, operation: "create") }
    }

    deinit { abandon() }

    /// Appends bytes; throws on short writes and errors (ENOSPC included).
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(path: temporary.path, errno: errno, operation: "write")
            }
            offset += n
        }
    }

    public func write(_ data: Data) throws {
        try data.withUnsafeBytes { try write($0) }
    }

    /// Flushes to disk and renames over the destination. After this the writer is spent.
    public func commit() throws {
        precondition(!finished, "AtomicFileWriter committed twice")
        if fsync(fd) != 0 {
            let e = errno
            abandon()
            throw Failure(path: temporary.path, errno: e, operation: "fsync")
        }
        close(fd)
        fd = -1
        if rename(temporary.path, destination.path) != 0 {
            let e = errno
            abandon()
            throw Failure(path: destination.path, errno: e, operation: "rename")
        }
        finished = true
        let dirfd = open(destination.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY)
        if dirfd >= 0 { fsync(dirfd); close(dirfd) }
    }

    /// Drops the temporary file; the destination is untouched. Idempotent.
    public func abandon() {
        if fd >= 0 { close(fd); fd = -1 }
        if !finished { unlink(temporary.path); finished = true }
    }

    /// Replaces `url` with `data` atomically.
    public static func write(_ data: Data, to url: URL) throws {
        let writer = try AtomicFileWriter(destination: url)
        try writer.write(data)
        try writer.commit()
    }
}
