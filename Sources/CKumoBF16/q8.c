#include "ckumo_q8.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { BLOCK = 32, PREFETCH_ROWS = 4 };

int kumo_q8_supported(kumo_q8_kernel kernel) {
    __builtin_cpu_init();
    switch (kernel) {
    case KUMO_Q8_SCALAR: return 1;
    case KUMO_Q8_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case KUMO_Q8_AVX512_VNNI:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512vnni");
    }
    return 0;
}

static kumo_q8_kernel named_kernel(const char *name) {
    if (!strcmp(name, "scalar")) return KUMO_Q8_SCALAR;
    if (!strcmp(name, "avx2")) return KUMO_Q8_AVX2;
    return KUMO_Q8_AVX512_VNNI;
}

kumo_q8_kernel kumo_q8_default_kernel(void) {
    const char *name = getenv("KUMO_Q8_KERNEL");
    if (name && kumo_q8_supported(named_kernel(name))) return named_kernel(name);
    if (kumo_q8_supported(KUMO_Q8_AVX512_VNNI)) return KUMO_Q8_AVX512_VNNI;
    return kumo_q8_supported(KUMO_Q8_AVX2) ? KUMO_Q8_AVX2 : KUMO_Q8_SCALAR;
}

/* max|v| / limit over a block, and its inverse in *inv (0 for a block of zeros). */
static float block_scale(const float *v, float limit, float *inv) {
    float amax = 0;
    for (int i = 0; i < BLOCK; i++) amax = fmaxf(amax, fabsf(v[i]));
    float d = amax / limit;
    *inv = d == 0 ? 0 : 1 / d;
    return d;
}

void kumo_q8_quantize(const float *w, int8_t *q, float *scale, long n) {
    for (long k = 0; k < n / BLOCK; k++) {
        float inv;
        scale[k] = block_scale(w + k * BLOCK, 127, &inv);
        for (long i = k * BLOCK; i < (k + 1) * BLOCK; i++) q[i] = (int8_t)roundf(w[i] * inv);
    }
}

void kumo_q16_quantize(const float *x, int16_t *q, float *scale, long n) {
    for (long k = 0; k < n / BLOCK; k++) {
        float inv;
        scale[k] = block_scale(x + k * BLOCK, 32767, &inv);
        for (long i = k * BLOCK; i < (k + 1) * BLOCK; i++) q[i] = (int16_t)roundf(x[i] * inv);
    }
}

/* ---- one weight row against one input row ---- */

static float dot_scalar(const int8_t *w, const float *ws, const int16_t *x, const float *xs, long blocks) {
    float total = 0;
    for (long k = 0; k < blocks; k++) {
        int32_t sum = 0;
        for (int i = 0; i < BLOCK; i++) sum += (int32_t)w[k * BLOCK + i] * x[k * BLOCK + i];
        total += ws[k] * xs[k] * (float)sum;
    }
    return total;
}

/* Weights are widened to int16; vpmaddwd sums pairs of int16 products into int32 lanes
   (|sum| ≤ 32 · 127 · 32767 < 2^31 over a block). */
__attribute__((target("avx2,fma"))) static float dot_avx2(
    const int8_t *w, const float *ws, const int16_t *x, const float *xs, long blocks) {
    __m256 acc = _mm256_setzero_ps();
    for (long k = 0; k < blocks; k++) {
        const int8_t *wk = w + k * BLOCK;
        const int16_t *xk = x + k * BLOCK;
        __m256i lo = _mm256_madd_epi16(
            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)wk)), _mm256_loadu_si256((const __m256i *)xk));
        __m256i hi = _mm256_madd_epi16(
            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wk + 16))),
            _mm256_loadu_si256((const __m256i *)(xk + 16)));
        __m256 sums = _mm256_cvtepi32_ps(_mm256_add_epi32(lo, hi));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ws[k] * xs[k]), sums, acc);
    }
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

/* A whole block per 512-bit step: 32 widened weights against 32 activations into 16 int32 lanes. */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static float dot_vnni(
    const int8_t *w, const float *ws, const int16_t *x, const float *xs, long blocks) {
    __m512 acc = _mm512_setzero_ps();
    for (long k = 0; k < blocks; k++) {
        __m512i wv = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(w + k * BLOCK)));
        __m512i sums = _mm512_dpwssd_epi32(_mm512_setzero_si512(), wv, _mm512_loadu_si512(x + k * BLOCK));
        acc = _mm512_fmadd_ps(_mm512_set1_ps(ws[k] * xs[k]), _mm512_cvtepi32_ps(sums), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

void kumo_q8_matvec(
    kumo_q8_kernel kernel, const int8_t *w, const float *wscale, long first, long end, long columns,
    const int16_t *x, const float *xscale, long count, float *y, long ldy, int accumulate) {
    long blocks = columns / BLOCK;
    float (*dot)(const int8_t *, const float *, const int16_t *, const float *, long) =
        kernel == KUMO_Q8_AVX512_VNNI ? dot_vnni : kernel == KUMO_Q8_AVX2 ? dot_avx2 : dot_scalar;
    for (long r = first; r < end; r++) {
        /* The weight row PREFETCH_ROWS ahead and its scales, asked for ahead of use. */
        if (r + PREFETCH_ROWS < end) {
            for (long at = 0; at < columns; at += 64) __builtin_prefetch(w + (r + PREFETCH_ROWS) * columns + at, 0, 3);
            __builtin_prefetch(wscale + (r + PREFETCH_ROWS) * blocks, 0, 3);
        }
        for (long b = 0; b < count; b++) {
            float d = dot(w + r * columns, wscale + r * blocks, x + b * columns, xscale + b * blocks, blocks);
            float *out = y + b * ldy + r;
            *out = accumulate ? *out + d : d;
        }
    }
}
