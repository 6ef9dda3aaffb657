// EffTechniques: Skeleton-of-Thought, quantization plans and sensitivity, sparse attention
// policies, DiT attention compression plans. Reaches the models through small protocols.
