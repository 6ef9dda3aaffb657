import EffCore

extension ChatTemplate {
    /// The model's `tokenizer.chat_template`, or ChatML with the reason when the file has no
    /// template or its template uses something this renderer does not support.
    public static func fromModel(_ gguf: GGUFFile) -> (template: ChatTemplate, fallbackReason: String?) {
        guard gguf.has(GGUFTokenizerKey.chatTemplate) else {
            return (.chatML, "the model file has no '\(GGUFTokenizerKey.chatTemplate)'; using ChatML")
        }
        do {
            let source = try gguf.string(GGUFTokenizerKey.chatTemplate)
            let template = try ChatTemplate(source: source)
            // Probe one ordinary turn so constructs that only fail while rendering (a type
            // error, an attribute of an undefined value) are caught now, not mid-chat. A
            // template's own raise_exception is policy for some conversations, not a defect.
            do {
                _ = try template.render([ChatMessage(role: "user", content: "hi")], addGenerationPrompt: true)
            } catch ChatTemplateError.raised {
            }
            return (template, nil)
        } catch {
            return (.chatML, "the model's '\(GGUFTokenizerKey.chatTemplate)' cannot be used (\(error)); using ChatML")
        }
    }
}
