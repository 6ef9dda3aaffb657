import Foundation

/// Runs a command to completion and captures its output, for tests that drive the real
/// `effterm` binary the way a person or a script would.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

public enum ProcessRunner {
    /// Runs `executable` with `arguments`; `environment` entries are added to (or, with a
    /// nil value, removed from) the current environment.
    public static func run(_ executable: URL, _ arguments: [String],
                           environment: [String: String?] = [:],
                           currentDirectory: URL? = nil) throws -> ProcessResult {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Drain both pipes concurrently so a chatty child cannot fill one and block.
        let errData = DataBox()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData.data = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return ProcessResult(status: process.terminationStatus,
                             stdout: String(decoding: outData, as: UTF8.self),
                             stderr: String(decoding: errData.data, as: UTF8.self))
    }

    /// Runs the `effterm` binary built beside the tests.
    public static func effterm(_ arguments: [String],
                               environment: [String: String?] = [:]) throws -> ProcessResult {
        try run(TestPaths.effterm, arguments, environment: environment)
    }
}

/// Output collected on another thread; the DispatchGroup orders its write before the read.
private final class DataBox: @unchecked Sendable {
    var data = Data()
}
