#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Bytes the C heap holds for the program, over every malloc arena (the main thread's and
/// the worker threads'), for tests that check a path keeps nothing per step.
public enum HeapUsage {
    /// In-use heap bytes: memory taken from the system (arena pages plus mmapped chunks) minus
    /// the free chunks the allocator keeps, from glibc's `malloc_info` totals; 0 where that
    /// report is unavailable (not glibc).
    public static func bytesInUse() -> Int {
        #if canImport(Glibc)
        var buffer: UnsafeMutablePointer<CChar>?
        var size = 0
        guard let stream = open_memstream(&buffer, &size) else { return 0 }
        // malloc.h is not in Swift's Glibc module: look the function up in the loaded libc.
        typealias MallocInfo = @convention(c) (Int32, UnsafeMutablePointer<FILE>?) -> Int32
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "malloc_info") else { fclose(stream); return 0 }
        _ = unsafeBitCast(symbol, to: MallocInfo.self)(0, stream)
        fclose(stream)
        defer { free(buffer) }
        guard let buffer else { return 0 }
        let xml = String(cString: buffer)
        // The totals over all heaps follow the last </heap>.
        let tail = xml.range(of: "</heap>", options: .backwards).map { String(xml[$0.upperBound...]) } ?? xml
        func reported(_ tag: String) -> Int {
            guard let r = tail.range(of: tag) else { return 0 }
            let rest = tail[r.upperBound...]
            guard let s = rest.range(of: "size=\"") else { return 0 }
            return Int(rest[s.upperBound...].prefix { $0.isNumber }) ?? 0
        }
        return reported("<system type=\"current\"") + reported("<total type=\"mmap\"")
            - reported("<total type=\"fast\"") - reported("<total type=\"rest\"")
        #else
        return 0
        #endif
    }
}
