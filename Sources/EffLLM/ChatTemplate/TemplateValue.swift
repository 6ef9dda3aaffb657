/// A value inside a rendering chat template, with Jinja's (Python's) truthiness, equality
/// and printing.
indirect enum TemplateValue: Sendable {
    case undefined
    case none
    case bool(Bool)
    case int(Int)
    case string(String)
    case list([TemplateValue])
    case dict([String: TemplateValue])
    case namespace(TemplateNamespace)

    /// Python truthiness.
    var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .string(let s): return !s.isEmpty
        case .list(let l): return !l.isEmpty
        case .dict(let d): return !d.isEmpty
        case .namespace: return true
        }
    }

    /// How `{{ value }}` prints (Python `str`, undefined prints nothing).
    var rendered: String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return repr
        }
    }

    /// Python `repr`-like text, used inside lists and dicts.
    var repr: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .string(let s):
            var out = "'"
            for c in s.unicodeScalars {
                if c == "\\" || c == "'" { out.unicodeScalars.append("\\") }
                out.unicodeScalars.append(c)
            }
            return out + "'"
        case .list(let l): return "[" + l.map(\.repr).joined(separator: ", ") + "]"
        case .dict(let d):
            return "{" + d.keys.sorted().map { "'\($0)': \(d[$0]!.repr)" }.joined(separator: ", ") + "}"
        case .namespace: return "<Namespace>"
        }
    }

    /// Name of the value's type in error messages.
    var typeName: String {
        switch self {
        case .undefined: return "undefined"
        case .none: return "none"
        case .bool: return "bool"
        case .int: return "int"
        case .string: return "string"
        case .list: return "list"
        case .dict: return "dict"
        case .namespace: return "namespace"
        }
    }

    /// Python `==` (bools compare as 0/1 with ints, as in Python).
    func equals(_ other: TemplateValue) -> Bool {
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.bool(let a), .int(let b)), (.int(let b), .bool(let a)): return (a ? 1 : 0) == b
        case (.string(let a), .string(let b)): return a == b
        case (.list(let a), .list(let b)): return a.count == b.count && zip(a, b).allSatisfy { $0.equals($1) }
        case (.dict(let a), .dict(let b)):
            return a.count == b.count && a.allSatisfy { k, v in b[k].map { v.equals($0) } ?? false }
        case (.namespace(let a), .namespace(let b)): return a === b
        default: return false
        }
    }
}

/// Jinja's `namespace(...)`: the one mutable object a template can write from inside a loop.
/// Created only while rendering and never shared outside that one render, hence the
/// unchecked Sendable (parsed templates never contain one).
final class TemplateNamespace: @unchecked Sendable {
    var attributes: [String: TemplateValue]
    init(_ attributes: [String: TemplateValue]) { self.attributes = attributes }
}
