import Testing
@testable import EffLLM

@Suite("Chat template errors")
struct ChatTemplateErrorTests {
    private func parse(_ s: String) throws { _ = try ChatTemplate(source: s) }

    @Test("unsupported constructs are named with line and column")
    func unsupported() {
        #expect(throws: ChatTemplateError.unsupported(construct: "'{% macro %}'", line: 1, column: 1)) {
            try parse("{% macro foo() %}x{% endmacro %}")
        }
        #expect(throws: ChatTemplateError.unsupported(construct: "filter 'tojson'", line: 2, column: 10)) {
            try parse("a\n  {{ x | tojson }}")
        }
        #expect(throws: ChatTemplateError.unsupported(construct: "dict literal '{...}'", line: 1, column: 4)) {
            try parse("{{ {'a': 1} }}")
        }
        #expect(throws: ChatTemplateError.unsupported(construct: "tuple unpacking in '{% for %}'", line: 1, column: 1)) {
            try parse("{% for k, v in d %}{% endfor %}")
        }
        #expect(throws: ChatTemplateError.unsupported(construct: "method '.items()'", line: 1, column: 6)) {
            try parse("{{ d.items() }}")
        }
        #expect(throws: ChatTemplateError.unsupported(construct: "function 'strftime_now()'", line: 1, column: 4)) {
            try parse("{{ strftime_now('%Y') }}")
        }
        #expect(throws: ChatTemplateError.unsupported(construct: "'{% break %}'", line: 1, column: 24)) {
            try parse("{% for m in messages %}{% break %}{% endfor %}")
        }
        #expect(throws: ChatTemplateError.unsupported(construct: "test 'is divisibleby'", line: 1, column: 9)) {
            try parse("{{ 3 is divisibleby(3) }}")
        }
    }

    @Test("syntax errors say what is wrong and where")
    func syntax() {
        #expect(throws: ChatTemplateError.syntax(message: "missing '{% endfor %}' before the end of the template",
                                                 line: 1, column: 1)) {
            try parse("{% for x in xs %}x")
        }
        #expect(throws: ChatTemplateError.syntax(message: "tag opened here is never closed", line: 1, column: 2)) {
            try parse("a{{ x ")
        }
        #expect(throws: ChatTemplateError.syntax(message: "unexpected '{% endif %}'", line: 1, column: 1)) {
            try parse("{% endif %}")
        }
        #expect(throws: ChatTemplateError.syntax(message: "string literal is never closed", line: 1, column: 4)) {
            try parse("{{ 'abc }}")
        }
        #expect(throws: ChatTemplateError.syntax(message: "unexpected 'y'", line: 1, column: 6)) {
            try parse("{{ x y }}")
        }
    }

    @Test("render errors for undefined objects and type mismatches")
    func render() throws {
        let undefinedAttr = try ChatTemplate(source: "{{ foo.bar }}")
        #expect(throws: ChatTemplateError.render(message: "cannot read '.bar' of an undefined value", line: 1, column: 8)) {
            try undefinedAttr.render([], addGenerationPrompt: false)
        }
        let typeError = try ChatTemplate(source: "{{ 'a' + 1 }}")
        #expect(throws: ChatTemplateError.render(message: "cannot apply '+' to string and int", line: 1, column: 8)) {
            try typeError.render([], addGenerationPrompt: false)
        }
        let undefinedPlus = try ChatTemplate(source: "{{ 'a' + nope }}")
        #expect(throws: ChatTemplateError.self) { try undefinedPlus.render([], addGenerationPrompt: false) }
    }

    @Test("errors describe themselves for people")
    func descriptions() {
        let e = ChatTemplateError.unsupported(construct: "filter 'tojson'", line: 3, column: 7)
        #expect(e.description == "chat template: unsupported construct filter 'tojson' at line 3, column 7")
    }
}
