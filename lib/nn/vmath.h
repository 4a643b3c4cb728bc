/*
 * vmath.h - the branch-free float polynomials behind exp and the exact
 * GELU and its derivative (those two also on AVX2 and AVX-512 vectors),
 * shared by ops.c (the element-wise kernels) and gemm.c (the GELU
 * epilogue of a product), and transpose8, shared by gemm.c and
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
 * The piecewise polynomials below (the GELU's h and its derivative's g):
 * on interval k = min((int)(uk / width), 7), with t = ut - tab[0][k],
 * tab[deg + 1][k] t^deg + ... + tab[1][k] by Horner's rule (one FMA a
 * step).  uk is the argument clamped to the last interval's end (for the
 * index), ut the argument t is taken from; a vector takes its lanes'
 * coefficients from the 8-entry rows with a permute.  The same operations
 * in the same order at every width.
 */
__attribute__((always_inline)) static inline float
vpiece(const float (*tab)[8], int deg, float inv_w, float ut, float uk)
{
	int k = (int)(uk * inv_w);
	float t, h;

	k = k < 7 ? k : 7;
	t = ut - tab[0][k];
	h = tab[deg + 1][k];
#pragma GCC unroll 8
	for (int d = deg; d >= 1; d--)
		h = fmaf(h, t, tab[d][k]);
	return h;
}

__attribute__((target("avx512f"), always_inline)) static inline __m512
vpiece512(const float (*tab)[8], int deg, float inv_w, __m512 ut, __m512 uk)
{
	__m512i k = _mm512_cvttps_epi32(_mm512_mul_ps(uk, _mm512_set1_ps(inv_w)));
	__m512 t, h;

	k = _mm512_min_epi32(k, _mm512_set1_epi32(7));
#define TAB512(d) \
	_mm512_permutexvar_ps(k, _mm512_castps256_ps512(_mm256_load_ps(tab[d])))
	t = _mm512_sub_ps(ut, TAB512(0));
	h = TAB512(deg + 1);
#pragma GCC unroll 8
	for (int d = deg; d >= 1; d--)
		h = _mm512_fmadd_ps(h, t, TAB512(d));
#undef TAB512
	return h;
}

__attribute__((target("avx2,fma"), always_inline)) static inline __m256
vpiece256(const float (*tab)[8], int deg, float inv_w, __m256 ut, __m256 uk)
{
	__m256i k = _mm256_cvttps_epi32(_mm256_mul_ps(uk, _mm256_set1_ps(inv_w)));
	__m256 t, h;

	k = _mm256_min_epi32(k, _mm256_set1_epi32(7));
#define TAB256(d) _mm256_permutevar8x32_ps(_mm256_load_ps(tab[d]), k)
	t = _mm256_sub_ps(ut, TAB256(0));
	h = TAB256(deg + 1);
#pragma GCC unroll 8
	for (int d = deg; d >= 1; d--)
		h = _mm256_fmadd_ps(h, t, TAB256(d));
#undef TAB256
	return h;
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
	float h = vpiece(gelu_tab, 6, GELU_INV_W, uc, uc);

	h = u < GELU_U_MAX ? h : 0.5f;
	return fmaf(u, h, 0.5f * x);
}

/* vgelu on 16 lanes. */
__attribute__((target("avx512f"), always_inline)) static inline __m512
vgelu512(__m512 x)
{
	__m512 u = _mm512_abs_ps(x), lim = _mm512_set1_ps(GELU_U_MAX);
	/* vminps gives its second operand for NaN, as uc above */
	__m512 uc = _mm512_min_ps(u, lim);
	__m512 h = vpiece512(gelu_tab, 6, GELU_INV_W, uc, uc);

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
	__m256 uc = _mm256_min_ps(u, lim);
	__m256 h = vpiece256(gelu_tab, 6, GELU_INV_W, uc, uc);

	h = _mm256_blendv_ps(_mm256_set1_ps(0.5f), h,
			     _mm256_cmp_ps(u, lim, _CMP_LT_OQ));
	return _mm256_fmadd_ps(u, h, _mm256_mul_ps(_mm256_set1_ps(0.5f), x));
}

/*
 * The GELU's derivative, d/dx x Phi(x) = Phi(x) + x phi(x), for the
 * backward, as
 *   GELU'(x) = 0.5 + sign(x) g(u),  u = |x|,  g(u) = h(u) + u phi(u)
 * (h as above; x phi(x) is odd).  g is a degree-7 polynomial in t = u - c_k
 * on each of 8 intervals of [0, 6.3), 0.7875 wide (tools/gen_gelu_grad_tab.py:
 * least squares on Chebyshev nodes; its float evaluation is within 6.8e-8
 * of g), and exactly 0.5 from 6.3 on, where g is within 6e-9 of it.  The
 * absolute error is an ulp or two of 1, as PyTorch's cdf + x pdf, with
 * cdf = 0.5 (1 + erf(x / sqrt 2)), which cancels for negative x the same
 * way.  It replaced 0.5 erfc(-x / sqrt 2) + x exp(-x^2 / 2) / sqrt(2 pi)
 * (a division, two polynomials and an exponent): 2.9 times as fast with
 * AVX-512, 3.7 with AVX2.  The same
 * IEEE operations in the same order at every width; NaN gives NaN (t is
 * taken from u unclamped, the index from u clamped).
 */
#define GELU_GRAD_U_MAX 6.3f
#define GELU_GRAD_INV_W 1.26984131f /* 1 / 0.7875 */

static const float gelu_grad_tab[9][8] __attribute__((aligned(32))) = {
	{ 0.393750012f, 1.18124998f, 1.96875f, 2.7562499f, 3.54375005f,
	  4.33125019f, 5.1187501f, 5.90625f },
	{ 0.29848367f, 0.615808904f, 0.588603973f, 0.521713138f,
	  0.502453744f, 0.500138462f, 0.500003994f, 0.50000006f },
	{ 0.681131423f, 0.120064981f, -0.107765533f, -0.05002762f,
	  -0.00789819285f, -0.000564357091f, -1.97309582e-05f, -3.49114288e-07f },
	{ -0.279461503f, -0.305474907f, -0.00701367715f, 0.0443082228f,
	  0.0113435639f, 0.00107632123f, 4.6330053e-05f, 9.68813765e-07f },
	{ -0.180823877f, 0.12643674f, 0.0776342675f, -0.0127146626f,
	  -0.00920126215f, -0.00126054056f, -6.89073058e-05f, -1.72861144e-06f },
	{ 0.0987519026f, 0.0449681543f, -0.0452820323f, -0.00807602145f,
	  0.00415256945f, 0.000994537491f, 7.225015e-05f, 2.20690731e-06f },
	{ 0.032209903f, -0.0408917516f, 0.0011634879f, 0.00860962085f,
	  -0.000496133987f, -0.000536399602f, -5.65105292e-05f, -2.17968864e-06f },
	{ -0.0198091902f, -0.000188844366f, 0.00824210234f, -0.00250222418f,
	  -0.000638045371f, 0.000176395915f, 3.49203874e-05f, 1.87741091e-06f },
	{ -0.00378183811f, 0.00630410342f, -0.00252729887f, -0.000373973511f,
	  0.000411411573f, -1.60853997e-05f, -1.51404865e-05f, -1.14735019e-06f },
};

__attribute__((always_inline)) static inline float vgelu_grad(float x)
{
	float u = fabsf(x);
	/* t's u: NaN stays NaN (vminps(lim, u) gives u for NaN) */
	float ut = u >= GELU_GRAD_U_MAX ? GELU_GRAD_U_MAX : u;
	/* the index's u: NaN is taken as the limit */
	float uk = u < GELU_GRAD_U_MAX ? u : GELU_GRAD_U_MAX;
	float g = vpiece(gelu_grad_tab, 7, GELU_GRAD_INV_W, ut, uk);

	g = u >= GELU_GRAD_U_MAX ? 0.5f : g;
	return 0.5f + copysignf(g, x);
}

/* vgelu_grad on 16 lanes. */
__attribute__((target("avx512f"), always_inline)) static inline __m512
vgelu_grad512(__m512 x)
{
	__m512 u = _mm512_abs_ps(x), lim = _mm512_set1_ps(GELU_GRAD_U_MAX);
	__m512 ut = _mm512_min_ps(lim, u), uk = _mm512_min_ps(u, lim);
	__m512 g = vpiece512(gelu_grad_tab, 7, GELU_GRAD_INV_W, ut, uk);
	__m512i sign = _mm512_set1_epi32(INT32_MIN);

	g = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(u, lim, _CMP_GE_OQ), g,
				 _mm512_set1_ps(0.5f));
	/* copysign: g's magnitude, x's sign */
	g = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(
		sign, _mm512_castps_si512(x), _mm512_castps_si512(g), 0xca));
	return _mm512_add_ps(_mm512_set1_ps(0.5f), g);
}

/* vgelu_grad on 8 lanes. */
__attribute__((target("avx2,fma"), always_inline)) static inline __m256
vgelu_grad256(__m256 x)
{
	__m256 sign = _mm256_set1_ps(-0.0f);
	__m256 u = _mm256_andnot_ps(sign, x), lim = _mm256_set1_ps(GELU_GRAD_U_MAX);
	__m256 ut = _mm256_min_ps(lim, u), uk = _mm256_min_ps(u, lim);
	__m256 g = vpiece256(gelu_grad_tab, 7, GELU_GRAD_INV_W, ut, uk);

	g = _mm256_blendv_ps(g, _mm256_set1_ps(0.5f),
			     _mm256_cmp_ps(u, lim, _CMP_GE_OQ));
	g = _mm256_or_ps(_mm256_andnot_ps(sign, g), _mm256_and_ps(sign, x));
	return _mm256_add_ps(_mm256_set1_ps(0.5f), g);
}

/* da[i] += dout[i] * GELU'(x[i]) for i < n, 16 lanes at a time. */
__attribute__((target("avx512f"), always_inline)) static inline void
vgelu_grad_span512(float *da, const float *x, const float *dout, int64_t n)
{
	int64_t i = 0;

	for (; i + 16 <= n; i += 16)
		_mm512_storeu_ps(da + i, _mm512_add_ps(_mm512_loadu_ps(da + i),
			_mm512_mul_ps(_mm512_loadu_ps(dout + i),
				      vgelu_grad512(_mm512_loadu_ps(x + i)))));
	if (i < n) {
		__mmask16 m = (__mmask16)((1u << (n - i)) - 1);

		_mm512_mask_storeu_ps(da + i, m, _mm512_add_ps(
			_mm512_maskz_loadu_ps(m, da + i),
			_mm512_mul_ps(_mm512_maskz_loadu_ps(m, dout + i),
				      vgelu_grad512(_mm512_maskz_loadu_ps(m, x + i)))));
	}
}

/* The same, 8 lanes at a time, the last few one by one. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
vgelu_grad_span256(float *da, const float *x, const float *dout, int64_t n)
{
	int64_t i = 0;

	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(da + i, _mm256_add_ps(_mm256_loadu_ps(da + i),
			_mm256_mul_ps(_mm256_loadu_ps(dout + i),
				      vgelu_grad256(_mm256_loadu_ps(x + i)))));
	for (; i < n; i++)
		da[i] += dout[i] * vgelu_grad(x[i]);
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
