// Kernel bodies instantiated twice by matmul.c: once for plain AVX2 (maddubs + madd) and
// once for AVX-VNNI (vpdpbusd), selected at run time. Not a public header.
// Expects SUFFIX and USE_VNNI to be defined by the includer, and the x8 layout helpers of
// matmul.c (EFF_X8_BYTES, eff_pack_x8) to be in scope.

#define EFF_CAT2(a, b) a##_##b
#define EFF_CAT(a, b) EFF_CAT2(a, b)
#define FN(name) EFF_CAT(name, SUFFIX)
#ifndef TOKEN_SLICE
#define TOKEN_SLICE 64
#endif

/// Exact int32 dot products of 8 weight rows with one token's 32 activations of a block,
/// lane r = sum_j w[r][j] * x[j]. `w[g]` holds columns 4g..4g+3 of the 8 rows (lane r =
/// row r): Q4 kinds as u8 nibbles, Q8_0 as |w| (u8) with `qs` the packed signed weights.
/// `xq` is the block's 32 activations as 8 groups of 4 bytes. (VNNI's Q8_0 takes another
/// route, in tile8.)
static inline __attribute__((always_inline)) __m256i FN(dot8)(const int KIND, const __m256i *w,
                                                               const uint8_t *qs, const int32_t *xq) {
#if USE_VNNI
    __m256i s = _mm256_setzero_si256();
    for (int g = 0; g < 8; g++) s = _mm256_dpbusd_avx_epi32(s, w[g], _mm256_set1_epi32(xq[g]));
    return s;
#else
    const __m256i ones = _mm256_set1_epi16(1);
    if (KIND != EFF_X8_Q8_0) {
        // Nibble x int8 pairs are at most 2 * 15 * 127 = 3810, so eight of them add up
        // exactly in int16 (30480 < 32767) before one widening madd.
        __m256i s16 = _mm256_maddubs_epi16(w[0], _mm256_set1_epi32(xq[0]));
        for (int g = 1; g < 8; g++) s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(w[g], _mm256_set1_epi32(xq[g])));
        return _mm256_madd_epi16(s16, ones);
    }
    // |w| x (x sign w) pairs reach 2 * 128 * 127 = 32512: widen every pair.
    __m256i s = _mm256_setzero_si256();
    for (int g = 0; g < 8; g++) {
        const __m256i xg = _mm256_sign_epi8(_mm256_set1_epi32(xq[g]), _mm256_loadu_si256((const __m256i *)(qs + 32 * g)));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_maddubs_epi16(w[g], xg), ones));
    }
    return s;
#endif
}

/// 8 packed weight rows (x8 layout, `nBlocks` blocks) times NT tokens: y[k * ldy + r] for
/// lanes r in [laneLo, laneHi). Per (row, token) the arithmetic is the same for every NT and both ISAs (the
/// int dot is exact): per block, acc = fma(float(dot), d_w * d_x, acc), then for Q4 kinds
/// acc = fma(m_w, s_x, acc) (Q4_0: m_w = -8 d_w). `xu` (VNNI Q8_0 only) is x's int8 values
/// plus 128, as u8: the dot is then sum (x + 128) w - 128 sum w, one vpdpbusd per group
/// with the weights straight from memory.
static inline __attribute__((always_inline)) void FN(tile8)(
    const int KIND, const uint8_t *pk, int nBlocks, const eff_q8a_block *x, const uint8_t *xu,
    const int NT, float *y, int ldy, int laneLo, int laneHi, size_t pfAhead, const uint8_t *pfEnd)
{
    const int biased = USE_VNNI && KIND == EFF_X8_Q8_0;
    __m256 acc[8];
    for (int k = 0; k < NT; k++) acc[k] = _mm256_setzero_ps();
    for (int b = 0; b < nBlocks; b++) {
        const uint8_t *blk = pk + (size_t)b * EFF_X8_BYTES(KIND);
        // Software prefetch of the packed weights pfAhead bytes on (0: none): the hardware
        // prefetcher alone left single-token products of DRAM-resident weights ~1.5x slower.
        if (pfAhead && blk + pfAhead < pfEnd)
            for (size_t o = 0; o < EFF_X8_BYTES(KIND); o += 64) _mm_prefetch((const char *)(blk + pfAhead + o), _MM_HINT_T0);
        const uint8_t *qs = blk + EFF_X8_QS(KIND);
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
        __m256 m = _mm256_setzero_ps();
        if (KIND == EFF_X8_Q4_1) m = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 16)));
        if (KIND == EFF_X8_Q4_0) m = _mm256_mul_ps(d, _mm256_set1_ps(-8.0f));
        __m256i w[8];
        if (KIND != EFF_X8_Q8_0) {
            const __m256i lo = _mm256_set1_epi8(0x0F);
            for (int c = 0; c < 4; c++) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
                w[c] = _mm256_and_si256(v, lo);                            // columns 4c..4c+3
                w[c + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), lo);  // columns 16+4c..
            }
        } else if (!biased) {
            for (int g = 0; g < 8; g++) w[g] = _mm256_abs_epi8(_mm256_loadu_si256((const __m256i *)(qs + 32 * g)));
        }
        // VNNI Q8_0: -128 sum_j w[r][j], the offset the +128 on the activations adds.
        const __m256i corr = biased ? _mm256_slli_epi32(_mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(blk + 16))), 7)
                                    : _mm256_setzero_si256();
        for (int k = 0; k < NT; k++) {
            const eff_q8a_block *xb = x + (size_t)k * nBlocks + b;
            __m256i s;
            if (biased) {
#if USE_VNNI
                const int32_t *xq = (const int32_t *)(xu + ((size_t)k * nBlocks + b) * 32);
                s = corr;
                for (int g = 0; g < 8; g++)
                    s = _mm256_dpbusd_avx_epi32(s, _mm256_set1_epi32(xq[g]), _mm256_loadu_si256((const __m256i *)(qs + 32 * g)));
#endif
            } else {
                s = FN(dot8)(KIND, w, qs, (const int32_t *)xb->qs);
            }
            acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(d, _mm256_set1_ps(xb->d)), acc[k]);
            if (KIND != EFF_X8_Q8_0) acc[k] = _mm256_fmadd_ps(m, _mm256_set1_ps(xb->s), acc[k]);
        }
    }
    for (int k = 0; k < NT; k++) {
        if (laneLo == 0 && laneHi == 8) {
            _mm256_storeu_ps(y + (size_t)k * ldy, acc[k]);
        } else {
            float t[8];
            _mm256_storeu_ps(t, acc[k]);
            for (int r = laneLo; r < laneHi; r++) y[(size_t)k * ldy + r] = t[r];
        }
    }
}

/// Tokens per pass over a group's blocks. AVX-VNNI keeps 8 accumulators and the 8 unpacked
/// weight registers live; plain AVX2 needs two more registers per token's dot (the int16
/// sum and the widening), so 8 tokens spilled accumulators and weights to the stack on
/// every block (16 ymm registers): 4 tokens fit.
#define TILE_NT (USE_VNNI ? 8 : 4)

/// One packed 8-row group times all tokens, TILE_NT at a time; stores lanes
/// [laneLo, laneHi) of each token's row (y points at lane 0's output for token 0).
static inline __attribute__((always_inline)) void FN(group_tokens)(
    const int KIND, const uint8_t *pk, int nBlocks, const eff_q8a_block *x, const uint8_t *xu,
    int nTokens, float *y, int ldy, int laneLo, int laneHi, size_t pfAhead, const uint8_t *pfEnd)
{
    int t = 0;
    for (; t + TILE_NT <= nTokens; t += TILE_NT, pfAhead = 0)  // only the first pass streams from memory
        FN(tile8)(KIND, pk, nBlocks, x + (size_t)t * nBlocks, xu + (size_t)t * nBlocks * 32, TILE_NT,
                  y + (size_t)t * ldy, ldy, laneLo, laneHi, pfAhead, pfEnd);
    const eff_q8a_block *xt = x + (size_t)t * nBlocks;
    const uint8_t *xut = xu + (size_t)t * nBlocks * 32;
    float *yt = y + (size_t)t * ldy;
    switch (nTokens - t) {
#if USE_VNNI
    case 7: FN(tile8)(KIND, pk, nBlocks, xt, xut, 7, yt, ldy, laneLo, laneHi, pfAhead, pfEnd); break;
    case 6: FN(tile8)(KIND, pk, nBlocks, xt, xut, 6, yt, ldy, laneLo, laneHi, pfAhead, pfEnd); break;
    case 5: FN(tile8)(KIND, pk, nBlocks, xt, xut, 5, yt, ldy, laneLo, laneHi, pfAhead, pfEnd); break;
    case 4: FN(tile8)(KIND, pk, nBlocks, xt, xut, 4, yt, ldy, laneLo, laneHi, pfAhead, pfEnd); break;
#endif
    case 3: FN(tile8)(KIND, pk, nBlocks, xt, xut, 3, yt, ldy, laneLo, laneHi, pfAhead, pfEnd); break;
    case 2: FN(tile8)(KIND, pk, nBlocks, xt, xut, 2, yt, ldy, laneLo, laneHi, pfAhead, pfEnd); break;
    case 1: FN(tile8)(KIND, pk, nBlocks, xt, xut, 1, yt, ldy, laneLo, laneHi, pfAhead, pfEnd); break;
    default: break;
    }
}

/// Per-thread scratch of `extra` bytes, then (VNNI's Q8_0 only) the biased activations.
static inline __attribute__((always_inline)) uint8_t *FN(scratch_xu)(const int KIND, size_t extra,
                                                                      const eff_q8a_block *x, size_t nxBlocks,
                                                                      uint8_t **xu) {
    return eff_scratch_xu(extra, x, nxBlocks, USE_VNNI && KIND == EFF_X8_Q8_0, xu);
}

/// Rows [rowBegin, rowEnd) of a matrix already in the x8 layout (`packed`: group g of rows
/// 8g..8g+7 at g * nBlocks blocks); rowBegin need not be a multiple of 8.
static inline __attribute__((always_inline)) void FN(matmul_x8)(const int KIND, const uint8_t *packed, int rowBegin,
                         int rowEnd, int nBlocks, const eff_q8a_block *x, int nTokens,
                         float *y, int ldy)
{
    uint8_t *xu = NULL;
    if (!FN(scratch_xu)(KIND, 0, x, (size_t)nTokens * nBlocks, &xu)) {
        eff_fill_nan(rowBegin, rowEnd, nTokens, y, ldy);  // out of memory: visible, not stale
        return;
    }
    const size_t groupBytes = (size_t)nBlocks * EFF_X8_BYTES(KIND);
    const uint8_t *end = packed + (size_t)((rowEnd + 7) / 8) * groupBytes;
    // Prefetch about 12 KB ahead: a DRAM latency's worth of single-token work.
    const size_t ahead = (12288 / groupBytes + 1) * groupBytes;
    // Many tokens (prefill) go in slices of TOKEN_SLICE, every group of rows per slice: the
    // slice's activations stay in L2 and its outputs touch few pages, where one group times
    // all 512 tokens streamed 0.4-1 MB of activations per 8 rows and wrote 8 floats into
    // each of 512 rows of y (~4x slower per product at 512 tokens than at 64).
    for (int t0 = 0; t0 < nTokens; t0 += TOKEN_SLICE) {
        const int nt = nTokens - t0 < TOKEN_SLICE ? nTokens - t0 : TOKEN_SLICE;
        for (int g = rowBegin / 8; g * 8 < rowEnd; g++) {
            const int lo = rowBegin > 8 * g ? rowBegin - 8 * g : 0;
            const int hi = rowEnd < 8 * g + 8 ? rowEnd - 8 * g : 8;
            FN(group_tokens)(KIND, packed + (size_t)g * groupBytes, nBlocks, x + (size_t)t0 * nBlocks,
                             xu + (size_t)t0 * nBlocks * 32, nt, y + (size_t)t0 * ldy + 8 * g, ldy, lo, hi,
                             t0 == 0 ? ahead : 0, end);
        }
    }
}

/// Rows [rowBegin, rowEnd) of a ggml-layout matrix in groups of 8: each group's blocks are
/// packed into the x8 layout in per-thread scratch when used, then multiplied by the tokens
/// 8 at a time. Same arithmetic as matmul_x8, without a packed copy of the weights.
static inline __attribute__((always_inline)) void FN(matmul_q)(const int KIND, const uint8_t *w, size_t rowBytes, int rowBegin,
                         int rowEnd, int nBlocks, const eff_q8a_block *x, int nTokens,
                         float *y, int ldy)
{
    const size_t packBytes = (size_t)nBlocks * EFF_X8_BYTES(KIND);
    uint8_t *xu = NULL;
    uint8_t *pk = FN(scratch_xu)(KIND, packBytes, x, (size_t)nTokens * nBlocks, &xu);
    if (!pk) {
        eff_fill_nan(rowBegin, rowEnd, nTokens, y, ldy);  // out of memory: visible, not stale
        return;
    }
    for (int r0 = rowBegin; r0 < rowEnd; r0 += 8) {
        const int nValid = rowEnd - r0 < 8 ? rowEnd - r0 : 8;
        const uint8_t *rows[8];
        // A short last group repeats its last row; those lanes are computed, never stored.
        for (int i = 0; i < 8; i++) rows[i] = w + (size_t)(r0 + (i < nValid ? i : nValid - 1)) * rowBytes;
        // Prefetch the group two ahead: ~100 ns of work per group at one token covers DRAM latency.
        const int pf = r0 + 16 < rowEnd ? r0 + 16 : rowEnd;
        const int pfRows = rowEnd - pf < 8 ? rowEnd - pf : 8;
        eff_pack_x8(KIND, USE_VNNI, rows, nBlocks, pk, w + (size_t)pf * rowBytes, (size_t)pfRows * rowBytes);
        FN(group_tokens)(KIND, pk, nBlocks, x, xu, nTokens, y + r0, ldy, 0, nValid, 0, pk);
    }
}

static void FN(matmul_q4_1)(const uint8_t *w, size_t rowBytes, int rowBegin, int rowEnd,
                            int nBlocks, const eff_q8a_block *x, int nTokens, float *y, int ldy) {
    FN(matmul_q)(EFF_X8_Q4_1, w, rowBytes, rowBegin, rowEnd, nBlocks, x, nTokens, y, ldy);
}
static void FN(matmul_q4_0)(const uint8_t *w, size_t rowBytes, int rowBegin, int rowEnd,
                            int nBlocks, const eff_q8a_block *x, int nTokens, float *y, int ldy) {
    FN(matmul_q)(EFF_X8_Q4_0, w, rowBytes, rowBegin, rowEnd, nBlocks, x, nTokens, y, ldy);
}
static void FN(matmul_q8_0)(const uint8_t *w, size_t rowBytes, int rowBegin, int rowEnd,
                            int nBlocks, const eff_q8a_block *x, int nTokens, float *y, int ldy) {
    FN(matmul_q)(EFF_X8_Q8_0, w, rowBytes, rowBegin, rowEnd, nBlocks, x, nTokens, y, ldy);
}

static void FN(matmul_x8_q4_1)(const uint8_t *p, int rowBegin, int rowEnd, int nBlocks,
                               const eff_q8a_block *x, int nTokens, float *y, int ldy) {
    FN(matmul_x8)(EFF_X8_Q4_1, p, rowBegin, rowEnd, nBlocks, x, nTokens, y, ldy);
}
static void FN(matmul_x8_q4_0)(const uint8_t *p, int rowBegin, int rowEnd, int nBlocks,
                               const eff_q8a_block *x, int nTokens, float *y, int ldy) {
    FN(matmul_x8)(EFF_X8_Q4_0, p, rowBegin, rowEnd, nBlocks, x, nTokens, y, ldy);
}
static void FN(matmul_x8_q8_0)(const uint8_t *p, int rowBegin, int rowEnd, int nBlocks,
                               const eff_q8a_block *x, int nTokens, float *y, int ldy) {
    FN(matmul_x8)(EFF_X8_Q8_0, p, rowBegin, rowEnd, nBlocks, x, nTokens, y, ldy);
}

#undef FN
#undef TILE_NT
#undef EFF_CAT
#undef EFF_CAT2
