// Attention pieces and elementwise maps with AVX2/FMA: a vectorized exp, softmax, SwiGLU,
// and online-softmax ("flash") attention of a group of query heads over cache segments,
// which never materializes more than one block of scores.
#include "CEffKernels.h"
#include "simd.h"
#include <immintrin.h>
#include <math.h>

/// e^x for 8 floats: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-6 polynomial
/// (Cephes expf coefficients), 2^n through the exponent bits. Max relative error ~2e-7;
/// inputs below -87.3 give 0, above 88.3 are clamped.
static inline __m256 eff_exp8(__m256 x) {
    x = _mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f));
    const __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3365447504f), _CMP_LT_OQ);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500E-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

void eff_exp_f32(const float *x, float *y, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, eff_exp8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float tx[8] = {0}, ty[8];
        for (int j = i; j < n; j++) tx[j - i] = x[j];
        _mm256_storeu_ps(ty, eff_exp8(_mm256_loadu_ps(tx)));
        for (int j = i; j < n; j++) y[j] = ty[j - i];
    }
}

static inline float eff_hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/// x[i] <- e^(x[i] - max) / sum, in place.
void eff_softmax_f32(float *x, int n) {
    if (n <= 0) return;
    float m = -INFINITY;
    int i = 0;
    if (n >= 8) {
        __m256 vm = _mm256_loadu_ps(x);
        for (i = 8; i + 8 <= n; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
        m = eff_hmax(vm);
    }
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    const __m256 vmax = _mm256_set1_ps(m);
    __m256 vs = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 e = eff_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
        _mm256_storeu_ps(x + i, e);
        vs = _mm256_add_ps(vs, e);
    }
    float s = eff_hsum8(vs);
    for (; i < n; i++) { x[i] = expf(x[i] - m); s += x[i]; }
    const __m256 inv = _mm256_set1_ps(1.0f / s);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (; i < n; i++) x[i] *= 1.0f / s;
}

/// gate[i] <- gate[i] / (1 + e^-gate[i]) * up[i]
void eff_swiglu_f32(float *gate, const float *up, int n) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 e = eff_exp8(_mm256_xor_ps(g, sign));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

#define EFF_ATT_BLOCK 128
#define EFF_ATT_MAXG 8

void eff_attn_spans(const float *q, int G, int hs, const eff_kv_span *spans, int nspans, size_t stride,
                    long lo, long hi, float scale, float *m, float *l, float *o) {
    float s[EFF_ATT_MAXG][EFF_ATT_BLOCK];
    const float *kr[EFF_ATT_BLOCK], *vr[EFF_ATT_BLOCK];
    int si = 0;
    for (long p0 = lo; p0 < hi; p0 += EFF_ATT_BLOCK) {
        const int bn = hi - p0 < EFF_ATT_BLOCK ? (int)(hi - p0) : EFF_ATT_BLOCK;
        // Rows of the block's positions, wherever they live: blocks follow absolute positions
        // from `lo`, not span boundaries, so any split of the cache sums in the same order.
        for (int j = 0; j < bn; j++) {
            const long p = p0 + j;
            while (si + 1 < nspans && p >= spans[si].first + spans[si].count) si++;
            const size_t row = (size_t)(p - spans[si].first) * stride;
            kr[j] = spans[si].keys + row;
            vr[j] = spans[si].values + row;
        }
        // Scores of each head for the block; each key row is loaded once per group.
        for (int j = 0; j < bn; j++) {
            const float *k = kr[j];
            for (int g = 0; g < G; g++) s[g][j] = eff_dot8_f32(q + (size_t)g * hs, k, hs) * scale;
        }
        // Online softmax: rescale what was accumulated to the new running max.
        for (int g = 0; g < G; g++) {
            float bm = s[g][0];
            for (int j = 1; j < bn; j++) bm = s[g][j] > bm ? s[g][j] : bm;
            const float mNew = bm > m[g] ? bm : m[g];
            const float corr = m[g] == -INFINITY ? 0.0f : expf(m[g] - mNew);
            m[g] = mNew;
            const __m256 vm = _mm256_set1_ps(mNew);
            __m256 vs = _mm256_setzero_ps();
            int j = 0;
            for (; j + 8 <= bn; j += 8) {
                const __m256 e = eff_exp8(_mm256_sub_ps(_mm256_loadu_ps(&s[g][j]), vm));
                _mm256_storeu_ps(&s[g][j], e);
                vs = _mm256_add_ps(vs, e);
            }
            float sum = eff_hsum8(vs);
            for (; j < bn; j++) { s[g][j] = expf(s[g][j] - mNew); sum += s[g][j]; }
            l[g] = l[g] * corr + sum;
            if (corr != 1.0f) for (int i = 0; i < hs; i++) o[(size_t)g * hs + i] *= corr;
        }
        // o += p V, each value row loaded once per group.
        if (hs == 64) {
            for (int g = 0; g < G; g++) {
                float *og = o + (size_t)g * hs;
                __m256 acc[8];
                for (int i = 0; i < 8; i++) acc[i] = _mm256_loadu_ps(og + 8 * i);
                for (int j = 0; j < bn; j++) {
                    const float *v = vr[j];
                    const __m256 pj = _mm256_set1_ps(s[g][j]);
                    for (int i = 0; i < 8; i++) acc[i] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + 8 * i), acc[i]);
                }
                for (int i = 0; i < 8; i++) _mm256_storeu_ps(og + 8 * i, acc[i]);
            }
        } else {
            for (int j = 0; j < bn; j++) {
                const float *v = vr[j];
                for (int g = 0; g < G; g++) {
                    float *og = o + (size_t)g * hs;
                    const float pj = s[g][j];
                    for (int i = 0; i < hs; i++) og[i] += pj * v[i];
                }
            }
        }
    }
}
