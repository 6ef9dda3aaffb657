#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory mapping of a whole file, unmapped when the object dies.
///
/// Views handed out from `bytes` (tensor data, for example) are valid only while this
/// object is alive; owners such as `GGUFFile` keep it alive for as long as they are.
/// The mapping is `MAP_PRIVATE, PROT_READ`: nothing is copied until a page is touched, and
/// the file is never written. If another process truncates the file while it is mapped,
/// touching the lost pages raises SIGBUS; effterm's model cache avoids that by writing to a
/// temporary name and renaming.
public final class MappedFile: @unchecked Sendable {
    /// The path the file was opened from.
    public let path: String
    /// The whole file. Empty (base address nil) for a zero-length file.
    public let bytes: UnsafeRawBufferPointer

    private let mapping: UnsafeMutableRawPointer?
    private let length: Int

    /// Opens and maps `path`; throws `GGUFError.cannotOpen` naming the path and the reason.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw GGUFError.cannotOpen(path: path, reason: MappedFile.errnoText())
        }
        defer { close(fd) }

        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw GGUFError.cannotOpen(path: path, reason: MappedFile.errnoText())
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw GGUFError.cannotOpen(path: path, reason: "not a regular file")
        }
        let size = Int(info.st_size)
        guard size > 0 else {
            // mmap rejects length 0; an empty file is an empty view (parsers then report it).
            mapping = nil
            length = 0
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let address, address != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw GGUFError.cannotOpen(path: path, reason: "mmap failed: " + MappedFile.errnoText())
        }
        mapping = address
        length = size
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit {
        if let mapping { munmap(mapping, length) }
    }

    private static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}
