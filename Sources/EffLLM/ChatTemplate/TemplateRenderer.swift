/// Walks a parsed template with Jinja's semantics: `{% for %}` opens a scope per iteration
/// (so `{% set %}` inside a loop does not leak; `namespace()` is the way out), `{% if %}`
/// does not; undefined names render as "" and are falsy, but using one as an object or
/// operand is an error, as with Jinja's default `Undefined`.
struct TemplateRenderer {
    private var scopes: [[String: TemplateValue]]
    private(set) var output = ""

    init(globals: [String: TemplateValue]) {
        scopes = [globals]
    }

    mutating func render(_ nodes: [TemplateNode]) throws {
        for node in nodes {
            switch node {
            case .text(let s):
                output += s
            case .output(let e):
                output += try eval(e).rendered
            case .ifChain(let branches, let elseBody):
                var taken = false
                for (cond, body) in branches {
                    guard try eval(cond).isTruthy else { continue }
                    try render(body)
                    taken = true
                    break
                }
                if !taken { try render(elseBody) }
            case .set(let target, let attribute, let e, let p):
                let value = try eval(e)
                if let attribute {
                    guard case .namespace(let ns) = lookup(target) else {
                        throw Self.error("'\(target)' is not a namespace; only namespace attributes can be set", p)
                    }
                    ns.attributes[attribute] = value
                } else {
                    scopes[scopes.count - 1][target] = value
                }
            case .forLoop(let variable, let iterable, let filter, let body, let elseBody, let p):
                var items = try Self.iterate(try eval(iterable), p)
                if let filter {
                    var kept: [TemplateValue] = []
                    for item in items {
                        scopes.append([variable: item])
                        defer { scopes.removeLast() }
                        if try eval(filter).isTruthy { kept.append(item) }
                    }
                    items = kept
                }
                if items.isEmpty { try render(elseBody); continue }
                let n = items.count
                for (i, item) in items.enumerated() {
                    let loop: [String: TemplateValue] = [
                        "index": .int(i + 1), "index0": .int(i), "first": .bool(i == 0), "last": .bool(i == n - 1),
                        "length": .int(n), "revindex": .int(n - i), "revindex0": .int(n - i - 1),
                        "previtem": i > 0 ? items[i - 1] : .undefined, "nextitem": i + 1 < n ? items[i + 1] : .undefined,
                    ]
                    scopes.append([variable: item, "loop": .dict(loop)])
                    defer { scopes.removeLast() }
                    try render(body)
                }
            }
        }
    }

    private func lookup(_ name: String) -> TemplateValue {
        for scope in scopes.reversed() {
            if let v = scope[name] { return v }
        }
        return .undefined
    }

    private static func error(_ message: String, _ p: SourcePos) -> ChatTemplateError {
        .render(message: message, line: p.line, column: p.column)
    }

    private static func iterate(_ v: TemplateValue, _ p: SourcePos) throws -> [TemplateValue] {
        switch v {
        case .list(let l): return l
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .dict(let d): return d.keys.sorted().map { .string($0) }
        case .undefined: return []
        default: throw error("cannot iterate over a \(v.typeName)", p)
        }
    }

    // MARK: Expressions

    private func eval(_ e: TemplateExpr) throws -> TemplateValue {
        switch e {
        case .literal(let v, _):
            return v
        case .list(let items, _):
            return .list(try items.map(eval))
        case .name(let n, _):
            return lookup(n)
        case .attribute(let base, let name, let p):
            let b = try eval(base)
            switch b {
            case .undefined: throw Self.error("cannot read '.\(name)' of an undefined value", p)
            case .dict(let d): return d[name] ?? .undefined
            case .namespace(let ns): return ns.attributes[name] ?? .undefined
            default: return .undefined
            }
        case .index(let base, let index, let p):
            return try Self.subscriptValue(try eval(base), try eval(index), p)
        case .slice(let base, let lo, let hi, let step, let p):
            return try Self.slice(try eval(base), try lo.map(eval), try hi.map(eval), try step.map(eval), p)
        case .unary(let op, let operand, let p):
            let v = try eval(operand)
            if op == "not" { return .bool(!v.isTruthy) }
            guard case .int(let i) = v else { throw Self.error("cannot negate a \(v.typeName)", p) }
            return .int(-i)
        case .binary(let op, let lhs, let rhs, let p):
            let a = try eval(lhs)
            if op == "and" { return a.isTruthy ? try eval(rhs) : a }
            if op == "or" { return a.isTruthy ? a : try eval(rhs) }
            return try Self.binary(op, a, try eval(rhs), p)
        case .test(let base, let name, let negated, _):
            let result = Self.test(name, try eval(base))
            return .bool(negated ? !result : result)
        case .filter(let base, let name, let args, let p):
            return try Self.filter(name, try eval(base), try args.map(eval), p)
        case .call(let callee, let args, let kwargs, let p):
            let argValues = try args.map(eval)
            var kw: [String: TemplateValue] = [:]
            for (k, v) in kwargs { kw[k] = try eval(v) }
            switch callee {
            case .name(let fn, _):
                return try Self.function(fn, argValues, kw, p)
            case .attribute(let base, let method, _):
                return try Self.method(method, on: try eval(base), argValues, p)
            default:
                throw Self.error("call of a computed value", p)
            }
        case .conditional(let then, let cond, let other, _):
            if try eval(cond).isTruthy { return try eval(then) }
            return try other.map(eval) ?? .undefined
        }
    }

    private static func subscriptValue(_ b: TemplateValue, _ i: TemplateValue, _ p: SourcePos) throws -> TemplateValue {
        switch (b, i) {
        case (.undefined, _):
            throw error("cannot index an undefined value", p)
        case (.list(let l), .int(let k)):
            let j = k < 0 ? l.count + k : k
            return l.indices.contains(j) ? l[j] : .undefined
        case (.string(let s), .int(let k)):
            let u = Array(s.unicodeScalars)
            let j = k < 0 ? u.count + k : k
            return u.indices.contains(j) ? .string(String(u[j])) : .undefined
        case (.dict(let d), .string(let k)):
            return d[k] ?? .undefined
        case (.namespace(let ns), .string(let k)):
            return ns.attributes[k] ?? .undefined
        default:
            return .undefined
        }
    }

    /// Python slicing `x[lo:hi:step]` of a list or string.
    private static func slice(_ b: TemplateValue, _ lo: TemplateValue?, _ hi: TemplateValue?, _ st: TemplateValue?,
                              _ p: SourcePos) throws -> TemplateValue {
        func int(_ v: TemplateValue?) throws -> Int? {
            switch v {
            case nil, .some(.none): return nil
            case .some(.int(let i)): return i
            case .some(let other): throw error("slice bound must be an integer, not \(other.typeName)", p)
            }
        }
        let step = try int(st) ?? 1
        guard step != 0 else { throw error("slice step cannot be zero", p) }
        func pick(_ count: Int) throws -> [Int] {
            func clamp(_ v: Int?, _ dflt: Int, _ lower: Int, _ upper: Int) -> Int {
                guard var v else { return dflt }
                if v < 0 { v += count }
                return min(max(v, lower), upper)
            }
            var out: [Int] = []
            if step > 0 {
                var i = clamp(try int(lo), 0, 0, count)
                let end = clamp(try int(hi), count, 0, count)
                while i < end { out.append(i); i += step }
            } else {
                var i = clamp(try int(lo), count - 1, -1, count - 1)
                let end = clamp(try int(hi), -1, -1, count - 1)
                while i > end { out.append(i); i += step }
            }
            return out
        }
        switch b {
        case .list(let l): return .list(try pick(l.count).map { l[$0] })
        case .string(let s):
            let u = Array(s.unicodeScalars)
            var v = String.UnicodeScalarView()
            for i in try pick(u.count) { v.append(u[i]) }
            return .string(String(v))
        default: throw error("cannot slice a \(b.typeName)", p)
        }
    }

    private static func binary(_ op: String, _ a: TemplateValue, _ b: TemplateValue, _ p: SourcePos) throws -> TemplateValue {
        switch op {
        case "==": return .bool(a.equals(b))
        case "!=": return .bool(!a.equals(b))
        case "~": return .string(a.rendered + b.rendered)
        case "in":
            switch (a, b) {
            case (.string(let x), .string(let y)): return .bool(containsScalars(y, x))
            case (_, .list(let l)): return .bool(l.contains { $0.equals(a) })
            case (.string(let k), .dict(let d)): return .bool(d[k] != nil)
            default: throw error("'in' needs a string, list or dict on the right, not \(b.typeName)", p)
            }
        default: break
        }
        switch (a, b) {
        case (.int(let x), .int(let y)):
            switch op {
            case "+": return .int(x &+ y)
            case "-": return .int(x &- y)
            case "*": return .int(x &* y)
            case "<": return .bool(x < y)
            case ">": return .bool(x > y)
            case "<=": return .bool(x <= y)
            case ">=": return .bool(x >= y)
            case "%", "//":
                guard y != 0 else { throw error("integer division or modulo by zero", p) }
                var q = x / y                                       // Python floors
                if x % y != 0 && ((x < 0) != (y < 0)) { q -= 1 }
                return .int(op == "//" ? q : x - q * y)
            default: throw error("operator '\(op)' on integers is not supported (no floats)", p)
            }
        case (.string(let x), .string(let y)):
            switch op {
            case "+": return .string(x + y)
            case "<": return .bool(x < y)
            case ">": return .bool(x > y)
            case "<=": return .bool(x <= y)
            case ">=": return .bool(x >= y)
            default: break
            }
        case (.list(let x), .list(let y)) where op == "+":
            return .list(x + y)
        case (.string(let s), .int(let n)) where op == "*":
            return .string(String(repeating: s, count: max(0, min(n, 1 << 16))))
        default: break
        }
        throw error("cannot apply '\(op)' to \(a.typeName) and \(b.typeName)", p)
    }

    private static func test(_ name: String, _ v: TemplateValue) -> Bool {
        switch (name, v) {
        case ("defined", .undefined): return false
        case ("defined", _): return true
        case ("undefined", let x): return !test("defined", x)
        case ("none", .none): return true
        case ("string", .string): return true
        case ("number", .int), ("number", .bool), ("integer", .int): return true
        case ("boolean", .bool): return true
        case ("true", .bool(true)), ("false", .bool(false)): return true
        case ("mapping", .dict), ("mapping", .namespace): return true
        case ("sequence", .list), ("sequence", .string), ("sequence", .dict): return true
        case ("iterable", .list), ("iterable", .string), ("iterable", .dict): return true
        case ("even", .int(let i)): return i % 2 == 0
        case ("odd", .int(let i)): return i % 2 != 0
        default: return false
        }
    }

    /// Python's substring test: code point by code point (no grapheme clustering).
    private static func containsScalars(_ hay: String, _ needle: String) -> Bool {
        let h = Array(hay.unicodeScalars), n = Array(needle.unicodeScalars)
        guard !n.isEmpty else { return true }
        guard h.count >= n.count else { return false }
        for i in 0...(h.count - n.count) where h[i] == n[0] && Array(h[i..<(i + n.count)]) == n {
            return true
        }
        return false
    }

    private static func isPythonSpace(_ s: Unicode.Scalar) -> Bool {
        s.properties.isWhitespace || (0x1C...0x1F).contains(s.value)
    }

    private static func strip(_ s: String, leading: Bool, trailing: Bool, chars: String? = nil) -> String {
        var u = Array(s.unicodeScalars)[...]
        let set = chars.map { Set($0.unicodeScalars) }
        func drop(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? isPythonSpace(c) }
        if leading { while let f = u.first, drop(f) { u = u.dropFirst() } }
        if trailing { while let l = u.last, drop(l) { u = u.dropLast() } }
        return String(String.UnicodeScalarView(u))
    }

    private static func capitalize(_ s: String) -> String {
        guard let f = s.first else { return s }
        return f.uppercased() + s.dropFirst().lowercased()
    }

    private static func filter(_ name: String, _ v: TemplateValue, _ args: [TemplateValue], _ p: SourcePos) throws -> TemplateValue {
        switch name {
        case "trim": return .string(strip(v.rendered, leading: true, trailing: true))
        case "length", "count":
            switch v {
            case .string(let s): return .int(s.unicodeScalars.count)
            case .list(let l): return .int(l.count)
            case .dict(let d): return .int(d.count)
            case .undefined: return .int(0)
            default: throw error("\(v.typeName) has no length", p)
            }
        case "upper": return .string(v.rendered.uppercased())
        case "lower": return .string(v.rendered.lowercased())
        case "capitalize": return .string(capitalize(v.rendered))
        case "string": return .string(v.rendered)
        case "default", "d":
            let useFalsy = args.count > 1 && args[1].isTruthy
            if case .undefined = v { return args.first ?? .string("") }
            if useFalsy && !v.isTruthy { return args.first ?? .string("") }
            return v
        case "first", "last":
            let items = try iterate(v, p)
            return (name == "first" ? items.first : items.last) ?? .undefined
        case "join":
            let sep = args.first?.rendered ?? ""
            return .string(try iterate(v, p).map(\.rendered).joined(separator: sep))
        case "int":
            switch v {
            case .int: return v
            case .bool(let b): return .int(b ? 1 : 0)
            case .string(let s): return .int(Int(strip(s, leading: true, trailing: true)) ?? 0)
            default: return .int(0)
            }
        default:
            throw ChatTemplateError.unsupported(construct: "filter '\(name)'", line: p.line, column: p.column)
        }
    }

    private static func function(_ fn: String, _ args: [TemplateValue], _ kw: [String: TemplateValue],
                                 _ p: SourcePos) throws -> TemplateValue {
        switch fn {
        case "raise_exception":
            throw ChatTemplateError.raised(message: args.first?.rendered ?? "")
        case "namespace":
            return .namespace(TemplateNamespace(kw))
        case "range":
            var bounds: [Int] = []
            for a in args {
                guard case .int(let i) = a else { throw error("range() needs integers", p) }
                bounds.append(i)
            }
            let (lo, hi, step): (Int, Int, Int)
            switch bounds.count {
            case 1: (lo, hi, step) = (0, bounds[0], 1)
            case 2: (lo, hi, step) = (bounds[0], bounds[1], 1)
            case 3: (lo, hi, step) = (bounds[0], bounds[1], bounds[2])
            default: throw error("range() takes 1 to 3 arguments", p)
            }
            guard step != 0 else { throw error("range() step cannot be zero", p) }
            let values = Array(stride(from: lo, to: hi, by: step).prefix(100_001))
            guard values.count <= 100_000 else { throw error("range() longer than 100000", p) }
            return .list(values.map { .int($0) })
        default:
            throw ChatTemplateError.unsupported(construct: "function '\(fn)()'", line: p.line, column: p.column)
        }
    }

    private static func method(_ m: String, on v: TemplateValue, _ args: [TemplateValue], _ p: SourcePos) throws -> TemplateValue {
        guard case .string(let s) = v else {
            throw error("method '.\(m)()' needs a string, not \(v.typeName)", p)
        }
        let arg0: String? = args.first.flatMap { if case .string(let a) = $0 { return a } else { return nil } }
        switch m {
        case "strip": return .string(strip(s, leading: true, trailing: true, chars: arg0))
        case "lstrip": return .string(strip(s, leading: true, trailing: false, chars: arg0))
        case "rstrip": return .string(strip(s, leading: false, trailing: true, chars: arg0))
        case "upper": return .string(s.uppercased())
        case "lower": return .string(s.lowercased())
        case "capitalize": return .string(capitalize(s))
        case "title":
            var out = "", startOfWord = true
            for c in s {
                out += startOfWord ? c.uppercased() : c.lowercased()
                startOfWord = !c.isLetter
            }
            return .string(out)
        case "startswith", "endswith":
            guard let a = arg0 else { throw error("'.\(m)()' needs a string argument", p) }
            return .bool(m == "startswith" ? s.unicodeScalars.starts(with: a.unicodeScalars)
                                           : s.unicodeScalars.reversed().starts(with: a.unicodeScalars.reversed()))
        default:
            throw ChatTemplateError.unsupported(construct: "method '.\(m)()'", line: p.line, column: p.column)
        }
    }
}
