import Foundation
import Testing
@testable import EffLLM

/// Differential goldens: 15 templates (this model's, ChatML, Llama 2/3, Zephyr, Gemma, Phi-3,
/// Mistral, plus whitespace/scope/namespace/operator stress templates) x 5 conversations x
/// add_generation_prompt, rendered by Python Jinja2 3.1.6 configured as Hugging Face
/// transformers renders chat templates: `ImmutableSandboxedEnvironment(trim_blocks=True,
/// lstrip_blocks=True)` with a `raise_exception` global, bos_token "<s>", eos_token "</s>".
/// `error` holds the message of a raise_exception the template triggered.
@Suite("Chat template vs Jinja2 goldens")
struct ChatTemplateJinjaGoldenTests {
    private struct Golden: Decodable {
        let templates: [String: String]
        let conversations: [[[String: String]]]
        let cases: [Case]
    }

    private struct Case: Decodable {
        let template: String, conversation: Int, generation: Bool, output: String?, error: String?
        init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            template = try c.decode(String.self)
            conversation = try c.decode(Int.self)
            generation = try c.decode(Bool.self)
            output = try c.decode(String?.self)
            error = try c.decode(String?.self)
        }
    }

    @Test("every golden renders byte-for-byte as Jinja2 does (or raises the same message)")
    func goldens() throws {
        let golden = try JSONDecoder().decode(Golden.self, from: Data(Self.json.utf8))
        var parsed: [String: ChatTemplate] = [:]
        for (name, source) in golden.templates { parsed[name] = try ChatTemplate(source: source) }
        var agree = 0
        for c in golden.cases {
            let template = try #require(parsed[c.template])
            let messages = golden.conversations[c.conversation].map {
                ChatMessage(role: $0["role"] ?? "", content: $0["content"] ?? "")
            }
            do {
                let out = try template.render(messages, addGenerationPrompt: c.generation, bosToken: "<s>", eosToken: "</s>")
                #expect(out == c.output, "\(c.template) conversation \(c.conversation) generation \(c.generation)")
                if out == c.output { agree += 1 }
            } catch ChatTemplateError.raised(let message) {
                #expect(message == c.error, "\(c.template) conversation \(c.conversation)")
                if message == c.error { agree += 1 }
            }
        }
        #expect(golden.cases.count == 150 && agree == golden.cases.count)
    }

    private static let json = #"""
{"templates": {
  "smollm": "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
  "chatml": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
  "llama2": "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
  "llama3": "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
  "zephyr": "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}",
  "gemma": "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}",
  "phi3": "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}",
  "mistral": "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}",
  "ns": "{%- set ns = namespace(sys='', n=0) -%}\n{%- for m in messages -%}\n  {%- if m.role == 'system' -%}\n    {%- set ns.sys = m.content -%}\n  {%- else -%}\n    {%- set ns.n = ns.n + 1 -%}\n  {%- endif -%}\n{%- endfor -%}\nSYS={{ ns.sys }} N={{ ns.n }}\n{% for m in messages if m.role != 'system' %}\n  {{ loop.index }}/{{ loop.length }} {{ m.role | upper }}: {{ m.content | trim }}{{ '' if loop.last else ',' }}\n{% endfor %}\n",
  "ws": "A\n  {% if true %}\n    B  \n  {% endif %}\n  {{ 'C' }}\n{# comment #}\nD {%+ if true %}E{% endif %}\n\t{% for m in messages %}[{{ m.content[:3] }}|{{ m['content'][-2:] }}]{% endfor %}\n{{- ' F ' -}}\n  G\n",
  "misc": "{% set x = messages | length %}{{ x * 2 }} {{ x // 2 }} {{ x % 2 }} {{ -x }} {{ 'a' ~ x ~ none }} {{ messages[0].content.startswith('Hel') }} {{ 'x' in messages[0].content }} {{ messages[99] is defined }} {{ (messages | last).role }} {{ messages | first is mapping }} {{ [1,2] + [3] }} {{ 'ab' * 3 }} {{ none }} {{ true and 'yes' }} {{ 0 or 'zero' }} {{ 'Ab Cd'.lower() }} {{ 'hello world'.title() }} {% if x > 1 and not (x == 5) %}big{% elif x == 1 %}one{% else %}none{% endif %}",
  "ws2": "x {% if true %}y{% endif %}\n   {# c #}\n  z {{ '%}' }} {{ '{{' }}\n{%- for m in messages %}\n  {% for c in m.content[:2] %}{{ loop.index }}{{ c }}{% endfor %}|{{ loop.index }}\n{% endfor %}\n\n",
  "crlf": "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc\r\n",
  "scope": "{% set y = 1 %}{% for m in messages %}{% set y = y + 1 %}{{ y }}{% for n in messages %}{% set y = 10 %}{% endfor %}{{ y }}{% endfor %}{{ y }}",
  "cond": "{{ 'a' if messages | length > 1 else 'b' }}{{ 'c' if false }}{% for m in messages %}{{ m.role if loop.first else ',' ~ m.role }}{% endfor %}"
}, "conversations": [
  [{"role": "user", "content": "Hello there"}],
  [{"role": "system", "content": "Be brief."}, {"role": "user", "content": " What is 2+2? "}],
  [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}, {"role": "user", "content": "Tell me a joke\nwith newlines\n"}],
  [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
  [{"role": "user", "content": "Ünïcödé 😀 中文 x"}]
], "cases": [
  ["smollm", 0, true, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n", null],
  ["smollm", 0, false, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n", null],
  ["smollm", 1, true, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n What is 2+2? <|im_end|>\n<|im_start|>assistant\n", null],
  ["smollm", 1, false, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n What is 2+2? <|im_end|>\n", null],
  ["smollm", 2, true, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello! How can I help?<|im_end|>\n<|im_start|>user\nTell me a joke\nwith newlines\n<|im_end|>\n<|im_start|>assistant\n", null],
  ["smollm", 2, false, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello! How can I help?<|im_end|>\n<|im_start|>user\nTell me a joke\nwith newlines\n<|im_end|>\n", null],
  ["smollm", 3, true, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\na<|im_end|>\n<|im_start|>user\nb<|im_end|>\n<|im_start|>assistant\n", null],
  ["smollm", 3, false, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\na<|im_end|>\n<|im_start|>user\nb<|im_end|>\n", null],
  ["smollm", 4, true, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nÜnïcödé 😀 中文 x<|im_end|>\n<|im_start|>assistant\n", null],
  ["smollm", 4, false, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nÜnïcödé 😀 中文 x<|im_end|>\n", null],
  ["chatml", 0, true, "<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n", null],
  ["chatml", 0, false, "<|im_start|>user\nHello there<|im_end|>\n", null],
  ["chatml", 1, true, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n What is 2+2? <|im_end|>\n<|im_start|>assistant\n", null],
  ["chatml", 1, false, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n What is 2+2? <|im_end|>\n", null],
  ["chatml", 2, true, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello! How can I help?<|im_end|>\n<|im_start|>user\nTell me a joke\nwith newlines\n<|im_end|>\n<|im_start|>assistant\n", null],
  ["chatml", 2, false, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello! How can I help?<|im_end|>\n<|im_start|>user\nTell me a joke\nwith newlines\n<|im_end|>\n", null],
  ["chatml", 3, true, "<|im_start|>user\na<|im_end|>\n<|im_start|>user\nb<|im_end|>\n<|im_start|>assistant\n", null],
  ["chatml", 3, false, "<|im_start|>user\na<|im_end|>\n<|im_start|>user\nb<|im_end|>\n", null],
  ["chatml", 4, true, "<|im_start|>user\nÜnïcödé 😀 中文 x<|im_end|>\n<|im_start|>assistant\n", null],
  ["chatml", 4, false, "<|im_start|>user\nÜnïcödé 😀 中文 x<|im_end|>\n", null],
  ["llama2", 0, true, "<s>[INST] Hello there [/INST]", null],
  ["llama2", 0, false, "<s>[INST] Hello there [/INST]", null],
  ["llama2", 1, true, "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n What is 2+2? [/INST]", null],
  ["llama2", 1, false, "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n What is 2+2? [/INST]", null],
  ["llama2", 2, true, "<s>[INST] Hi [/INST] Hello! How can I help? </s><s>[INST] Tell me a joke\nwith newlines [/INST]", null],
  ["llama2", 2, false, "<s>[INST] Hi [/INST] Hello! How can I help? </s><s>[INST] Tell me a joke\nwith newlines [/INST]", null],
  ["llama2", 3, true, null, "Conversation roles must alternate user/assistant/user/assistant/..."],
  ["llama2", 3, false, null, "Conversation roles must alternate user/assistant/user/assistant/..."],
  ["llama2", 4, true, "<s>[INST] Ünïcödé 😀 中文 x [/INST]", null],
  ["llama2", 4, false, "<s>[INST] Ünïcödé 😀 中文 x [/INST]", null],
  ["llama3", 0, true, "<s><|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", null],
  ["llama3", 0, false, "<s><|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|>", null],
  ["llama3", 1, true, "<s><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", null],
  ["llama3", 1, false, "<s><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>", null],
  ["llama3", 2, true, "<s><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nTell me a joke\nwith newlines<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", null],
  ["llama3", 2, false, "<s><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nTell me a joke\nwith newlines<|eot_id|>", null],
  ["llama3", 3, true, "<s><|start_header_id|>user<|end_header_id|>\n\na<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nb<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", null],
  ["llama3", 3, false, "<s><|start_header_id|>user<|end_header_id|>\n\na<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nb<|eot_id|>", null],
  ["llama3", 4, true, "<s><|start_header_id|>user<|end_header_id|>\n\nÜnïcödé 😀 中文 x<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", null],
  ["llama3", 4, false, "<s><|start_header_id|>user<|end_header_id|>\n\nÜnïcödé 😀 中文 x<|eot_id|>", null],
  ["zephyr", 0, true, "<|user|>\nHello there</s>\n<|assistant|>\n", null],
  ["zephyr", 0, false, "<|user|>\nHello there</s>\n", null],
  ["zephyr", 1, true, "<|system|>\nBe brief.</s>\n<|user|>\n What is 2+2? </s>\n<|assistant|>\n", null],
  ["zephyr", 1, false, "<|system|>\nBe brief.</s>\n<|user|>\n What is 2+2? </s>\n", null],
  ["zephyr", 2, true, "<|user|>\nHi</s>\n<|assistant|>\nHello! How can I help?</s>\n<|user|>\nTell me a joke\nwith newlines\n</s>\n<|assistant|>\n", null],
  ["zephyr", 2, false, "<|user|>\nHi</s>\n<|assistant|>\nHello! How can I help?</s>\n<|user|>\nTell me a joke\nwith newlines\n</s>\n", null],
  ["zephyr", 3, true, "<|user|>\na</s>\n<|user|>\nb</s>\n<|assistant|>\n", null],
  ["zephyr", 3, false, "<|user|>\na</s>\n<|user|>\nb</s>\n", null],
  ["zephyr", 4, true, "<|user|>\nÜnïcödé 😀 中文 x</s>\n<|assistant|>\n", null],
  ["zephyr", 4, false, "<|user|>\nÜnïcödé 😀 中文 x</s>\n", null],
  ["gemma", 0, true, "<s><start_of_turn>user\nHello there<end_of_turn>\n<start_of_turn>model\n", null],
  ["gemma", 0, false, "<s><start_of_turn>user\nHello there<end_of_turn>\n", null],
  ["gemma", 1, true, null, "System role not supported"],
  ["gemma", 1, false, null, "System role not supported"],
  ["gemma", 2, true, "<s><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello! How can I help?<end_of_turn>\n<start_of_turn>user\nTell me a joke\nwith newlines<end_of_turn>\n<start_of_turn>model\n", null],
  ["gemma", 2, false, "<s><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello! How can I help?<end_of_turn>\n<start_of_turn>user\nTell me a joke\nwith newlines<end_of_turn>\n", null],
  ["gemma", 3, true, null, "Conversation roles must alternate user/assistant/user/assistant/..."],
  ["gemma", 3, false, null, "Conversation roles must alternate user/assistant/user/assistant/..."],
  ["gemma", 4, true, "<s><start_of_turn>user\nÜnïcödé 😀 中文 x<end_of_turn>\n<start_of_turn>model\n", null],
  ["gemma", 4, false, "<s><start_of_turn>user\nÜnïcödé 😀 中文 x<end_of_turn>\n", null],
  ["phi3", 0, true, "<|user|>\nHello there<|end|>\n<|assistant|>\n", null],
  ["phi3", 0, false, "<|user|>\nHello there<|end|>\n</s>", null],
  ["phi3", 1, true, "<|system|>\nBe brief.<|end|>\n<|user|>\n What is 2+2? <|end|>\n<|assistant|>\n", null],
  ["phi3", 1, false, "<|system|>\nBe brief.<|end|>\n<|user|>\n What is 2+2? <|end|>\n</s>", null],
  ["phi3", 2, true, "<|user|>\nHi<|end|>\n<|assistant|>\nHello! How can I help?<|end|>\n<|user|>\nTell me a joke\nwith newlines\n<|end|>\n<|assistant|>\n", null],
  ["phi3", 2, false, "<|user|>\nHi<|end|>\n<|assistant|>\nHello! How can I help?<|end|>\n<|user|>\nTell me a joke\nwith newlines\n<|end|>\n</s>", null],
  ["phi3", 3, true, "<|user|>\na<|end|>\n<|user|>\nb<|end|>\n<|assistant|>\n", null],
  ["phi3", 3, false, "<|user|>\na<|end|>\n<|user|>\nb<|end|>\n</s>", null],
  ["phi3", 4, true, "<|user|>\nÜnïcödé 😀 中文 x<|end|>\n<|assistant|>\n", null],
  ["phi3", 4, false, "<|user|>\nÜnïcödé 😀 中文 x<|end|>\n</s>", null],
  ["mistral", 0, true, "<s>[INST] Hello there [/INST]", null],
  ["mistral", 0, false, "<s>[INST] Hello there [/INST]", null],
  ["mistral", 1, true, null, "Conversation roles must alternate user/assistant/user/assistant/..."],
  ["mistral", 1, false, null, "Conversation roles must alternate user/assistant/user/assistant/..."],
  ["mistral", 2, true, "<s>[INST] Hi [/INST]Hello! How can I help?</s>[INST] Tell me a joke\nwith newlines\n [/INST]", null],
  ["mistral", 2, false, "<s>[INST] Hi [/INST]Hello! How can I help?</s>[INST] Tell me a joke\nwith newlines\n [/INST]", null],
  ["mistral", 3, true, null, "Conversation roles must alternate user/assistant/user/assistant/..."],
  ["mistral", 3, false, null, "Conversation roles must alternate user/assistant/user/assistant/..."],
  ["mistral", 4, true, "<s>[INST] Ünïcödé 😀 中文 x [/INST]", null],
  ["mistral", 4, false, "<s>[INST] Ünïcödé 😀 中文 x [/INST]", null],
  ["ns", 0, true, "SYS= N=1\n  1/1 USER: Hello there\n", null],
  ["ns", 0, false, "SYS= N=1\n  1/1 USER: Hello there\n", null],
  ["ns", 1, true, "SYS=Be brief. N=1\n  1/1 USER: What is 2+2?\n", null],
  ["ns", 1, false, "SYS=Be brief. N=1\n  1/1 USER: What is 2+2?\n", null],
  ["ns", 2, true, "SYS= N=3\n  1/3 USER: Hi,\n  2/3 ASSISTANT: Hello! How can I help?,\n  3/3 USER: Tell me a joke\nwith newlines\n", null],
  ["ns", 2, false, "SYS= N=3\n  1/3 USER: Hi,\n  2/3 ASSISTANT: Hello! How can I help?,\n  3/3 USER: Tell me a joke\nwith newlines\n", null],
  ["ns", 3, true, "SYS= N=2\n  1/2 USER: a,\n  2/2 USER: b\n", null],
  ["ns", 3, false, "SYS= N=2\n  1/2 USER: a,\n  2/2 USER: b\n", null],
  ["ns", 4, true, "SYS= N=1\n  1/1 USER: Ünïcödé 😀 中文 x\n", null],
  ["ns", 4, false, "SYS= N=1\n  1/1 USER: Ünïcödé 😀 中文 x\n", null],
  ["ws", 0, true, "A\n    B  \n  C\nD E[Hel|re] F G", null],
  ["ws", 0, false, "A\n    B  \n  C\nD E[Hel|re] F G", null],
  ["ws", 1, true, "A\n    B  \n  C\nD E[Be |f.][ Wh|? ] F G", null],
  ["ws", 1, false, "A\n    B  \n  C\nD E[Be |f.][ Wh|? ] F G", null],
  ["ws", 2, true, "A\n    B  \n  C\nD E[Hi|Hi][Hel|p?][Tel|s\n] F G", null],
  ["ws", 2, false, "A\n    B  \n  C\nD E[Hi|Hi][Hel|p?][Tel|s\n] F G", null],
  ["ws", 3, true, "A\n    B  \n  C\nD E[a|a][b|b] F G", null],
  ["ws", 3, false, "A\n    B  \n  C\nD E[a|a][b|b] F G", null],
  ["ws", 4, true, "A\n    B  \n  C\nD E[Ünï| x] F G", null],
  ["ws", 4, false, "A\n    B  \n  C\nD E[Ünï| x] F G", null],
  ["misc", 0, true, "2 0 1 -1 a1None True False False user True [1, 2, 3] ababab None yes zero ab cd Hello World one", null],
  ["misc", 0, false, "2 0 1 -1 a1None True False False user True [1, 2, 3] ababab None yes zero ab cd Hello World one", null],
  ["misc", 1, true, "4 1 0 -2 a2None False False False user True [1, 2, 3] ababab None yes zero ab cd Hello World big", null],
  ["misc", 1, false, "4 1 0 -2 a2None False False False user True [1, 2, 3] ababab None yes zero ab cd Hello World big", null],
  ["misc", 2, true, "6 1 1 -3 a3None False False False user True [1, 2, 3] ababab None yes zero ab cd Hello World big", null],
  ["misc", 2, false, "6 1 1 -3 a3None False False False user True [1, 2, 3] ababab None yes zero ab cd Hello World big", null],
  ["misc", 3, true, "4 1 0 -2 a2None False False False user True [1, 2, 3] ababab None yes zero ab cd Hello World big", null],
  ["misc", 3, false, "4 1 0 -2 a2None False False False user True [1, 2, 3] ababab None yes zero ab cd Hello World big", null],
  ["misc", 4, true, "2 0 1 -1 a1None False True False user True [1, 2, 3] ababab None yes zero ab cd Hello World one", null],
  ["misc", 4, false, "2 0 1 -1 a1None False True False user True [1, 2, 3] ababab None yes zero ab cd Hello World one", null],
  ["ws2", 0, true, "x y  z %} {{1H2e|1\n", null],
  ["ws2", 0, false, "x y  z %} {{1H2e|1\n", null],
  ["ws2", 1, true, "x y  z %} {{1B2e|1\n1 2W|2\n", null],
  ["ws2", 1, false, "x y  z %} {{1B2e|1\n1 2W|2\n", null],
  ["ws2", 2, true, "x y  z %} {{1H2i|1\n1H2e|2\n1T2e|3\n", null],
  ["ws2", 2, false, "x y  z %} {{1H2i|1\n1H2e|2\n1T2e|3\n", null],
  ["ws2", 3, true, "x y  z %} {{1a|1\n1b|2\n", null],
  ["ws2", 3, false, "x y  z %} {{1a|1\n1b|2\n", null],
  ["ws2", 4, true, "x y  z %} {{1Ü2n|1\n", null],
  ["ws2", 4, false, "x y  z %} {{1Ü2n|1\n", null],
  ["crlf", 0, true, "a\nb\nc", null],
  ["crlf", 0, false, "a\nb\nc", null],
  ["crlf", 1, true, "a\nb\nc", null],
  ["crlf", 1, false, "a\nb\nc", null],
  ["crlf", 2, true, "a\nb\nc", null],
  ["crlf", 2, false, "a\nb\nc", null],
  ["crlf", 3, true, "a\nb\nc", null],
  ["crlf", 3, false, "a\nb\nc", null],
  ["crlf", 4, true, "a\nb\nc", null],
  ["crlf", 4, false, "a\nb\nc", null],
  ["scope", 0, true, "221", null],
  ["scope", 0, false, "221", null],
  ["scope", 1, true, "22221", null],
  ["scope", 1, false, "22221", null],
  ["scope", 2, true, "2222221", null],
  ["scope", 2, false, "2222221", null],
  ["scope", 3, true, "22221", null],
  ["scope", 3, false, "22221", null],
  ["scope", 4, true, "221", null],
  ["scope", 4, false, "221", null],
  ["cond", 0, true, "buser", null],
  ["cond", 0, false, "buser", null],
  ["cond", 1, true, "asystem,user", null],
  ["cond", 1, false, "asystem,user", null],
  ["cond", 2, true, "auser,assistant,user", null],
  ["cond", 2, false, "auser,assistant,user", null],
  ["cond", 3, true, "auser,user", null],
  ["cond", 3, false, "auser,user", null],
  ["cond", 4, true, "buser", null],
  ["cond", 4, false, "buser", null]
]}
"""#
}
