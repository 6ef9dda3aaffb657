/// The parsed form of a chat template: statements and expressions of the supported Jinja
/// subset, each carrying its source position for error messages.
indirect enum TemplateExpr: Sendable {
    case literal(TemplateValue, SourcePos)
    case list([TemplateExpr], SourcePos)
    case name(String, SourcePos)
    case attribute(TemplateExpr, String, SourcePos)           // x.name
    case index(TemplateExpr, TemplateExpr, SourcePos)         // x[i]
    case slice(TemplateExpr, TemplateExpr?, TemplateExpr?, TemplateExpr?, SourcePos)  // x[a:b:c]
    case unary(String, TemplateExpr, SourcePos)               // not, -
    case binary(String, TemplateExpr, TemplateExpr, SourcePos)
    case test(TemplateExpr, String, negated: Bool, SourcePos)  // x is [not] name
    case filter(TemplateExpr, String, [TemplateExpr], SourcePos)
    case call(TemplateExpr, [TemplateExpr], [(String, TemplateExpr)], SourcePos)
    case conditional(then: TemplateExpr, cond: TemplateExpr, else: TemplateExpr?, SourcePos)

    var pos: SourcePos {
        switch self {
        case .literal(_, let p), .list(_, let p), .name(_, let p), .attribute(_, _, let p), .index(_, _, let p),
             .slice(_, _, _, _, let p), .unary(_, _, let p), .binary(_, _, _, let p), .test(_, _, _, let p),
             .filter(_, _, _, let p), .call(_, _, _, let p), .conditional(_, _, _, let p):
            return p
        }
    }
}

indirect enum TemplateNode: Sendable {
    case text(String)
    case output(TemplateExpr)
    case forLoop(variable: String, iterable: TemplateExpr, filter: TemplateExpr?, body: [TemplateNode],
                 elseBody: [TemplateNode], SourcePos)
    case ifChain([(TemplateExpr, [TemplateNode])], elseBody: [TemplateNode])
    case set(target: String, attribute: String?, TemplateExpr, SourcePos)  // set x = e / set ns.a = e
}

/// Recursive-descent parser with Jinja's operator precedence (lowest first):
/// `a if c else b`, `or`, `and`, `not`, comparisons and `in`, `+ -`, `~`, `* / // %`,
/// unary `-`, then postfix `.a [i] (args)`, filters `| f` and tests `is t`.
struct TemplateParser {
    static let filters: Set<String> = ["trim", "length", "count", "upper", "lower", "string", "default", "d",
                                       "first", "last", "join", "int", "capitalize"]
    static let tests: Set<String> = ["defined", "undefined", "none", "string", "number", "integer", "mapping",
                                     "sequence", "iterable", "boolean", "true", "false", "even", "odd"]
    static let functions: Set<String> = ["raise_exception", "namespace", "range"]
    static let methods: Set<String> = ["strip", "lstrip", "rstrip", "upper", "lower", "startswith", "endswith",
                                       "title", "capitalize"]

    private let segments: [TemplateLexer.Segment]
    private var k = 0                       // current segment
    private var tokens: [TemplateLexer.Token] = []
    private var t = 0                       // current token within a tag
    private var tagPos = SourcePos(line: 1, column: 1)

    static func parse(_ source: String) throws -> [TemplateNode] {
        var p = TemplateParser(segments: try TemplateLexer.lex(source))
        let (nodes, end) = try p.parseBlock(until: [])
        if let end {
            throw ChatTemplateError.syntax(message: "unexpected '{% \(end.0) %}'", line: end.1.line, column: end.1.column)
        }
        return nodes
    }

    private init(segments: [TemplateLexer.Segment]) { self.segments = segments }

    /// Parses nodes until a statement whose keyword is in `terminators` (returned with its
    /// position; its remaining tokens are left for the caller) or the end of the source.
    private mutating func parseBlock(until terminators: Set<String>) throws -> ([TemplateNode], (String, SourcePos)?) {
        var nodes: [TemplateNode] = []
        while k < segments.count {
            let segment = segments[k]
            k += 1
            switch segment {
            case .text(let s):
                nodes.append(.text(s))
            case .output(let toks, let p):
                begin(toks, p)
                nodes.append(.output(try parseExpression()))
                try expectEnd()
            case .statement(let toks, let p):
                begin(toks, p)
                guard let head = toks.first, head.kind == .name else {
                    throw ChatTemplateError.syntax(message: "empty or malformed statement", line: p.line, column: p.column)
                }
                t = 1
                if terminators.contains(head.text) { return (nodes, (head.text, head.pos)) }
                switch head.text {
                case "for": nodes.append(try parseFor(p))
                case "if": nodes.append(try parseIf())
                case "set": nodes.append(try parseSet(p))
                case "endfor", "endif", "else", "elif":
                    throw ChatTemplateError.syntax(message: "unexpected '{% \(head.text) %}'", line: p.line, column: p.column)
                default:
                    throw ChatTemplateError.unsupported(construct: "'{% \(head.text) %}'", line: p.line, column: p.column)
                }
            }
        }
        if let first = terminators.sorted().first(where: { $0.hasPrefix("end") }) ?? terminators.sorted().first {
            throw ChatTemplateError.syntax(message: "missing '{% \(first) %}' before the end of the template",
                                           line: tagPos.line, column: tagPos.column)
        }
        return (nodes, nil)
    }

    private mutating func parseFor(_ p: SourcePos) throws -> TemplateNode {
        let variable = try expectName()
        if peekOp(",") {
            throw ChatTemplateError.unsupported(construct: "tuple unpacking in '{% for %}'", line: p.line, column: p.column)
        }
        try expectKeyword("in")
        let iterable = try parseOr()   // no bare conditional: `if` here is the loop filter
        var filter: TemplateExpr? = nil
        if peekKeyword("if") { t += 1; filter = try parseOr() }
        if peekKeyword("recursive") {
            throw ChatTemplateError.unsupported(construct: "recursive loop", line: p.line, column: p.column)
        }
        try expectEnd()
        let (body, end) = try parseBlock(until: ["endfor", "else"])
        var elseBody: [TemplateNode] = []
        if end?.0 == "else" {
            try expectEnd()
            (elseBody, _) = try parseBlock(until: ["endfor"])
        }
        try expectEnd()
        return .forLoop(variable: variable, iterable: iterable, filter: filter, body: body, elseBody: elseBody, p)
    }

    private mutating func parseIf() throws -> TemplateNode {
        var branches: [(TemplateExpr, [TemplateNode])] = []
        var cond = try parseExpression()
        while true {
            try expectEnd()
            let (body, end) = try parseBlock(until: ["elif", "else", "endif"])
            branches.append((cond, body))
            switch end?.0 {
            case "elif":
                cond = try parseExpression()
            case "else":
                try expectEnd()
                let (elseBody, _) = try parseBlock(until: ["endif"])
                try expectEnd()
                return .ifChain(branches, elseBody: elseBody)
            default:
                try expectEnd()
                return .ifChain(branches, elseBody: [])
            }
        }
    }

    private mutating func parseSet(_ p: SourcePos) throws -> TemplateNode {
        let target = try expectName()
        var attribute: String? = nil
        if peekOp(".") { t += 1; attribute = try expectName() }
        if peekOp(",") {
            throw ChatTemplateError.unsupported(construct: "tuple assignment in '{% set %}'", line: p.line, column: p.column)
        }
        if t >= tokens.count {
            throw ChatTemplateError.unsupported(construct: "block '{% set %}...{% endset %}'", line: p.line, column: p.column)
        }
        try expectOp("=")
        let value = try parseExpression()
        try expectEnd()
        return .set(target: target, attribute: attribute, value, p)
    }

    // MARK: Expressions

    private mutating func parseExpression() throws -> TemplateExpr {
        let value = try parseOr()
        if peekKeyword("if") {
            let p = tokens[t].pos
            t += 1
            let cond = try parseOr()
            var other: TemplateExpr? = nil
            if peekKeyword("else") { t += 1; other = try parseExpression() }
            return .conditional(then: value, cond: cond, else: other, p)
        }
        return value
    }

    private mutating func parseOr() throws -> TemplateExpr {
        var lhs = try parseAnd()
        while peekKeyword("or") { let p = tokens[t].pos; t += 1; lhs = .binary("or", lhs, try parseAnd(), p) }
        return lhs
    }

    private mutating func parseAnd() throws -> TemplateExpr {
        var lhs = try parseNot()
        while peekKeyword("and") { let p = tokens[t].pos; t += 1; lhs = .binary("and", lhs, try parseNot(), p) }
        return lhs
    }

    private mutating func parseNot() throws -> TemplateExpr {
        if peekKeyword("not") { let p = tokens[t].pos; t += 1; return .unary("not", try parseNot(), p) }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> TemplateExpr {
        var lhs = try parseMath1()
        while t < tokens.count {
            let tok = tokens[t]
            if tok.kind == .op, ["==", "!=", "<", ">", "<=", ">="].contains(tok.text) {
                t += 1; lhs = .binary(tok.text, lhs, try parseMath1(), tok.pos)
            } else if peekKeyword("in") {
                t += 1; lhs = .binary("in", lhs, try parseMath1(), tok.pos)
            } else if peekKeyword("not"), t + 1 < tokens.count, tokens[t + 1].kind == .name, tokens[t + 1].text == "in" {
                t += 2; lhs = .unary("not", .binary("in", lhs, try parseMath1(), tok.pos), tok.pos)
            } else {
                break
            }
        }
        return lhs
    }

    private mutating func parseMath1() throws -> TemplateExpr {
        var lhs = try parseConcat()
        while let op = peekOps(["+", "-"]) { let p = tokens[t].pos; t += 1; lhs = .binary(op, lhs, try parseConcat(), p) }
        return lhs
    }

    private mutating func parseConcat() throws -> TemplateExpr {
        var lhs = try parseMath2()
        while peekOp("~") { let p = tokens[t].pos; t += 1; lhs = .binary("~", lhs, try parseMath2(), p) }
        return lhs
    }

    private mutating func parseMath2() throws -> TemplateExpr {
        var lhs = try parseUnary()
        while let op = peekOps(["*", "/", "//", "%"]) { let p = tokens[t].pos; t += 1; lhs = .binary(op, lhs, try parseUnary(), p) }
        if let op = peekOps(["**"]) {
            throw ChatTemplateError.unsupported(construct: "operator '\(op)'", line: tokens[t].pos.line, column: tokens[t].pos.column)
        }
        return lhs
    }

    private mutating func parseUnary() throws -> TemplateExpr {
        if peekOp("-") { let p = tokens[t].pos; t += 1; return .unary("-", try parseUnary(), p) }
        var e = try parsePostfix(try parsePrimary())
        // Filters and tests bind tighter than any binary operator.
        while t < tokens.count {
            if peekOp("|") {
                t += 1
                let nameTok = try expectNameToken()
                guard Self.filters.contains(nameTok.text) else {
                    throw ChatTemplateError.unsupported(construct: "filter '\(nameTok.text)'", line: nameTok.pos.line,
                                                        column: nameTok.pos.column)
                }
                var args: [TemplateExpr] = []
                if peekOp("(") { (args, _) = try parseArguments(allowKeywords: false) }
                e = .filter(e, nameTok.text, args, nameTok.pos)
            } else if peekKeyword("is") {
                t += 1
                var negated = false
                if peekKeyword("not") { t += 1; negated = true }
                let nameTok = try expectNameToken()
                let name = nameTok.text == "None" ? "none" : nameTok.text
                guard Self.tests.contains(name) else {
                    throw ChatTemplateError.unsupported(construct: "test 'is \(nameTok.text)'", line: nameTok.pos.line,
                                                        column: nameTok.pos.column)
                }
                e = .test(e, name, negated: negated, nameTok.pos)
            } else {
                break
            }
        }
        return e
    }

    private mutating func parsePrimary() throws -> TemplateExpr {
        guard t < tokens.count else {
            throw ChatTemplateError.syntax(message: "expression expected", line: tagPos.line, column: tagPos.column)
        }
        let tok = tokens[t]
        t += 1
        switch tok.kind {
        case .string:
            return .literal(.string(tok.text), tok.pos)
        case .integer:
            guard let v = Int(tok.text) else {
                throw ChatTemplateError.syntax(message: "integer literal out of range", line: tok.pos.line, column: tok.pos.column)
            }
            return .literal(.int(v), tok.pos)
        case .name:
            switch tok.text {
            case "true", "True": return .literal(.bool(true), tok.pos)
            case "false", "False": return .literal(.bool(false), tok.pos)
            case "none", "None": return .literal(.none, tok.pos)
            default: return .name(tok.text, tok.pos)
            }
        case .op:
            if tok.text == "(" {
                let e = try parseExpression()
                if peekOp(",") {
                    throw ChatTemplateError.unsupported(construct: "tuple literal", line: tok.pos.line, column: tok.pos.column)
                }
                try expectOp(")")
                return e
            }
            if tok.text == "[" {
                var items: [TemplateExpr] = []
                while !peekOp("]") {
                    items.append(try parseExpression())
                    if !peekOp("]") { try expectOp(",") }
                }
                t += 1
                return .list(items, tok.pos)
            }
            throw ChatTemplateError.syntax(message: "unexpected '\(tok.text)'", line: tok.pos.line, column: tok.pos.column)
        }
    }

    private mutating func parsePostfix(_ base: TemplateExpr) throws -> TemplateExpr {
        var e = base
        while t < tokens.count {
            let tok = tokens[t]
            if peekOp(".") {
                t += 1
                let name = try expectNameToken()
                e = .attribute(e, name.text, name.pos)
            } else if peekOp("[") {
                t += 1
                var parts: [TemplateExpr?] = [nil]
                var colons = 0
                while !peekOp("]") {
                    if peekOp(":") {
                        t += 1; colons += 1; parts.append(nil)
                        guard colons <= 2 else {
                            throw ChatTemplateError.syntax(message: "too many ':' in slice", line: tok.pos.line, column: tok.pos.column)
                        }
                    } else {
                        guard parts[parts.count - 1] == nil else { try expectOp("]"); break }
                        parts[parts.count - 1] = try parseExpression()
                    }
                }
                try expectOp("]")
                if colons == 0 {
                    guard let index = parts[0] else {
                        throw ChatTemplateError.syntax(message: "empty subscript", line: tok.pos.line, column: tok.pos.column)
                    }
                    e = .index(e, index, tok.pos)
                } else {
                    while parts.count < 3 { parts.append(nil) }
                    e = .slice(e, parts[0], parts[1], parts[2], tok.pos)
                }
            } else if peekOp("(") {
                // Only known functions and string methods are callable.
                switch e {
                case .name(let fn, let p) where !Self.functions.contains(fn):
                    throw ChatTemplateError.unsupported(construct: "function '\(fn)()'", line: p.line, column: p.column)
                case .attribute(_, let m, let p) where !Self.methods.contains(m):
                    throw ChatTemplateError.unsupported(construct: "method '.\(m)()'", line: p.line, column: p.column)
                case .name, .attribute:
                    break
                default:
                    throw ChatTemplateError.unsupported(construct: "call of a computed value", line: tok.pos.line,
                                                        column: tok.pos.column)
                }
                let (args, kwargs) = try parseArguments(allowKeywords: true)
                e = .call(e, args, kwargs, tok.pos)
            } else {
                break
            }
        }
        return e
    }

    private mutating func parseArguments(allowKeywords: Bool) throws -> ([TemplateExpr], [(String, TemplateExpr)]) {
        try expectOp("(")
        var args: [TemplateExpr] = []
        var kwargs: [(String, TemplateExpr)] = []
        while !peekOp(")") {
            if allowKeywords, t + 1 < tokens.count, tokens[t].kind == .name, tokens[t + 1].kind == .op,
               tokens[t + 1].text == "=" {
                let name = tokens[t].text
                t += 2
                kwargs.append((name, try parseExpression()))
            } else {
                args.append(try parseExpression())
            }
            if !peekOp(")") { try expectOp(",") }
        }
        t += 1
        return (args, kwargs)
    }

    // MARK: Token helpers

    private mutating func begin(_ toks: [TemplateLexer.Token], _ p: SourcePos) {
        tokens = toks; t = 0; tagPos = p
    }

    private func peekOp(_ op: String) -> Bool {
        t < tokens.count && tokens[t].kind == .op && tokens[t].text == op
    }

    private func peekOps(_ ops: [String]) -> String? {
        guard t < tokens.count, tokens[t].kind == .op, ops.contains(tokens[t].text) else { return nil }
        return tokens[t].text
    }

    private func peekKeyword(_ word: String) -> Bool {
        t < tokens.count && tokens[t].kind == .name && tokens[t].text == word
    }

    private func here() -> SourcePos { t < tokens.count ? tokens[t].pos : tagPos }

    private mutating func expectOp(_ op: String) throws {
        guard peekOp(op) else {
            let p = here()
            let found = t < tokens.count ? "'\(tokens[t].text)'" : "end of tag"
            throw ChatTemplateError.syntax(message: "expected '\(op)', found \(found)", line: p.line, column: p.column)
        }
        t += 1
    }

    private mutating func expectKeyword(_ word: String) throws {
        guard peekKeyword(word) else {
            let p = here()
            throw ChatTemplateError.syntax(message: "expected '\(word)'", line: p.line, column: p.column)
        }
        t += 1
    }

    private mutating func expectNameToken() throws -> TemplateLexer.Token {
        guard t < tokens.count, tokens[t].kind == .name else {
            let p = here()
            throw ChatTemplateError.syntax(message: "name expected", line: p.line, column: p.column)
        }
        t += 1
        return tokens[t - 1]
    }

    private mutating func expectName() throws -> String { try expectNameToken().text }

    private func expectEnd() throws {
        guard t >= tokens.count else {
            let p = tokens[t].pos
            throw ChatTemplateError.syntax(message: "unexpected '\(tokens[t].text)'", line: p.line, column: p.column)
        }
    }
}
