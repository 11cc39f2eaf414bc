#ifndef CKUMO_Q8_H
#define CKUMO_Q8_H
#include <stdint.h>

/* Matrix-vector products of Q8 weights (runs of 32 int8 weights sharing one fp32 scale, as llama.cpp's
   Q8_0) with activations quantized per run of 32 to int16 (scale max|x| / 32767: their rounding error
   is 256 times below the weights'), with integer products inside a block. */

/* The instructions a product runs on: plain C, AVX2 (vpmaddwd), or AVX-512 VNNI (vpdpwssd). */
typedef enum { KUMO_Q8_SCALAR = 0, KUMO_Q8_AVX2 = 1, KUMO_Q8_AVX512_VNNI = 2 } kumo_q8_kernel;

/* 1 if this CPU runs `kernel`. */
int kumo_q8_supported(kumo_q8_kernel kernel);
/* The fastest kernel this CPU runs, or the one KUMO_Q8_KERNEL names (scalar, avx2, vnni) if it runs it. */
kumo_q8_kernel kumo_q8_default_kernel(void);

/* Weights: per block of 32 (n a multiple of 32), scale = max|w| / 127, q = round(w / scale). */
void kumo_q8_quantize(const float *w, int8_t *q, float *scale, long n);
/* Activations: per block of 32, scale = max|x| / 32767, q = round(x / scale). */
void kumo_q16_quantize(const float *x, int16_t *q, float *scale, long n);

/* For weight rows r in [first, end) and input rows b < count, with blocks = columns / 32:
   y[b·ldy + r] (+)= Σ_k wscale[r·blocks + k]·xscale[b·blocks + k]·Σ_i w[r·columns + 32k + i]·x[b·columns + 32k + i];
   accumulate non-zero adds to y. */
void kumo_q8_matvec(
    kumo_q8_kernel kernel, const int8_t *w, const float *wscale, long first, long end, long columns,
    const int16_t *x, const float *xscale, long count, float *y, long ldy, int accumulate);

#endif
