/*
 * vmath.h - the branch-free float polynomials behind exp, erfc and the
 * exact GELU (the GELU also on AVX2 and AVX-512 vectors), shared by
 * ops.c (the element-wise kernels) and gemm.c (the GELU epilogue of a
 * product), and transpose8, shared by gemm.c and ops_attn.c.  Not a module of its own: one definition of each, inlined
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

/*
 * The exact (erf) GELU, x Phi(x), as
 *   GELU(x) = 0.5 x + u h(u),  u = |x|,  h(u) = Phi(u) - 0.5 = erf(u/sqrt 2)/2
 * (Phi(x) = 0.5 + sign(x) h(|x|)).  h is a degree-6 polynomial in
 * t = u - c_k on each of 8 intervals of [0, 5.6), 0.7 wide, centred at c_k
 * (Chebyshev interpolants, |error| below 1e-8), and exactly 0.5 from 5.6
 * on, where h is within 1.1e-8 of it.  The absolute error of the GELU is
 * an ulp or two of max(|x|, 1), as PyTorch's 0.5 x (1 + erf(x/sqrt 2)),
 * whose cancellation for negative x it shares: test_bert bounds it
 * against double.  No division and no exp: a vector picks its lanes'
 * coefficients with a permute (vgelu512, vgelu256), 2.8 times as fast as
 * the erfc formula (t exp(-z^2 + P(t)), t = 1/(1 + z/2)) it replaced,
 * whose chain of dependent operations the core could not overlap.
 * verfc stays for the backward (Phi) and the tests.
 *
 * gelu_tab[0] holds the centres, gelu_tab[1 + d] the coefficients of t^d.
 * The scalar and vector forms do the same IEEE operations in the same
 * order (t, then Horner from the top, then the select and one FMA), so
 * every width gives the same bits; u is clamped before the index is
 * taken, so NaN and infinities index in range (NaN gives NaN).
 */
#define GELU_U_MAX 5.6f
#define GELU_INV_W 1.42857146f /* 1 / 0.7 */

static const float gelu_tab[8][8] __attribute__((aligned(32))) = {
	{ 0.349999994f, 1.04999995f, 1.75f, 2.45000005f, 3.1500001f,
	  3.8499999f, 4.55000019f, 5.25f },
	{ 0.136830643f, 0.35314092f, 0.459940851f, 0.492857188f,
	  0.499183655f, 0.499940932f, 0.499997318f, 0.499999911f },
	{ 0.375240207f, 0.229882315f, 0.0862773582f, 0.0198372975f,
	  0.00279424945f, 0.000241132511f, 1.27490657e-05f, 4.13032438e-07f },
	{ -0.0656670034f, -0.120688111f, -0.0754926875f, -0.0243007541f,
	  -0.00440094899f, -0.000464169221f, -2.90007229e-05f, -1.08381016e-06f },
	{ -0.0548695214f, 0.00391672319f, 0.0296553355f, 0.0165429208f,
	  0.00415581511f, 0.000555114006f, 4.1745443e-05f, 1.81566031e-06f },
	{ 0.015742518f, 0.0190827455f, -0.000390839326f, -0.00608047424f,
	  -0.00253924285f, -0.000457276852f, -4.27444247e-05f, -2.21261644e-06f },
	{ 0.00697619887f, -0.004425928f, -0.00427060481f, 0.000440727366f,
	  0.000967743108f, 0.000275034603f, 3.44970358e-05f, 2.24973542e-06f },
	{ -0.00245166803f, -0.00172276376f, 0.00127137254f, 0.000610865827f,
	  -0.000166776546f, -0.000111940419f, -1.96573783e-05f, -1.59364606e-06f },
};

__attribute__((always_inline)) static inline float vgelu(float x)
{
	float u = fabsf(x), uc = u < GELU_U_MAX ? u : GELU_U_MAX;
	int k = (int)(uc * GELU_INV_W);
	float t, h;

	k = k < 7 ? k : 7;
	t = uc - gelu_tab[0][k];
	h = gelu_tab[7][k];
#pragma GCC unroll 6
	for (int d = 6; d >= 1; d--)
		h = fmaf(h, t, gelu_tab[d][k]);
	h = u < GELU_U_MAX ? h : 0.5f;
	return fmaf(u, h, 0.5f * x);
}

/* vgelu on 16 lanes. */
__attribute__((target("avx512f"), always_inline)) static inline __m512
vgelu512(__m512 x)
{
	__m512 u = _mm512_abs_ps(x), lim = _mm512_set1_ps(GELU_U_MAX);
	/* vminps gives its second operand for NaN, as uc above */
	__m512 uc = _mm512_min_ps(u, lim), t, h;
	__m512i k = _mm512_cvttps_epi32(_mm512_mul_ps(uc, _mm512_set1_ps(GELU_INV_W)));

	k = _mm512_min_epi32(k, _mm512_set1_epi32(7));
#define GELU_TAB512(d) \
	_mm512_permutexvar_ps(k, _mm512_castps256_ps512(_mm256_load_ps(gelu_tab[d])))
	t = _mm512_sub_ps(uc, GELU_TAB512(0));
	h = GELU_TAB512(7);
#pragma GCC unroll 6
	for (int d = 6; d >= 1; d--)
		h = _mm512_fmadd_ps(h, t, GELU_TAB512(d));
#undef GELU_TAB512
	h = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(u, lim, _CMP_LT_OQ),
				 _mm512_set1_ps(0.5f), h);
	return _mm512_fmadd_ps(u, h, _mm512_mul_ps(_mm512_set1_ps(0.5f), x));
}

/* vgelu on 8 lanes. */
__attribute__((target("avx2,fma"), always_inline)) static inline __m256
vgelu256(__m256 x)
{
	__m256 u = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
	__m256 lim = _mm256_set1_ps(GELU_U_MAX);
	__m256 uc = _mm256_min_ps(u, lim), t, h;
	__m256i k = _mm256_cvttps_epi32(_mm256_mul_ps(uc, _mm256_set1_ps(GELU_INV_W)));

	k = _mm256_min_epi32(k, _mm256_set1_epi32(7));
#define GELU_TAB256(d) _mm256_permutevar8x32_ps(_mm256_load_ps(gelu_tab[d]), k)
	t = _mm256_sub_ps(uc, GELU_TAB256(0));
	h = GELU_TAB256(7);
#pragma GCC unroll 6
	for (int d = 6; d >= 1; d--)
		h = _mm256_fmadd_ps(h, t, GELU_TAB256(d));
#undef GELU_TAB256
	h = _mm256_blendv_ps(_mm256_set1_ps(0.5f), h,
			     _mm256_cmp_ps(u, lim, _CMP_LT_OQ));
	return _mm256_fmadd_ps(u, h, _mm256_mul_ps(_mm256_set1_ps(0.5f), x));
}

/* out[i] = GELU(in[i]) for i < n (out may be in), 16 lanes at a time. */
__attribute__((target("avx512f"), always_inline)) static inline void
vgelu_span512(float *out, const float *in, int64_t n)
{
	int64_t i = 0;

	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(out + i, vgelu512(_mm512_loadu_ps(in + i)));
	if (i < n) {
		__mmask16 m = (__mmask16)((1u << (n - i)) - 1);

		_mm512_mask_storeu_ps(out + i, m,
				      vgelu512(_mm512_maskz_loadu_ps(m, in + i)));
	}
}

/* The same, 8 lanes at a time, the last few one by one. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
vgelu_span256(float *out, const float *in, int64_t n)
{
	int64_t i = 0;

	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(out + i, vgelu256(_mm256_loadu_ps(in + i)));
	for (; i < n; i++)
		out[i] = vgelu(in[i]);
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
