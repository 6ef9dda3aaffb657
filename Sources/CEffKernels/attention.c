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
#define EFF_ATT_MAXHS 256

/// One KV head's row `row` of a span, as f32: the stored floats themselves (f32), or the row
/// converted into `tmp` (f16 through F16C; q8 codes times their group's scale).
static inline __attribute__((always_inline)) const float *eff_kv_row(const eff_kv_layout *L, const void *base,
                                                                     const float *scales, long row, float *tmp) {
    const int hs = L->hs;
    switch (L->format) {
    case EFF_KV_F16: {
        const uint16_t *h = (const uint16_t *)base + (size_t)row * L->stride + L->hoff;
        int i = 0;
        for (; i + 8 <= hs; i += 8)
            _mm256_storeu_ps(tmp + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
        for (; i < hs; i++) tmp[i] = _cvtsh_ss(h[i]);
        return tmp;
    }
    case EFF_KV_Q8: {
        const int8_t *c = (const int8_t *)base + (size_t)row * L->stride + L->hoff;
        const float *sc = scales + (size_t)row * L->sstride;
        const int g = L->group;
        int i = 0;
        for (; i + 8 <= hs; i += 8) {
            const __m256 d = _mm256_set1_ps(sc[(L->hoff + i) / g]);
            const __m256i w = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(c + i)));
            _mm256_storeu_ps(tmp + i, _mm256_mul_ps(_mm256_cvtepi32_ps(w), d));
        }
        for (; i < hs; i++) tmp[i] = (float)c[i] * sc[(L->hoff + i) / g];
        return tmp;
    }
    default:
        return (const float *)base + (size_t)row * L->stride + L->hoff;
    }
}

/// Fills up to EFF_ATT_BLOCK (span, row, position) entries with the next positions in
/// [*p, hi) held by `spans`, advancing the cursor (*si, *p). Positions between spans are gaps.
static inline int eff_next_block(const eff_kv_fspan *spans, int nspans, int *si, long *p, long hi,
                                 int *bs, long *br, long *bp) {
    int bn = 0;
    while (bn < EFF_ATT_BLOCK && *si < nspans) {
        const long s0 = spans[*si].first, s1 = s0 + spans[*si].count;
        if (*p < s0) *p = s0;
        if (*p >= hi) break;
        if (*p >= s1) { (*si)++; continue; }
        bs[bn] = *si;
        br[bn] = *p - s0;
        bp[bn] = *p;
        bn++;
        (*p)++;
    }
    return bn;
}

/// Horizontal sums of eight int32x8 vectors: lane r of the result is the sum of v[r]'s lanes.
static inline __m256i eff_hsum8x8_epi32(const __m256i *v) {
    const __m256i a0 = _mm256_hadd_epi32(v[0], v[1]), a1 = _mm256_hadd_epi32(v[2], v[3]);
    const __m256i a2 = _mm256_hadd_epi32(v[4], v[5]), a3 = _mm256_hadd_epi32(v[6], v[7]);
    const __m256i b0 = _mm256_hadd_epi32(a0, a1), b1 = _mm256_hadd_epi32(a2, a3);
    return _mm256_add_epi32(_mm256_permute2x128_si256(b0, b1, 0x20), _mm256_permute2x128_si256(b0, b1, 0x31));
}

/// The q8 cache's own attention, never converting a key to float: each query head is
/// quantized once per call to int8 on the cache's groups (as llama.cpp does for q8_0 K . Q),
/// scores are integer dot products (AVX2 has no int8 x int8 multiply: |q| times k with q's
/// sign, through maddubs, exact since |codes| <= 127), reduced eight rows at a time and scaled
/// by both groups' scales. Values are read as codes and widened once per 16 dimensions, with
/// each value row's scale folded into its probability, so the weighted sum needs no
/// dequantized row either. Needs hs a multiple of 32 (<= 128) and whole groups per head.
static inline __attribute__((always_inline)) void
eff_attn_kv_q8_g(const eff_kv_layout *L, const float *q, const int G, const eff_kv_fspan *spans, int nspans,
                 long lo, long hi, float scale, float *m, float *l, float *o, const int hs, const int grp) {
    const int ng = hs / grp, nc = hs / 32, cpg = grp / 32;
    const int gbase = L->hoff / grp;
    // Query codes per head: |code| (unsigned) and code (for its sign); one scale per group.
    int8_t qa[EFF_ATT_MAXG][128] __attribute__((aligned(32))), qs8[EFF_ATT_MAXG][128] __attribute__((aligned(32)));
    float qd[EFF_ATT_MAXG][4];
    for (int g = 0; g < G; g++) {
        for (int gi = 0; gi < ng; gi++) {
            const float *x = q + (size_t)g * hs + gi * grp;
            float amax = 0;
            for (int i = 0; i < grp; i++) { const float a = fabsf(x[i]); amax = a > amax ? a : amax; }
            const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
            qd[g][gi] = d * scale;
            for (int i = 0; i < grp; i++) {
                float r = nearbyintf(x[i] * id);
                r = r > 127.0f ? 127.0f : (r < -127.0f ? -127.0f : r);
                qs8[g][gi * grp + i] = (int8_t)r;
                qa[g][gi * grp + i] = (int8_t)(r < 0 ? -r : r);
            }
        }
    }
    float s[EFF_ATT_MAXG][EFF_ATT_BLOCK] __attribute__((aligned(32)));
    float ks[4][EFF_ATT_BLOCK] __attribute__((aligned(32)));      // key scale per group and row
    float vs[4][EFF_ATT_BLOCK] __attribute__((aligned(32)));      // value scale per group and row
    float pw[EFF_ATT_MAXG][4][EFF_ATT_BLOCK] __attribute__((aligned(32)));  // p * value scale
    const int8_t *vrow[EFF_ATT_BLOCK];
    __m256i part[EFF_ATT_MAXG][4][8];
    int bs[EFF_ATT_BLOCK];
    long br[EFF_ATT_BLOCK], bp[EFF_ATT_BLOCK];
    const __m256i ones = _mm256_set1_epi16(1);
    int si = 0;
    long cursor = lo;
    for (;;) {
        const int bn = eff_next_block(spans, nspans, &si, &cursor, hi, bs, br, bp);
        if (bn == 0) break;
        for (int j0 = 0; j0 < bn; j0 += 8) {
            const int cnt = bn - j0 < 8 ? bn - j0 : 8;
            for (int jj = 0; jj < 8; jj++) {
                if (jj >= cnt) {
                    for (int g = 0; g < G; g++)
                        for (int gi = 0; gi < ng; gi++) part[g][gi][jj] = _mm256_setzero_si256();
                    continue;
                }
                const int j = j0 + jj;
                const eff_kv_fspan *sp = &spans[bs[j]];
                const int8_t *kc = (const int8_t *)sp->keys + (size_t)br[j] * L->stride + L->hoff;
                const float *ksc = sp->key_scales + (size_t)br[j] * L->sstride + gbase;
                const float *vsc = sp->value_scales + (size_t)br[j] * L->sstride + gbase;
                vrow[j] = (const int8_t *)sp->values + (size_t)br[j] * L->stride + L->hoff;
                for (int gi = 0; gi < ng; gi++) { ks[gi][j] = ksc[gi]; vs[gi][j] = vsc[gi]; }
                __m256i k[4];
                for (int c = 0; c < nc; c++) k[c] = _mm256_loadu_si256((const __m256i *)(kc + 32 * c));
                for (int g = 0; g < G; g++) {
                    for (int gi = 0; gi < ng; gi++) {
                        __m256i acc = _mm256_setzero_si256();
                        for (int c = gi * cpg; c < (gi + 1) * cpg; c++) {
                            const __m256i a = _mm256_load_si256((const __m256i *)(qa[g] + 32 * c));
                            const __m256i sg = _mm256_load_si256((const __m256i *)(qs8[g] + 32 * c));
                            const __m256i prod = _mm256_maddubs_epi16(a, _mm256_sign_epi8(k[c], sg));
                            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(prod, ones));
                        }
                        part[g][gi][jj] = acc;
                    }
                }
            }
            for (int g = 0; g < G; g++) {
                __m256 sc = _mm256_setzero_ps();
                for (int gi = 0; gi < ng; gi++) {
                    const __m256 dot = _mm256_cvtepi32_ps(eff_hsum8x8_epi32(part[g][gi]));
                    const __m256 d = _mm256_mul_ps(_mm256_loadu_ps(&ks[gi][j0]), _mm256_set1_ps(qd[g][gi]));
                    sc = _mm256_fmadd_ps(dot, d, sc);
                }
                _mm256_storeu_ps(&s[g][j0], sc);  // s has room for a whole last octet
            }
        }
        // Online softmax, as in the float path; then fold each value row's scale into p.
        for (int g = 0; g < G; g++) {
            float bm = s[g][0];
            for (int j = 1; j < bn; j++) bm = s[g][j] > bm ? s[g][j] : bm;
            const float mNew = bm > m[g] ? bm : m[g];
            const float corr = m[g] == -INFINITY ? 0.0f : expf(m[g] - mNew);
            m[g] = mNew;
            const __m256 vm = _mm256_set1_ps(mNew);
            __m256 vsum = _mm256_setzero_ps();
            int j = 0;
            for (; j + 8 <= bn; j += 8) {
                const __m256 e = eff_exp8(_mm256_sub_ps(_mm256_loadu_ps(&s[g][j]), vm));
                _mm256_storeu_ps(&s[g][j], e);
                vsum = _mm256_add_ps(vsum, e);
                for (int gi = 0; gi < ng; gi++) _mm256_store_ps(&pw[g][gi][j], _mm256_mul_ps(e, _mm256_load_ps(&vs[gi][j])));
            }
            float sum = eff_hsum8(vsum);
            for (; j < bn; j++) {
                s[g][j] = expf(s[g][j] - mNew);
                sum += s[g][j];
                for (int gi = 0; gi < ng; gi++) pw[g][gi][j] = s[g][j] * vs[gi][j];
            }
            l[g] = l[g] * corr + sum;
            if (corr != 1.0f) for (int i = 0; i < hs; i++) o[(size_t)g * hs + i] *= corr;
        }
        // o += p V, 16 dimensions at a time: each value row widened once, used by every head.
        for (int d0 = 0; d0 < hs; d0 += 16) {
            const int gi = d0 / grp;
            __m256 a0[EFF_ATT_MAXG], a1[EFF_ATT_MAXG];
            for (int g = 0; g < G; g++) {
                a0[g] = _mm256_loadu_ps(o + (size_t)g * hs + d0);
                a1[g] = _mm256_loadu_ps(o + (size_t)g * hs + d0 + 8);
            }
            for (int j = 0; j < bn; j++) {
                const int8_t *v = vrow[j] + d0;
                const __m256 v0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)v)));
                const __m256 v1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(v + 8))));
                for (int g = 0; g < G; g++) {
                    const __m256 w = _mm256_broadcast_ss(&pw[g][gi][j]);
                    a0[g] = _mm256_fmadd_ps(w, v0, a0[g]);
                    a1[g] = _mm256_fmadd_ps(w, v1, a1[g]);
                }
            }
            for (int g = 0; g < G; g++) {
                _mm256_storeu_ps(o + (size_t)g * hs + d0, a0[g]);
                _mm256_storeu_ps(o + (size_t)g * hs + d0 + 8, a1[g]);
            }
        }
    }
}

/// eff_attn_kv_q8_g with the head count, head size and group as constants where they are
/// common (hs 64 with group 32 or 64, as SmolLM2's), so its loops unroll and the query codes
/// stay in registers: on a Zen 1 core that takes a row from ~120 to ~73 ns per KV head
/// (three query heads). Other shapes run the same code with run-time sizes.
#define EFF_Q8_BY_G(HS, GRP)                                                                    \
    switch (G) {                                                                                \
    case 1: eff_attn_kv_q8_g(L, q, 1, spans, nspans, lo, hi, scale, m, l, o, HS, GRP); return;  \
    case 2: eff_attn_kv_q8_g(L, q, 2, spans, nspans, lo, hi, scale, m, l, o, HS, GRP); return;  \
    case 3: eff_attn_kv_q8_g(L, q, 3, spans, nspans, lo, hi, scale, m, l, o, HS, GRP); return;  \
    case 4: eff_attn_kv_q8_g(L, q, 4, spans, nspans, lo, hi, scale, m, l, o, HS, GRP); return;  \
    default: eff_attn_kv_q8_g(L, q, G, spans, nspans, lo, hi, scale, m, l, o, HS, GRP); return; \
    }

static void eff_attn_kv_q8(const eff_kv_layout *L, const float *q, int G, const eff_kv_fspan *spans, int nspans,
                           long lo, long hi, float scale, float *m, float *l, float *o) {
    const int hs = L->hs, grp = L->group;
    if (hs == 64 && grp == 32) EFF_Q8_BY_G(64, 32)
    if (hs == 64 && grp == 64) EFF_Q8_BY_G(64, 64)
    EFF_Q8_BY_G(hs, grp)
}
#undef EFF_Q8_BY_G

/// Horizontal sums of eight float x8 vectors: lane r of the result is the sum of v[r]'s lanes.
static inline __m256 eff_hsum8x8_ps(const __m256 *v) {
    const __m256 a0 = _mm256_hadd_ps(v[0], v[1]), a1 = _mm256_hadd_ps(v[2], v[3]);
    const __m256 a2 = _mm256_hadd_ps(v[4], v[5]), a3 = _mm256_hadd_ps(v[6], v[7]);
    const __m256 b0 = _mm256_hadd_ps(a0, a1), b1 = _mm256_hadd_ps(a2, a3);
    return _mm256_add_ps(_mm256_permute2f128_ps(b0, b1, 0x20), _mm256_permute2f128_ps(b0, b1, 0x31));
}

/// The f16 cache's attention with no converted copy of a row: each key row is widened eight
/// halves at a time straight into the dot products of every query head (reduced eight rows
/// at a time), and value rows are widened sixteen dimensions at a time into the weighted
/// sums, as the q8 kernel does. Needs hs a multiple of 16.
static inline __attribute__((always_inline)) void
eff_attn_kv_f16_g(const eff_kv_layout *L, const float *q, const int G, const eff_kv_fspan *spans, int nspans,
                  long lo, long hi, float scale, float *m, float *l, float *o, const int hs) {
    float s[EFF_ATT_MAXG][EFF_ATT_BLOCK] __attribute__((aligned(32)));
    const uint16_t *vrow[EFF_ATT_BLOCK];
    __m256 part[EFF_ATT_MAXG][8];
    int bs[EFF_ATT_BLOCK];
    long br[EFF_ATT_BLOCK], bp[EFF_ATT_BLOCK];
    const __m256 vscale = _mm256_set1_ps(scale);
    int si = 0;
    long cursor = lo;
    for (;;) {
        const int bn = eff_next_block(spans, nspans, &si, &cursor, hi, bs, br, bp);
        if (bn == 0) break;
        for (int j0 = 0; j0 < bn; j0 += 8) {
            const int cnt = bn - j0 < 8 ? bn - j0 : 8;
            for (int jj = 0; jj < 8; jj++) {
                if (jj >= cnt) {
                    for (int g = 0; g < G; g++) part[g][jj] = _mm256_setzero_ps();
                    continue;
                }
                const int j = j0 + jj;
                const eff_kv_fspan *sp = &spans[bs[j]];
                const uint16_t *k = (const uint16_t *)sp->keys + (size_t)br[j] * L->stride + L->hoff;
                vrow[j] = (const uint16_t *)sp->values + (size_t)br[j] * L->stride + L->hoff;
                __m256 acc[EFF_ATT_MAXG];
                for (int g = 0; g < G; g++) acc[g] = _mm256_setzero_ps();
                for (int c = 0; c < hs; c += 8) {
                    const __m256 kc = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + c)));
                    for (int g = 0; g < G; g++) acc[g] = _mm256_fmadd_ps(_mm256_loadu_ps(q + (size_t)g * hs + c), kc, acc[g]);
                }
                for (int g = 0; g < G; g++) part[g][jj] = acc[g];
            }
            for (int g = 0; g < G; g++) _mm256_storeu_ps(&s[g][j0], _mm256_mul_ps(eff_hsum8x8_ps(part[g]), vscale));
        }
        for (int g = 0; g < G; g++) {
            float bm = s[g][0];
            for (int j = 1; j < bn; j++) bm = s[g][j] > bm ? s[g][j] : bm;
            const float mNew = bm > m[g] ? bm : m[g];
            const float corr = m[g] == -INFINITY ? 0.0f : expf(m[g] - mNew);
            m[g] = mNew;
            const __m256 vm = _mm256_set1_ps(mNew);
            __m256 vsum = _mm256_setzero_ps();
            int j = 0;
            for (; j + 8 <= bn; j += 8) {
                const __m256 e = eff_exp8(_mm256_sub_ps(_mm256_loadu_ps(&s[g][j]), vm));
                _mm256_storeu_ps(&s[g][j], e);
                vsum = _mm256_add_ps(vsum, e);
            }
            float sum = eff_hsum8(vsum);
            for (; j < bn; j++) { s[g][j] = expf(s[g][j] - mNew); sum += s[g][j]; }
            l[g] = l[g] * corr + sum;
            if (corr != 1.0f) for (int i = 0; i < hs; i++) o[(size_t)g * hs + i] *= corr;
        }
        for (int d0 = 0; d0 < hs; d0 += 16) {
            __m256 a0[EFF_ATT_MAXG], a1[EFF_ATT_MAXG];
            for (int g = 0; g < G; g++) {
                a0[g] = _mm256_loadu_ps(o + (size_t)g * hs + d0);
                a1[g] = _mm256_loadu_ps(o + (size_t)g * hs + d0 + 8);
            }
            for (int j = 0; j < bn; j++) {
                const uint16_t *v = vrow[j] + d0;
                const __m256 v0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)v));
                const __m256 v1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + 8)));
                for (int g = 0; g < G; g++) {
                    const __m256 w = _mm256_broadcast_ss(&s[g][j]);
                    a0[g] = _mm256_fmadd_ps(w, v0, a0[g]);
                    a1[g] = _mm256_fmadd_ps(w, v1, a1[g]);
                }
            }
            for (int g = 0; g < G; g++) {
                _mm256_storeu_ps(o + (size_t)g * hs + d0, a0[g]);
                _mm256_storeu_ps(o + (size_t)g * hs + d0 + 8, a1[g]);
            }
        }
    }
}

/// eff_attn_kv_f16_g with constant sizes for the common shapes (hs 64, G 1-4).
static void eff_attn_kv_f16(const eff_kv_layout *L, const float *q, int G, const eff_kv_fspan *spans, int nspans,
                            long lo, long hi, float scale, float *m, float *l, float *o) {
    if (L->hs == 64) {
        switch (G) {
        case 1: eff_attn_kv_f16_g(L, q, 1, spans, nspans, lo, hi, scale, m, l, o, 64); return;
        case 2: eff_attn_kv_f16_g(L, q, 2, spans, nspans, lo, hi, scale, m, l, o, 64); return;
        case 3: eff_attn_kv_f16_g(L, q, 3, spans, nspans, lo, hi, scale, m, l, o, 64); return;
        case 4: eff_attn_kv_f16_g(L, q, 4, spans, nspans, lo, hi, scale, m, l, o, 64); return;
        default: break;
        }
    }
    eff_attn_kv_f16_g(L, q, G, spans, nspans, lo, hi, scale, m, l, o, L->hs);
}

void eff_attn_kv(const eff_kv_layout *L, const float *q, int G, const eff_kv_fspan *spans, int nspans,
                 long lo, long hi, float scale, float *m, float *l, float *o) {
    if (L->format == EFF_KV_Q8 && L->hs % 32 == 0 && L->hs <= 128 && L->group % 32 == 0
        && L->hs % L->group == 0 && L->hoff % L->group == 0 && G <= EFF_ATT_MAXG) {
        eff_attn_kv_q8(L, q, G, spans, nspans, lo, hi, scale, m, l, o);
        return;
    }
    if (L->format == EFF_KV_F16 && L->hs % 16 == 0 && L->hs <= EFF_ATT_MAXHS && G <= EFF_ATT_MAXG) {
        eff_attn_kv_f16(L, q, G, spans, nspans, lo, hi, scale, m, l, o);
        return;
    }
    const int hs = L->hs;
    float s[EFF_ATT_MAXG][EFF_ATT_BLOCK];
    const float *kr[EFF_ATT_BLOCK], *vr[EFF_ATT_BLOCK];
    float ktmp[EFF_ATT_MAXHS];
    float vbuf[EFF_ATT_BLOCK * EFF_ATT_MAXHS / 2];  // converted value rows (hs <= 128 for f16/q8)
    int bs[EFF_ATT_BLOCK];
    long br[EFF_ATT_BLOCK], bp[EFF_ATT_BLOCK];
    const int converted = L->format != EFF_KV_F32;
    if (hs > EFF_ATT_MAXHS || (converted && hs > EFF_ATT_MAXHS / 2)) return;
    int si = 0;
    long cursor = lo;
    for (;;) {
        // The next block of present positions, wherever they live: blocks follow positions
        // from `lo`, not span boundaries, so any split of a contiguous cache sums in the same
        // order (a forked cache gives the bits of a fresh one); gaps are simply skipped.
        const int bn = eff_next_block(spans, nspans, &si, &cursor, hi, bs, br, bp);
        if (bn == 0) break;
        // Scores of each head for the block; each key row is loaded (and converted) once per group.
        for (int j = 0; j < bn; j++) {
            const eff_kv_fspan *sp = &spans[bs[j]];
            const float *k = eff_kv_row(L, sp->keys, sp->key_scales, br[j], ktmp);
            for (int g = 0; g < G; g++) s[g][j] = eff_dot8_f32(q + (size_t)g * hs, k, hs) * scale;
            vr[j] = eff_kv_row(L, sp->values, sp->value_scales, br[j], vbuf + (size_t)j * hs);
        }
        (void)kr;
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

void eff_attn_kv_scores(const eff_kv_layout *L, const float *q, const eff_kv_fspan *spans, int nspans,
                        long lo, long hi, float scale, float *scores) {
    float ktmp[EFF_ATT_MAXHS];
    if (L->hs > EFF_ATT_MAXHS) return;
    for (int si = 0; si < nspans; si++) {
        const long s0 = spans[si].first, s1 = s0 + spans[si].count;
        for (long p = s0 > lo ? s0 : lo; p < s1 && p < hi; p++) {
            const float *k = eff_kv_row(L, spans[si].keys, spans[si].key_scales, p - s0, ktmp);
            scores[p] = eff_dot8_f32(q, k, L->hs) * scale;
        }
    }
}

void eff_kv_put_f16(const float *x, int n, uint16_t *out) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) out[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}

void eff_kv_get_f16(const uint16_t *h, int n, float *out) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    for (; i < n; i++) out[i] = _cvtsh_ss(h[i]);
}

void eff_kv_put_q8(const float *x, int n, int group, int8_t *codes, float *scales) {
    for (int g0 = 0, gi = 0; g0 < n; g0 += group, gi++) {
        const int e = g0 + group < n ? g0 + group : n;
        float amax = 0;
        for (int i = g0; i < e; i++) { const float a = fabsf(x[i]); amax = a > amax ? a : amax; }
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        scales[gi] = d;
        for (int i = g0; i < e; i++) {
            float r = nearbyintf(x[i] * id);  // ties to even (default rounding mode)
            r = r > 127.0f ? 127.0f : (r < -127.0f ? -127.0f : r);
            codes[i] = (int8_t)r;
        }
    }
}

void eff_kv_get_q8(const int8_t *codes, const float *scales, int n, int group, float *out) {
    for (int i = 0; i < n; i++) out[i] = (float)codes[i] * scales[i / group];
}

void eff_attn_spans(const float *q, int G, int hs, const eff_kv_span *spans, int nspans, size_t stride,
                    long lo, long hi, float scale, float *m, float *l, float *o) {
    eff_kv_fspan fs[16];
    if (nspans > 16) return;
    for (int i = 0; i < nspans; i++) {
        fs[i].first = spans[i].first; fs[i].count = spans[i].count;
        fs[i].keys = spans[i].keys; fs[i].values = spans[i].values;
        fs[i].key_scales = 0; fs[i].value_scales = 0;
    }
    const eff_kv_layout L = {EFF_KV_F32, 0, hs, 0, stride, 0};
    eff_attn_kv(&L, q, G, fs, nspans, lo, hi, scale, m, l, o);
}
