// Matrix kernels with AVX2/FMA/F16C intrinsics; AVX-VNNI and AVX-512 (F, BW, VNNI; the
// quantized tiles over packed weights only) behind run-time checks. Layouts follow ggml's
// blocks, plus the x8 packing below; see CEffKernels.h.
#include <stdatomic.h>
#include "CEffKernels.h"
#include "simd.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>
#include <pthread.h>
#include <stdlib.h>

static inline float eff_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

// ---- The x8 layout: 8 weight rows interleaved per block of 32 columns ------------------
// One packed block holds, for rows r = 0..7:
//   Q4_1: f16 d[8], f16 m[8], 4 chunks of 32 bytes                          (160 bytes)
//   Q4_0: f16 d[8], 4 chunks                                                (144 bytes)
//   Q8_0: f16 d[8], i16 n[8] = -sum_j w[r][j], 8 chunks                    (288 bytes)
// In every chunk the 4-byte lane r belongs to row r: Q4 chunk c = row r's qs[4c..4c+3]
// (low nibbles are columns 4c..4c+3, high nibbles 16+4c..), Q8_0 chunk g = row r's
// qs[4g..4g+3]. So one broadcast 4-byte group of activations times one chunk gives 8 rows'
// partial dot products in 8 lanes with no horizontal sums: the float work per block
// (convert, scale, FMA) is shared by 8 rows instead of repeated per row. A whole matrix is
// packed once into a copy the Swift side keeps (PackedWeights, eff_x8_pack); without that
// copy (eff_matmul_q) each group of 8 rows is packed into per-thread scratch when used.

/// One row per kind (eff_x8_kind): the ggml block it is packed from and the packed block.
/// Indexed by a compile-time KIND inside the kernels, so every field folds to a constant.
typedef struct {
    int srcBytes;     // bytes of one ggml block
    int srcQs;        // offset of the quants in a ggml block
    int packedBytes;  // bytes of one packed block of 8 rows
    int packedQs;     // offset of the first 32-byte chunk in a packed block
} eff_x8_layout;

static const eff_x8_layout eff_x8_layouts[] = {
    [EFF_X8_Q4_1] = {20, 4, 160, 32},
    [EFF_X8_Q4_0] = {18, 2, 144, 16},
    [EFF_X8_Q8_0] = {34, 2, 288, 32},
};
#define EFF_X8_BYTES(KIND) ((size_t)eff_x8_layouts[KIND].packedBytes)
#define EFF_X8_QS(KIND) ((size_t)eff_x8_layouts[KIND].packedQs)

static inline int eff_x8_kind_valid(int kind) { return kind >= EFF_X8_Q4_1 && kind <= EFF_X8_Q8_0; }

static inline __m256i eff_load2x16(const uint8_t *lo, const uint8_t *hi) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)lo)),
                                   _mm_loadu_si128((const __m128i *)hi), 1);
}

/// Loads 16 bytes at offset `q` of rows i and i + 4 (i < 4) and transposes the 4-byte
/// groups within each 128-bit lane: c[g] lane r = row r's group g.
static inline void eff_transpose(const uint8_t *const *rows, size_t q, __m256i c[4]) {
    const __m256i y0 = eff_load2x16(rows[0] + q, rows[4] + q), y1 = eff_load2x16(rows[1] + q, rows[5] + q);
    const __m256i y2 = eff_load2x16(rows[2] + q, rows[6] + q), y3 = eff_load2x16(rows[3] + q, rows[7] + q);
    const __m256i t0 = _mm256_unpacklo_epi32(y0, y1), t1 = _mm256_unpackhi_epi32(y0, y1);
    const __m256i t2 = _mm256_unpacklo_epi32(y2, y3), t3 = _mm256_unpackhi_epi32(y2, y3);
    c[0] = _mm256_unpacklo_epi64(t0, t2);
    c[1] = _mm256_unpackhi_epi64(t0, t2);
    c[2] = _mm256_unpacklo_epi64(t1, t3);
    c[3] = _mm256_unpackhi_epi64(t1, t3);
}

static inline uint32_t eff_ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/// The first 4 bytes at offset `o` of rows 0..7, split by 16-bit halves: returns (low halves
/// of rows 0..7 | high halves of rows 0..7), i.e. (d[8] | m[8]) for Q4_1.
static inline __m256i eff_gather_halves(const uint8_t *const *rows, size_t o) {
    const __m128i split = _mm_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
    const __m128i a = _mm_shuffle_epi8(_mm_setr_epi32((int)eff_ld32(rows[0] + o), (int)eff_ld32(rows[1] + o),
                                                      (int)eff_ld32(rows[2] + o), (int)eff_ld32(rows[3] + o)), split);
    const __m128i c = _mm_shuffle_epi8(_mm_setr_epi32((int)eff_ld32(rows[4] + o), (int)eff_ld32(rows[5] + o),
                                                      (int)eff_ld32(rows[6] + o), (int)eff_ld32(rows[7] + o)), split);
    return _mm256_set_m128i(_mm_unpackhi_epi64(a, c), _mm_unpacklo_epi64(a, c));
}

/// Packs `nBlocks` blocks of the 8 ggml rows `rows[0..7]` into the x8 layout at `pk`
/// (Q8_0's c[] only when `withSums`), and prefetches `ahead` bytes from `prefetch`, the
/// rows that come next: reading 8 rows block by block is 8 interleaved streams, which the
/// hardware prefetcher does not follow well.
static inline __attribute__((always_inline)) void eff_pack_x8(const int KIND, const int withSums,
                                                              const uint8_t *const *rows, int nBlocks, uint8_t *pk,
                                                              const uint8_t *prefetch, size_t ahead) {
    const size_t bb = (size_t)eff_x8_layouts[KIND].srcBytes;
    const size_t qsIn = (size_t)eff_x8_layouts[KIND].srcQs;
    for (int b = 0; b < nBlocks; b++) {
        for (size_t p = ahead * (size_t)b / (size_t)nBlocks & ~(size_t)63; p < ahead * (size_t)(b + 1) / (size_t)nBlocks; p += 64)
            _mm_prefetch((const char *)(prefetch + p), _MM_HINT_T0);
        const size_t o = (size_t)b * bb;
        uint8_t *dst = pk + (size_t)b * EFF_X8_BYTES(KIND);
        const __m256i dm = eff_gather_halves(rows, o);
        if (KIND == EFF_X8_Q4_1) _mm256_storeu_si256((__m256i *)dst, dm);
        else _mm_storeu_si128((__m128i *)dst, _mm256_castsi256_si128(dm));
        __m256i c[8];
        eff_transpose(rows, o + qsIn, c);
        if (KIND == EFF_X8_Q8_0) eff_transpose(rows, o + qsIn + 16, c + 4);
        const int nc = KIND == EFF_X8_Q8_0 ? 8 : 4;
        for (int g = 0; g < nc; g++) _mm256_storeu_si256((__m256i *)(dst + EFF_X8_QS(KIND) + 32 * g), c[g]);
        if (KIND == EFF_X8_Q8_0 && withSums) {
            // Row sums: u8 ones times s8 weights, pairs <= 256 in magnitude, so 8 add in int16.
            const __m256i ones8 = _mm256_set1_epi8(1);
            __m256i s16 = _mm256_maddubs_epi16(ones8, c[0]);
            for (int g = 1; g < 8; g++) s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(ones8, c[g]));
            const __m256i sum = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));  // |sum| <= 4096
            const __m256i neg = _mm256_sub_epi32(_mm256_setzero_si256(), sum);
            const __m128i n16 = _mm_packs_epi32(_mm256_castsi256_si128(neg), _mm256_extracti128_si256(neg, 1));
            _mm_storeu_si128((__m128i *)(dst + 16), n16);
        }
    }
}

// Per-thread packing scratch, grown on demand and freed when the thread exits.
static pthread_key_t g_x8_key;
static pthread_once_t g_x8_once = PTHREAD_ONCE_INIT;
static __thread uint8_t *tl_x8;
static __thread size_t tl_x8_cap;

static void eff_x8_key_init(void) { pthread_key_create(&g_x8_key, free); }

static uint8_t *eff_x8_scratch(size_t bytes) {
    if (tl_x8 && bytes <= tl_x8_cap) return tl_x8;
    pthread_once(&g_x8_once, eff_x8_key_init);
    free(tl_x8);
    size_t cap = bytes < 16384 ? 16384 : (bytes + 63) & ~(size_t)63;
    tl_x8 = aligned_alloc(64, cap);
    tl_x8_cap = tl_x8 ? cap : 0;
    pthread_setspecific(g_x8_key, tl_x8);
    return tl_x8;
}

/// Per-thread scratch of `extra` bytes followed, when `biased`, by the activations' int8
/// values + 128 (u8, 32 bytes per block; VNNI's Q8_0 kernels). Returns the scratch (NULL
/// when out of memory); *xu points past the first `extra` bytes.
static uint8_t *eff_scratch_xu(size_t extra, const eff_q8a_block *x, size_t nxBlocks, int biased, uint8_t **xu) {
    uint8_t *p = eff_x8_scratch(extra + (biased ? nxBlocks * 32 : 0));
    if (!p) return NULL;
    *xu = p + extra;
    if (biased) {
        const __m256i bias = _mm256_set1_epi8((char)0x80);
        for (size_t i = 0; i < nxBlocks; i++)
            _mm256_storeu_si256((__m256i *)(*xu + 32 * i), _mm256_xor_si256(bias, _mm256_loadu_si256((const __m256i *)x[i].qs)));
    }
    return p;
}

static void eff_fill_nan(int rowBegin, int rowEnd, int nTokens, float *y, int ldy) {
    for (int t = 0; t < nTokens; t++)
        for (int r = rowBegin; r < rowEnd; r++) y[(size_t)t * ldy + r] = NAN;
}

#define SUFFIX avx2
#define USE_VNNI 0
#include "matmul_body.h"
#undef SUFFIX
#undef USE_VNNI

#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avxvnni"))), apply_to = function)
#define SUFFIX vnni
#define USE_VNNI 1
#include "matmul_body.h"
#undef SUFFIX
#undef USE_VNNI
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vnni,avx2,fma,f16c"))), apply_to = function)
#include "matmul512_body.h"
#pragma clang attribute pop

// The ISA switches: -1 until first use (then the CPU's answer) or until --isa sets them.
// Atomic: every worker reads them and the first calls may initialise them concurrently.
static _Atomic int g_use_vnni = -1;
static _Atomic int g_use_avx512 = -1;

void eff_set_use_vnni(int on) { atomic_store_explicit(&g_use_vnni, on && eff_cpu_has_avx_vnni() ? 1 : 0, memory_order_relaxed); }

void eff_set_use_avx512(int on) {
    atomic_store_explicit(&g_use_avx512, on && eff_cpu_has_avx512_vnni() ? 1 : 0, memory_order_relaxed);
}

/* A switch's value, detected on first read (-1: not yet) and published once. */
static inline int lazy_switch(atomic_int *sw, int (*detect)(void)) {
    int v = atomic_load_explicit(sw, memory_order_relaxed);
    if (v < 0) {
        int expected = -1;
        v = detect();
        if (!atomic_compare_exchange_strong(sw, &expected, v)) v = expected;
    }
    return v;
}

static inline int use_vnni(void) { return lazy_switch(&g_use_vnni, eff_cpu_has_avx_vnni); }

static inline int use_avx512(void) { return lazy_switch(&g_use_avx512, eff_cpu_has_avx512_vnni); }

int eff_using_vnni(void) { return use_vnni(); }

int eff_using_avx512(void) { return use_avx512(); }

// ---- Per-kind entry points: one row per eff_x8_kind, one column per ISA ----------------

typedef void (*eff_q_fn)(const uint8_t *, size_t, int, int, int, const eff_q8a_block *, int, float *, int);
typedef void (*eff_x8_fn)(const uint8_t *, int, int, int, const eff_q8a_block *, int, float *, int);
typedef void (*eff512_x8_fn)(const uint8_t *, int, int, int, const eff_q8a_block *, const uint8_t *, int,
                             float *, int);

static void pack_q4_1(const uint8_t *const *rp, int nBlocks, uint8_t *dst) { eff_pack_x8(EFF_X8_Q4_1, 0, rp, nBlocks, dst, rp[0], 0); }
static void pack_q4_0(const uint8_t *const *rp, int nBlocks, uint8_t *dst) { eff_pack_x8(EFF_X8_Q4_0, 0, rp, nBlocks, dst, rp[0], 0); }
// Q8_0's row sums are always stored: the ISA is chosen per call (eff_set_use_vnni).
static void pack_q8_0(const uint8_t *const *rp, int nBlocks, uint8_t *dst) { eff_pack_x8(EFF_X8_Q8_0, 1, rp, nBlocks, dst, rp[0], 0); }

static const struct {
    void (*pack)(const uint8_t *const *rows, int nBlocks, uint8_t *dst);
    eff_q_fn ggml[2];      // [avx2, avx-vnni]: from the ggml layout, packing into scratch
    eff_x8_fn x8[2];       // [avx2, avx-vnni]: from the packed copy
    eff512_x8_fn x8_512;   // from the packed copy, two groups per 512-bit tile
} eff_x8_kernels[] = {
    [EFF_X8_Q4_1] = {pack_q4_1, {matmul_q4_1_avx2, matmul_q4_1_vnni}, {matmul_x8_q4_1_avx2, matmul_x8_q4_1_vnni},
                     eff512_matmul_x8_q4_1},
    [EFF_X8_Q4_0] = {pack_q4_0, {matmul_q4_0_avx2, matmul_q4_0_vnni}, {matmul_x8_q4_0_avx2, matmul_x8_q4_0_vnni},
                     eff512_matmul_x8_q4_0},
    [EFF_X8_Q8_0] = {pack_q8_0, {matmul_q8_0_avx2, matmul_q8_0_vnni}, {matmul_x8_q8_0_avx2, matmul_x8_q8_0_vnni},
                     eff512_matmul_x8_q8_0},
};

void eff_matmul_q(eff_x8_kind kind, const uint8_t *w, size_t rowBytes, int rowBegin, int rowEnd, int nBlocks,
                  const eff_q8a_block *x, int nTokens, float *y, int ldy) {
    if (!eff_x8_kind_valid(kind)) {
        eff_fill_nan(rowBegin, rowEnd, nTokens, y, ldy);
        return;
    }
    eff_x8_kernels[kind].ggml[use_vnni()](w, rowBytes, rowBegin, rowEnd, nBlocks, x, nTokens, y, ldy);
}

size_t eff_x8_bytes(eff_x8_kind kind, int rows, int nBlocks) {
    if (!eff_x8_kind_valid(kind)) return 0;
    return (size_t)((rows + 7) / 8) * (size_t)nBlocks * EFF_X8_BYTES(kind);
}

void eff_x8_pack(eff_x8_kind kind, const uint8_t *w, size_t rowBytes, int rows, int rowBegin, int rowEnd,
                 int nBlocks, uint8_t *packed) {
    if (!eff_x8_kind_valid(kind)) return;
    for (int r0 = rowBegin; r0 < rowEnd; r0 += 8) {
        const uint8_t *rp[8];
        // The last group of a matrix repeats its last row in the missing lanes.
        for (int i = 0; i < 8; i++) rp[i] = w + (size_t)(r0 + i < rows ? r0 + i : rows - 1) * rowBytes;
        eff_x8_kernels[kind].pack(rp, nBlocks, packed + (size_t)(r0 / 8) * nBlocks * EFF_X8_BYTES(kind));
    }
}

void eff_matmul_x8(eff_x8_kind kind, const uint8_t *packed, int rowBegin, int rowEnd, int nBlocks,
                   const eff_q8a_block *x, int nTokens, float *y, int ldy) {
    if (!eff_x8_kind_valid(kind)) {
        eff_fill_nan(rowBegin, rowEnd, nTokens, y, ldy);
        return;
    }
    // One token streams weights from DRAM: there the 256-bit tiles kept up with memory
    // (~39 GB/s on one thread of this Zen 5) and the 512-bit ones did not (~28 GB/s); from
    // two tokens on the products are compute-bound and the 512-bit tiles take ~half the time.
    if (nTokens >= 2 && use_avx512()) {
        uint8_t *xu = NULL;
        if (!eff_scratch_xu(0, x, (size_t)nTokens * nBlocks, kind == EFF_X8_Q8_0, &xu)) {
            eff_fill_nan(rowBegin, rowEnd, nTokens, y, ldy);  // out of memory: visible, not stale
            return;
        }
        eff_x8_kernels[kind].x8_512(packed, rowBegin, rowEnd, nBlocks, x, xu, nTokens, y, ldy);
        return;
    }
    eff_x8_kernels[kind].x8[use_vnni()](packed, rowBegin, rowEnd, nBlocks, x, nTokens, y, ldy);
}

/// Stores one block's 32 int32 codes (four vectors of 8, in order) as int8 with step `d` and
/// s = d * sum(codes). Codes must already lie in [-127, 127].
static inline __attribute__((always_inline)) void eff_store_q8a(__m256i i0, __m256i i1, __m256i i2, __m256i i3,
                                                                float d, eff_q8a_block *out) {
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i sum = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s4 = _mm_hadd_epi32(s4, s4);
    s4 = _mm_hadd_epi32(s4, s4);
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    p = _mm256_permutevar8x32_epi32(p, perm);
    _mm256_storeu_si256((__m256i *)out->qs, p);
    out->d = d;
    out->s = d * (float)_mm_cvtsi128_si32(s4);
}

void eff_quantize_q8a(const float *x, int n, eff_q8a_block *out) {
    const __m256 signBit = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < n / 32; b++) {
        const float *xb = x + (size_t)b * 32;
        __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8);
        __m256 v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
        __m256 a = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(signBit, v0), _mm256_andnot_ps(signBit, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(signBit, v2), _mm256_andnot_ps(signBit, v3)));
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        const float amax = _mm_cvtss_f32(m);
        const float d = amax / 127.0f;
        const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        const __m256 vid = _mm256_set1_ps(id);
#define rnd (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
        __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, vid), rnd));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, vid), rnd));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, vid), rnd));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, vid), rnd));
        eff_store_q8a(i0, i1, i2, i3, d, out + b);
    }
}

void eff_quantize_q8a_fixed(const float *x, int n, float d, eff_q8a_block *out) {
    // Static activation quantization: one step `d` for every block; values beyond +-127 d clip.
    const float id = d > 0.0f ? 1.0f / d : 0.0f;
    const __m256 vid = _mm256_set1_ps(id);
    const __m256 lim = _mm256_set1_ps(127.0f), nlim = _mm256_set1_ps(-127.0f);
    for (int b = 0; b < n / 32; b++) {
        const float *xb = x + (size_t)b * 32;
#define QF(v) _mm256_cvtps_epi32(_mm256_max_ps(nlim, _mm256_min_ps(lim, \
              _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(v), vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))))
        __m256i i0 = QF(xb), i1 = QF(xb + 8), i2 = QF(xb + 16), i3 = QF(xb + 24);
#undef QF
        eff_store_q8a(i0, i1, i2, i3, d, out + b);
    }
}

// F16 / F32 weights: one row against NT float tokens.
static inline __attribute__((always_inline)) void tile_f(const int F16, const uint8_t *wr, int cols,
                                                         const float *x, int ldx, const int NT,
                                                         float *y, int ldy) {
    __m256 acc[4];
    for (int k = 0; k < NT; k++) acc[k] = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= cols; i += 8) {
        const __m256 wv = F16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wr + (size_t)i * 2)))
                              : _mm256_loadu_ps((const float *)wr + i);
        for (int k = 0; k < NT; k++)
            acc[k] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + (size_t)k * ldx + i), acc[k]);
    }
    for (int k = 0; k < NT; k++) {
        float s = eff_hsum8(acc[k]);
        for (int j = i; j < cols; j++) {
            const float wj = F16 ? eff_f16(wr + (size_t)j * 2) : ((const float *)wr)[j];
            s += wj * x[(size_t)k * ldx + j];
        }
        y[(size_t)k * ldy] = s;
    }
}

static inline __attribute__((always_inline)) void matmul_f(const int F16, const uint8_t *w, size_t rowBytes,
                                                           int rowBegin, int rowEnd, int cols,
                                                           const float *x, int ldx, int nTokens,
                                                           float *y, int ldy) {
    for (int r0 = rowBegin; r0 < rowEnd; r0 += 16) {
        const int r1 = r0 + 16 < rowEnd ? r0 + 16 : rowEnd;
        int t = 0;
        for (; t + 4 <= nTokens; t += 4)
            for (int r = r0; r < r1; r++)
                tile_f(F16, w + (size_t)r * rowBytes, cols, x + (size_t)t * ldx, ldx, 4,
                       y + (size_t)t * ldy + r, ldy);
        const int rem = nTokens - t;
        for (int r = r0; r < r1 && rem > 0; r++) {
            const uint8_t *wr = w + (size_t)r * rowBytes;
            const float *xt = x + (size_t)t * ldx;
            float *yt = y + (size_t)t * ldy + r;
            if (rem == 3) tile_f(F16, wr, cols, xt, ldx, 3, yt, ldy);
            else if (rem == 2) tile_f(F16, wr, cols, xt, ldx, 2, yt, ldy);
            else tile_f(F16, wr, cols, xt, ldx, 1, yt, ldy);
        }
    }
}

void eff_matmul_f16(const uint16_t *w, size_t rowBytes, int rowBegin, int rowEnd, int cols,
                    const float *x, int ldx, int nTokens, float *y, int ldy) {
    matmul_f(1, (const uint8_t *)w, rowBytes, rowBegin, rowEnd, cols, x, ldx, nTokens, y, ldy);
}

void eff_matmul_f32(const float *w, size_t rowBytes, int rowBegin, int rowEnd, int cols,
                    const float *x, int ldx, int nTokens, float *y, int ldy) {
    matmul_f(0, (const uint8_t *)w, rowBytes, rowBegin, rowEnd, cols, x, ldx, nTokens, y, ldy);
}

float eff_dot_f32(const float *a, const float *b, int n) { return eff_dot8_f32(a, b, n); }

void eff_attn_scores_f32(const float *q, const float *keys, size_t stride, int n, int headSize,
                         float scale, float *scores) {
    for (int p = 0; p < n; p++) scores[p] = scale * eff_dot_f32(q, keys + (size_t)p * stride, headSize);
}

void eff_attn_mix_f32(const float *probs, const float *values, size_t stride, int n,
                      int headSize, float *out) {
    if (headSize == 64) {
        // Keep the 64 outputs in eight registers across all positions.
        __m256 o[8];
        for (int j = 0; j < 8; j++) o[j] = _mm256_loadu_ps(out + 8 * j);
        for (int p = 0; p < n; p++) {
            const __m256 pr = _mm256_set1_ps(probs[p]);
            const float *v = values + (size_t)p * stride;
            for (int j = 0; j < 8; j++) o[j] = _mm256_fmadd_ps(pr, _mm256_loadu_ps(v + 8 * j), o[j]);
        }
        for (int j = 0; j < 8; j++) _mm256_storeu_ps(out + 8 * j, o[j]);
        return;
    }
    for (int p = 0; p < n; p++) {
        const float pr = probs[p];
        const float *v = values + (size_t)p * stride;
        int i = 0;
        for (; i + 8 <= headSize; i += 8)
            _mm256_storeu_ps(out + i, _mm256_fmadd_ps(_mm256_set1_ps(pr), _mm256_loadu_ps(v + i),
                                                      _mm256_loadu_ps(out + i)));
        for (; i < headSize; i++) out[i] += pr * v[i];
    }
}
