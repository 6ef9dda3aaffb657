// effterm's own asymmetric low-bit weight formats (EffCore `LowBitFormat`, names "QbGg"):
// b = 2, 3, 4, 5, 6 or 8 bits per code, one f16 scale d and one f16 min m per group of g
// (32, 64 or 128) weights, value = code * d + m. See CEffKernels.h for the layouts.
//
// The kernels read a copy repacked once into the x8 layout (8 rows interleaved per group,
// like matmul.c's), which takes exactly the bytes of the row-major tensor: fewer bits per
// weight are fewer bytes streamed per product. Codes are unpacked in registers from bit
// planes (4-bit, 2-bit, 1-bit; 8-bit raw) with shifts and masks, then multiplied as u8 x
// s8 pairs with the Q8A activations (maddubs), in the tile shape of matmul_body.h.
#include "CEffKernels.h"
#include <immintrin.h>
#include <string.h>

static inline int qg_valid(int bits, int group) {
    return (bits == 2 || bits == 3 || bits == 4 || bits == 5 || bits == 6 || bits == 8) &&
           (group == 32 || group == 64 || group == 128);
}

static inline size_t qg_row_block_bytes(int bits, int group) { return 4 + (size_t)group * bits / 8; }
static inline size_t qg_x8_group_bytes(int bits, int group) { return 32 + (size_t)group * bits; }

size_t eff_qg_x8_bytes(int bits, int group, int rows, int cols) {
    if (!qg_valid(bits, group) || rows <= 0 || cols % group) return 0;
    return (size_t)((rows + 7) / 8) * (size_t)(cols / group) * qg_x8_group_bytes(bits, group);
}

/// The 32 codes of one row-major sub-block `s` (4 * bits bytes, planes as CEffKernels.h).
static void qg_codes32(int bits, const uint8_t *s, uint8_t c[32]) {
    for (int j = 0; j < 32; j++) {
        switch (bits) {
        case 8: c[j] = s[j]; break;
        case 4: case 5: case 6: {
            const uint8_t p4 = j < 16 ? (s[j] & 15) : (s[j - 16] >> 4);
            uint8_t hi = 0;
            if (bits == 6) hi = (s[16 + j % 8] >> (2 * (j / 8))) & 3;
            if (bits == 5) hi = (s[16 + j / 8] >> (j % 8)) & 1;
            c[j] = (uint8_t)(p4 | hi << 4);
            break;
        }
        default: {  // 2, 3
            const uint8_t p2 = (s[j % 8] >> (2 * (j / 8))) & 3;
            const uint8_t hi = bits == 3 ? (s[8 + j / 8] >> (j % 8)) & 1 : 0;
            c[j] = (uint8_t)(p2 | hi << 2);
            break;
        }
        }
    }
}

/// Writes 8 rows' codes (c[r][0..31]) of one sub-block as x8 chunks at `dst` (32 * bits bytes).
static void qg_put_x8(int bits, uint8_t c[8][32], uint8_t *dst) {
    // Chunk byte (lane r, byte i) is dst[32 * chunk + 4 * r + i]; w[g] covers columns 4g + i.
    if (bits == 8) {
        for (int g = 0; g < 8; g++)
            for (int r = 0; r < 8; r++)
                for (int i = 0; i < 4; i++) dst[32 * g + 4 * r + i] = c[r][4 * g + i];
        return;
    }
    uint8_t *p = dst;
    if (bits >= 4) {  // 4-bit plane: chunk k low nibble = column 4k + i, high = 16 + 4k + i
        for (int k = 0; k < 4; k++)
            for (int r = 0; r < 8; r++)
                for (int i = 0; i < 4; i++)
                    p[32 * k + 4 * r + i] = (uint8_t)((c[r][4 * k + i] & 15) | (c[r][16 + 4 * k + i] & 15) << 4);
        p += 128;
    }
    const int shift2 = bits == 6 ? 4 : 0;  // where a 2-bit plane sits in the code
    if (bits == 6 || bits == 3 || bits == 2) {  // 2-bit plane: chunk k bits 2s = column 4(4k + s) + i
        for (int k = 0; k < 2; k++)
            for (int r = 0; r < 8; r++)
                for (int i = 0; i < 4; i++) {
                    uint8_t v = 0;
                    for (int s = 0; s < 4; s++) v |= (uint8_t)(((c[r][4 * (4 * k + s) + i] >> shift2) & 3) << (2 * s));
                    p[32 * k + 4 * r + i] = v;
                }
        p += 64;
    }
    if (bits == 5 || bits == 3) {  // 1-bit plane: bit g = column 4g + i
        const int shift1 = bits == 5 ? 4 : 2;
        for (int r = 0; r < 8; r++)
            for (int i = 0; i < 4; i++) {
                uint8_t v = 0;
                for (int g = 0; g < 8; g++) v |= (uint8_t)(((c[r][4 * g + i] >> shift1) & 1) << g);
                p[4 * r + i] = v;
            }
    }
}

void eff_qg_x8_pack(int bits, int group, const uint8_t *w, size_t rowBytes, int rows, int rowBegin, int rowEnd,
                    int cols, uint8_t *packed) {
    if (!qg_valid(bits, group) || rows <= 0 || cols % group) return;
    const int nGroups = cols / group, nSub = group / 32;
    const size_t rb = qg_row_block_bytes(bits, group), gb = qg_x8_group_bytes(bits, group);
    uint8_t c[8][32];
    for (int r0 = rowBegin & ~7; r0 < rowEnd; r0 += 8) {
        const uint8_t *rp[8];
        // The last group of a matrix repeats its last row in the missing lanes.
        for (int i = 0; i < 8; i++) rp[i] = w + (size_t)(r0 + i < rows ? r0 + i : rows - 1) * rowBytes;
        uint8_t *dst = packed + (size_t)(r0 / 8) * nGroups * gb;
        for (int gi = 0; gi < nGroups; gi++) {
            uint8_t *blk = dst + (size_t)gi * gb;
            for (int r = 0; r < 8; r++) {
                memcpy(blk + 2 * r, rp[r] + gi * rb, 2);           // d
                memcpy(blk + 16 + 2 * r, rp[r] + gi * rb + 2, 2);  // m
            }
            for (int k = 0; k < nSub; k++) {
                for (int r = 0; r < 8; r++) qg_codes32(bits, rp[r] + gi * rb + 4 + (size_t)k * 4 * bits, c[r]);
                qg_put_x8(bits, c, blk + 32 + (size_t)k * 32 * bits);
            }
        }
    }
}

/// Unpacks one x8 sub-block into w[g] (lane r = row r's codes for columns 4g..4g+3, u8;
/// 8-bit: code - 128 as s8).
static inline __attribute__((always_inline)) void qg_unpack(const int BITS, const uint8_t *q, __m256i w[8]) {
    if (BITS == 8) {
        const __m256i bias = _mm256_set1_epi8((char)0x80);
        for (int g = 0; g < 8; g++) w[g] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(q + 32 * g)), bias);
        return;
    }
    if (BITS >= 4) {
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        for (int k = 0; k < 4; k++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(q + 32 * k));
            w[k] = _mm256_and_si256(v, m4);
            w[k + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        }
        q += 128;
    }
    if (BITS == 6) {  // bits 4-5 from the 2-bit plane: ((v >> 2s) & 3) << 4
        const __m256i m = _mm256_set1_epi8(0x30);
        for (int k = 0; k < 2; k++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(q + 32 * k));
            w[4 * k + 0] = _mm256_or_si256(w[4 * k + 0], _mm256_and_si256(_mm256_slli_epi16(v, 4), m));
            w[4 * k + 1] = _mm256_or_si256(w[4 * k + 1], _mm256_and_si256(_mm256_slli_epi16(v, 2), m));
            w[4 * k + 2] = _mm256_or_si256(w[4 * k + 2], _mm256_and_si256(v, m));
            w[4 * k + 3] = _mm256_or_si256(w[4 * k + 3], _mm256_and_si256(_mm256_srli_epi16(v, 2), m));
        }
    }
    if (BITS == 5) {  // bit 4 from the 1-bit plane: ((v >> g) & 1) << 4
        const __m256i m = _mm256_set1_epi8(0x10);
        const __m256i v = _mm256_loadu_si256((const __m256i *)q);
        w[0] = _mm256_or_si256(w[0], _mm256_and_si256(_mm256_slli_epi16(v, 4), m));
        w[1] = _mm256_or_si256(w[1], _mm256_and_si256(_mm256_slli_epi16(v, 3), m));
        w[2] = _mm256_or_si256(w[2], _mm256_and_si256(_mm256_slli_epi16(v, 2), m));
        w[3] = _mm256_or_si256(w[3], _mm256_and_si256(_mm256_slli_epi16(v, 1), m));
        w[4] = _mm256_or_si256(w[4], _mm256_and_si256(v, m));
        w[5] = _mm256_or_si256(w[5], _mm256_and_si256(_mm256_srli_epi16(v, 1), m));
        w[6] = _mm256_or_si256(w[6], _mm256_and_si256(_mm256_srli_epi16(v, 2), m));
        w[7] = _mm256_or_si256(w[7], _mm256_and_si256(_mm256_srli_epi16(v, 3), m));
    }
    if (BITS == 2 || BITS == 3) {
        const __m256i m2 = _mm256_set1_epi8(0x03);
        for (int k = 0; k < 2; k++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(q + 32 * k));
            w[4 * k + 0] = _mm256_and_si256(v, m2);
            w[4 * k + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 2), m2);
            w[4 * k + 2] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m2);
            w[4 * k + 3] = _mm256_and_si256(_mm256_srli_epi16(v, 6), m2);
        }
        q += 64;
    }
    if (BITS == 3) {  // bit 2 from the 1-bit plane: ((v >> g) & 1) << 2
        const __m256i m = _mm256_set1_epi8(0x04);
        const __m256i v = _mm256_loadu_si256((const __m256i *)q);
        w[0] = _mm256_or_si256(w[0], _mm256_and_si256(_mm256_slli_epi16(v, 2), m));
        w[1] = _mm256_or_si256(w[1], _mm256_and_si256(_mm256_slli_epi16(v, 1), m));
        w[2] = _mm256_or_si256(w[2], _mm256_and_si256(v, m));
        w[3] = _mm256_or_si256(w[3], _mm256_and_si256(_mm256_srli_epi16(v, 1), m));
        w[4] = _mm256_or_si256(w[4], _mm256_and_si256(_mm256_srli_epi16(v, 2), m));
        w[5] = _mm256_or_si256(w[5], _mm256_and_si256(_mm256_srli_epi16(v, 3), m));
        w[6] = _mm256_or_si256(w[6], _mm256_and_si256(_mm256_srli_epi16(v, 4), m));
        w[7] = _mm256_or_si256(w[7], _mm256_and_si256(_mm256_srli_epi16(v, 5), m));
    }
}

/// Exact int32 dots of 8 rows with one token's 32 activations: lane r = sum_j w[r][j] x[j].
/// u8 x s8 pairs are at most 2 * (2^b - 1) * 127, so 8 (b <= 4), 4 (b = 5) or 2 (b = 6)
/// maddubs results add up exactly in int16 before one widening madd; 8-bit codes are
/// signed (code - 128) and go through the sign trick, widened every group.
static inline __attribute__((always_inline)) __m256i qg_dot8(const int BITS, const __m256i w[8], const int32_t *xq) {
    const __m256i ones = _mm256_set1_epi16(1);
    if (BITS == 8) {
        __m256i s = _mm256_setzero_si256();
        for (int g = 0; g < 8; g++) {
            const __m256i xg = _mm256_sign_epi8(_mm256_set1_epi32(xq[g]), w[g]);
            s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w[g]), xg), ones));
        }
        return s;
    }
    const int per = BITS <= 4 ? 8 : BITS == 5 ? 4 : 2;
    __m256i s = _mm256_setzero_si256();
    for (int g0 = 0; g0 < 8; g0 += per) {
        __m256i s16 = _mm256_maddubs_epi16(w[g0], _mm256_set1_epi32(xq[g0]));
        for (int g = g0 + 1; g < g0 + per; g++) s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(w[g], _mm256_set1_epi32(xq[g])));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(s16, ones));
    }
    return s;
}

/// One packed 8-row group (nGroups weight groups of nSub sub-blocks) times NT tokens:
/// per sub-block acc += float(dot) * (d_w * d_x); per group acc += m_w * sum of the
/// group's activation sums (8-bit: m_w + 128 d_w). Stores lanes [laneLo, laneHi).
static inline __attribute__((always_inline)) void qg_tile(const int BITS, const uint8_t *pk, int nGroups, int nSub,
                                                          const eff_q8a_block *x, int nBlocks, const int NT,
                                                          float *y, int ldy, int laneLo, int laneHi,
                                                          size_t pfAhead, const uint8_t *pfEnd) {
    const size_t subBytes = 32 * (size_t)BITS, groupBytes = 32 + (size_t)nSub * subBytes;
    __m256 acc[4];
    for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();
    for (int gi = 0; gi < nGroups; gi++) {
        const uint8_t *blk = pk + (size_t)gi * groupBytes;
        if (pfAhead && blk + pfAhead < pfEnd)
            for (size_t o = 0; o < groupBytes; o += 64) _mm_prefetch((const char *)(blk + pfAhead + o), _MM_HINT_T0);
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
        __m256 m = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 16)));
        if (BITS == 8) m = _mm256_fmadd_ps(d, _mm256_set1_ps(128.0f), m);
        float ssum[4] = {0, 0, 0, 0};
        for (int k = 0; k < nSub; k++) {
            __m256i w[8];
            qg_unpack(BITS, blk + 32 + (size_t)k * subBytes, w);
            const int b = gi * nSub + k;
            for (int t = 0; t < NT; t++) {
                const eff_q8a_block *xb = x + (size_t)t * nBlocks + b;
                const __m256i s = qg_dot8(BITS, w, (const int32_t *)xb->qs);
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(d, _mm256_set1_ps(xb->d)), acc[t]);
                ssum[t] += xb->s;
            }
        }
        for (int t = 0; t < NT; t++) acc[t] = _mm256_fmadd_ps(m, _mm256_set1_ps(ssum[t]), acc[t]);
    }
    for (int t = 0; t < NT; t++) {
        if (laneLo == 0 && laneHi == 8) {
            _mm256_storeu_ps(y + (size_t)t * ldy, acc[t]);
        } else {
            float tmp[8];
            _mm256_storeu_ps(tmp, acc[t]);
            for (int r = laneLo; r < laneHi; r++) y[(size_t)t * ldy + r] = tmp[r];
        }
    }
}

static inline __attribute__((always_inline)) void qg_matmul(const int BITS, int group, const uint8_t *packed,
                                                            int rowBegin, int rowEnd, int cols,
                                                            const eff_q8a_block *x, int nTokens, float *y, int ldy) {
    const int nGroups = cols / group, nSub = group / 32, nBlocks = cols / 32;
    const size_t rowGroupBytes = (size_t)nGroups * qg_x8_group_bytes(BITS, group);
    const uint8_t *end = packed + (size_t)((rowEnd + 7) / 8) * rowGroupBytes;
    const size_t ahead = (12288 / rowGroupBytes + 1) * rowGroupBytes;
    for (int t0 = 0; t0 < nTokens; t0 += 64) {
        const int nt = nTokens - t0 < 64 ? nTokens - t0 : 64;
        for (int g = rowBegin / 8; g * 8 < rowEnd; g++) {
            const int lo = rowBegin > 8 * g ? rowBegin - 8 * g : 0;
            const int hi = rowEnd < 8 * g + 8 ? rowEnd - 8 * g : 8;
            const uint8_t *pk = packed + (size_t)g * rowGroupBytes;
            const eff_q8a_block *xt = x + (size_t)t0 * nBlocks;
            float *yt = y + (size_t)t0 * ldy + 8 * g;
            size_t pf = t0 == 0 ? ahead : 0;
            int t = 0;
            for (; t + 4 <= nt; t += 4, pf = 0)
                qg_tile(BITS, pk, nGroups, nSub, xt + (size_t)t * nBlocks, nBlocks, 4, yt + (size_t)t * ldy, ldy, lo, hi, pf, end);
            switch (nt - t) {
            case 3: qg_tile(BITS, pk, nGroups, nSub, xt + (size_t)t * nBlocks, nBlocks, 3, yt + (size_t)t * ldy, ldy, lo, hi, pf, end); break;
            case 2: qg_tile(BITS, pk, nGroups, nSub, xt + (size_t)t * nBlocks, nBlocks, 2, yt + (size_t)t * ldy, ldy, lo, hi, pf, end); break;
            case 1: qg_tile(BITS, pk, nGroups, nSub, xt + (size_t)t * nBlocks, nBlocks, 1, yt + (size_t)t * ldy, ldy, lo, hi, pf, end); break;
            default: break;
            }
        }
    }
}

#define QG_ENTRY(B) \
    static void qg_matmul_##B(int group, const uint8_t *p, int r0, int r1, int cols, const eff_q8a_block *x, \
                              int nt, float *y, int ldy) { qg_matmul(B, group, p, r0, r1, cols, x, nt, y, ldy); }
QG_ENTRY(2)
QG_ENTRY(3)
QG_ENTRY(4)
QG_ENTRY(5)
QG_ENTRY(6)
QG_ENTRY(8)
#undef QG_ENTRY

void eff_qg_matmul_x8(int bits, int group, const uint8_t *packed, int rowBegin, int rowEnd, int cols,
                      const eff_q8a_block *x, int nTokens, float *y, int ldy) {
    if (!qg_valid(bits, group) || cols % group) {
        for (int t = 0; t < nTokens; t++)
            for (int r = rowBegin; r < rowEnd; r++) y[(size_t)t * ldy + r] = __builtin_nanf("");
        return;
    }
    switch (bits) {
    case 2: qg_matmul_2(group, packed, rowBegin, rowEnd, cols, x, nTokens, y, ldy); break;
    case 3: qg_matmul_3(group, packed, rowBegin, rowEnd, cols, x, nTokens, y, ldy); break;
    case 4: qg_matmul_4(group, packed, rowBegin, rowEnd, cols, x, nTokens, y, ldy); break;
    case 5: qg_matmul_5(group, packed, rowBegin, rowEnd, cols, x, nTokens, y, ldy); break;
    case 6: qg_matmul_6(group, packed, rowBegin, rowEnd, cols, x, nTokens, y, ldy); break;
    default: qg_matmul_8(group, packed, rowBegin, rowEnd, cols, x, nTokens, y, ldy); break;
    }
}
