import ArgumentParser
import EffCore
import Foundation

/// `effterm inspect FILE`: what a GGUF file holds, validated by the same reader the engine uses.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe a GGUF file: version, alignment, metadata, tensor counts and sizes.",
        discussion: "The file is validated while it is read; a malformed file prints the reason "
            + "(naming the key or tensor at fault) and exits with status 1. Long metadata arrays "
            + "are summarized as type, length and first items."
    )

    @Argument(help: "Path to a .gguf file.")
    var file: String

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Flag(help: "List every tensor: name, type, shape (ggml order), offset, bytes.")
    var tensors = false

    @Option(help: "Array items shown before summarizing.")
    var items = 8

    func run() throws {
        let gguf: GGUFFile
        do {
            gguf = try GGUFFile(path: file)
        } catch let error as GGUFError {
            FileHandle.standardError.write(Data("effterm inspect: \(error)\n".utf8))
            throw ExitCode.failure
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: jsonObject(gguf),
                                                  options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(text(gguf), terminator: "")
        }
    }

    /// Per-type tensor count and bytes, sorted by type name.
    private func typeTotals(_ gguf: GGUFFile) -> [(name: String, count: Int, bytes: Int)] {
        var totals: [String: (Int, Int)] = [:]
        for t in gguf.tensors {
            let (c, b) = totals[t.type.traits.name] ?? (0, 0)
            totals[t.type.traits.name] = (c + 1, b + t.byteCount)
        }
        return totals.keys.sorted().map { (name: $0, count: totals[$0]!.0, bytes: totals[$0]!.1) }
    }

    private func text(_ gguf: GGUFFile) -> String {
        var out = "\(file)\n"
        out += "GGUF version \(gguf.version), alignment \(gguf.alignment), \(gguf.fileSize) bytes, data section at \(gguf.dataOffset)\n"
        out += "metadata (\(gguf.metadataKeys.count) keys):\n"
        let width = gguf.metadataKeys.map(\.count).max() ?? 0
        for key in gguf.metadataKeys {
            let value = gguf.metadata[key]!
            let pad = String(repeating: " ", count: width - key.count)
            let shown: String
            if case .array(let a) = value {
                shown = "\(a.count) items: " + a.itemsSummary(maxItems: items)
            } else {
                shown = value.summary(maxItems: items)
            }
            out += "  \(key)\(pad)  \(value.typeName.padding(toLength: 8, withPad: " ", startingAt: 0)) \(shown)\n"
        }
        let total = gguf.tensors.reduce(0) { $0 + $1.byteCount }
        out += "tensors: \(gguf.tensors.count), \(total) bytes (\(mib(total)))\n"
        for t in typeTotals(gguf) {
            out += "  \(t.name.padding(toLength: 8, withPad: " ", startingAt: 0))\(String(t.count).leftPadded(5)) tensors \(String(t.bytes).leftPadded(12)) bytes (\(mib(t.bytes)))\n"
        }
        if tensors {
            let nameWidth = gguf.tensors.map(\.name.count).max() ?? 0
            for t in gguf.tensors {
                let dims = "[" + t.dims.map(String.init).joined(separator: ", ") + "]"
                out += "  \(t.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0))  \(t.type.traits.name.padding(toLength: 6, withPad: " ", startingAt: 0)) \(dims.padding(toLength: 16, withPad: " ", startingAt: 0)) offset \(String(t.offset).leftPadded(10))  \(String(t.byteCount).leftPadded(10)) bytes\n"
            }
        }
        return out
    }

    private func jsonObject(_ gguf: GGUFFile) -> [String: Any] {
        var metadata: [String: Any] = [:]
        for (key, value) in gguf.metadata { metadata[key] = jsonValue(value) }
        var types: [String: Any] = [:]
        for t in typeTotals(gguf) { types[t.name] = ["count": t.count, "bytes": t.bytes] }
        var object: [String: Any] = [
            "path": file,
            "version": Int(gguf.version),
            "alignment": gguf.alignment,
            "file_bytes": gguf.fileSize,
            "data_offset": gguf.dataOffset,
            "metadata_keys": gguf.metadataKeys,
            "metadata": metadata,
            "tensor_count": gguf.tensors.count,
            "tensor_bytes": gguf.tensors.reduce(0) { $0 + $1.byteCount },
            "tensor_types": types,
        ]
        if tensors {
            object["tensors"] = gguf.tensors.map { t -> [String: Any] in
                ["name": t.name, "type": t.type.traits.name, "dims": t.dims, "offset": t.offset, "bytes": t.byteCount]
            }
        }
        return object
    }

    /// Scalars as JSON scalars (non-finite floats as strings); arrays as
    /// `{"type", "length", "items" (first few), "truncated"}`.
    private func jsonValue(_ value: GGUFValue) -> Any {
        switch value {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return NSNumber(value: v)
        case .int64(let v): return NSNumber(value: v)
        // Through the shortest decimal form, so 1e-5 prints as 1e-05, not 9.99999974e-06.
        case .float32(let v): return v.isFinite ? Double(String(v))! as Any : String(v)
        case .float64(let v): return v.isFinite ? v as Any : String(v)
        case .bool(let v): return v
        case .string(let s): return s
        case .array(let a):
            let shown = min(a.count, items)
            return ["type": a.typeName, "length": a.count, "truncated": shown < a.count,
                    "items": (0..<shown).map { jsonValue(a.element(at: $0)) }] as [String: Any]
        }
    }

    private func mib(_ bytes: Int) -> String {
        String(format: "%.1f MiB", Double(bytes) / 1_048_576)
    }
}

extension String {
    /// Right-aligned in `width` columns (tables).
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
