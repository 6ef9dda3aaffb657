import Testing
@testable import EffLLM

@Suite("Chat template constructs")
struct ChatTemplateTests {
    private let three = [ChatMessage(role: "user", content: "a"), ChatMessage(role: "assistant", content: "b"),
                         ChatMessage(role: "user", content: "c")]

    private func render(_ source: String, _ messages: [ChatMessage]? = nil, generation: Bool = false,
                        bos: String = "", eos: String = "") throws -> String {
        try ChatTemplate(source: source).render(messages ?? three, addGenerationPrompt: generation,
                                                bosToken: bos, eosToken: eos)
    }

    @Test("ChatML fallback renders the standard layout")
    func chatML() throws {
        let out = try ChatTemplate.chatML.render([ChatMessage(role: "system", content: "S"),
                                                  ChatMessage(role: "user", content: "U")], addGenerationPrompt: true)
        #expect(out == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n")
        #expect(try ChatTemplate.chatML.render([], addGenerationPrompt: false) == "")
    }

    @Test("loop variables")
    func loopVariables() throws {
        let src = "{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}"
        #expect(try render(src, Array(three.prefix(2))) == "10TrueFalse2|21FalseTrue2|")
        #expect(try render("{% for m in messages %}{{ loop.revindex0 }}{% endfor %}") == "210")
    }

    @Test("if / elif / else, attribute and index access")
    func conditionals() throws {
        let src = "{% for m in messages %}{% if m.role == 'user' %}U{% elif m['role'] == 'assistant' %}A{% else %}?{% endif %}{% endfor %}"
        #expect(try render(src, three + [ChatMessage(role: "tool", content: "t")]) == "UAU?")
        #expect(try render("{{ 'y' if messages else 'n' }}") == "y")
        #expect(try render("{{ 'y' if messages else 'n' }}", []) == "n")
    }

    @Test("set is scoped to the loop iteration; namespace escapes it")
    func setScoping() throws {
        #expect(try render("{% set x = 'out' %}{% for m in messages %}{% set x = 'in' %}{% endfor %}{{ x }}") == "out")
        #expect(try render("{% if true %}{% set x = 'if' %}{% endif %}{{ x }}") == "if")
        #expect(try render("{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}") == "3")
    }

    @Test("literals, escapes, + and ~ (which binds tighter)")
    func concatenation() throws {
        #expect(try render(#"{{ 'a' + "b" ~ 1 ~ none ~ true }}"#) == "ab1NoneTrue")
        #expect(try render(#"{{ 'it\'s\n' + "\"q\"" }}"#) == "it's\n\"q\"")
        #expect(try render("{{ [1, 'x'] }}{{ 3 - 5 }}{{ 'ab' * 2 }}") == "[1, 'x']-2abab")
    }

    @Test("tests, boolean operators, membership")
    func logic() throws {
        #expect(try render("{{ foo is defined }}{{ messages is defined }}{{ foo is not defined }}") == "FalseTrueTrue")
        #expect(try render("{{ none is none }}{{ 'x' is string }}{{ 3 is odd }}") == "TrueTrueTrue")
        #expect(try render("{{ not false and (1 == 1 or x.y) }}") == "True")   // or short-circuits
        #expect(try render("{{ '' or 'fallback' }}{{ 0 and 1 }}") == "fallback0")
        #expect(try render("{{ 'ell' in 'hello' }}{{ 'x' not in 'hello' }}{{ 2 in [1, 2] }}") == "TrueTrueTrue")
        #expect(try render("{{ 1 < 2 }}{{ 'b' >= 'a' }}{{ 1 != 1 }}") == "TrueTrueFalse")
        #expect(try render("{{ 'e' in 'e\u{301}' }}") == "True")   // code points, as Python
    }

    @Test("filters and string methods")
    func filters() throws {
        #expect(try render("{{ '  hi  ' | trim }}|{{ messages | length }}|{{ 'abc' | length }}|{{ 'Hi' | upper }}") == "hi|3|3|HI")
        #expect(try render("{{ undefinedthing | default('d') }}{{ messages | first | length }}") == "d2")
        #expect(try render("{{ ' x '.strip() }}{{ 'xxaxx'.strip('x') }}{{ 'Hello'.startswith('He') }}{{ 'Hello'.endswith('x') }}") == "xaTrueFalse")
    }

    @Test("slices, negative indices, integer arithmetic as Python")
    func slicing() throws {
        #expect(try render("{{ messages[1:] | length }}{{ messages[-1].content }}{{ 'hello'[1:3] }}{{ 'abc'[::-1] }}") == "2celcba")
        #expect(try render("{{ messages[5] is defined }}") == "False")
        #expect(try render("{{ 7 % 3 }}{{ -7 % 3 }}{{ 7 // 2 }}{{ -7 // 2 }}") == "123-4")
    }

    @Test("loop filter and loop else")
    func loopFilterElse() throws {
        let src = "{% for m in messages if m.role == 'user' %}{{ m.content }}{% else %}none{% endfor %}"
        #expect(try render(src) == "ac")
        #expect(try render(src, [ChatMessage(role: "assistant", content: "b")]) == "none")
    }

    @Test("whitespace control: '-' strips all, trim_blocks and lstrip_blocks as HF")
    func whitespace() throws {
        #expect(try render("a  {%- if true -%}  b  {%- endif %}  c") == "ab  c")
        let blocks = "{% for m in messages %}\n    {% if m.role == 'user' %}\n[{{ m.content }}]\n    {% endif %}\n{% endfor %}\n"
        #expect(try render(blocks) == "[a]\n[c]\n")
        #expect(try render("a{# note #}b{# trailing #}\nc") == "abc")
        #expect(try render("x  {%+ if true %}y{% endif %}") == "x  y")   // '+' keeps the spaces
        #expect(try render("line\n") == "line")                          // keep_trailing_newline = False
    }

    @Test("raise_exception surfaces the template's message")
    func raise() throws {
        let src = "{% if messages[0].role == 'system' %}{{ raise_exception('no system') }}{% endif %}ok"
        #expect(throws: ChatTemplateError.raised(message: "no system")) {
            try render(src, [ChatMessage(role: "system", content: "s")])
        }
        #expect(try render(src) == "ok")
    }

    @Test("Llama 2 template (HF text): system folding, role alternation, strip()")
    func llama2() throws {
        let src = #"{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"#
        let msgs = [ChatMessage(role: "system", content: "S"), ChatMessage(role: "user", content: " hi "),
                    ChatMessage(role: "assistant", content: "yo"), ChatMessage(role: "user", content: "q")]
        #expect(try render(src, msgs, bos: "<s>", eos: "</s>")
                == "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\n hi [/INST] yo </s><s>[INST] q [/INST]")
        #expect(throws: ChatTemplateError.self) {
            try render(src, [ChatMessage(role: "user", content: "a"), ChatMessage(role: "user", content: "b")])
        }
    }

    @Test("Llama 3 template: filter binds tighter than +")
    func llama3() throws {
        let src = #"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"#
        #expect(try render(src, [ChatMessage(role: "user", content: " Hi ")], generation: true, bos: "<|begin_of_text|>")
                == "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    }

    @Test("Zephyr template: multi-line source relies on trim_blocks")
    func zephyr() throws {
        let src = """
            {% for message in messages %}
            {% if message['role'] == 'user' %}
            {{ '<|user|>\\n' + message['content'] + eos_token }}
            {% elif message['role'] == 'system' %}
            {{ '<|system|>\\n' + message['content'] + eos_token }}
            {% elif message['role'] == 'assistant' %}
            {{ '<|assistant|>\\n'  + message['content'] + eos_token }}
            {% endif %}
            {% if loop.last and add_generation_prompt %}
            {{ '<|assistant|>' }}
            {% endif %}
            {% endfor %}

            """
        #expect(try render(src, [ChatMessage(role: "user", content: "Hi")], generation: true, eos: "</s>")
                == "<|user|>\nHi</s>\n<|assistant|>\n")
    }

    @Test("source hash is FNV-1a 64 and stable")
    func hash() throws {
        #expect(ChatTemplate.fnv1a64Hex("") == "cbf29ce484222325")
        #expect(ChatTemplate.fnv1a64Hex("a") == "af63dc4c8601ec8c")
        #expect(try ChatTemplate(source: "x").sourceHash == ChatTemplate.fnv1a64Hex("x"))
        #expect(ChatTemplate.chatML.sourceHash.count == 16)
    }
}
