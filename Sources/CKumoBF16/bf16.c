#include "ckumo_bf16.h"

#include <cblas.h>
#include <dlfcn.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- CPU features and oneDNN, loaded at run time so that neither is a build dependency ---- */

int kumo_cpu_has_avx512_bf16(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512f");
}

typedef int (*dnnl_gemm_bf16_fn)(
    char, char, int64_t, int64_t, int64_t, float, const uint16_t *, int64_t, const uint16_t *, int64_t, float,
    float *, int64_t);
typedef void (*omp_set_threads_fn)(int);

static dnnl_gemm_bf16_fn dnnl_gemm_bf16;
static omp_set_threads_fn omp_set_threads;
static pthread_once_t onednn_once = PTHREAD_ONCE_INIT;
static int bf16_threads = 1;

static void load_onednn(void) {
    /* oneDNN's OpenMP threads would otherwise spin between products, taking cores from
       OpenBLAS and Kumo's own workers; a user's setting wins. */
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    void *lib = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (lib) {
        dnnl_gemm_bf16 = (dnnl_gemm_bf16_fn)dlsym(lib, "dnnl_gemm_bf16bf16f32");
        omp_set_threads = (omp_set_threads_fn)dlsym(lib, "omp_set_num_threads");
    }
}

int kumo_onednn_available(void) {
    pthread_once(&onednn_once, load_onednn);
    return dnnl_gemm_bf16 != NULL;
}

void kumo_bf16_set_threads(int n) { bf16_threads = n > 0 ? n : 1; }

/* ---- conversion ---- */

static inline uint16_t round_one(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x40u) : (uint16_t)rounded;
}

__attribute__((target("avx512f,avx512bf16,avx512vl"))) static void round_avx512(
    const float *src, uint16_t *dst, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256bh v = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
        _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)v);
    }
    for (; i < n; i++) dst[i] = round_one(src[i]);
}

void kumo_bf16_round(const float *src, uint16_t *dst, long n) {
    static int fast = -1;
    if (fast < 0) fast = kumo_cpu_has_avx512_bf16();
    if (fast) {
        round_avx512(src, dst, n);
        return;
    }
    for (long i = 0; i < n; i++) dst[i] = round_one(src[i]);
}

__attribute__((target("avx512f,avx512bf16"))) static float dot_bf16(
    const uint16_t *w, const uint16_t *x, long columns) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    long i = 0;
    for (; i + 64 <= columns; i += 64) {
        acc0 = _mm512_dpbf16_ps(acc0, (__m512bh)_mm512_loadu_si512(w + i), (__m512bh)_mm512_loadu_si512(x + i));
        acc1 = _mm512_dpbf16_ps(
            acc1, (__m512bh)_mm512_loadu_si512(w + i + 32), (__m512bh)_mm512_loadu_si512(x + i + 32));
    }
    if (i < columns)
        acc0 = _mm512_dpbf16_ps(acc0, (__m512bh)_mm512_loadu_si512(w + i), (__m512bh)_mm512_loadu_si512(x + i));
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

void kumo_bf16_matvec(
    const uint16_t *w, long first, long end, long columns, const uint16_t *x, long count, float *y, long ldy,
    int accumulate) {
    enum { PREFETCH_ROWS = 4 };
    for (long r = first; r < end; r++) {
        if (r + PREFETCH_ROWS < end)
            for (long at = 0; at < columns; at += 32) __builtin_prefetch(w + (r + PREFETCH_ROWS) * columns + at, 0, 3);
        for (long b = 0; b < count; b++) {
            float d = dot_bf16(w + r * columns, x + b * columns, columns);
            float *out = y + b * ldy + r;
            *out = accumulate ? *out + d : d;
        }
    }
}

void kumo_bf16_widen(const uint16_t *src, float *dst, long n) {
    uint32_t *out = (uint32_t *)dst;
    for (long i = 0; i < n; i++) out[i] = (uint32_t)src[i] << 16;
}

/* fp32 values rounded to bf16 and kept as fp32 (the widened backend's operand format). */
static void round_to_fp32(const float *src, float *dst, long n) {
    uint32_t *out = (uint32_t *)dst;
    for (long i = 0; i < n; i++) out[i] = (uint32_t)round_one(src[i]) << 16;
}

/* ---- the product: converts operands that are not in the backend's format, block by block ---- */

/* Operand elements converted at once: bounds the scratch memory (16 MiB in bf16, 32 in fp32). */
enum { BLOCK_ELEMENTS = 8 << 20, MIN_BLOCK_ROWS = 256 };

static _Thread_local void *scratch[2];
static _Thread_local size_t scratch_bytes[2];

static void *scratch_for(int which, size_t bytes) {
    if (scratch_bytes[which] < bytes) {
        free(scratch[which]);
        scratch[which] = aligned_alloc(64, (bytes + 127) & ~(size_t)63);
        scratch_bytes[which] = scratch[which] ? bytes : 0;
    }
    return scratch[which];
}

/* A rows×cols block of a stored matrix, starting at (row, col), in the backend's format:
   the stored memory itself when it is already in that format, else a packed converted copy. */
typedef struct {
    const void *p;
    long ld;
} view;

static view block_of(
    kumo_bf16_backend backend, kumo_bf16_operand x, long ld, long row, long col, long rows, long cols, int which) {
    if (backend == KUMO_BF16_ONEDNN && x.bf16) return (view){x.bf16 + row * ld + col, ld};
    size_t elem = backend == KUMO_BF16_ONEDNN ? 2 : 4;
    void *dst = scratch_for(which, (size_t)rows * cols * elem);
    if (!dst) return (view){NULL, 0};
    for (long r = 0; r < rows; r++) {
        long at = (row + r) * ld + col;
        if (backend == KUMO_BF16_ONEDNN)
            kumo_bf16_round(x.f32 + at, (uint16_t *)dst + r * cols, cols);
        else if (x.bf16)
            kumo_bf16_widen(x.bf16 + at, (float *)dst + r * cols, cols);
        else
            round_to_fp32(x.f32 + at, (float *)dst + r * cols, cols);
    }
    return (view){dst, cols};
}

static int product(
    kumo_bf16_backend backend, int ta, int tb, long m, long n, long k, view a, view b, float beta, float *c,
    long ldc) {
    if (!a.p || !b.p) return -1;
    if (backend == KUMO_BF16_WIDENED) {
        cblas_sgemm(
            CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
            1.0f, a.p, (int)a.ld, b.p, (int)b.ld, beta, c, (int)ldc);
        return 0;
    }
    if (omp_set_threads) omp_set_threads(bf16_threads);
    return dnnl_gemm_bf16(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a.p, a.ld, b.p, b.ld, beta, c, ldc);
}

static long block_rows(long whole, long other) {
    long rows = BLOCK_ELEMENTS / (other > 0 ? other : 1);
    if (rows < MIN_BLOCK_ROWS) rows = MIN_BLOCK_ROWS;
    return rows < whole ? rows : whole;
}

int kumo_gemm_bf16(
    kumo_bf16_backend backend, int ta, int tb, long m, long n, long k, kumo_bf16_operand a, long lda,
    kumo_bf16_operand b, long ldb, float beta, float *c, long ldc) {
    if (backend == KUMO_BF16_ONEDNN && !kumo_onednn_available()) return -1;
    if (m <= 0 || n <= 0) return 0;
    long mb = block_rows(m, k), nb = block_rows(n, k);
    for (long i = 0; i < m; i += mb) {
        long mi = m - i < mb ? m - i : mb;
        /* op(A) rows i..i+mi: stored rows (no transpose) or stored columns (transposed). */
        view av = ta ? block_of(backend, a, lda, 0, i, k, mi, 0) : block_of(backend, a, lda, i, 0, mi, k, 0);
        for (long j = 0; j < n; j += nb) {
            long nj = n - j < nb ? n - j : nb;
            view bv = tb ? block_of(backend, b, ldb, j, 0, nj, k, 1) : block_of(backend, b, ldb, 0, j, k, nj, 1);
            int status = product(backend, ta, tb, mi, nj, k, av, bv, beta, c + i * ldc + j, ldc);
            if (status) return status;
        }
    }
    return 0;
}
