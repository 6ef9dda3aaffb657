// Intrinsic kernels behind EffCore's kernel surface. The Swift reference loops in EffCore
// are the oracle these are tested against.
//
// Matmul convention (as everywhere in effterm): W(rows = out, cols = in), row-major,
// Y(nTokens, out) = X(nTokens, in) · W^T. Each kernel computes the output rows
// [rowBegin, rowEnd) for every token, so a thread pool can split rows between workers.
#ifndef CEFFKERNELS_H
#define CEFFKERNELS_H
#include <stddef.h>
#include <stdint.h>

/// Returns 1 when the running CPU supports AVX2, FMA and F16C (the fast kernels' baseline:
/// f16 scales and the f16 KV cache are converted with F16C).
int eff_cpu_has_avx2_fma(void);

/// Returns 1 when the running CPU supports AVX-VNNI (256-bit int8 dot products, no AVX-512).
int eff_cpu_has_avx_vnni(void);

/// Selects the AVX-VNNI dot product when `on` != 0 and the CPU has it (default: auto).
void eff_set_use_vnni(int on);

/// Returns 1 when the running CPU (and OS) support AVX-512 F, BW and VNNI.
int eff_cpu_has_avx512_vnni(void);

/// Selects the 512-bit tiles for x8-packed weights times 2 or more tokens when `on` != 0
/// and the CPU has AVX-512 VNNI (default: auto). Results are bit-identical either way.
void eff_set_use_avx512(int on);

/// 1 when the kernels currently use AVX-VNNI / the 512-bit tiles (CPU support and setting).
int eff_using_vnni(void);
int eff_using_avx512(void);

/// One block of 32 activations quantized on the fly to 8 bits (Q8_1-style):
/// x[i] ~= d * qs[i], and s = d * sum(qs) so a weight offset can be applied per block.
typedef struct {
    float d;
    float s;
    int8_t qs[32];
} eff_q8a_block;

/// Quantizes `n` floats (n a multiple of 32) into n/32 blocks: d = max|x| / 127,
/// qs = round(x / d) (ties to even).
void eff_quantize_q8a(const float *x, int n, eff_q8a_block *out);

/// Quantizes `n` floats (n a multiple of 32) with one fixed step `d` for every block
/// (static activation quantization): qs = clamp(round(x / d), -127, 127), s = d * sum(qs).
void eff_quantize_q8a_fixed(const float *x, int n, float d, eff_q8a_block *out);

/// The int8-tile weight formats and their x8 packed layouts (8 rows interleaved per block
/// of 32 columns; each kind is one row of matmul.c's layout table). Swift's weight-format
/// table (`WeightFormat.fast`) names a format's kind; nothing else switches on formats.
///   Q4_1: ggml block_q4_1 (f16 d, f16 m, 16 nibble bytes; value = q * d + m)
///   Q4_0: ggml block_q4_0 (f16 d, 16 nibble bytes; value = (q - 8) * d)
///   Q8_0: ggml block_q8_0 (f16 d, 32 int8; value = q * d)
typedef enum { EFF_X8_Q4_1 = 0, EFF_X8_Q4_0 = 1, EFF_X8_Q8_0 = 2 } eff_x8_kind;

/// Weights of `kind` in ggml's row-major layout times Q8A activations: rows [rowBegin,
/// rowEnd) for every token. `x` holds nTokens rows of `nBlocks` blocks each (row stride
/// `nBlocks`); `y` is (nTokens, ldy) floats. Each group of 8 rows is packed into per-thread
/// scratch when used (the fallback when there is no packed copy; same bits as eff_matmul_x8).
void eff_matmul_q(eff_x8_kind kind, const uint8_t *w, size_t rowBytes, int rowBegin, int rowEnd, int nBlocks,
                  const eff_q8a_block *x, int nTokens, float *y, int ldy);

/// Bytes of the x8 layout of a `rows` x `nBlocks * 32` matrix of `kind`, rows padded to a
/// multiple of 8. Q4_1 and Q4_0 take as many bytes per row as ggml's layout (plus padding
/// rows), Q8_0 288 / 272 as many (it also stores each row's block sum, for VNNI).
size_t eff_x8_bytes(eff_x8_kind kind, int rows, int nBlocks);

/// Packs rows [rowBegin, rowEnd) (rowBegin a multiple of 8) of the ggml-layout matrix `w`
/// (`rows` rows of `rowBytes`) into `packed` (eff_x8_bytes in size).
void eff_x8_pack(eff_x8_kind kind, const uint8_t *w, size_t rowBytes, int rows, int rowBegin, int rowEnd,
                 int nBlocks, uint8_t *packed);

/// eff_matmul_q from a matrix packed by eff_x8_pack: rows [rowBegin, rowEnd) (any
/// bounds), bit-identical to eff_matmul_q on the ggml layout.
void eff_matmul_x8(eff_x8_kind kind, const uint8_t *packed, int rowBegin, int rowEnd, int nBlocks,
                   const eff_q8a_block *x, int nTokens, float *y, int ldy);

/// effterm's own asymmetric low-bit formats "Q<bits>G<group>" (EffCore `LowBitFormat`):
/// bits 2, 3, 4, 5, 6, 8; group 32, 64, 128 weights sharing an f16 scale d and an f16 min m,
/// value = code * d + m, code in [0, 2^bits). Row-major, one block per group:
///   f16 d, f16 m, then group / 32 sub-blocks of 4 * bits bytes (32 codes each) made of
///   bit planes, low bits first:  8: raw bytes;  6: p4 + p2;  5: p4 + p1;  4: p4;
///   3: p2 + p1;  2: p2, where for code j of the sub-block
///   p4 (16 bytes): low nibble of byte j (j < 16) or high nibble of byte j - 16 (Q4_1's order),
///   p2 (8 bytes):  bits 2 (j / 8) .. of byte j % 8,
///   p1 (4 bytes):  bit j % 8 of byte j / 8,
///   and a higher plane holds the code's bits above the lower plane's (6: bits 4-5 in p2).
/// Q4G32 is byte for byte ggml's block_q4_1.
///
/// The x8 copy the kernels read interleaves 8 rows per group: f16 d[8], f16 m[8], then per
/// sub-block the planes as 32-byte chunks whose 4-byte lane r is row r (8: 8 chunks, chunk g
/// byte i = column 4g + i; p4: 4 chunks, chunk k byte i = columns 4k + i (low nibble) and
/// 16 + 4k + i (high); p2: 2 chunks, chunk k bits 2s of byte i = column 4 (4k + s) + i;
/// p1: 1 chunk, bit g of byte i = column 4g + i). Same bytes as the row-major tensor.
size_t eff_qg_x8_bytes(int bits, int group, int rows, int cols);

/// Packs rows [rowBegin, rowEnd) (rowBegin a multiple of 8) of the row-major matrix `w`
/// (`rows` rows of `rowBytes`, `cols` columns) into `packed` (eff_qg_x8_bytes in size).
void eff_qg_x8_pack(int bits, int group, const uint8_t *w, size_t rowBytes, int rows, int rowBegin, int rowEnd,
                    int cols, uint8_t *packed);

/// Rows [rowBegin, rowEnd) of a packed Q<bits>G<group> matrix times Q8A activations (x:
/// nTokens rows of cols / 32 blocks), y (nTokens, ldy). Per (row, token): for each 32-column
/// block acc = fma(float(int dot), d_w * d_x, acc), then per group acc = fma(m_w, sum of the
/// group's s_x, acc) (8-bit codes are taken as code - 128 with m_w + 128 d_w).
void eff_qg_matmul_x8(int bits, int group, const uint8_t *packed, int rowBegin, int rowEnd, int cols,
                      const eff_q8a_block *x, int nTokens, float *y, int ldy);

/// F16 weights times float activations (`x` is (nTokens, ldx)); `cols` any multiple of 8
/// is fast, a tail is handled.
void eff_matmul_f16(const uint16_t *w, size_t rowBytes, int rowBegin, int rowEnd, int cols,
                    const float *x, int ldx, int nTokens, float *y, int ldy);

/// F32 weights times float activations.
void eff_matmul_f32(const float *w, size_t rowBytes, int rowBegin, int rowEnd, int cols,
                    const float *x, int ldx, int nTokens, float *y, int ldy);

/// `scores[p] = scale * dot(q, keys + p * stride)` for p in [0, n), headSize floats each.
void eff_attn_scores_f32(const float *q, const float *keys, size_t stride, int n, int headSize,
                         float scale, float *scores);

/// `out[i] += sum_p probs[p] * values[p * stride + i]` for i in [0, headSize).
void eff_attn_mix_f32(const float *probs, const float *values, size_t stride, int n,
                      int headSize, float *out);

/// Dot product of two float vectors.
float eff_dot_f32(const float *a, const float *b, int n);

/// y[i] = e^x[i] (vectorized; relative error ~2e-7, 0 below -87.3).
void eff_exp_f32(const float *x, float *y, int n);

/// In-place softmax: x[i] <- e^(x[i] - max x) / sum.
void eff_softmax_f32(float *x, int n);

/// In-place SwiGLU: gate[i] <- silu(gate[i]) * up[i].
void eff_swiglu_f32(float *gate, const float *up, int n);

/// Positions first ..< first + count of a cache split into segments (forks share a prefix):
/// key/value row p at keys/values + (p - first) * stride.
typedef struct {
    long first;
    long count;
    const float *keys;
    const float *values;
} eff_kv_span;

/// Online-softmax attention of G <= 8 query heads (q: G rows of hs floats) that share one KV
/// head, over positions lo ..< hi found in `spans` (ascending, covering the range). Updates
/// per head g the running max m[g] (start at -INFINITY), the running sum l[g] (start 0) and
/// the unnormalized output o[g * hs ...] (start 0); the attention output is o / l once every
/// position has been visited. Scores are scaled by `scale`. Blocks follow absolute positions
/// from `lo`, so the result does not depend on how the positions are split into spans: a
/// forked cache gives the bits of a fresh one.
void eff_attn_spans(const float *q, int G, int hs, const eff_kv_span *spans, int nspans, size_t stride,
                    long lo, long hi, float scale, float *m, float *l, float *o);

// ---- KV cache formats --------------------------------------------------------------------

/// How a KV store holds its rows (EffCore `KVFormat`): f32; IEEE binary16; int8 codes with one
/// f32 scale per `group` consecutive elements of a row (x ~= scale * code, |code| <= 127).
enum { EFF_KV_F32 = 0, EFF_KV_F16 = 1, EFF_KV_Q8 = 2 };

/// Where one KV head's elements sit in a store's rows: `stride` elements per row (kvDim),
/// the head's elements at [hoff, hoff + hs); q8 rows have `sstride` scales each, element i's
/// scale at index i / group.
typedef struct {
    int format;
    int group;
    int hs;
    int hoff;
    size_t stride;
    size_t sstride;
} eff_kv_layout;

/// Positions first ..< first + count held in rows 0 ..< count of `keys`/`values` (row bases,
/// not offset to a head: float, uint16 halves or int8 codes by format) with, for q8, their
/// scale rows `key_scales`/`value_scales`.
typedef struct {
    long first;
    long count;
    const void *keys;
    const void *values;
    const float *key_scales;
    const float *value_scales;
} eff_kv_fspan;

/// eff_attn_spans for any format and with gaps: G <= 8 query heads sharing the KV head of
/// layout L attend to the positions in [lo, hi) that the spans (ascending, disjoint) hold.
/// f16 rows are converted with F16C and q8 rows dequantized per row as they are read
/// (each row once per group of heads), never the whole cache. With f32 rows and spans
/// covering [lo, hi) the result is bit-identical to eff_attn_spans. hs <= 256 (f32) or
/// <= 128 (f16, q8).
void eff_attn_kv(const eff_kv_layout *L, const float *q, int G, const eff_kv_fspan *spans, int nspans,
                 long lo, long hi, float scale, float *m, float *l, float *o);

/// Raw scores of one query head: scores[p] = scale * q . key(p) for the positions p in [lo, hi)
/// the spans hold (other entries untouched). For attention observers.
void eff_attn_kv_scores(const eff_kv_layout *L, const float *q, const eff_kv_fspan *spans, int nspans,
                        long lo, long hi, float scale, float *scores);

/// Row conversions of the KV store: f32 -> f16 (round to nearest even) and back; f32 -> q8
/// (per group: d = max|x| / 127, code = round-to-even(x / d), d = 0 for an all-zero group) and back.
void eff_kv_put_f16(const float *x, int n, uint16_t *out);
void eff_kv_get_f16(const uint16_t *h, int n, float *out);
void eff_kv_put_q8(const float *x, int n, int group, int8_t *codes, float *scales);
void eff_kv_get_q8(const int8_t *codes, const float *scales, int n, int group, float *out);

// ---- Worker pool -------------------------------------------------------------------------

/// One chunk of a pool task: `chunk` in [0, nchunks).
typedef void (*eff_task_fn)(void *ctx, int chunk, int nchunks);

/// A fixed set of worker threads that run one task at a time with the calling thread.
typedef struct eff_pool eff_pool;

/// Starts `nthreads - 1` workers (the caller is thread 0). Returns NULL on failure.
eff_pool *eff_pool_create(int nthreads);

/// Stops and joins the workers and frees the pool.
void eff_pool_destroy(eff_pool *pool);

/// Number of threads that run each task, the caller included.
int eff_pool_threads(const eff_pool *pool);

/// Runs fn(ctx, c, nchunks) once for every chunk c in [0, nchunks) (at most 65535), the
/// chunks claimed dynamically by the caller and the workers; returns when all are done.
/// One caller at a time; a call from inside a task runs every chunk inline.
void eff_pool_run(eff_pool *pool, eff_task_fn fn, void *ctx, int nchunks);

/// 1 while the calling thread runs a pool task (nested parallel calls then run inline).
int eff_pool_in_task(void);

/// Sets how long idle workers spin before parking (microseconds).
void eff_pool_set_spin(eff_pool *pool, int spin_us);


// ---- DiT (dit_kernels.c) ---------------------------------------------------------------------

/// Floats of a `rows` x `cols` f32 matrix packed by eff_dit_pack16_f32 (rows padded to 16).
size_t eff_dit_packed16_floats(int rows, int cols);

/// Packs W(rows, cols) row-major into panels of 16 output rows: panel p holds, for each k,
/// W[16p + j][k] for j in 0..<16 (zero past `rows`), so one k reads 16 consecutive floats.
void eff_dit_pack16_f32(const float *w, int rows, int cols, float *packed);

/// Y(nTokens, rows) = X(nTokens, cols) · W^T + bias (bias may be NULL) for the output rows of
/// panels [panelBegin, panelEnd) (16 rows each), W packed by eff_dit_pack16_f32. Every
/// output element is computed the same way whatever the panel range or token count.
void eff_dit_gemm_f32(const float *packed, const float *bias, int rows, int cols, int panelBegin, int panelEnd,
                      const float *x, int ldx, int nTokens, float *y, int ldy);

/// In-place GELU, tanh form: x <- x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
void eff_dit_gelu_tanh_f32(float *x, int n);

/// In-place SiLU: x <- x / (1 + e^-x).
void eff_dit_silu_f32(float *x, int n);

/// Scratch floats eff_dit_attention_head needs for `n` tokens and heads of `headSize`.
size_t eff_dit_attention_scratch_floats(int n, int headSize);

/// Non-causal softmax attention of one head over one image's `n` tokens: `qkv` rows of
/// 3·dim floats (q | k | v, heads contiguous within each), output head slice of rows of
/// `ldo` floats. `window` < 0 attends to all tokens; otherwise query i attends to
/// [i - window, i + window] clipped to the image (a 1-D band over raster order).
void eff_dit_attention_head(const float *qkv, int n, int dim, int headSize, int head, float scale, int window,
                            float *out, int ldo, float *scratch);

#endif
