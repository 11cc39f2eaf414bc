#ifndef CKUMO_F32_H
#define CKUMO_F32_H

/* Matrix-vector products of decoding with fp32 weights. Decoding is bound by reading the weights from
   memory: each weight row is read once, in address order, with the rows ahead prefetched, and is
   multiplied with every input row while it sits in L1. */

/* The instructions a product runs on: plain C, AVX2 with FMA, or AVX-512. */
typedef enum { KUMO_F32_SCALAR = 0, KUMO_F32_AVX2 = 1, KUMO_F32_AVX512 = 2 } kumo_f32_kernel;

/* 1 if this CPU runs `kernel`. */
int kumo_f32_supported(kumo_f32_kernel kernel);
/* The fastest kernel this CPU runs. */
kumo_f32_kernel kumo_f32_default_kernel(void);

/* For weight rows r in [first, end) of W [rows, columns] and input rows b < count:
   y[b·ldy + r] (+)= Σ_i w[r·columns + i]·x[b·columns + i]; accumulate non-zero adds to y. Rows ahead
   are prefetched up to the matrix's last row, past `end`, so that a range's successor finds its rows
   on the way. */
void kumo_f32_matvec(
    kumo_f32_kernel kernel, const float *w, long first, long end, long rows, long columns, const float *x,
    long count, float *y, long ldy, int accumulate);

#endif
