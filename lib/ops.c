/*
 * ops.c - encoder kernels on BLIS and OpenMP; see ops.h.
 *
 * Built without -ffast-math, so gcc will not reorder a float sum: every
 * reduction here keeps 16 partial sums, which gcc turns into one AVX-512
 * register (or two AVX2 ones) while the rounding stays defined.  exp and
 * erfc are written as straight-line polynomials so that the GELU and
 * softmax loops vectorise; a libm call per element would cost as much as
 * the matrix products on the FFN.
 */
#include "ops.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include <blis.h>
#include <omp.h>

#include "err.h"

/* Element counts below which an OpenMP region costs more than it saves. */
#define PAR_MIN 32768

/* ---- scalar building blocks ---- */

/*
 * exp(x) = 2^n e^r with n = round(x / ln 2), r = x - n ln 2 (ln 2 split in
 * a high part exact in float and a low part, Cody-Waite), e^r by its
 * degree-7 Taylor polynomial: |r| <= 0.347 so the remainder is below
 * 0.347^8/8! = 5e-9.  2^n is built in the exponent bits.  Inputs are
 * clamped so n stays in the normal range; below -87.3 the result is 0
 * (what float exp gives for a masked score near -FLT_MAX).
 */
static inline float vexp(float x)
{
	const float magic = 12582912.0f; /* 1.5 * 2^23: rounds to integer */
	float xc = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
	float n = (xc * 1.44269504f + magic) - magic;
	float r = fmaf(n, -0.693145752f, xc);
	float p, s;
	int32_t e;
	uint32_t bits;

	r = fmaf(n, -1.42860677e-6f, r);
	p = 1.0f / 5040;
	p = fmaf(p, r, 1.0f / 720);
	p = fmaf(p, r, 1.0f / 120);
	p = fmaf(p, r, 1.0f / 24);
	p = fmaf(p, r, 1.0f / 6);
	p = fmaf(p, r, 0.5f);
	p = fmaf(p, r, 1.0f);
	p = fmaf(p, r, 1.0f);
	e = (int32_t)n + 127;
	bits = (uint32_t)e << 23;
	memcpy(&s, &bits, sizeof(s));
	return x < -87.3f ? 0.0f : p * s;
}

/*
 * erfc(x): for z = |x|, t = 1/(1 + z/2),
 *   erfc(z) = t exp(-z^2 + P(t)),  P a degree-9 polynomial
 * (the Chebyshev fit of Numerical Recipes, 2nd ed., section 6.2: fractional
 * error below 1.2e-7 for every z >= 0), and erfc(-z) = 2 - erfc(z).
 */
static inline float verfc(float x)
{
	float z = fabsf(x);
	float t = 1.0f / fmaf(0.5f, z, 1.0f);
	float p = 0.17087277f, r;

	p = fmaf(p, t, -0.82215223f);
	p = fmaf(p, t, 1.48851587f);
	p = fmaf(p, t, -1.13520398f);
	p = fmaf(p, t, 0.27886807f);
	p = fmaf(p, t, -0.18628806f);
	p = fmaf(p, t, 0.09678418f);
	p = fmaf(p, t, 0.37409196f);
	p = fmaf(p, t, 1.00002368f);
	p = fmaf(p, t, -1.26551223f);
	r = t * vexp(fmaf(-z, z, p));
	return x >= 0 ? r : 2.0f - r;
}

float mtl_expf(float x)
{
	return vexp(x);
}

float mtl_erfcf(float x)
{
	return verfc(x);
}

/* Sum of x[0..n-1] in 16 lanes. */
static inline float sum16(const float *x, int n)
{
	float acc[16] = { 0 };
	int i = 0;

	for (; i + 16 <= n; i += 16)
		for (int j = 0; j < 16; j++)
			acc[j] += x[i + j];
	for (int j = 0; i < n; i++, j++)
		acc[j] += x[i];
	for (int w = 8; w; w /= 2)
		for (int j = 0; j < w; j++)
			acc[j] += acc[j + w];
	return acc[0];
}

/* Sum of (x[i] - m)^2 in 16 lanes. */
static inline float sumsq16(const float *x, float m, int n)
{
	float acc[16] = { 0 };
	int i = 0;

	for (; i + 16 <= n; i += 16)
		for (int j = 0; j < 16; j++) {
			float d = x[i + j] - m;
			acc[j] = fmaf(d, d, acc[j]);
		}
	for (int j = 0; i < n; i++, j++) {
		float d = x[i] - m;
		acc[j] = fmaf(d, d, acc[j]);
	}
	for (int w = 8; w; w /= 2)
		for (int j = 0; j < w; j++)
			acc[j] += acc[j + w];
	return acc[0];
}

/* Max of x[0..n-1], n >= 1, in 16 lanes. */
static inline float max16(const float *x, int n)
{
	float acc[16];
	int i = 0;

	for (int j = 0; j < 16; j++)
		acc[j] = x[0];
	for (; i + 16 <= n; i += 16)
		for (int j = 0; j < 16; j++)
			acc[j] = x[i + j] > acc[j] ? x[i + j] : acc[j];
	for (int j = 0; i < n; i++, j++)
		acc[j] = x[i] > acc[j] ? x[i] : acc[j];
	for (int w = 8; w; w /= 2)
		for (int j = 0; j < w; j++)
			acc[j] = acc[j + w] > acc[j] ? acc[j + w] : acc[j];
	return acc[0];
}

/*
 * A BLIS runtime for nt threads, with or without the "sup" (small,
 * unpacked) path.  sup reads the operands in place.  Measured on this
 * machine's BLIS 0.9: for products with fewer than ~512 rows (a short
 * batch, or attention with T >= 64 on per-head views whose rows are 3H
 * apart) the packed path is 2-4x faster; for attention at T = 32, sup is
 * 1.5x faster; on the large products the two are equal.
 */
static void rntm_threads(rntm_t *rntm, int nt, int sup)
{
	bli_rntm_init(rntm);
	bli_rntm_set_num_threads(nt < 1 ? 1 : nt, rntm);
	if (!sup)
		bli_rntm_disable_l3_sup(rntm);
}

/* ---- layers ---- */

void mtl_linear_forward(float *out, const float *inp, const float *w,
			const float *b, int N, int C, int OC, int nt)
{
	float one = 1.0f, zero = 0.0f;
	rntm_t rntm;

	/* out[N,OC] = inp[N,C] @ w^T: w is [OC,C] row-major, read transposed */
	rntm_threads(&rntm, nt, 0);
	bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, N, OC, C, &one,
		     (float *)inp, C, 1, (float *)w, C, 1, &zero, out, OC, 1,
		     NULL, &rntm);
	if (!b)
		return;
#pragma omp parallel for num_threads(nt) schedule(static) if ((int64_t)N * OC >= PAR_MIN)
	for (int i = 0; i < N; i++) {
		float *o = out + (int64_t)i * OC;

#pragma omp simd
		for (int j = 0; j < OC; j++)
			o[j] += b[j];
	}
}

void mtl_linear_forward_split(float *out, const float *inp, const float *w,
			      const float *b, int N, int C, int OC, int nt)
{
	int chunk = (OC / (nt < 1 ? 1 : nt) + 15) & ~15;

	if (nt <= 1 || chunk >= OC) {
		mtl_linear_forward(out, inp, w, b, N, C, OC, 1);
		return;
	}
#pragma omp parallel num_threads(nt)
	{
		int lo = omp_get_thread_num() * chunk;
		int n = OC - lo < chunk ? OC - lo : chunk;
		float one = 1.0f, zero = 0.0f;
		rntm_t rntm;

		if (n > 0) {
			/* out[:, lo:lo+n] = inp @ w[lo:lo+n, :]^T (+ b) */
			rntm_threads(&rntm, 1, 0);
			bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, N, n, C,
				     &one, (float *)inp, C, 1,
				     (float *)w + (int64_t)lo * C, C, 1, &zero,
				     out + lo, OC, 1, NULL, &rntm);
			for (int i = 0; b && i < N; i++) {
				float *o = out + (int64_t)i * OC + lo;
				const float *bb = b + lo;

#pragma omp simd
				for (int j = 0; j < n; j++)
					o[j] += bb[j];
			}
		}
	}
}

void mtl_embed_forward(float *out, const int32_t *ids, const int32_t *types,
		       const float *wte, const float *wpe, const float *wtt,
		       int B, int T, int H)
{
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++) {
			int64_t bt = (int64_t)b * T + t;
			float *o = out + bt * H;
			const float *we = wte + (int64_t)ids[bt] * H;
			const float *pe = wpe + (int64_t)t * H;
			const float *te = wtt + (int64_t)(types ? types[bt] : 0) * H;

			/* HF adds word + token type first, then position */
#pragma omp simd
			for (int i = 0; i < H; i++)
				o[i] = (we[i] + te[i]) + pe[i];
		}
}

void mtl_layernorm_forward(float *out, float *mean, float *rstd,
			   const float *inp, const float *w, const float *b,
			   int N, int C, float eps, int nt)
{
#pragma omp parallel for num_threads(nt) schedule(static) if ((int64_t)N * C >= PAR_MIN)
	for (int i = 0; i < N; i++) {
		const float *x = inp + (int64_t)i * C;
		float *o = out + (int64_t)i * C;
		float m = sum16(x, C) / (float)C;
		float v = sumsq16(x, m, C) / (float)C;
		float s = 1.0f / sqrtf(v + eps);

#pragma omp simd
		for (int j = 0; j < C; j++)
			o[j] = (x[j] - m) * s * w[j] + b[j];
		mean[i] = m;
		rstd[i] = s;
	}
}

void mtl_residual_forward(float *out, const float *a, const float *b,
			  int64_t n, int nt)
{
#pragma omp parallel for simd num_threads(nt) schedule(static) if (n >= PAR_MIN)
	for (int64_t i = 0; i < n; i++)
		out[i] = a[i] + b[i];
}

void mtl_gelu_forward(float *out, const float *inp, int64_t n, int nt)
{
#pragma omp parallel for simd num_threads(nt) schedule(static) if (n >= PAR_MIN)
	for (int64_t i = 0; i < n; i++) {
		float x = inp[i];

		out[i] = 0.5f * x * verfc(-0.70710678118654752f * x);
	}
}

/* One row: p[C] = softmax(s[C] + mask[C]). */
static inline void softmax_row(float *p, const float *s, const float *mask,
			       int C)
{
	float mx, sum, inv;

	if (mask)
#pragma omp simd
		for (int j = 0; j < C; j++)
			p[j] = s[j] + mask[j];
	else if (p != s)
		memcpy(p, s, sizeof(*p) * (size_t)C);
	mx = max16(p, C);
#pragma omp simd
	for (int j = 0; j < C; j++)
		p[j] = vexp(p[j] - mx);
	sum = sum16(p, C);
	inv = 1.0f / sum;
#pragma omp simd
	for (int j = 0; j < C; j++)
		p[j] *= inv;
}

void mtl_softmax_forward(float *probs, const float *scores,
			 const float *mask_add, int R, int C)
{
	for (int r = 0; r < R; r++)
		softmax_row(probs + (int64_t)r * C, scores + (int64_t)r * C,
			    mask_add, C);
}

void mtl_attention_forward(float *ctx, float *att, const float *qkv,
			   const float *mask_add, int B, int T, int H, int NH,
			   int keep, int nt)
{
	int D = H / NH;
	float scale = 1.0f / sqrtf((float)D), zero = 0.0f, one = 1.0f;

	MTL_ASSERT(D * NH == H);
#pragma omp parallel for num_threads(nt) schedule(static)
	for (int bh = 0; bh < B * NH; bh++) {
		int b = bh / NH, h = bh % NH;
		float *p = keep ? att + (int64_t)bh * T * T
				: att + (int64_t)omp_get_thread_num() * T * T;
		const float *q = qkv + (int64_t)b * T * 3 * H + (int64_t)h * D;
		const float *k = q + H, *v = q + 2 * H;
		float *c = ctx + (int64_t)b * T * H + (int64_t)h * D;
		rntm_t rntm;

		/* inside the parallel region each product runs on one thread */
		rntm_threads(&rntm, 1, T < 64);
		/* p[T,T] = scale * q[T,D] @ k[T,D]^T, rows of q, k strided 3H */
		bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, T, T, D, &scale,
			     (float *)q, 3 * H, 1, (float *)k, 3 * H, 1, &zero,
			     p, T, 1, NULL, &rntm);
		for (int i = 0; i < T; i++)
			softmax_row(p + (int64_t)i * T, p + (int64_t)i * T,
				    mask_add + (int64_t)b * T, T);
		/* c[T,D] (row stride H) = p[T,T] @ v[T,D] */
		bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, T, D, T, &one,
			     p, T, 1, (float *)v, 3 * H, 1, &zero, c, H, 1,
			     NULL, &rntm);
	}
}
