// Kernel bodies instantiated twice by matmul.c: once for plain AVX2 (maddubs + madd) and
// once for AVX-VNNI (vpdpbusd), selected at run time. Not a public header.
// Expects SUFFIX and USE_VNNI to be defined by the includer.

#define EFF_CAT2(a, b) a##_##b
#define EFF_CAT(a, b) EFF_CAT2(a, b)
#define FN(name) EFF_CAT(name, SUFFIX)

/// Sum of adjacent u8*s8 products in groups of four: i32x8.
static inline __attribute__((always_inline)) __m256i FN(dot_us)(__m256i u, __m256i s) {
#if USE_VNNI
    return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

/// 32 nibbles of a Q4 block as u8: low lane elements 0..15 (low nibbles), high lane 16..31.
static inline __attribute__((always_inline)) __m256i FN(unpack_q4)(const uint8_t *qs) {
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    const __m256i v = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

// One weight row against NT tokens (NT a compile-time constant after inlining).
// KIND 0: Q4_1, 1: Q4_0, 2: Q8_0.
static inline __attribute__((always_inline)) void FN(tile_q)(
    const int KIND, const uint8_t *wr, int nBlocks, const eff_q8a_block *x, const int NT,
    float *y, int ldy)
{
    __m256 acc[4];
    float off[4];
    for (int k = 0; k < NT; k++) { acc[k] = _mm256_setzero_ps(); off[k] = 0.0f; }
    const int bb = KIND == 0 ? 20 : (KIND == 1 ? 18 : 34);
    for (int b = 0; b < nBlocks; b++) {
        const uint8_t *blk = wr + (size_t)b * bb;
        const float d = eff_f16(blk);
        __m256i u;
        __m256i sgn = _mm256_setzero_si256();
        float m = 0.0f;
        if (KIND == 0) {
            m = eff_f16(blk + 2);
            u = FN(unpack_q4)(blk + 4);
        } else if (KIND == 1) {
            m = -8.0f * d;
            u = FN(unpack_q4)(blk + 2);
        } else {
            sgn = _mm256_loadu_si256((const __m256i *)(blk + 2));
            u = _mm256_sign_epi8(sgn, sgn);  // |w| as u8 (-128 -> 128)
        }
        for (int k = 0; k < NT; k++) {
            const eff_q8a_block *xb = x + (size_t)k * nBlocks + b;
            __m256i s = _mm256_loadu_si256((const __m256i *)xb->qs);
            if (KIND == 2) s = _mm256_sign_epi8(s, sgn);  // x * sign(w)
            const __m256 p = _mm256_cvtepi32_ps(FN(dot_us)(u, s));
            acc[k] = _mm256_fmadd_ps(p, _mm256_set1_ps(d * xb->d), acc[k]);
            if (KIND != 2) off[k] += m * xb->s;
        }
    }
    for (int k = 0; k < NT; k++) y[(size_t)k * ldy] = eff_hsum(acc[k]) + off[k];
}

// Rows [rowBegin, rowEnd) in tiles of 16 rows; tokens in groups of 4 share one weight decode.
static inline __attribute__((always_inline)) void FN(matmul_q)(const int KIND, const uint8_t *w, size_t rowBytes, int rowBegin,
                         int rowEnd, int nBlocks, const eff_q8a_block *x, int nTokens,
                         float *y, int ldy)
{
    for (int r0 = rowBegin; r0 < rowEnd; r0 += 16) {
        const int r1 = r0 + 16 < rowEnd ? r0 + 16 : rowEnd;
        int t = 0;
        for (; t + 4 <= nTokens; t += 4) {
            for (int r = r0; r < r1; r++)
                FN(tile_q)(KIND, w + (size_t)r * rowBytes, nBlocks, x + (size_t)t * nBlocks, 4,
                           y + (size_t)t * ldy + r, ldy);
        }
        // 1-3 remaining tokens still share each decoded weight block.
        const int rem = nTokens - t;
        for (int r = r0; r < r1 && rem > 0; r++) {
            const uint8_t *wr = w + (size_t)r * rowBytes;
            const eff_q8a_block *xt = x + (size_t)t * nBlocks;
            float *yt = y + (size_t)t * ldy + r;
            if (rem == 3) FN(tile_q)(KIND, wr, nBlocks, xt, 3, yt, ldy);
            else if (rem == 2) FN(tile_q)(KIND, wr, nBlocks, xt, 2, yt, ldy);
            else FN(tile_q)(KIND, wr, nBlocks, xt, 1, yt, ldy);
        }
    }
}

static void FN(matmul_q4_1)(const uint8_t *w, size_t rowBytes, int rowBegin, int rowEnd,
                            int nBlocks, const eff_q8a_block *x, int nTokens, float *y, int ldy) {
    FN(matmul_q)(0, w, rowBytes, rowBegin, rowEnd, nBlocks, x, nTokens, y, ldy);
}
static void FN(matmul_q4_0)(const uint8_t *w, size_t rowBytes, int rowBegin, int rowEnd,
                            int nBlocks, const eff_q8a_block *x, int nTokens, float *y, int ldy) {
    FN(matmul_q)(1, w, rowBytes, rowBegin, rowEnd, nBlocks, x, nTokens, y, ldy);
}
static void FN(matmul_q8_0)(const uint8_t *w, size_t rowBytes, int rowBegin, int rowEnd,
                            int nBlocks, const eff_q8a_block *x, int nTokens, float *y, int ldy) {
    FN(matmul_q)(2, w, rowBytes, rowBegin, rowEnd, nBlocks, x, nTokens, y, ldy);
}

#undef FN
#undef EFF_CAT
#undef EFF_CAT2
