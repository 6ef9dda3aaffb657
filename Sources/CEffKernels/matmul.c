// Matrix kernels with AVX2/FMA/F16C intrinsics (AVX-512 is never used; AVX-VNNI only
// behind a run-time check). Layouts follow ggml's blocks; see CEffKernels.h.
#include "CEffKernels.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

static inline float eff_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static inline float eff_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
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

static int g_use_vnni = -1;

void eff_set_use_vnni(int on) { g_use_vnni = on && eff_cpu_has_avx_vnni() ? 1 : 0; }

static inline int use_vnni(void) {
    if (g_use_vnni < 0) g_use_vnni = eff_cpu_has_avx_vnni();
    return g_use_vnni;
}

void eff_matmul_q4_1(const uint8_t *w, size_t rowBytes, int rowBegin, int rowEnd, int nBlocks,
                     const eff_q8a_block *x, int nTokens, float *y, int ldy) {
    if (use_vnni()) matmul_q4_1_vnni(w, rowBytes, rowBegin, rowEnd, nBlocks, x, nTokens, y, ldy);
    else matmul_q4_1_avx2(w, rowBytes, rowBegin, rowEnd, nBlocks, x, nTokens, y, ldy);
}

void eff_matmul_q4_0(const uint8_t *w, size_t rowBytes, int rowBegin, int rowEnd, int nBlocks,
                     const eff_q8a_block *x, int nTokens, float *y, int ldy) {
    if (use_vnni()) matmul_q4_0_vnni(w, rowBytes, rowBegin, rowEnd, nBlocks, x, nTokens, y, ldy);
    else matmul_q4_0_avx2(w, rowBytes, rowBegin, rowEnd, nBlocks, x, nTokens, y, ldy);
}

void eff_matmul_q8_0(const uint8_t *w, size_t rowBytes, int rowBegin, int rowEnd, int nBlocks,
                     const eff_q8a_block *x, int nTokens, float *y, int ldy) {
    if (use_vnni()) matmul_q8_0_vnni(w, rowBytes, rowBegin, rowEnd, nBlocks, x, nTokens, y, ldy);
    else matmul_q8_0_avx2(w, rowBytes, rowBegin, rowEnd, nBlocks, x, nTokens, y, ldy);
}

void eff_quantize_q8a(const float *x, int n, eff_q8a_block *out) {
    const __m256 signBit = _mm256_set1_ps(-0.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
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
        __m256i sum = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        s4 = _mm_hadd_epi32(s4, s4);
        s4 = _mm_hadd_epi32(s4, s4);
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        p = _mm256_permutevar8x32_epi32(p, perm);
        _mm256_storeu_si256((__m256i *)out[b].qs, p);
        out[b].d = d;
        out[b].s = d * (float)_mm_cvtsi128_si32(s4);
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
        float s = eff_hsum(acc[k]);
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

float eff_dot_f32(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = eff_hsum(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

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
