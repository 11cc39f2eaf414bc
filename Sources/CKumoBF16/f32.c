#include "ckumo_f32.h"

#include <immintrin.h>

enum { PREFETCH_ROWS = 4 };

/* The cache lines of row r + PREFETCH_ROWS, if the matrix has it. */
static inline void prefetch_ahead(const float *w, long r, long rows, long columns) {
    if (r + PREFETCH_ROWS >= rows) return;
    const char *next = (const char *)(w + (r + PREFETCH_ROWS) * columns);
    for (long byte = 0; byte < columns * 4; byte += 64) __builtin_prefetch(next + byte, 0, 3);
}

static inline void store(float *out, float d, int accumulate) { *out = accumulate ? *out + d : d; }

__attribute__((target("avx512f"))) static float dot_avx512(const float *w, const float *x, long n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    long i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
    }
    if (i + 16 <= n) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
        i += 16;
    }
    float d = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    for (; i < n; i++) d += w[i] * x[i];
    return d;
}

__attribute__((target("avx2,fma"))) static float dot_avx2(const float *w, const float *x, long n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    if (i + 8 <= n) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        i += 8;
    }
    __m256 s = _mm256_add_ps(a0, a1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float d = _mm_cvtss_f32(h);
    for (; i < n; i++) d += w[i] * x[i];
    return d;
}

static float dot_scalar(const float *w, const float *x, long n) {
    float d = 0;
    for (long i = 0; i < n; i++) d += w[i] * x[i];
    return d;
}

int kumo_f32_supported(kumo_f32_kernel kernel) {
    __builtin_cpu_init();
    switch (kernel) {
    case KUMO_F32_SCALAR: return 1;
    case KUMO_F32_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case KUMO_F32_AVX512: return __builtin_cpu_supports("avx512f");
    }
    return 0;
}

kumo_f32_kernel kumo_f32_default_kernel(void) {
    if (kumo_f32_supported(KUMO_F32_AVX512)) return KUMO_F32_AVX512;
    return kumo_f32_supported(KUMO_F32_AVX2) ? KUMO_F32_AVX2 : KUMO_F32_SCALAR;
}

void kumo_f32_matvec(
    kumo_f32_kernel kernel, const float *w, long first, long end, long rows, long columns, const float *x,
    long count, float *y, long ldy, int accumulate) {
    float (*dot)(const float *, const float *, long) =
        kernel == KUMO_F32_AVX512 ? dot_avx512 : kernel == KUMO_F32_AVX2 ? dot_avx2 : dot_scalar;
    for (long r = first; r < end; r++) {
        prefetch_ahead(w, r, rows, columns);
        const float *row = w + r * columns;
        for (long b = 0; b < count; b++) store(y + b * ldy + r, dot(row, x + b * columns, columns), accumulate);
    }
}
