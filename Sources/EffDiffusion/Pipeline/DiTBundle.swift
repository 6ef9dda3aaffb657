import EffCore
import Foundation

/// One class the DiT was trained on, from the class list JSON.
public struct DiTClass: Codable, Equatable, Sendable {
    public var id: Int
    public var name: String
    public var description: String
}

/// A trained DiT on disk: `<name>.safetensors` (weights), `<name>.json` (config) and
/// `classes.json` (class list), as written by Tools/dit/export.py into Resources/.
public struct DiTBundle: Sendable {
    public let config: DiTConfig
    public let weights: DiTWeights
    public let classes: [DiTClass]
    public var model: DiT { DiT(weights: weights) }

    /// The model names shipped as resources.
    public static let shipped = ["dit-base", "dit-small"]

    /// Loads `name` from a directory holding the three files.
    public init(directory: URL, name: String = "dit-base") throws {
        let fm = FileManager.default
        let cfgURL = directory.appendingPathComponent("\(name).json")
        let stURL = directory.appendingPathComponent("\(name).safetensors")
        let clsURL = directory.appendingPathComponent("classes.json")
        for u in [cfgURL, stURL, clsURL] where !fm.fileExists(atPath: u.path) {
            throw DiTError.resourceMissing(u.path)
        }
        config = try DiTConfig.load(from: try Data(contentsOf: cfgURL))
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(contentsOf: stURL) } catch let e as SafeTensorsError {
            throw DiTError.weights(.init(text: "\(stURL.lastPathComponent): \(e.description)"))
        }
        weights = try DiTWeights(config: config, file: file)
        let list: [DiTClass]
        do { list = try JSONDecoder().decode([DiTClass].self, from: try Data(contentsOf: clsURL)) } catch {
            throw DiTError.badClassList("\(clsURL.lastPathComponent): \(error)")
        }
        guard list.count == config.numClasses, list.enumerated().allSatisfy({ $0.offset == $0.element.id }) else {
            throw DiTError.badClassList("expected ids 0..<\(config.numClasses) in order, found \(list.map(\.id))")
        }
        classes = list
    }

    /// Loads a model shipped in the EffDiffusion resources (`dit-base` or `dit-small`).
    public static func bundled(_ name: String = "dit-base") throws -> DiTBundle {
        try DiTBundle(directory: resourceDirectory, name: name)
    }

    /// Where the shipped weights live (the module's resource bundle).
    public static var resourceDirectory: URL {
        // `.copy("Resources")` keeps the folder; where the bundle root sits differs by platform.
        if let u = Bundle.module.url(forResource: "classes", withExtension: "json", subdirectory: "Resources") {
            return u.deletingLastPathComponent()
        }
        return Bundle.module.bundleURL.appendingPathComponent("Resources")
    }

    /// A class by id ("3") or name ("hand", case-insensitive).
    public func classID(for key: String) throws -> Int {
        if let id = Int(key), classes.indices.contains(id) { return id }
        let k = key.lowercased()
        if let c = classes.first(where: { $0.name.lowercased() == k }) { return c.id }
        throw DiTError.unknownClass(key)
    }
}
