/// Why a chat template could not be parsed or rendered; positions are 1-based line/column
/// of the template source.
public enum ChatTemplateError: Error, Equatable, CustomStringConvertible {
    /// A Jinja construct outside the supported subset (named, e.g. "{% macro %}", "filter 'tojson'").
    case unsupported(construct: String, line: Int, column: Int)
    /// Malformed template text (unclosed tag, unexpected token, missing `endfor`, ...).
    case syntax(message: String, line: Int, column: Int)
    /// A rendering failure: type error, attribute of an undefined value, bad index.
    case render(message: String, line: Int, column: Int)
    /// The template called `raise_exception(message)` (e.g. roles do not alternate).
    case raised(message: String)

    public var description: String {
        switch self {
        case .unsupported(let construct, let line, let column):
            return "chat template: unsupported construct \(construct) at line \(line), column \(column)"
        case .syntax(let message, let line, let column):
            return "chat template: syntax error at line \(line), column \(column): \(message)"
        case .render(let message, let line, let column):
            return "chat template: render error at line \(line), column \(column): \(message)"
        case .raised(let message):
            return "chat template raised: \(message)"
        }
    }
}

/// A 1-based line/column in the template source, carried by tokens and AST nodes.
struct SourcePos: Equatable, Sendable {
    var line: Int
    var column: Int
}
