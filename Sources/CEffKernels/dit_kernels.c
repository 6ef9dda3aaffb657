// DiT kernels (AVX2/FMA): a register-blocked f32 GEMM over weights packed in panels of 16
// output rows, a vectorized tanh-GELU, and whole-image self-attention for short sequences
// with an optional 1-D band (DiTFastAttn's window attention).
//
// Why a separate GEMM from eff_matmul_f32: that kernel is shaped for LLM decode (few tokens,
// one weight row times up to 4 tokens, a horizontal sum per output). A DiT step multiplies
// 128 tokens by small square matrices, where a 6-token x 16-row tile that keeps 12
// accumulators in registers and never reduces across lanes does several times less work
// per multiply-add (see the commit message for the measured ratio).
#include "CEffKernels.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

size_t eff_dit_packed16_floats(int rows, int cols) {
    return (size_t)((rows + 15) / 16) * 16 * (size_t)cols;
}

void eff_dit_pack16_f32(const float *w, int rows, int cols, float *packed) {
    const int panels = (rows + 15) / 16;
    for (int p = 0; p < panels; p++) {
        float *dst = packed + (size_t)p * 16 * cols;
        for (int k = 0; k < cols; k++) {
            for (int j = 0; j < 16; j++) {
                const int r = p * 16 + j;
                dst[(size_t)k * 16 + j] = r < rows ? w[(size_t)r * cols + k] : 0.0f;
            }
        }
    }
}

/// One tile: MT tokens (<= 6) x 16 rows of panel `wp`, k over all `cols`, plus bias.
/// `valid` rows of the 16 are stored (the rest are zero padding).
static inline __attribute__((always_inline)) void
dit_tile(const int MT, const float *wp, const float *bias16, int cols, const float *x, int ldx,
         float *y, int ldy, int valid) {
    __m256 a0[6], a1[6];
    const __m256 b0 = _mm256_loadu_ps(bias16), b1 = _mm256_loadu_ps(bias16 + 8);
    for (int i = 0; i < MT; i++) { a0[i] = b0; a1[i] = b1; }
    for (int k = 0; k < cols; k++) {
        const __m256 w0 = _mm256_loadu_ps(wp + (size_t)k * 16), w1 = _mm256_loadu_ps(wp + (size_t)k * 16 + 8);
        for (int i = 0; i < MT; i++) {
            const __m256 xb = _mm256_broadcast_ss(x + (size_t)i * ldx + k);
            a0[i] = _mm256_fmadd_ps(xb, w0, a0[i]);
            a1[i] = _mm256_fmadd_ps(xb, w1, a1[i]);
        }
    }
    if (valid == 16) {
        for (int i = 0; i < MT; i++) {
            _mm256_storeu_ps(y + (size_t)i * ldy, a0[i]);
            _mm256_storeu_ps(y + (size_t)i * ldy + 8, a1[i]);
        }
    } else {
        float tmp[16];
        for (int i = 0; i < MT; i++) {
            _mm256_storeu_ps(tmp, a0[i]);
            _mm256_storeu_ps(tmp + 8, a1[i]);
            memcpy(y + (size_t)i * ldy, tmp, sizeof(float) * (size_t)valid);
        }
    }
}

void eff_dit_gemm_f32(const float *packed, const float *bias, int rows, int cols, int panelBegin, int panelEnd,
                      const float *x, int ldx, int nTokens, float *y, int ldy) {
    for (int p = panelBegin; p < panelEnd; p++) {
        const float *wp = packed + (size_t)p * 16 * cols;
        const int r0 = p * 16;
        const int valid = rows - r0 < 16 ? rows - r0 : 16;
        float b16[16] = {0};
        for (int j = 0; j < valid; j++) b16[j] = bias ? bias[r0 + j] : 0.0f;
        int t = 0;
        for (; t + 6 <= nTokens; t += 6)
            dit_tile(6, wp, b16, cols, x + (size_t)t * ldx, ldx, y + (size_t)t * ldy + r0, ldy, valid);
        const int rem = nTokens - t;
        const float *xt = x + (size_t)t * ldx;
        float *yt = y + (size_t)t * ldy + r0;
        switch (rem) {
        case 5: dit_tile(5, wp, b16, cols, xt, ldx, yt, ldy, valid); break;
        case 4: dit_tile(4, wp, b16, cols, xt, ldx, yt, ldy, valid); break;
        case 3: dit_tile(3, wp, b16, cols, xt, ldx, yt, ldy, valid); break;
        case 2: dit_tile(2, wp, b16, cols, xt, ldx, yt, ldy, valid); break;
        case 1: dit_tile(1, wp, b16, cols, xt, ldx, yt, ldy, valid); break;
        default: break;
        }
    }
}

/// e^x for 8 floats: x = n ln2 + r, e^r by its degree-6 Taylor polynomial on |r| <= ln2/2
/// (truncation below 1.3e-7 relative), 2^n through the exponent bits; inputs are clamped
/// to [-87, 88].
static inline __m256 dit_exp8(__m256 x) {
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.0f)), _mm256_set1_ps(-87.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.4426950408889634f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187e-6f), r);
    // 1 + r + r^2/2! + ... + r^6/6!, Horner.
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

void eff_dit_gelu_tanh_f32(float *x, int n) {
    const __m256 k = _mm256_set1_ps(0.7978845608f), c = _mm256_set1_ps(0.044715f);
    const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f), half = _mm256_set1_ps(0.5f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 u = _mm256_mul_ps(k, _mm256_fmadd_ps(_mm256_mul_ps(c, v), _mm256_mul_ps(v, v), v));
        // tanh(u) = 1 - 2 / (e^{2u} + 1)
        const __m256 e = dit_exp8(_mm256_add_ps(u, u));
        const __m256 t = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(e, one)));
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, t)));
    }
    for (; i < n; i++) {
        const float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v)));
    }
}

void eff_dit_silu_f32(float *x, int n) {
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 e = dit_exp8(_mm256_sub_ps(zero, v));
        _mm256_storeu_ps(x + i, _mm256_div_ps(v, _mm256_add_ps(one, e)));
    }
    for (; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
}

size_t eff_dit_attention_scratch_floats(int n, int headSize) {
    return (size_t)n * (size_t)headSize + (size_t)n + 16;
}

void eff_dit_attention_head(const float *qkv, int n, int dim, int headSize, int head, float scale, int window,
                            float *out, int ldo, float *scratch) {
    const int stride = 3 * dim;
    const float *q0 = qkv + (size_t)head * headSize;
    const float *k0 = qkv + dim + (size_t)head * headSize;
    const float *v0 = qkv + 2 * dim + (size_t)head * headSize;
    // K transposed to (headSize, n) so scores of 8 keys come from one FMA per q element.
    float *kt = scratch, *s = scratch + (size_t)n * headSize;
    for (int p = 0; p < n; p++)
        for (int d = 0; d < headSize; d++) kt[(size_t)d * n + p] = k0[(size_t)p * stride + d];
    for (int i = 0; i < n; i++) {
        int lo = 0, hi = n;
        if (window >= 0) {
            lo = i - window < 0 ? 0 : i - window;
            hi = i + window + 1 > n ? n : i + window + 1;
        }
        const float *q = q0 + (size_t)i * stride;
        // Scores over [lo, hi), 8 keys per vector, the last vector masked.
        int p = lo;
        for (; p + 8 <= hi; p += 8) {
            __m256 acc = _mm256_setzero_ps();
            for (int d = 0; d < headSize; d++)
                acc = _mm256_fmadd_ps(_mm256_broadcast_ss(q + d), _mm256_loadu_ps(kt + (size_t)d * n + p), acc);
            _mm256_storeu_ps(s + p, _mm256_mul_ps(acc, _mm256_set1_ps(scale)));
        }
        for (; p < hi; p++) {
            float acc = 0;
            for (int d = 0; d < headSize; d++) acc += q[d] * kt[(size_t)d * n + p];
            s[p] = acc * scale;
        }
        float m = s[lo];
        for (p = lo + 1; p < hi; p++) m = s[p] > m ? s[p] : m;
        float sum = 0;
        p = lo;
        for (; p + 8 <= hi; p += 8) {
            const __m256 e = dit_exp8(_mm256_sub_ps(_mm256_loadu_ps(s + p), _mm256_set1_ps(m)));
            _mm256_storeu_ps(s + p, e);
            float t[8];
            _mm256_storeu_ps(t, e);
            for (int j = 0; j < 8; j++) sum += t[j];
        }
        for (; p < hi; p++) { s[p] = expf(s[p] - m); sum += s[p]; }
        const float inv = 1.0f / sum;
        float *o = out + (size_t)i * ldo + (size_t)head * headSize;
        int d = 0;
        for (; d + 8 <= headSize; d += 8) {
            __m256 acc = _mm256_setzero_ps();
            for (p = lo; p < hi; p++)
                acc = _mm256_fmadd_ps(_mm256_set1_ps(s[p]), _mm256_loadu_ps(v0 + (size_t)p * stride + d), acc);
            _mm256_storeu_ps(o + d, _mm256_mul_ps(acc, _mm256_set1_ps(inv)));
        }
        for (; d < headSize; d++) {
            float acc = 0;
            for (p = lo; p < hi; p++) acc += s[p] * v0[(size_t)p * stride + d];
            o[d] = acc * inv;
        }
    }
}
