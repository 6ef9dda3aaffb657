// EffDiffusion: the tiny class-conditional DiT: config, weights, forward pass, noise
// schedules, samplers. Synchronous code only (no actors).
