// EffLLM: the Llama family (SmolLM2-135M-Instruct): config, weights, forward pass, KV cache,
// tokenizer, chat template, samplers, batched decode. Synchronous code only (no actors).
