// AVX-512 (F, BW, VNNI) tiles over the x8 layout, included once by matmul.c under a target
// attribute and used only after a run-time check. Not a public header.
//
// One zmm holds two adjacent 8-row groups side by side (lanes 0-7 group g, lanes 8-15 group
// g + 1), read straight from the x8 layout, so no second layout is needed. Every lane runs
// the same operations as tile8 in matmul_body.h (exact int32 dot, then cvt, d_w * d_x,
// FMA, and the Q4 offset FMA), so results are bit-identical to the 256-bit paths; the gain
// is twice the rows per instruction where 512-bit units are full width (Zen 5).

static inline __m512i eff512_load2(const uint8_t *a, const uint8_t *b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                              _mm256_loadu_si256((const __m256i *)b), 1);
}

static inline __m256i eff512_load2x16(const uint8_t *a, const uint8_t *b) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a)),
                                   _mm_loadu_si128((const __m128i *)b), 1);
}

/// Two packed 8-row groups (`pa`, `pb`) times NT tokens; stores lanes [laneLo, laneHi) of 16
/// at y[k * ldy + lane]. `xu` as in tile8 (Q8_0: activations + 128).
static inline __attribute__((always_inline)) void eff512_tile16(
    const int KIND, const uint8_t *pa, const uint8_t *pb, int nBlocks, const eff_q8a_block *x,
    const uint8_t *xu, const int NT, float *y, int ldy, int laneLo, int laneHi, size_t pfAhead,
    const uint8_t *pfEnd)
{
    __m512 acc[8];
    for (int k = 0; k < NT; k++) acc[k] = _mm512_setzero_ps();
    const size_t pbytes = EFF_X8_BYTES(KIND);
    for (int b = 0; b < nBlocks; b++) {
        const uint8_t *ba = pa + (size_t)b * pbytes, *bb = pb + (size_t)b * pbytes;
        if (pfAhead) {
            for (size_t o = 0; o < pbytes; o += 64) {
                if (ba + pfAhead + o < pfEnd) _mm_prefetch((const char *)(ba + pfAhead + o), _MM_HINT_T0);
                if (bb + pfAhead + o < pfEnd) _mm_prefetch((const char *)(bb + pfAhead + o), _MM_HINT_T0);
            }
        }
        const uint8_t *qa = ba + EFF_X8_QS(KIND), *qb = bb + EFF_X8_QS(KIND);
        const __m512 d = _mm512_cvtph_ps(eff512_load2x16(ba, bb));
        __m512 m = _mm512_setzero_ps();
        if (KIND == EFF_X8_Q4_1) m = _mm512_cvtph_ps(eff512_load2x16(ba + 16, bb + 16));
        if (KIND == EFF_X8_Q4_0) m = _mm512_mul_ps(d, _mm512_set1_ps(-8.0f));
        __m512i w[8];
        __m512i corr = _mm512_setzero_si512();
        if (KIND != EFF_X8_Q8_0) {
            const __m512i lo = _mm512_set1_epi8(0x0F);
            for (int c = 0; c < 4; c++) {
                const __m512i v = eff512_load2(qa + 32 * c, qb + 32 * c);
                w[c] = _mm512_and_si512(v, lo);
                w[c + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), lo);
            }
        } else {
            for (int g = 0; g < 8; g++) w[g] = eff512_load2(qa + 32 * g, qb + 32 * g);
            corr = _mm512_slli_epi32(_mm512_cvtepi16_epi32(eff512_load2x16(ba + 16, bb + 16)), 7);
        }
        for (int k = 0; k < NT; k++) {
            const eff_q8a_block *xb = x + (size_t)k * nBlocks + b;
            __m512i s;
            if (KIND == EFF_X8_Q8_0) {
                const int32_t *xq = (const int32_t *)(xu + ((size_t)k * nBlocks + b) * 32);
                s = corr;
                for (int g = 0; g < 8; g++) s = _mm512_dpbusd_epi32(s, _mm512_set1_epi32(xq[g]), w[g]);
            } else {
                const int32_t *xq = (const int32_t *)xb->qs;
                s = _mm512_setzero_si512();
                for (int g = 0; g < 8; g++) s = _mm512_dpbusd_epi32(s, w[g], _mm512_set1_epi32(xq[g]));
            }
            acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(d, _mm512_set1_ps(xb->d)), acc[k]);
            if (KIND != EFF_X8_Q8_0) acc[k] = _mm512_fmadd_ps(m, _mm512_set1_ps(xb->s), acc[k]);
        }
    }
    const __mmask16 mask = (__mmask16)(((1u << laneHi) - 1u) & ~((1u << laneLo) - 1u));
    for (int k = 0; k < NT; k++) _mm512_mask_storeu_ps(y + (size_t)k * ldy, mask, acc[k]);
}

/// Rows [rowBegin, rowEnd) of an x8-packed matrix, two groups per tile (a lone last group
/// is paired with itself and its copy's lanes are not stored).
static inline __attribute__((always_inline)) void eff512_matmul_x8(
    const int KIND, const uint8_t *packed, int rowBegin, int rowEnd, int nBlocks,
    const eff_q8a_block *x, const uint8_t *xu, int nTokens, float *y, int ldy)
{
    const size_t groupBytes = (size_t)nBlocks * EFF_X8_BYTES(KIND);
    const int g1 = (rowEnd + 7) / 8;
    const uint8_t *end = packed + (size_t)g1 * groupBytes;
    const size_t ahead = (12288 / groupBytes + 1) * groupBytes;
    for (int g = rowBegin / 8; g < g1; g += 2) {
        const uint8_t *pa = packed + (size_t)g * groupBytes;
        const uint8_t *pb = g + 1 < g1 ? pa + groupBytes : pa;
        const int lo = rowBegin > 8 * g ? rowBegin - 8 * g : 0;
        const int hi = rowEnd < 8 * g + 16 ? rowEnd - 8 * g : 16;
        size_t pf = ahead;
        int t = 0;
        for (; t + 8 <= nTokens; t += 8, pf = 0)
            eff512_tile16(KIND, pa, pb, nBlocks, x + (size_t)t * nBlocks, xu + (size_t)t * nBlocks * 32, 8,
                          y + (size_t)t * ldy + 8 * g, ldy, lo, hi, pf, end);
        const eff_q8a_block *xt = x + (size_t)t * nBlocks;
        const uint8_t *xut = xu + (size_t)t * nBlocks * 32;
        float *yt = y + (size_t)t * ldy + 8 * g;
        switch (nTokens - t) {
        case 7: eff512_tile16(KIND, pa, pb, nBlocks, xt, xut, 7, yt, ldy, lo, hi, pf, end); break;
        case 6: eff512_tile16(KIND, pa, pb, nBlocks, xt, xut, 6, yt, ldy, lo, hi, pf, end); break;
        case 5: eff512_tile16(KIND, pa, pb, nBlocks, xt, xut, 5, yt, ldy, lo, hi, pf, end); break;
        case 4: eff512_tile16(KIND, pa, pb, nBlocks, xt, xut, 4, yt, ldy, lo, hi, pf, end); break;
        case 3: eff512_tile16(KIND, pa, pb, nBlocks, xt, xut, 3, yt, ldy, lo, hi, pf, end); break;
        case 2: eff512_tile16(KIND, pa, pb, nBlocks, xt, xut, 2, yt, ldy, lo, hi, pf, end); break;
        case 1: eff512_tile16(KIND, pa, pb, nBlocks, xt, xut, 1, yt, ldy, lo, hi, pf, end); break;
        default: break;
        }
    }
}

static void eff512_matmul_x8_q4_1(const uint8_t *p, int rb, int re, int nb, const eff_q8a_block *x,
                                  const uint8_t *xu, int nt, float *y, int ldy) {
    eff512_matmul_x8(EFF_X8_Q4_1, p, rb, re, nb, x, xu, nt, y, ldy);
}
static void eff512_matmul_x8_q4_0(const uint8_t *p, int rb, int re, int nb, const eff_q8a_block *x,
                                  const uint8_t *xu, int nt, float *y, int ldy) {
    eff512_matmul_x8(EFF_X8_Q4_0, p, rb, re, nb, x, xu, nt, y, ldy);
}
static void eff512_matmul_x8_q8_0(const uint8_t *p, int rb, int re, int nb, const eff_q8a_block *x,
                                  const uint8_t *xu, int nt, float *y, int ldy) {
    eff512_matmul_x8(EFF_X8_Q8_0, p, rb, re, nb, x, xu, nt, y, ldy);
}
