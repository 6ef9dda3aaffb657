/// One chat turn as a template sees it (`message['role']`, `message['content']`).
public struct ChatMessage: Sendable, Codable, Equatable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A model's chat template (`tokenizer.chat_template`), parsed once and rendered with a
/// small, strict Jinja subset.
///
/// Supported: `{{ }}`, `{% for x in xs [if c] %}...{% else %}...{% endfor %}` with
/// `loop.index/index0/first/last/length/revindex/revindex0`, `{% if %}/{% elif %}/{% else %}`,
/// `{% set x = e %}` and `{% set ns.a = e %}` with `namespace(...)`, string/integer/bool/none
/// literals and lists, `+ - * // % ~`, comparisons, `in`, `and/or/not`, `a if c else b`,
/// `x.attr`, `x['key']`, slices, tests (`is defined`, `is none`, `is string`, ...), filters
/// `trim length count upper lower capitalize string default first last join int`, string
/// methods `strip lstrip rstrip upper lower startswith endswith title capitalize`,
/// `raise_exception(msg)`, `range()`, comments, `-`/`+` whitespace control, and the
/// environment HF/llama.cpp use (trim_blocks, lstrip_blocks, no trailing newline).
/// Anything else fails at `init` with `ChatTemplateError.unsupported` naming the construct.
public struct ChatTemplate: Sendable {
    /// The template text as given.
    public let source: String
    /// FNV-1a 64-bit hash of the source's UTF-8 bytes, 16 lowercase hex digits (transcripts).
    public let sourceHash: String
    private let nodes: [TemplateNode]

    /// Parses `source`; throws `ChatTemplateError` naming an unsupported construct (with
    /// line/column) or a syntax error.
    public init(source: String) throws {
        self.source = source
        self.sourceHash = Self.fnv1a64Hex(source)
        self.nodes = try TemplateParser.parse(source)
    }

    /// Renders the conversation as the model expects it.
    /// - Parameters:
    ///   - addGenerationPrompt: append the header that opens the assistant's turn.
    ///   - bosToken, eosToken: the texts bound to `bos_token` / `eos_token`.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String = "",
                       eosToken: String = "") throws -> String {
        let list: [TemplateValue] = messages.map {
            .dict(["role": .string($0.role), "content": .string($0.content)])
        }
        return try render(globals: [
            "messages": .list(list),
            "add_generation_prompt": .bool(addGenerationPrompt),
            "bos_token": .string(bosToken),
            "eos_token": .string(eosToken),
        ])
    }

    /// Renders with arbitrary top-level variables (tests exercise constructs with it).
    func render(globals: [String: TemplateValue]) throws -> String {
        var renderer = TemplateRenderer(globals: globals)
        try renderer.render(nodes)
        return renderer.output
    }

    /// The ChatML source used when a model has no usable template.
    public static let chatMLSource = """
        {% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
        """

    /// Plain ChatML (`<|im_start|>role\ncontent<|im_end|>\n`), the fallback template.
    public static let chatML: ChatTemplate = {
        // The source is a constant of this file and covered by tests, so it always parses.
        try! ChatTemplate(source: chatMLSource)
    }()

    /// FNV-1a, 64 bit, over UTF-8 bytes.
    static func fnv1a64Hex(_ s: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01B3
        }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
