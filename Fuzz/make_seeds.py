#!/usr/bin/env python3
"""Writes the small seed corpora under Fuzz/Corpus (run from the repo root; the output is
committed). GGUF and safetensors seeds are built here byte by byte; the chat template seed
is the real SmolLM2 template when the model is in the cache (else a copy of its text in
this file); transcripts, themes and keymaps are short samples of the real formats."""
import json, os, struct, sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Corpus")

def put(harness, name, data):
    d = os.path.join(root, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

# --- GGUF -------------------------------------------------------------------------------
def gstr(s):
    b = s.encode(); return struct.pack("<Q", len(b)) + b

def gval(t, v):
    fmt = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
    if t == 8: return gstr(v)
    if t == 9:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(gval(et, x) for x in items)
    return struct.pack(fmt[t], v)

def gguf(kvs, tensors, align=32, version=3):
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += gstr(k) + struct.pack("<I", t) + gval(t, v)
    offset = 0; blobs = []
    for name, dims, gtype, data in tensors:
        out += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", gtype, offset)
        blobs.append((offset, data))
        offset += (len(data) + align - 1) // align * align
    out += b"\0" * ((-len(out)) % align)
    base = len(out); body = bytearray(offset)
    for off, data in blobs: body[off:off + len(data)] = data
    return out + bytes(body)

template = None
model = os.path.expanduser("~/.cache/effterm/models/SmolLM2-135M-Instruct.Q4_1.gguf")
if os.path.exists(model):
    raw = open(model, "rb").read(4 << 20)
    key = b"tokenizer.chat_template"
    i = raw.find(key)
    if i > 0:
        j = i + len(key) + 4
        n = struct.unpack_from("<Q", raw, j)[0]
        template = raw[j + 8:j + 8 + n].decode()
if template is None:
    template = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
                "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
                "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

f32 = lambda xs: b"".join(struct.pack("<f", x) for x in xs)
put("gguf", "llama-tiny.gguf", gguf([
    ("general.architecture", 8, "llama"), ("general.alignment", 4, 32),
    ("llama.context_length", 4, 64), ("llama.embedding_length", 4, 8), ("llama.block_count", 4, 1),
    ("llama.attention.head_count", 4, 2), ("llama.rope.freq_base", 6, 10000.0),
    ("llama.attention.layer_norm_rms_epsilon", 6, 1e-5),
    ("tokenizer.ggml.model", 8, "gpt2"),
    ("tokenizer.ggml.tokens", 9, (8, ["<|im_start|>", "<|im_end|>", "a", "b", "ab", "\u0120c"])),
    ("tokenizer.ggml.token_type", 9, (5, [3, 3, 1, 1, 1, 1])),
    ("tokenizer.ggml.merges", 9, (8, ["a b"])),
    ("tokenizer.ggml.bos_token_id", 4, 0), ("tokenizer.ggml.eos_token_id", 4, 1),
    ("tokenizer.chat_template", 8, template),
], [("token_embd.weight", [8, 6], 0, f32([0.5] * 48)), ("output_norm.weight", [8], 0, f32([1.0] * 8)),
    ("blk.0.attn_q.weight", [32, 2], 3, bytes(range(40)))]))
put("gguf", "every-type.gguf", gguf([
    ("u8", 0, 200), ("i8", 1, -3), ("u16", 2, 60000), ("i16", 3, -300), ("u32", 4, 7), ("i32", 5, -7),
    ("f32", 6, 1.5), ("bool", 7, True), ("str", 8, "h\u00e9llo"), ("u64", 10, 1 << 40), ("i64", 11, -(1 << 40)),
    ("f64", 12, 2.25), ("arr.i32", 9, (5, [1, 2, 3])), ("arr.f32", 9, (6, [0.5, -1.0])),
    ("arr.nested", 9, (9, [(4, [1, 2]), (8, ["x"])])), ("general.alignment", 4, 64),
], [("f16", [4], 1, b"\x00\x3c" * 4), ("q8_0", [32], 8, b"\x00\x3c" + bytes(32))], align=64))
put("gguf", "v2-empty.gguf", gguf([], [], version=2))

# --- safetensors -------------------------------------------------------------------------
def st(tensors, meta=None):
    header = {}; data = b""
    if meta: header["__metadata__"] = meta
    for name, dtype, shape, blob in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data

put("safetensors", "three-dtypes.safetensors", st([
    ("w", "F32", [2, 2], f32([1, -2, 3.5, 0])), ("h", "F16", [3], b"\x00\x3c\x00\xc0\x00\x00"),
    ("b", "BF16", [1, 2], b"\x80\x3f\x00\x40")], {"format": "pt", "note": "seed"}))
put("safetensors", "int-and-empty.safetensors", st([("i", "I64", [2], struct.pack("<qq", 1, -1)), ("e", "F32", [0], b"")]))
put("safetensors", "only-header.safetensors", st([]))

# --- chat templates ------------------------------------------------------------------------
put("template", "smollm2.jinja", template + "\0How can I improve my time management skills?")
put("template", "constructs.jinja",
    "{%- set ns = namespace(n=0) -%}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
    "{{ loop.index }}:{{ m.role | upper }}={{ m['content'] | trim }}{% if not loop.last %}, {% endif %}{% endfor %}"
    "{{ ns.n }}{{ messages[1:] | length }}{{ messages[-1].content[::-1] }}{{ 'ab' * 2 }}{{ 7 // 2 }}{{ -7 % 3 }}"
    "{# comment #}{% if add_generation_prompt %}{{ bos_token }}go{% elif false %}x{% else %}{{ eos_token }}{% endif %}"
    "{{ 'e' in 'hello' }}{{ foo is defined }}{{ undefinedthing | default('d') }}{{ ' x '.strip() }}"
    "{% for i in range(3) %}{{ i }}{% endfor %}{{ [1, 'x'] }}{{ none is none }}{{ 3 is odd }}\0hi")
put("template", "raise.jinja", "{% if messages[0].role == 'assistant' %}{{ raise_exception('bad order') }}{% endif %}{{ messages | length }}")

# --- transcripts ------------------------------------------------------------------------------
header = {"type": "header", "effterm_version": "0.1.0", "created": "2026-12-04T15:00:00Z", "model_name": "SmolLM2-135M-Instruct",
          "model_sha256": "00" * 32, "template_hash": "0123456789abcdef", "seed": 42,
          "sampler": {"max_tokens": 8, "min_p": 0, "repeat_penalty": 1, "seed": 42, "temperature": 0, "top_k": 40, "top_p": 1},
          "system": "be brief"}
turn = {"type": "turn", "index": 0, "time": "2026-12-04T15:00:01Z",
        "messages": [{"role": "user", "content": "Hi \u00e9\u4e2d\U0001F600"}, {"role": "assistant", "content": "Hello!"}],
        "techniques": {"attention": "dense", "kv_cache": "f32", "sot": "off", "weights": "Q4_1"},
        "stats": {"context_used": 30, "decode_s": 0.1, "decode_steps": 8, "generated_tokens": 8, "prefill_s": 0.05,
                  "prompt_tokens": 22, "stop": "max_tokens"}}
dump = lambda o: json.dumps(o, sort_keys=True, ensure_ascii=False)
put("transcript", "two-lines.jsonl", dump(header) + "\n" + dump(turn) + "\n")
put("transcript", "cut.jsonl", (dump(header) + "\n" + dump(turn) + "\n" + dump(turn))[:-17])
put("transcript", "header-only.jsonl", dump(header) + "\n")

# --- themes and keymaps ---------------------------------------------------------------------------
themes = os.path.join(os.path.dirname(root), "..", "Themes")
for name in ("default.theme", "light.theme"):
    p = os.path.join(themes, name)
    if os.path.exists(p): put("theme", name, open(p, "rb").read())
put("theme", "odd.theme", '# comment\ntheme[main_bg]="#123"\nmain_fg="bright_blue"\nhi_fg="255"\nbad line\nx=""\n')
put("keymap", "rebind", "# effterm keymap\nquit = ctrl-x, f10\nsave = ctrl-s # comment\nhelp = f1, ?\n")
put("keymap", "conflicts", "stop = ctrl-q\nnope = f2\nquit = ctrl-\ncyclePanel = tab, shift-tab, alt-x\n")
print("seeds written to", root)
