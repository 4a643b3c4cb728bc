/*
 * vmath.h - the branch-free float polynomials behind exp, erfc and the
 * exact GELU, shared by ops.c (the element-wise kernels) and gemm.c (the
 * GELU epilogue of a product), and transpose8, shared by gemm.c and
 * ops_attn.c.  Not a module of its own: one definition of each, inlined
 * where it is used, so that a loop over them vectorises and every caller
 * gets the same bits for the same input (each step is one IEEE
 * operation, which a vector lane rounds as a scalar does).
 */
#ifndef MTL_VMATH_H
#define MTL_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <immintrin.h>

/*
 * exp(x) for x in [-87.3, 88.3], unclamped: exp(x) = 2^n e^r with
 * n = round(x / ln 2), r = x - n ln 2 (ln 2 split in a high part exact in
 * float and a low part, Cody-Waite), e^r by its degree-7 Taylor
 * polynomial: |r| <= 0.347 so the remainder is below 0.347^8/8! = 5e-9.
 * The polynomial is 1 + r q(r), q of degree 6 by Estrin's scheme (powers
 * r^2, r^4 beside independent linear terms): four FMAs deep where
 * Horner's is seven, as the GELU and the softmax are bound by the latency
 * of one lane's chain, and as accurate, since q's rounding is scaled by
 * |r| before the 1 is added.  2^n is built in the exponent bits.
 * ops_attn_body.h's vexp is this tree, operation for operation.
 */
__attribute__((always_inline)) static inline float vexp_range(float x)
{
	const float magic = 12582912.0f; /* 1.5 * 2^23: rounds to integer */
	float n = (x * 1.44269504f + magic) - magic;
	float r = fmaf(n, -0.693145752f, x);
	float r2, r4, hi, lo, s;
	int32_t e;
	uint32_t bits;

	r = fmaf(n, -1.42860677e-6f, r);
	r2 = r * r;
	r4 = r2 * r2;
	hi = fmaf(1.0f / 5040, r2, fmaf(1.0f / 720, r, 1.0f / 120));
	lo = fmaf(fmaf(1.0f / 24, r, 1.0f / 6), r2, fmaf(0.5f, r, 1.0f));
	e = (int32_t)n + 127;
	bits = (uint32_t)e << 23;
	memcpy(&s, &bits, sizeof(s));
	return fmaf(fmaf(hi, r4, lo), r, 1.0f) * s;
}

/*
 * exp(x) for every x: clamped so n stays in the normal range; below -87.3
 * the result is 0 (what float exp gives for a masked score near -FLT_MAX).
 */
__attribute__((always_inline)) static inline float vexp(float x)
{
	float xc = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
	float y = vexp_range(xc);

	return x < -87.3f ? 0.0f : y;
}

/*
 * erfc(x): for z = |x|, t = 1/(1 + z/2),
 *   erfc(z) = t exp(-z^2 + P(t)),  P a degree-9 polynomial
 * (the Chebyshev fit of Numerical Recipes, 2nd ed., section 6.2: fractional
 * error below 1.2e-7 for every z >= 0), and erfc(-z) = 2 - erfc(z).  P
 * goes by Estrin's scheme, as vexp's polynomial.  z is taken at most 9,
 * so the exponent stays above -87.3 and needs no clamp: past 9, erfc(z)
 * is below 4.2e-37 either way (and erfc(-z) rounds to 2).
 */
__attribute__((always_inline)) static inline float verfc(float x)
{
	float z = fabsf(x) < 9.0f ? fabsf(x) : 9.0f;
	float t = 1.0f / fmaf(0.5f, z, 1.0f);
	float t2 = t * t, t4 = t2 * t2, t8 = t4 * t4;
	float q0 = fmaf(1.00002368f, t, -1.26551223f);
	float q1 = fmaf(0.09678418f, t, 0.37409196f);
	float q2 = fmaf(0.27886807f, t, -0.18628806f);
	float q3 = fmaf(1.48851587f, t, -1.13520398f);
	float q4 = fmaf(0.17087277f, t, -0.82215223f);
	float p = fmaf(q4, t8, fmaf(fmaf(q3, t2, q2), t4, fmaf(q1, t2, q0)));
	float r = t * vexp_range(fmaf(-z, z, p));

	return x >= 0 ? r : 2.0f - r;
}

/* x Phi(x) = 0.5 x erfc(-x/sqrt 2): the exact (erf) GELU. */
__attribute__((always_inline)) static inline float vgelu(float x)
{
	return 0.5f * x * verfc(-0.70710678118654752f * x);
}

/*
 * An 8x8 block transposed through AVX registers, for gemm.c's transposing
 * packs and the fused attention's packing of q, k and its output (a
 * scalar loop of strided stores cost a third of a product's time, and
 * more than half of a short sentence's attention): rows of the source
 * (ld floats apart) are the block's rows, and out[q] is column q.  Rows
 * from nrows on are not read and give zeros.  AVX2, which every kernel's
 * CPU has.
 */
__attribute__((target("avx2"))) static inline void
transpose8(__m256 out[8], const float *src, int64_t ld, int nrows)
{
	__m256 r[8], t[8], u[8];

	for (int i = 0; i < 8; i++)
		r[i] = i < nrows ? _mm256_loadu_ps(src + i * ld) : _mm256_setzero_ps();
	for (int i = 0; i < 8; i += 2) {
		t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
		t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
	}
	for (int i = 0; i < 8; i += 4) {
		u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
		u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
		u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
		u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
	}
	for (int i = 0; i < 4; i++) {
		out[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
		out[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
	}
}

#endif
