#ifndef CKUMO_BF16_H
#define CKUMO_BF16_H
#include <stdint.h>

/* bf16 matrix products with fp32 accumulation, and fp32 <-> bf16 conversion (round to
   nearest even). bf16 values are stored as uint16_t, the upper half of an fp32. */

/* How a bf16 product is computed: oneDNN's dnnl_gemm_bf16bf16f32 (bf16 units), or OpenBLAS
   sgemm on operands rounded to bf16 and widened to fp32 (the same products, any x86-64 CPU). */
typedef enum { KUMO_BF16_WIDENED = 0, KUMO_BF16_ONEDNN = 1 } kumo_bf16_backend;

/* A matrix operand in fp32 (rounded to bf16 on use) or already in bf16: exactly one is set. */
typedef struct {
    const float *f32;
    const uint16_t *bf16;
} kumo_bf16_operand;

/* 1 if the CPU and OS support AVX512_BF16 (vdpbf16ps, vcvtneps2bf16). */
int kumo_cpu_has_avx512_bf16(void);
/* 1 if libdnnl.so.2 and its dnnl_gemm_bf16bf16f32 could be loaded (loads them once). */
int kumo_onednn_available(void);
/* Threads the oneDNN backend may use. */
void kumo_bf16_set_threads(int n);

/* dst[i] = bf16(src[i]), round to nearest even; NaN stays NaN. */
void kumo_bf16_round(const float *src, uint16_t *dst, long n);
/* dst[i] = fp32(src[i]) (exact). */
void kumo_bf16_widen(const uint16_t *src, float *dst, long n);

/* C[m×n] = op(A)·op(B) + beta·C, row-major, bf16 operands and fp32 accumulation; trans*
   non-zero for a transposed operand. Returns 0, or oneDNN's error status. */
int kumo_gemm_bf16(
    kumo_bf16_backend backend, int transA, int transB, long m, long n, long k, kumo_bf16_operand a, long lda,
    kumo_bf16_operand b, long ldb, float beta, float *c, long ldc);

/* For weight rows r in [first, end) and input rows b < count, with columns a multiple of 32:
   y[b·ldy + r] (+)= Σ_i w[r·columns + i]·x[b·columns + i], bf16 operands and fp32 sums
   (vdpbf16ps); accumulate non-zero adds to y. Needs kumo_cpu_has_avx512_bf16(). */
void kumo_bf16_matvec(
    const uint16_t *w, long first, long end, long columns, const uint16_t *x, long count, float *y, long ldy,
    int accumulate);

#endif
