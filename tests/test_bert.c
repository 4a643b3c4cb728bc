/*
 * test_bert.c - the encoder against naive references and the PyTorch
 * goldens in fixtures/golden/.
 *
 * 1. Each kernel against a straightforward double-precision loop (every
 *    BLIS path against a naive triple loop).
 * 2. The tiny model in F32, F16 and BF16 files (the last with "bert."
 *    names) against encode*.safetensors: every hidden state, attention
 *    probabilities, GELU output, pooler and the three pooled embeddings,
 *    each reported with its max abs diff, tolerance 1e-4.
 * 3. Each sentence alone against its row of the padded batch (1e-5).
 * 4. Loading errors listed in one message, sharded loading, save/reload,
 *    config rejection, random init.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bert.h"
#include "vmath.h"
#include "gemm.h"
#include "model.h"
#include "ops.h"
#include "st.h"
#include "t.h"

#define GOLDEN_TOL 1e-4
#define PAD_TOL 1e-5

static uint64_t rng = 88172645463325252ULL;

static float frand(void) /* uniform in [-1, 1) */
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((rng >> 40) * 0x1p-24 * 2.0 - 1.0);
}

static float *rand_vec(size_t n, float scale)
{
	float *x = malloc(n * sizeof(float));

	for (size_t i = 0; i < n; i++)
		x[i] = frand() * scale;
	return x;
}

/* Max |a-b| / (1 + |b|): relative for large values, absolute near 0. */
static double maxrel(const float *a, const double *b, size_t n)
{
	double m = 0;

	for (size_t i = 0; i < n; i++) {
		double d = fabs(a[i] - b[i]) / (1 + fabs(b[i]));

		if (!(d <= m))
			m = isnan(d) ? INFINITY : d;
	}
	return m;
}

/* ---- 1. kernels against naive loops ---- */

static void test_linear(void)
{
	int N = 37, C = 50, OC = 29;
	float *x = rand_vec((size_t)N * C, 1), *w = rand_vec((size_t)OC * C, 1);
	float *b = rand_vec(OC, 1), *y = malloc(sizeof(float) * N * OC);
	double *ref = malloc(sizeof(double) * N * OC);

	for (int i = 0; i < N; i++)
		for (int o = 0; o < OC; o++) {
			double s = b[o];

			for (int k = 0; k < C; k++)
				s += (double)x[i * C + k] * w[o * C + k];
			ref[i * OC + o] = s;
		}
	for (int nt = 1; nt <= 2; nt++) {
		mtl_linear_forward(y, x, w, b, N, C, OC, nt);
		T_OK(maxrel(y, ref, (size_t)N * OC) < 1e-5,
		     "linear vs naive triple loop, %d thread(s): %.2e", nt,
		     maxrel(y, ref, (size_t)N * OC));
	}
	for (int nt = 1; nt <= 3; nt++) {
		mtl_linear_forward_split(y, x, w, b, N, C, OC, nt);
		T_OK(maxrel(y, ref, (size_t)N * OC) < 1e-5,
		     "linear with column slices per thread, %d thread(s): %.2e", nt,
		     maxrel(y, ref, (size_t)N * OC));
	}
	for (int i = 0; i < N; i++)
		for (int o = 0; o < OC; o++)
			ref[i * OC + o] -= b[o];
	mtl_linear_forward(y, x, w, NULL, N, C, OC, 2);
	T_OK(maxrel(y, ref, (size_t)N * OC) < 1e-5, "linear without bias");
	free(x), free(w), free(b), free(y), free(ref);
}

static void test_layernorm(void)
{
	int N = 9, C = 77; /* C not a multiple of 16: tail lanes used */
	float *x = rand_vec((size_t)N * C, 3), *w = rand_vec(C, 1), *b = rand_vec(C, 1);
	float *y = malloc(sizeof(float) * N * C), mean[9], rstd[9];
	double *ref = malloc(sizeof(double) * N * C), dm = 0, dr = 0;

	for (int i = 0; i < N; i++)
		x[i * C] += 100; /* an offset that a one-pass variance would lose */
	mtl_layernorm_forward(y, mean, rstd, x, w, b, N, C, 1e-12f, 2);
	for (int i = 0; i < N; i++) {
		double m = 0, v = 0;

		for (int j = 0; j < C; j++)
			m += x[i * C + j];
		m /= C;
		for (int j = 0; j < C; j++)
			v += (x[i * C + j] - m) * (x[i * C + j] - m);
		v /= C;
		for (int j = 0; j < C; j++)
			ref[i * C + j] = (x[i * C + j] - m) / sqrt(v + 1e-12) * w[j] + b[j];
		dm = fmax(dm, fabs(mean[i] - m) / (1 + fabs(m)));
		dr = fmax(dr, fabs(rstd[i] - 1 / sqrt(v + 1e-12)) * sqrt(v));
	}
	T_OK(maxrel(y, ref, (size_t)N * C) < 1e-5, "layernorm vs double: %.2e",
	     maxrel(y, ref, (size_t)N * C));
	T_OK(dm < 1e-6 && dr < 1e-5, "layernorm mean/rstd saved: %.2e %.2e", dm, dr);
	/* backward recomputes the output from the statistics: the same bits */
	{
		float *y2 = malloc(sizeof(float) * N * C);

		mtl_layernorm_apply(y2, x, w, b, mean, rstd, N, C, 2);
		T_OK(memcmp(y, y2, sizeof(float) * N * C) == 0,
		     "layernorm recomputed from mean/rstd: the forward's bits");
		free(y2);
	}
	free(x), free(w), free(b), free(y), free(ref);
}

static void test_gelu_exp(void)
{
	int n = 40001;
	float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
	double g = 0, e = 0;

	for (int i = 0; i < n; i++)
		x[i] = -10.0f + 20.0f * (float)i / (float)(n - 1);
	mtl_gelu_forward(y, x, n, 2);
	for (int i = 0; i < n; i++) {
		double r = 0.5 * x[i] * erfc(-x[i] / sqrt(2.0));

		g = fmax(g, fabs(y[i] - r) / fmax(fabs(x[i]), 1.0));
	}
	for (float v = -87.0f; v < 88.0f; v += 0.01f)
		e = fmax(e, fabs(mtl_expf(v) - exp(v)) / exp(v));
	T_OK(g < 2e-7, "exact-erf GELU vs double on [-10,10]: max abs error %.2e of max(|x|, 1)", g);
	T_OK(e < 3e-7, "exp relative error on [-87,88]: %.2e", e);
	T_OK(mtl_expf(-FLT_MAX) == 0.0f && mtl_expf(-100.0f) == 0.0f,
	     "exp of a masked score is exactly 0");
	memcpy(y, x, sizeof(float) * n);
	mtl_gelu_forward(y, y, n, 1);
	T_OK(fabs(y[n - 1] - 10.0f) < 1e-5 && fabs(y[0]) < 1e-6,
	     "GELU in place; gelu(10) = 10, gelu(-10) = 0");
	free(x), free(y);
}

/*
 * vmath.h's GELU gives the same bits one by one, on AVX2 vectors and on
 * AVX-512 vectors (where the CPU has them), and so does mtl_gelu_forward:
 * near 0, across the ends of its 8 intervals (multiples of 0.7), at the
 * 5.6 where it becomes exact, and at zeros, infinities and NaN.
 */
__attribute__((target("avx512f,avx2,fma"))) static void gelu512_span(float *y, const float *x, int n)
{
	vgelu_span512(y, x, n);
}

__attribute__((target("avx2,fma"))) static void gelu256_span(float *y, const float *x, int n)
{
	vgelu_span256(y, x, n);
}

static void test_gelu_bits(void)
{
	enum { N = 60013 };
	float *x = malloc(sizeof(float) * N), *s = malloc(sizeof(float) * N);
	float *y = malloc(sizeof(float) * N);
	const float special[] = { 0.0f, -0.0f, INFINITY, NAN, 5.6f, -5.6f,
				  nextafterf(5.6f, 0), -nextafterf(5.6f, 0),
				  FLT_MAX, -FLT_MAX, FLT_MIN, 1e-30f };
	int ns = (int)(sizeof(special) / sizeof(special[0])), bad = 0;

	for (int i = 0; i < N; i++)
		x[i] = i < ns ? special[i]
		       : i % 3 ? -7.0f + 14.0f * (float)i / N
		       : nextafterf(0.7f * (float)(i % 9), i % 2 ? 0.0f : 10.0f) * (i % 6 < 3 ? 1 : -1);
	for (int i = 0; i < N; i++)
		s[i] = vgelu(x[i]);
	gelu256_span(y, x, N);
	for (int i = 0; i < N; i++)
		bad += memcmp(&y[i], &s[i], sizeof(float)) != 0;
	T_OK(bad == 0, "GELU on AVX2 vectors: the scalar bits (%d differ)", bad);
	if (__builtin_cpu_supports("avx512f")) {
		gelu512_span(y, x, N);
		bad = 0;
		for (int i = 0; i < N; i++)
			bad += memcmp(&y[i], &s[i], sizeof(float)) != 0;
		T_OK(bad == 0, "GELU on AVX-512 vectors: the scalar bits (%d differ)", bad);
	} else {
		t_skip("GELU on AVX-512 vectors: this CPU has no AVX-512");
	}
	mtl_gelu_forward(y, x, N, 2);
	bad = 0;
	for (int i = 0; i < N; i++)
		bad += memcmp(&y[i], &s[i], sizeof(float)) != 0;
	T_OK(bad == 0, "mtl_gelu_forward: the scalar bits (%d differ)", bad);
	T_OK(isnan(s[3]) && s[2] == INFINITY && s[0] == 0.0f && s[4] == 5.6f &&
	     s[5] == 0.0f, "GELU(NaN) NaN, (inf) inf, (0) 0, (5.6) 5.6, (-5.6) 0");
	free(x), free(s), free(y);
}

/*
 * The GELU's derivative (vmath.h's vgelu_grad) through mtl_gelu_backward,
 * which adds dout * GELU'(x) to what da holds: against double on [-10, 10]
 * and at the ends of its intervals, the same bits one by one, on AVX2 and
 * AVX-512 vectors and on 2 threads, and its values at 0, +-6.3 (where it
 * becomes exact), the infinities and NaN.
 */
__attribute__((target("avx512f,avx2,fma"))) static void
gelu_grad512_span(float *da, const float *x, const float *d, int n)
{
	vgelu_grad_span512(da, x, d, n);
}

__attribute__((target("avx2,fma"))) static void
gelu_grad256_span(float *da, const float *x, const float *d, int n)
{
	vgelu_grad_span256(da, x, d, n);
}

static void test_gelu_grad(void)
{
	enum { N = 60013 };
	float *x = malloc(sizeof(float) * N), *d = malloc(sizeof(float) * N);
	float *s = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
	const float special[] = { 0.0f, -0.0f, INFINITY, -INFINITY, NAN, 6.3f,
				  -6.3f, nextafterf(6.3f, 0), -nextafterf(6.3f, 0),
				  FLT_MAX, -FLT_MAX, FLT_MIN, 1e-30f };
	int ns = (int)(sizeof(special) / sizeof(special[0])), bad = 0;
	double err = 0;

	for (int i = 0; i < N; i++) {
		x[i] = i < ns ? special[i]
		       : i % 3 ? -10.0f + 20.0f * (float)i / N
		       : nextafterf(0.7875f * (float)(i % 9), i % 2 ? 0.0f : 10.0f) * (i % 6 < 3 ? 1 : -1);
		d[i] = i % 7 == 0 ? 1.0f : 0.25f + (float)(i % 5);
		s[i] = (float)(i % 11) - 5.0f; /* what da held before */
	}
	for (int i = ns; i < N; i++) {
		double xi = x[i];
		double r = 0.5 * erfc(-xi / sqrt(2.0)) + xi * exp(-0.5 * xi * xi) / sqrt(2 * M_PI);

		err = fmax(err, fabs(vgelu_grad(x[i]) - r));
	}
	T_OK(err < 2e-7, "GELU' vs double on [-10,10]: max abs error %.2e", err);
	T_OK(vgelu_grad(0.0f) > 0.4999999f && vgelu_grad(0.0f) < 0.5000001f &&
	     vgelu_grad(6.3f) == 1.0f && vgelu_grad(-6.3f) == 0.0f &&
	     vgelu_grad(INFINITY) == 1.0f && vgelu_grad(-INFINITY) == 0.0f &&
	     isnan(vgelu_grad(NAN)), "GELU'(0) 0.5, (6.3) 1, (-6.3) 0, (inf) 1, (-inf) 0, (NaN) NaN");
	memcpy(y, s, sizeof(float) * N);
	for (int i = 0; i < N; i++)
		s[i] += d[i] * vgelu_grad(x[i]);
	{
		float *t = malloc(sizeof(float) * N);

		for (int w = 0; w < 3; w++) {
			const char *what[] = { "on AVX2 vectors", "on AVX-512 vectors",
					       "mtl_gelu_backward on 2 threads" };

			if (w == 1 && !__builtin_cpu_supports("avx512f")) {
				t_skip("GELU' on AVX-512 vectors: this CPU has no AVX-512");
				continue;
			}
			memcpy(t, y, sizeof(float) * N);
			if (w == 0)
				gelu_grad256_span(t, x, d, N);
			else if (w == 1)
				gelu_grad512_span(t, x, d, N);
			else
				mtl_gelu_backward(t, x, d, N, 2);
			bad = 0;
			for (int i = 0; i < N; i++)
				bad += memcmp(&t[i], &s[i], sizeof(float)) != 0;
			T_OK(bad == 0, "GELU' %s, added to da: the scalar bits (%d differ)",
			     what[w], bad);
		}
		free(t);
	}
	free(x), free(d), free(s), free(y);
}

static void test_softmax(void)
{
	int R = 3, C = 21;
	float *s = rand_vec((size_t)R * C, 5), p[63], mask[21];
	double ref[63];

	for (int j = 0; j < C; j++)
		mask[j] = j % 4 == 3 ? -FLT_MAX : 0;
	mtl_softmax_forward(p, s, mask, R, C);
	for (int r = 0; r < R; r++) {
		double mx = -INFINITY, sum = 0;

		for (int j = 0; j < C; j++)
			if (!mask[j])
				mx = fmax(mx, s[r * C + j]);
		for (int j = 0; j < C; j++)
			sum += mask[j] ? 0 : exp(s[r * C + j] - mx);
		for (int j = 0; j < C; j++)
			ref[r * C + j] = mask[j] ? 0 : exp(s[r * C + j] - mx) / sum;
	}
	T_OK(maxrel(p, ref, (size_t)R * C) < 1e-6, "masked softmax vs double: %.2e",
	     maxrel(p, ref, (size_t)R * C));
	T_OK(p[3] == 0.0f, "masked key gets probability exactly 0");
	for (int j = 0; j < C; j++)
		mask[j] = -FLT_MAX;
	mtl_softmax_forward(p, s, mask, 1, C);
	T_OK(fabs(p[0] - 1.0 / C) < 1e-7 && fabs(p[C - 1] - 1.0 / C) < 1e-7,
	     "all-masked row is uniform, as in PyTorch");
	free(s);
}

/* Naive attention in double: ctx and probs. */
static void test_attention(void)
{
	int B = 2, T = 7, H = 12, NH = 3, D = 4, len[2] = { 7, 4 };
	float *qkv = rand_vec((size_t)B * T * 3 * H, 2), mask[14];
	float *ctx = malloc(sizeof(float) * B * T * H), *ctx2 = malloc(sizeof(float) * B * T * H);
	float *att = malloc(sizeof(float) * B * NH * T * T), scratch[2 * 49];
	float *att2 = malloc(sizeof(float) * B * NH * T * T);
	double *rc = calloc((size_t)B * T * H, sizeof(double));
	double *ra = calloc((size_t)B * NH * T * T, sizeof(double));

	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			mask[b * T + t] = t < len[b] ? 0 : -FLT_MAX;
	for (int b = 0; b < B; b++)
		for (int h = 0; h < NH; h++)
			for (int i = 0; i < T; i++) {
				double s[7], mx = -INFINITY, sum = 0;

				for (int j = 0; j < T; j++) {
					double d = 0;

					for (int k = 0; k < D; k++)
						d += (double)qkv[(b * T + i) * 3 * H + h * D + k] *
						     qkv[(b * T + j) * 3 * H + H + h * D + k];
					s[j] = j < len[b] ? d / sqrt(D) : -INFINITY;
					mx = fmax(mx, s[j]);
				}
				for (int j = 0; j < T; j++)
					sum += exp(s[j] - mx);
				for (int j = 0; j < T; j++) {
					double pj = exp(s[j] - mx) / sum;

					ra[((b * NH + h) * T + i) * T + j] = pj;
					for (int k = 0; k < D; k++)
						rc[(b * T + i) * H + h * D + k] +=
							pj * qkv[(b * T + j) * 3 * H + 2 * H + h * D + k];
				}
			}
	mtl_attention_forward(ctx, att, qkv, mask, B, T, H, NH, 1, 2);
	mtl_attention_probs(att2, qkv, mask, B, T, H, NH, 2);
	T_OK(!memcmp(att, att2, sizeof(float) * B * NH * T * T),
	     "mtl_attention_probs gives the kept probabilities' bits");
	T_OK(maxrel(att, ra, (size_t)B * NH * T * T) < 1e-6,
	     "attention probabilities vs naive: %.2e", maxrel(att, ra, (size_t)B * NH * T * T));
	T_OK(maxrel(ctx, rc, (size_t)B * T * H) < 1e-5,
	     "attention context vs naive (two BLIS products per head): %.2e",
	     maxrel(ctx, rc, (size_t)B * T * H));
	mtl_attention_forward_ex(MTL_ATTN_UNFUSED, ctx2, scratch, qkv, mask, B,
				 T, H, NH, 2);
	T_OK(!memcmp(ctx, ctx2, sizeof(float) * B * T * H),
	     "unfused attention with per-thread scratch gives identical context");
	free(qkv), free(ctx), free(ctx2), free(att), free(rc), free(ra);
	free(att2);
}

static void test_pool(void)
{
	int B = 2, T = 3, H = 5;
	int32_t mask[6] = { 1, 1, 0, 1, 0, 0 };
	float *h = rand_vec(30, 2), out[10], n[2];
	double ref[10];

	mtl_pool_forward(out, h, mask, B, T, H, MTL_POOL_MEAN);
	for (int j = 0; j < H; j++) {
		ref[j] = ((double)h[j] + h[H + j]) / 2;
		ref[H + j] = h[3 * H + j];
	}
	T_OK(maxrel(out, ref, 10) < 1e-6, "mean pooling over real tokens");
	mtl_pool_forward(out, h, mask, B, T, H, MTL_POOL_MAX);
	for (int j = 0; j < H; j++) {
		ref[j] = fmax(h[j], h[H + j]);
		ref[H + j] = h[3 * H + j];
	}
	T_OK(maxrel(out, ref, 10) == 0, "max pooling over real tokens");
	mtl_pool_forward(out, h, mask, B, T, H, MTL_POOL_CLS);
	for (int j = 0; j < H; j++) {
		ref[j] = h[j];
		ref[H + j] = h[3 * H + j];
	}
	T_OK(maxrel(out, ref, 10) == 0, "CLS pooling takes token 0");
	mtl_l2norm_forward(out, n, out, B, H);
	{
		double s = 0;

		for (int j = 0; j < H; j++)
			s += (double)out[j] * out[j];
		T_OK(fabs(s - 1) < 1e-6 && n[0] > 0, "L2 normalisation gives unit rows");
	}
	free(h);
}

/* ---- 2. goldens ---- */

static float *st_get(struct mtl_st *st, const char *name, int64_t *n)
{
	const struct mtl_st_tensor *t = mtl_st_find(st, name);
	float *x;

	if (!t)
		return NULL;
	x = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
	if (mtl_st_read_f32(t, x, t->numel, NULL)) {
		free(x);
		return NULL;
	}
	*n = t->numel;
	return x;
}

static int32_t *st_geti(struct mtl_st *st, const char *name)
{
	const struct mtl_st_tensor *t = mtl_st_find(st, name);
	int32_t *x;

	if (!t)
		return NULL;
	x = malloc(sizeof(int32_t) * (size_t)t->numel);
	if (mtl_st_read_i32(t, x, t->numel, NULL)) {
		free(x);
		return NULL;
	}
	return x;
}

/* Compares got[n] with the golden tensor name; one TAP line. */
static void cmp_golden(struct mtl_st *g, const char *tag, const char *name,
		       const float *got, int64_t n, double tol)
{
	int64_t gn = 0;
	float *want = st_get(g, name, &gn);
	double d;

	if (!want || gn != n) {
		T_OK(0, "%s %s: golden tensor missing or of size %lld, not %lld",
		     tag, name, (long long)gn, (long long)n);
		free(want);
		return;
	}
	d = t_maxdiff(got, want, n);
	T_OK(d <= tol, "%s %-22s max abs diff %.3g (tol %.0e)", tag, name, d, tol);
	free(want);
}

static void test_golden(const char *model_dir, const char *golden,
			const char *tag)
{
	struct mtl_bert *m = NULL;
	struct mtl_bert_pooling pool;
	struct mtl_st *g = NULL;
	struct mtl_err err = { "" };
	int32_t *ids, *mask, *types;
	int B, T, H, L, rc;
	double d;
	float *emb, *last, *gelu, *probs;
	char name[64];
	static const char *const modes[3] = { "cls", "mean", "max" };

	if (mtl_bert_load(&m, model_dir, &err)) {
		T_OK(0, "%s: load '%s': %s", tag, model_dir, err.msg);
		return;
	}
	T_OK(1, "%s: load '%s'", tag, model_dir);
	if (mtl_st_open(&g, golden, &err)) {
		T_OK(0, "%s: open golden: %s", tag, err.msg);
		mtl_bert_free(m);
		return;
	}
	B = (int)mtl_st_find(g, "input_ids")->shape[0];
	T = (int)mtl_st_find(g, "input_ids")->shape[1];
	H = m->cfg.hidden;
	L = m->cfg.layers;
	ids = st_geti(g, "input_ids");
	mask = st_geti(g, "attention_mask");
	types = st_geti(g, "token_type_ids");
	emb = malloc(sizeof(float) * B * H);
	last = malloc(sizeof(float) * B * T * H);
	gelu = malloc(sizeof(float) * B * T * m->cfg.intermediate);
	probs = malloc(sizeof(float) * B * m->cfg.heads * T * T);

	T_OK(mtl_bert_forward(m, ids, types, mask, B, T, 1, &err) == 0,
	     "%s: train-mode forward: %s", tag, err.msg);
	for (int l = 0; l <= L; l++) {
		snprintf(name, sizeof(name), "hidden.%d", l);
		cmp_golden(g, tag, name, mtl_bert_hidden(m, l), (int64_t)B * T * H,
			   GOLDEN_TOL);
	}
	for (int l = 0; l < L; l++) {
		snprintf(name, sizeof(name), "layer.%d.attn_probs", l);
		T_OK(mtl_bert_attn_probs(m, l, probs) == 0,
		     "%s: %s recomputed", tag, name);
		cmp_golden(g, tag, name, probs,
			   (int64_t)B * m->cfg.heads * T * T, GOLDEN_TOL);
		snprintf(name, sizeof(name), "layer.%d.ffn_gelu", l);
		T_OK(mtl_bert_ffn_gelu(m, l, gelu) == 0,
		     "%s: %s recomputed", tag, name);
		cmp_golden(g, tag, name, gelu,
			   (int64_t)B * T * m->cfg.intermediate, GOLDEN_TOL);
	}
	cmp_golden(g, tag, "last_hidden_state", mtl_bert_last_hidden(m),
		   (int64_t)B * T * H, GOLDEN_TOL);
	memcpy(last, mtl_bert_last_hidden(m), sizeof(float) * B * T * H);
	mtl_bert_pooler(m, emb);
	cmp_golden(g, tag, "pooler_output", emb, (int64_t)B * H, GOLDEN_TOL);
	mtl_pool_forward(emb, last, mask, B, T, H, MTL_POOL_CLS);
	cmp_golden(g, tag, "pooled_cls", emb, (int64_t)B * H, GOLDEN_TOL);

	/*
	 * inference mode shares buffers and runs the fused attention
	 * (mtl_attn_default()): the golden within the same tolerance, and
	 * train mode's numbers to float rounding (sums in another order)
	 */
	rc = mtl_bert_forward(m, ids, types, mask, B, T, 0, &err);
	d = t_maxdiff(mtl_bert_last_hidden(m), last, (long)B * T * H);
	T_OK(rc == 0 && d < 1e-5,
	     "%s: inference-mode forward (%s attention) within 1e-5 of train mode: %.2g",
	     tag, mtl_attn_name(mtl_attn_default()), d);
	cmp_golden(g, tag, "last_hidden_state", mtl_bert_last_hidden(m),
		   (int64_t)B * T * H, GOLDEN_TOL);
	T_OK(mtl_bert_hidden(m, 0) == NULL && mtl_bert_attn_probs(m, 0, probs) == -1 &&
		     mtl_bert_ffn_gelu(m, 0, gelu) == -1,
	     "%s: inference mode keeps no per-layer activations", tag);

	T_OK(mtl_model_pooling_load(&pool, model_dir, &m->cfg, &err) == 0,
	     "%s: pooling config: %s", tag, err.msg);
	T_OK(pool.mode == MTL_POOL_CLS && pool.normalize,
	     "%s: pooling is CLS + normalize (modules.json or BGE default)", tag);
	for (int k = 0; k < 3; k++) {
		pool.mode = (enum mtl_pool)(MTL_POOL_CLS + k);
		pool.normalize = 1;
		snprintf(name, sizeof(name), "embedding_%s", modes[k]);
		if (mtl_bert_embed(m, &pool, emb, ids, types, mask, B, T, &err))
			T_OK(0, "%s: embed: %s", tag, err.msg);
		else
			cmp_golden(g, tag, name, emb, (int64_t)B * H, GOLDEN_TOL);
	}

	/* 3. each sentence alone against its padded row */
	for (int b = 0; b < B; b++) {
		int len = 0;
		double dh, de = 0;
		float alone[3 * 64], padded[3 * 64];

		while (len < T && mask[b * T + len])
			len++;
		mtl_bert_forward(m, ids, types, mask, B, T, 0, &err);
		memcpy(last, mtl_bert_last_hidden(m), sizeof(float) * B * T * H);
		T_OK(mtl_bert_forward(m, ids + b * T, types + b * T, NULL, 1, len, 0,
				      &err) == 0, "%s: sentence %d alone", tag, b);
		dh = t_maxdiff(mtl_bert_last_hidden(m), last + (size_t)b * T * H,
			       (long)len * H);
		for (int k = 0; k < 3 && H <= 64; k++) {
			pool.mode = (enum mtl_pool)(MTL_POOL_CLS + k);
			mtl_bert_embed(m, &pool, padded, ids, types, mask, B, T, &err);
			mtl_bert_embed(m, &pool, alone, ids + b * T, types + b * T,
				       NULL, 1, len, &err);
			de = fmax(de, t_maxdiff(alone, padded + (size_t)b * H, H));
		}
		T_OK(dh <= PAD_TOL && de <= PAD_TOL,
		     "%s: sentence %d (%d tokens) alone vs padded to %d: hidden %.2g, embeddings %.2g",
		     tag, b, len, T, dh, de);
	}

	/* threads do not change results beyond rounding */
	mtl_bert_set_threads(m, 1);
	mtl_bert_forward(m, ids, types, mask, B, T, 0, &err);
	memcpy(last, mtl_bert_last_hidden(m), sizeof(float) * B * T * H);
	mtl_bert_set_threads(m, 2);
	mtl_bert_forward(m, ids, types, mask, B, T, 0, &err);
	T_OK(t_maxdiff(mtl_bert_last_hidden(m), last, (long)B * T * H) < 1e-6,
	     "%s: 1 and 2 threads agree", tag);
	T_OK(m->gemm_split == 1, "%s: threads split by output columns by default", tag);
	mtl_bert_set_gemm_split(m, 0);
	mtl_bert_forward(m, ids, types, mask, B, T, 0, &err);
	mtl_bert_set_gemm_split(m, 1);
	T_OK(t_maxdiff(mtl_bert_last_hidden(m), last, (long)B * T * H) < 1e-6,
	     "%s: BLIS's own threading agrees", tag);

	/* weights packed once (what mtl-score runs): the same bits */
	for (int nt = 1; nt <= 2; nt++) {
		int same;

		mtl_bert_set_threads(m, nt);
		mtl_bert_forward(m, ids, types, mask, B, T, 0, &err);
		memcpy(last, mtl_bert_last_hidden(m), sizeof(float) * B * T * H);
		T_OK(mtl_bert_set_packed(m, 1, &err) == 0 &&
		     (m->packed != NULL) == (mtl_gemm_default() != MTL_GEMM_BLIS),
		     "%s: weights packed (%s)", tag, mtl_gemm_name(mtl_gemm_default()));
		mtl_bert_forward(m, ids, types, mask, B, T, 0, &err);
		same = !memcmp(mtl_bert_last_hidden(m), last, sizeof(float) * B * T * H);
		mtl_bert_set_packed(m, 0, NULL);
		T_OK(same && m->packed == NULL,
		     "%s: packed weights on %d thread%s: the bits of the unpacked forward",
		     tag, nt, nt > 1 ? "s" : "");
	}

	free(ids), free(mask), free(types), free(emb), free(last);
	free(gelu), free(probs);
	mtl_st_close(g);
	mtl_bert_free(m);
}

/* ---- 4. loading, saving, configs ---- */

static char tmp[] = "/tmp/test_bert.XXXXXX";

static int copy_file(const char *from, const char *to)
{
	FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
	char buf[4096];
	size_t n;

	if (!a || !b) {
		if (a)
			fclose(a);
		if (b)
			fclose(b);
		return -1;
	}
	while ((n = fread(buf, 1, sizeof(buf), a)) > 0)
		fwrite(buf, 1, n, b);
	fclose(a);
	return fclose(b);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
}

/* A model dir sub/ of tmp with config.json and the tensors of m as
 * modified by the caller in outs[0..n). */
static void make_dir_with(const char *sub, struct mtl_st_out *outs, size_t n,
			  char *dir, size_t dlen)
{
	char p[600];

	snprintf(dir, dlen, "%s/%s", tmp, sub);
	mkdir(dir, 0755);
	snprintf(p, sizeof(p), "%s/config.json", dir);
	copy_file("fixtures/tiny/config.json", p);
	snprintf(p, sizeof(p), "%s/model.safetensors", dir);
	mtl_st_write(p, outs, n, NULL, 0, NULL);
}

static struct mtl_st_out *model_outs(const struct mtl_bert *m, size_t extra)
{
	struct mtl_st_out *o = calloc(m->n_tensors + extra, sizeof(*o));

	for (size_t i = 0; i < m->n_tensors; i++) {
		o[i].name = m->tensors[i].name;
		o[i].ndim = m->tensors[i].ndim;
		o[i].shape[0] = m->tensors[i].shape[0];
		o[i].shape[1] = m->tensors[i].shape[1];
		o[i].data = m->params + m->tensors[i].offset;
	}
	return o;
}

static void test_load_errors(const struct mtl_bert *m)
{
	struct mtl_st_out *o = model_outs(m, 2);
	size_t n = m->n_tensors, k_missing = 7, k_shape = 3;
	struct mtl_bert *m2 = NULL;
	struct mtl_err err = { "" };
	char dir[512];
	static float junk[4];
	int rc;

	/* drop one, reshape one, add one unexpected and one ignorable */
	o[k_missing] = o[n - 1];
	o[k_shape].shape[0] = 16;
	o[k_shape].shape[1] = 2; /* [16,2] instead of [32] */
	o[k_shape].ndim = 2;
	o[n - 1] = (struct mtl_st_out){ .name = "encoder.layer.9.extra.weight",
					.ndim = 1, .shape = { 4 }, .data = junk };
	o[n] = (struct mtl_st_out){ .name = "embeddings.position_ids",
				    .ndim = 1, .shape = { 4 }, .data = junk };
	make_dir_with("bad", o, n + 1, dir, sizeof(dir));
	rc = mtl_bert_load(&m2, dir, &err);
	T_OK(rc == MTL_ERR_FORMAT && m2 == NULL, "bad model dir fails");
	T_OK(strstr(err.msg, "1 missing, 1 unexpected, 1 wrong shape") &&
		     strstr(err.msg, m->tensors[k_missing].name) &&
		     strstr(err.msg, "'encoder.layer.9.extra.weight'") &&
		     strstr(err.msg, "'embeddings.LayerNorm.weight' [16,2], expected [32]") &&
		     !strstr(err.msg, "position_ids"),
	     "one message lists missing, unexpected and wrong shape: %s", err.msg);
	free(o);

	/* prefixed and unprefixed copies of one tensor */
	o = model_outs(m, 1);
	o[n] = o[0];
	o[n].name = "bert.embeddings.word_embeddings.weight";
	make_dir_with("dup", o, n + 1, dir, sizeof(dir));
	rc = mtl_bert_load(&m2, dir, &err);
	T_OK(rc == MTL_ERR_FORMAT && strstr(err.msg, "1 duplicate") &&
		     strstr(err.msg, "embeddings.word_embeddings.weight'"),
	     "a tensor present twice is reported: %s", err.msg);
	free(o);

	snprintf(dir, sizeof(dir), "%s/empty", tmp);
	mkdir(dir, 0755);
	rc = mtl_bert_load(&m2, dir, &err);
	T_OK(rc == MTL_ERR_IO && strstr(err.msg, "config.json"),
	     "a dir without config.json: %s", err.msg);
}

static void test_sharded(const struct mtl_bert *m)
{
	struct mtl_st_out *o = model_outs(m, 0);
	size_t n = m->n_tensors, half = n / 2;
	struct mtl_bert *m2 = NULL;
	struct mtl_err err = { "" };
	char dir[512], p[600], *idx;
	size_t len = 0, cap = 1 << 16;
	int rc;

	snprintf(dir, sizeof(dir), "%s/sharded", tmp);
	mkdir(dir, 0755);
	snprintf(p, sizeof(p), "%s/config.json", dir);
	copy_file("fixtures/tiny/config.json", p);
	snprintf(p, sizeof(p), "%s/model-00001-of-00002.safetensors", dir);
	mtl_st_write(p, o, half, NULL, 0, NULL);
	snprintf(p, sizeof(p), "%s/model-00002-of-00002.safetensors", dir);
	mtl_st_write(p, o + half, n - half, NULL, 0, NULL);
	idx = malloc(cap);
	len += (size_t)snprintf(idx + len, cap - len,
				"{\"metadata\": {}, \"weight_map\": {");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(idx + len, cap - len,
					"%s\"bert.%s\": \"model-0000%d-of-00002.safetensors\"",
					i ? ", " : "", o[i].name, i < half ? 1 : 2);
	snprintf(idx + len, cap - len, "}}");
	snprintf(p, sizeof(p), "%s/model.safetensors.index.json", dir);
	write_text(p, idx);
	rc = mtl_bert_load(&m2, dir, &err);
	T_OK(rc == 0, "sharded model loads: %s", err.msg);
	T_OK(m2 && m2->n_params == m->n_params &&
		     !memcmp(m2->params, m->params, sizeof(float) * m->n_params),
	     "sharded parameters equal the single-file ones");
	mtl_bert_free(m2);
	free(idx);
	free(o);
}

static void test_save(struct mtl_bert *m)
{
	struct mtl_bert *m2 = NULL;
	struct mtl_bert_pooling pool = { MTL_POOL_MEAN, 1, 48 }, p2;
	struct mtl_err err = { "" };
	char dir[512];
	int rc;

	snprintf(dir, sizeof(dir), "%s/saved", tmp);
	rc = mtl_bert_save(m, dir, &err);
	T_OK(rc == 0, "save: %s", err.msg);
	rc = mtl_bert_load(&m2, dir, &err);
	T_OK(rc == 0 && !memcmp(&m2->cfg, &m->cfg, sizeof(m->cfg)) &&
		     !memcmp(m2->params, m->params, sizeof(float) * m->n_params),
	     "saved model reloads bit-exact, pooler included: %s", err.msg);
	mtl_bert_free(m2);
	T_OK(mtl_model_pooling_save(&pool, m->cfg.hidden, dir, &err) == 0 &&
		     mtl_model_pooling_load(&p2, dir, &m->cfg, &err) == 0 &&
		     p2.mode == MTL_POOL_MEAN && p2.normalize &&
		     p2.max_seq_length == 48,
	     "pooling files round trip: %s", err.msg);
	pool.normalize = 0;
	pool.mode = MTL_POOL_MAX;
	snprintf(dir, sizeof(dir), "%s/saved2", tmp);
	T_OK(mtl_model_pooling_save(&pool, m->cfg.hidden, dir, &err) == 0 &&
		     mtl_model_pooling_load(&p2, dir, &m->cfg, &err) == 0 &&
		     p2.mode == MTL_POOL_MAX && !p2.normalize,
	     "no Normalize module, no normalisation");
}

static void test_configs(void)
{
	static const struct {
		const char *json, *needle;
	} cases[] = {
		{ "{\"vocab_size\":10,\"hidden_size\":8,\"num_hidden_layers\":1,"
		  "\"num_attention_heads\":2,\"intermediate_size\":16,"
		  "\"hidden_act\":\"relu\"}", "unsupported hidden_act 'relu'" },
		{ "{\"vocab_size\":10,\"hidden_size\":8,\"num_hidden_layers\":1,"
		  "\"num_attention_heads\":2,\"intermediate_size\":16,"
		  "\"position_embedding_type\":\"relative_key\"}",
		  "unsupported position_embedding_type 'relative_key'" },
		{ "{\"vocab_size\":10,\"hidden_size\":8,\"num_hidden_layers\":1,"
		  "\"num_attention_heads\":3,\"intermediate_size\":16}",
		  "not a multiple of 3 heads" },
		{ "{\"vocab_size\":10,\"hidden_size\":8,\"num_attention_heads\":2,"
		  "\"intermediate_size\":16}", "missing \"num_hidden_layers\"" },
		{ "[1]", "not a JSON object" },
	};
	struct mtl_bert_config c;
	struct mtl_err err = { "" };
	char p[600];

	snprintf(p, sizeof(p), "%s/config.json", tmp);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_text(p, cases[i].json);
		T_OK(mtl_bert_config_load(&c, p, &err) == MTL_ERR_FORMAT &&
			     strstr(err.msg, cases[i].needle),
		     "config rejected: %s", err.msg);
	}
	T_OK(mtl_bert_config_load(&c, "fixtures/tiny/config.json", &err) == 0 &&
		     c.hidden == 32 && c.layers == 2 && c.heads == 4 &&
		     c.intermediate == 64 && c.vocab == 312 && c.max_pos == 64 &&
		     c.type_vocab == 2 && c.ln_eps == 1e-12f && c.pad_id == 0,
	     "tiny config read");
	unlink(p);
}

static void test_init(const struct mtl_bert_config *cfg)
{
	struct mtl_bert *a = NULL, *b = NULL;
	double s = 0, ss = 0;
	size_t n;

	mtl_bert_new(&a, cfg, NULL);
	mtl_bert_new(&b, cfg, NULL);
	mtl_bert_init_random(a, 42);
	mtl_bert_init_random(b, 42);
	T_OK(!memcmp(a->params, b->params, sizeof(float) * a->n_params),
	     "same seed, same weights");
	mtl_bert_init_random(b, 43);
	T_OK(memcmp(a->params, b->params, sizeof(float) * a->n_params),
	     "another seed, other weights");
	n = (size_t)cfg->layers * cfg->intermediate * cfg->hidden;
	for (size_t i = 0; i < n; i++) {
		s += a->p.fcw[i];
		ss += (double)a->p.fcw[i] * a->p.fcw[i];
	}
	T_OK(fabs(s / n) < 0.002 && fabs(sqrt(ss / n) - 0.02) < 0.001,
	     "weights ~ N(0, 0.02^2): mean %.4f std %.4f", s / n, sqrt(ss / n));
	T_OK(a->p.ln2w[5] == 1 && a->p.ln2b[5] == 0 && a->p.fcb[3] == 0 &&
		     a->p.wte[cfg->pad_id * cfg->hidden + 1] == 0,
	     "LayerNorm 1/0, biases 0, pad embedding row 0");
	mtl_bert_free(a);
	mtl_bert_free(b);
}

/*
 * Each tensor's layer (-1 outside the layers, as its name says), and the
 * one-layer block: layer 1's tensors tile it once each, the key weight
 * where the carved fields put it.
 */
static void test_layer_block(const struct mtl_bert *m,
			     const struct mtl_bert_tensor *t, size_t n)
{
	struct mtl_bert_params one;
	size_t len = mtl_bert_layer_carve(&one, NULL, &m->cfg), key = 0;
	unsigned char *hit = calloc(len, 1);
	float *block = calloc(len, sizeof(float));
	int layers_ok = 1, tiles = 1;

	for (size_t i = 0; i < n; i++) {
		int l = -1;

		if (sscanf(t[i].name, "encoder.layer.%d.", &l) != 1)
			l = -1;
		layers_ok &= t[i].layer == l;
		if (l != 1)
			continue;
		for (size_t j = 0, at = mtl_bert_layer_offset(&m->cfg, t[i].offset);
		     j < t[i].numel; j++)
			tiles &= at + j < len && !hit[at + j]++;
		if (!strcmp(t[i].name, "encoder.layer.1.attention.self.key.weight"))
			key = mtl_bert_layer_offset(&m->cfg, t[i].offset);
	}
	for (size_t j = 0; j < len; j++)
		tiles &= hit[j] == 1;
	mtl_bert_layer_carve(&one, block, &m->cfg);
	T_OK(layers_ok, "each tensor knows its encoder layer, -1 outside them");
	T_OK(tiles && block + key == one.qkvw + m->cfg.hidden * m->cfg.hidden &&
		     !one.wte && !one.poolw,
	     "layer 1's tensors tile the one-layer block (%zu floats), each where its field is carved", len);
	free(hit);
	free(block);
}

static void test_tensor_table(const struct mtl_bert *m)
{
	size_t n, sum = 0, prev_end = 0;
	const struct mtl_bert_tensor *t = mtl_bert_tensors(m, &n);
	int contiguous = 1;

	for (size_t i = 0; i < n; i++) {
		contiguous &= t[i].offset == prev_end;
		prev_end = t[i].offset + t[i].numel;
		sum += t[i].numel;
	}
	T_OK(n == 5 + 16 * (size_t)m->cfg.layers + 2 && sum == m->n_params && contiguous,
	     "tensor table tiles the parameter block (%zu tensors)", n);
	T_OK(mtl_bert_tensor_find(m, "bert.encoder.layer.1.attention.self.key.weight") &&
		     m->params + mtl_bert_tensor_find(m, "encoder.layer.1.attention.self.key.weight")->offset ==
			     m->p.qkvw + 3 * 32 * 32 + 32 * 32,
	     "key weight of layer 1 sits between query and value in qkvw");
	test_layer_block(m, t, n);
}

static void test_forward_args(struct mtl_bert *m)
{
	int32_t ids[4] = { 2, 57, 312, 3 }, types[4] = { 0, 0, 0, 2 };
	struct mtl_err err = { "" };

	T_OK(mtl_bert_forward(m, ids, NULL, NULL, 1, 4, 0, &err) == MTL_ERR_ARG &&
		     strstr(err.msg, "token id 312 at [0,2] out of range [0,312)"),
	     "out-of-vocabulary id refused: %s", err.msg);
	ids[2] = 5;
	T_OK(mtl_bert_forward(m, ids, types, NULL, 1, 4, 0, &err) == MTL_ERR_ARG &&
		     strstr(err.msg, "token type 2 at [0,3]"),
	     "out-of-range token type refused: %s", err.msg);
	T_OK(mtl_bert_forward(m, ids, NULL, NULL, 1, 65, 0, &err) == MTL_ERR_ARG &&
		     strstr(err.msg, "[1,65]"),
	     "sequence longer than max_position_embeddings refused: %s", err.msg);
}

/*
 * Bytes of activations and training extras of one training step (with
 * dropout) of a random L-layer model at [1,T], keeping every layer's
 * activations or (recompute) only each layer's input.
 */
static double train_bytes(int L, int T, int recompute)
{
	struct mtl_bert_config c = {
		.vocab = 50, .hidden = 16, .layers = L, .heads = 4,
		.intermediate = 32, .max_pos = 256, .type_vocab = 2,
		.ln_eps = 1e-12f, .hidden_dropout = 0.1f, .attn_dropout = 0.1f,
	};
	struct mtl_bert *m = NULL;
	struct mtl_err err = { "" };
	struct mtl_rng r;
	int32_t ids[256];
	double bytes = -1;
	float *grad = NULL, *dlast = NULL;

	for (int t = 0; t < T; t++)
		ids[t] = 1 + t % 49;
	mtl_rng_init(&r, 5);
	if (mtl_bert_new(&m, &c, &err) == 0) {
		mtl_bert_set_threads(m, 2);
		mtl_bert_set_recompute(m, recompute);
		mtl_bert_init_random(m, 3);
		grad = calloc(m->n_params, sizeof(float));
		dlast = calloc((size_t)T * c.hidden, sizeof(float));
		if (grad && dlast &&
		    mtl_bert_forward_train(m, ids, NULL, NULL, 1, T, 0.1f, 0.1f,
					   &r, &err) == 0) {
			mtl_bert_backward(m, grad, dlast);
			bytes = (double)m->arena_len * sizeof(float) + (double)m->tarena_len;
		}
	}
	free(grad), free(dlast);
	mtl_bert_free(m);
	return bytes;
}

/*
 * Training memory per layer is linear in T: attention keeps neither its
 * [NH,T,T] probabilities nor their dropout masks per layer (each layer
 * once kept 5 bytes an element, 1.3 MB at NH=4, T=256).  With recompute a
 * layer keeps its input (H floats a token) and its two keep-masks (2H
 * bytes), against 7H + I floats.
 */
static void test_train_memory(void)
{
	double l128 = (train_bytes(3, 128, 0) - train_bytes(1, 128, 0)) / 2;
	double l256 = (train_bytes(3, 256, 0) - train_bytes(1, 256, 0)) / 2;
	double r256 = (train_bytes(5, 256, 1) - train_bytes(1, 256, 1)) / 4;

	T_OK(l128 > 0 && l256 > 0 && l256 < 2.2 * l128,
	     "training bytes per layer grow linearly in T: %.0f at T=128, %.0f at 256",
	     l128, l256);
	T_OK(l256 < 4.0 * 256 * 256,
	     "a layer at T=256 holds less than a byte per attention element: %.0f bytes",
	     l256);
	T_OK(r256 > 0 && r256 <= 256 * (16 * 4 + 2 * 16) + 128,
	     "recompute: a layer at T=256 holds its input and masks, %.0f bytes (%.0f without)",
	     r256, l256);
}

/*
 * Recompute changes memory, not results: the gradients of a training
 * forward with dropout and padding are the same bytes with and without
 * it, through every layer and the embeddings and when backward stops at
 * a frozen layer, with both ways of threading the products.
 */
static void test_recompute(void)
{
	enum { RB = 3, RT = 24, RL = 3 };
	struct mtl_bert_config c = {
		.vocab = 60, .hidden = 32, .layers = RL, .heads = 4,
		.intermediate = 64, .max_pos = 32, .type_vocab = 2,
		.ln_eps = 1e-12f, .hidden_dropout = 0.1f, .attn_dropout = 0.1f,
	};
	struct mtl_bert *m = NULL;
	struct mtl_err err = { "" };
	int32_t ids[RB * RT], mask[RB * RT];
	float *g[2] = { NULL, NULL }, *dlast = rand_vec((size_t)RB * RT * 32, 1);
	float *probe = malloc(sizeof(float) * RB * 4 * RT * RT); /* the larger */
	size_t n;
	int ok = mtl_bert_new(&m, &c, &err) == 0;

	for (int i = 0; i < RB * RT; i++) {
		ids[i] = 1 + i * 7 % 59;
		mask[i] = i % RT < RT - 5 * (i / RT);
	}
	if (ok) {
		mtl_bert_init_random(m, 4);
		mtl_bert_set_threads(m, 2);
	}
	n = ok ? m->n_params : 0;
	for (int split = 0; ok && split <= 1; split++)
		for (int lo = 0; ok && lo <= 1; lo++) {
			for (int rc = 0; ok && rc <= 1; rc++) {
				struct mtl_rng r;

				mtl_rng_init(&r, 11);
				mtl_bert_set_gemm_split(m, split);
				mtl_bert_set_recompute(m, rc);
				g[rc] = calloc(n, sizeof(float));
				ok = g[rc] && mtl_bert_forward_train(m, ids, NULL, mask, RB, RT,
								     0.1f, 0.1f, &r, &err) == 0;
				if (ok)
					mtl_bert_backward_to(m, g[rc], dlast, lo, lo == 0);
			}
			T_OK(ok && !memcmp(g[0], g[1], n * sizeof(float)),
			     "recompute, %s, backward to layer %d%s: the same gradient bytes",
			     split ? "column slices" : "whole products", lo,
			     lo ? "" : " and the embeddings");
			T_OK(ok && probe && mtl_bert_ffn_gelu(m, 0, probe) == -1 &&
			     mtl_bert_attn_probs(m, 0, probe) == -1,
			     "recompute: the per-layer accessors say the activations are not kept");
			free(g[0]), free(g[1]);
			g[0] = g[1] = NULL;
		}
	if (!ok)
		T_OK(0, "recompute: %s", err.msg);
	free(dlast), free(probe);
	mtl_bert_free(m);
}

/*
 * Sentence embeddings run on the real tokens alone, without the padding
 * (bert.c's plan_ragged), and with CLS pooling the last layer for row 0
 * of each sequence alone (layer_forward_cls): they must be the bytes of
 * the padded forward, pooled and normalised, in every way the products
 * can run (weights packed or not, column slices or whole products,
 * int8), with query tiles of one and two vectors (T = 40), for CLS and
 * mean pooling; and the last hidden state is back in the padded layout.
 */
static void test_embed(void)
{
	enum { EB = 5, ET = 40, EH = 64 };
	struct mtl_bert_config c = {
		.vocab = 90, .hidden = EH, .layers = 2, .heads = 4,
		.intermediate = 128, .max_pos = 64, .type_vocab = 2,
		.ln_eps = 1e-12f,
	};
	struct mtl_bert_pooling pool = { .mode = MTL_POOL_CLS, .normalize = 1 };
	struct mtl_bert *m = NULL;
	struct mtl_err err = { "" };
	int32_t ids[EB * ET], mask[EB * ET];
	float want[EB * EH], got[EB * EH], *last = malloc(sizeof(float) * EB * ET * EH);
	int ok = last && mtl_bert_new(&m, &c, &err) == 0;
	static const char *const how[] = { "whole products", "column slices",
					   "packed weights", "int8" };

	for (int i = 0; i < EB * ET; i++) {
		ids[i] = 1 + (i * 37) % 89;
		mask[i] = i % ET < ET - 9 * (i / ET);
	}
	if (ok) {
		mtl_bert_init_random(m, 21);
		mtl_bert_set_threads(m, 2);
	}
	for (int k = 0; ok && k < 8; k++) {
		int same_last = 1;

		pool.mode = k < 4 ? MTL_POOL_CLS : MTL_POOL_MEAN;
		mtl_bert_set_gemm_split(m, k % 4 == 1);
		ok = (k % 4 != 2 || mtl_bert_set_packed(m, 1, &err) == 0) &&
		     (k % 4 != 3 || mtl_bert_set_int8(m, 1, MTL_Q8_AUTO, &err) == 0) &&
		     mtl_bert_forward(m, ids, NULL, mask, EB, ET, 0, &err) == 0;
		if (!ok)
			break;
		memcpy(last, mtl_bert_last_hidden(m), sizeof(float) * EB * ET * EH);
		mtl_pool_forward(want, last, mask, EB, ET, EH, pool.mode);
		mtl_l2norm_forward(want, NULL, want, EB, EH);
		ok = mtl_bert_embed(m, &pool, got, ids, NULL, mask, EB, ET, &err) == 0;
		/* the real rows of the last layer: all, or the CLS rows */
		for (int i = 0; ok && i < EB * ET; i++)
			if (mask[i] && (k >= 4 || i % ET == 0))
				same_last &= !memcmp(last + (size_t)i * EH,
						     mtl_bert_last_hidden(m) + (size_t)i * EH,
						     sizeof(float) * EH);
		/* not in parts (mtl_bert_set_parts is off), so the last
		 * hidden state is the embedding forward's */
		T_OK(ok && !memcmp(want, got, sizeof(want)) && same_last && !m->n_views,
		     "%s embeddings, %s: the padded forward's bytes",
		     k < 4 ? "CLS" : "mean", how[k % 4]);
		/* the predictions' forward: its real rows, padding zero */
		for (int i = 0; ok && k < 4 && i < EB * ET; i++) {
			const float *r;

			if (i == 0) {
				same_last = 1;
				ok = mtl_bert_forward_real(m, ids, NULL, mask, EB, ET,
							   &err) == 0;
				if (!ok)
					break;
			}
			r = mtl_bert_last_hidden(m) + (size_t)i * EH;
			for (int h = 0; !mask[i] && h < EH; h++)
				same_last &= r[h] == 0;
			same_last &= !mask[i] ||
				     !memcmp(last + (size_t)i * EH, r, sizeof(float) * EH);
		}
		if (k < 4)
			T_OK(ok && same_last,
			     "real tokens alone, %s: the padded forward's real rows, padding zero",
			     how[k]);
		mtl_bert_set_packed(m, 0, NULL);
		mtl_bert_set_int8(m, 0, MTL_Q8_AUTO, NULL);
	}
	/* masks the ragged layout does not take (a row without a token, a
	 * row with a hole in it) keep the padded one: the same bytes */
	for (int k = 0; ok && k < 2; k++) {
		int32_t m2[EB * ET];

		memcpy(m2, mask, sizeof(m2));
		for (int t = 0; t < ET; t++)
			m2[2 * ET + t] = k == 0 ? 0 : t < 5 || t > 20;
		pool.mode = MTL_POOL_MEAN;
		ok = mtl_bert_forward(m, ids, NULL, m2, EB, ET, 0, &err) == 0;
		if (ok) {
			mtl_pool_forward(want, mtl_bert_last_hidden(m), m2, EB, ET, EH,
					 MTL_POOL_MEAN);
			mtl_l2norm_forward(want, NULL, want, EB, EH);
			ok = mtl_bert_embed(m, &pool, got, ids, NULL, m2, EB, ET, &err) == 0;
		}
		T_OK(ok && !memcmp(want, got, sizeof(want)),
		     "a mask with %s: the padded forward, the same bytes",
		     k == 0 ? "an empty row" : "a hole in a row");
	}
	if (!ok)
		T_OK(0, "embeddings: %s", err.msg);
	free(last);
	mtl_bert_free(m);
}

static void rm_rf(const char *path)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		T_NOTE("could not remove %s", path);
}

/*
 * Weights packed for inference where they lie (a bge shape: every
 * packed copy is the weight's size) or in a block of their own (a
 * hidden size of 40: the kernels' panels are padded): the unpacked
 * forward's bits either way; while packed in place a training forward
 * and a save refuse, int8 unpacks first (the int8 forward of the plain
 * weights); and unpacking gives back every weight bit for bit.
 */
static void test_packed_here(void)
{
	enum { PB = 3, PT = 9 };
	int32_t ids[PB * PT], mask[PB * PT];

	for (int i = 0; i < PB * PT; i++) {
		ids[i] = 1 + (i * 31) % 80;
		mask[i] = i % PT < PT - 2 * (i / PT);
	}
	/* 64/128, 40/72 (panels padded), 64/256 (the FFN's inner rows
	 * padded: acts.ld_fc), 256/512 (the other products' inputs 1 KB
	 * apart: packed) */
	for (int shape = 0; shape < 4; shape++) {
		int H = shape == 1 ? 40 : shape == 3 ? 256 : 64;
		int I = shape == 1 ? 72 : shape == 3 ? 512 : shape ? 256 : 128;
		struct mtl_bert_config c = {
			.vocab = 90, .hidden = H, .layers = 2, .heads = 4,
			.intermediate = I, .max_pos = 16, .type_vocab = 2,
			.ln_eps = 1e-12f,
		};
		int here = shape != 1 && mtl_gemm_default() != MTL_GEMM_BLIS;
		struct mtl_bert *m = NULL;
		struct mtl_err err = { "" };
		size_t n = (size_t)PB * PT * H;
		float *want = malloc(sizeof(float) * n), *q8 = malloc(sizeof(float) * n);
		float *w0 = NULL, emb[2][PB * 256];
		struct mtl_bert_pooling pool = { .mode = MTL_POOL_CLS, .normalize = 1 };
		char dir[] = "/tmp/test_bert.XXXXXX";
		int ok = want && q8 && mtl_bert_new(&m, &c, &err) == 0;

		if (ok) {
			mtl_bert_init_random(m, 5);
			w0 = malloc(sizeof(float) * m->n_params);
			ok = w0 && mtl_bert_forward(m, ids, NULL, mask, PB, PT, 0, &err) == 0;
		}
		if (ok) {
			memcpy(w0, m->params, sizeof(float) * m->n_params);
			memcpy(want, mtl_bert_last_hidden(m), sizeof(float) * n);
			ok = mtl_bert_embed(m, &pool, emb[0], ids, NULL, mask, PB, PT,
					    &err) == 0;
			ok = mtl_bert_set_int8(m, 1, MTL_Q8_AUTO, &err) == 0 &&
			     mtl_bert_forward(m, ids, NULL, mask, PB, PT, 0, &err) == 0;
			memcpy(q8, mtl_bert_last_hidden(m), sizeof(float) * n);
			mtl_bert_set_int8(m, 0, MTL_Q8_AUTO, NULL);
		}
		ok = ok && mtl_bert_set_packed(m, 1, &err) == 0;
		T_OK(ok && m->packed_here == here && (m->packed_block != NULL) ==
			   (!here && mtl_gemm_default() != MTL_GEMM_BLIS),
		     "H %d: packed %s", H, here ? "where the weights lie"
			: mtl_gemm_default() == MTL_GEMM_BLIS ? "not at all (BLIS products)"
			: "in a block of its own");
		T_OK(ok && mtl_bert_forward(m, ids, NULL, mask, PB, PT, 0, &err) == 0 &&
		     !memcmp(mtl_bert_last_hidden(m), want, sizeof(float) * n) &&
		     m->acts.ld_fc == (m->packed && I % 256 == 0 ? I + 16 : I),
		     "H %d I %d: packed, the unpacked forward's bits (the FFN's inner rows %s)",
		     H, I, I % 256 ? "dense" : "padded to I + 16");
		T_OK(ok && mtl_bert_embed(m, &pool, emb[1], ids, NULL, mask, PB, PT, &err) == 0 &&
		     !memcmp(emb[0], emb[1], sizeof(float) * PB * H),
		     "H %d I %d: packed, the unpacked CLS embeddings' bits (the last layer's CLS rows)",
		     H, I);
		if (ok && here) {
			T_OK(mtl_bert_forward(m, ids, NULL, mask, PB, PT, 1, &err) ==
				     MTL_ERR_ARG && strstr(err.msg, "packed for inference"),
			     "packed in place: a training forward refuses: %s", err.msg);
			T_OK(mkdtemp(dir) && mtl_bert_save(m, dir, &err) == MTL_ERR_ARG &&
			     strstr(err.msg, "before saving"),
			     "packed in place: saving refuses: %s", err.msg);
			rmdir(dir);
			T_OK(mtl_bert_set_int8(m, 1, MTL_Q8_AUTO, &err) == 0 &&
			     !m->packed_here && m->packed == NULL &&
			     mtl_bert_forward(m, ids, NULL, mask, PB, PT, 0, &err) == 0 &&
			     !memcmp(mtl_bert_last_hidden(m), q8, sizeof(float) * n),
			     "packed in place, then int8: unpacked first, the int8 forward's bits");
			mtl_bert_set_int8(m, 0, MTL_Q8_AUTO, NULL);
			ok = mtl_bert_set_packed(m, 1, &err) == 0 && m->packed_here;
		}
		T_OK(ok && mtl_bert_set_packed(m, 0, &err) == 0 && m->packed == NULL &&
		     !m->packed_here &&
		     !memcmp(m->params, w0, sizeof(float) * m->n_params),
		     "H %d: unpacked, every weight bit for bit", H);
		free(want), free(q8), free(w0);
		mtl_bert_free(m);
	}
}

/*
 * mtl_bert_embed in parts side by side (more than one thread, sequences
 * of about equal work): one thread's bytes on 2 and 3 threads, packed
 * and int8, and one part a thread; a batch too uneven to split runs
 * shared (no views made).
 */
static void test_embed_parts(void)
{
	enum { SB = 7, ST = 30, SH = 64 };
	static const int len[SB] = { 30, 12, 27, 8, 25, 22, 29 };
	struct mtl_bert_config c = {
		.vocab = 90, .hidden = SH, .layers = 2, .heads = 4,
		.intermediate = 256, .max_pos = 32, .type_vocab = 2,
		.ln_eps = 1e-12f,
	};
	struct mtl_bert_pooling pool = { .mode = MTL_POOL_CLS, .normalize = 1 };
	struct mtl_bert *m = NULL;
	struct mtl_err err = { "" };
	int32_t ids[SB * ST], mask[SB * ST], skew[SB * ST];
	float want[SB * SH], got[SB * SH];
	int ok = mtl_bert_new(&m, &c, &err) == 0;

	for (int i = 0; i < SB * ST; i++) {
		ids[i] = 1 + (i * 41) % 89;
		mask[i] = i % ST < len[i / ST];
		skew[i] = i % ST < (i / ST ? 1 : ST);
	}
	if (ok) {
		mtl_bert_init_random(m, 13);
		mtl_bert_set_parts(m, 1);
	}
	/* one sequence of 30 tokens and six of 1: no even split */
	if (ok) {
		mtl_bert_set_threads(m, 1);
		ok = mtl_bert_embed(m, &pool, want, ids, NULL, skew, SB, ST, &err) == 0;
		mtl_bert_set_threads(m, 2);
		T_OK(ok && mtl_bert_embed(m, &pool, got, ids, NULL, skew, SB, ST, &err) == 0 &&
		     !m->n_views && !memcmp(want, got, sizeof(want)),
		     "a batch too uneven for parts runs shared, the same bytes");
	}
	for (int k = 0; ok && k < 4; k++) {
		pool.mode = k % 2 ? MTL_POOL_MEAN : MTL_POOL_CLS;
		mtl_bert_set_threads(m, 1);
		ok = (k < 2 ? mtl_bert_set_packed(m, 1, &err)
			    : mtl_bert_set_int8(m, 1, MTL_Q8_AUTO, &err)) == 0 &&
		     mtl_bert_embed(m, &pool, want, ids, NULL, mask, SB, ST, &err) == 0;
		/* from k = 1 on, views made before (k = 2: on packed
		 * weights, which int8 has unpacked since) */
		for (int nt = 2; ok && nt <= 3; nt++) {
			memset(got, 0, sizeof(got));
			mtl_bert_set_threads(m, nt);
			/* not after a busy machine held a thread up (what
			 * parts_off remembers) */
			m->parts_off = 0;
			ok = mtl_bert_embed(m, &pool, got, ids, NULL, mask, SB, ST, &err) == 0;
			T_OK(ok && m->n_views >= nt && !memcmp(want, got, sizeof(want)),
			     "%s %s embeddings on %d threads, in parts side by side: one thread's bytes",
			     k < 2 ? "packed" : "int8", k % 2 ? "mean" : "CLS", nt);
		}
	}
	/* predictions' forward in parts: the last hidden state's bytes */
	for (int nt = 1; ok && nt <= 3; nt++) {
		static float one[SB * ST * SH];
		const float *h;

		mtl_bert_set_threads(m, nt);
		m->parts_off = 0;
		ok = mtl_bert_forward_real(m, ids, NULL, mask, SB, ST, &err) == 0 &&
		     (h = mtl_bert_last_hidden(m)) != NULL;
		if (ok && nt == 1)
			memcpy(one, h, sizeof(one));
		else if (ok)
			T_OK(h == m->parts_hidden && !memcmp(one, h, sizeof(one)) &&
			     !mtl_bert_hidden(m, 0),
			     "the real tokens' forward on %d threads, in parts: one thread's last hidden state",
			     nt);
	}
	/* a bad id's position counts the whole batch's rows */
	if (ok) {
		int32_t bad[SB * ST];

		memcpy(bad, ids, sizeof(bad));
		bad[5 * ST + 3] = 90;
		T_OK(mtl_bert_embed(m, &pool, got, bad, NULL, mask, SB, ST, &err) == MTL_ERR_ARG &&
		     strstr(err.msg, "at [5,3]"),
		     "a bad token id, 3 threads: the whole batch's position: %s", err.msg);
	}
	if (!ok)
		T_OK(0, "embeddings in parts: %s", err.msg);
	mtl_bert_free(m);
}

/* One thread's embeddings on a view (test_views). */
struct view_job {
	struct mtl_bert *v;
	const struct mtl_bert_pooling *pool;
	const int32_t *ids, *mask;
	int B, T, rc;
	float *out;
};

static void *view_embed(void *p)
{
	struct view_job *j = p;

	/* twice: the second forward reuses the view's activations */
	for (int r = 0; r < 2 && !j->rc; r++)
		j->rc = mtl_bert_embed(j->v, j->pool, j->out, j->ids, NULL, j->mask,
				       j->B, j->T, NULL);
	return NULL;
}

/*
 * Views (mtl_bert_view_new): two threads embedding at once, each on its
 * own view with one thread, get the model's bits, with the weights
 * packed and with int8; a view refuses to train or to change packing
 * or int8, and freeing views leaves the model whole.
 */
static void test_views(void)
{
	enum { VB = 4, VT = 24, VH = 64 };
	struct mtl_bert_config c = {
		.vocab = 90, .hidden = VH, .layers = 2, .heads = 4,
		.intermediate = 256, .max_pos = 32, .type_vocab = 2,
		.ln_eps = 1e-12f,
	};
	struct mtl_bert_pooling pool = { .mode = MTL_POOL_CLS, .normalize = 1 };
	struct mtl_bert *m = NULL, *v[2] = { NULL, NULL };
	struct mtl_err err = { "" };
	int32_t ids[VB * VT], mask[VB * VT];
	float want[VB * VH], got[2][VB * VH];
	int ok = mtl_bert_new(&m, &c, &err) == 0;

	for (int i = 0; i < VB * VT; i++) {
		ids[i] = 1 + (i * 29) % 89;
		mask[i] = i % VT < VT - 5 * (i / VT);
	}
	if (ok) {
		mtl_bert_init_random(m, 8);
		mtl_bert_set_threads(m, 2);
	}
	for (int k = 0; ok && k < 2; k++) {
		pthread_t th[2];
		struct view_job j[2];
		int same = 1;

		ok = (k ? mtl_bert_set_int8(m, 1, MTL_Q8_AUTO, &err)
			: mtl_bert_set_packed(m, 1, &err)) == 0 &&
		     mtl_bert_embed(m, &pool, want, ids, NULL, mask, VB, VT, &err) == 0 &&
		     mtl_bert_view_new(&v[0], m, 1, &err) == 0 &&
		     mtl_bert_view_new(&v[1], m, 1, &err) == 0;
		for (int t = 0; ok && t < 2; t++) {
			j[t] = (struct view_job){ v[t], &pool, ids, mask, VB, VT, 0, got[t] };
			ok = pthread_create(&th[t], NULL, view_embed, &j[t]) == 0;
		}
		for (int t = 0; ok && t < 2; t++) {
			pthread_join(th[t], NULL);
			same &= j[t].rc == 0 && !memcmp(got[t], want, sizeof(want));
		}
		T_OK(ok && same && v[0]->threads == 1,
		     "views, %s: two threads at once, the model's bits",
		     k ? "int8" : "packed weights");
		if (ok && k == 0) {
			T_OK(mtl_bert_forward(v[0], ids, NULL, mask, VB, VT, 1, &err) ==
				     MTL_ERR_ARG && strstr(err.msg, "inference only") &&
			     mtl_bert_set_packed(v[0], 0, &err) == MTL_ERR_ARG &&
			     mtl_bert_set_int8(v[0], 1, MTL_Q8_AUTO, &err) == MTL_ERR_ARG &&
			     v[0]->packed == m->packed,
			     "a view refuses to train, to unpack and to quantise: %s", err.msg);
		}
		mtl_bert_free(v[0]), mtl_bert_free(v[1]);
		v[0] = v[1] = NULL;
		T_OK(ok && mtl_bert_embed(m, &pool, got[0], ids, NULL, mask, VB, VT, &err) == 0 &&
		     !memcmp(got[0], want, sizeof(want)),
		     "views, %s: freed, the model embeds as before", k ? "int8" : "packed weights");
	}
	if (!ok)
		T_OK(0, "views: %s", err.msg);
	mtl_bert_free(m);
}

int main(void)
{
	struct mtl_bert *m = NULL;
	struct mtl_err err = { "" };

	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	test_linear();
	test_layernorm();
	test_gelu_exp();
	test_gelu_bits();
	test_gelu_grad();
	test_softmax();
	test_attention();
	test_pool();
	test_configs();
	test_train_memory();
	test_recompute();
	test_embed();
	test_packed_here();
	test_views();
	test_embed_parts();

	test_golden("fixtures/tiny", "fixtures/golden/encode.safetensors", "f32 ");
	test_golden("fixtures/tiny-f16", "fixtures/golden/encode-f16.safetensors", "f16 ");
	test_golden("fixtures/tiny-bf16", "fixtures/golden/encode-bf16.safetensors", "bf16");

	if (mtl_bert_load(&m, "fixtures/tiny", &err) == 0) {
		test_tensor_table(m);
		test_forward_args(m);
		test_load_errors(m);
		test_sharded(m);
		test_save(m);
		test_init(&m->cfg);
	} else {
		T_OK(0, "load fixtures/tiny: %s", err.msg);
	}
	mtl_bert_free(m);
	rm_rf(tmp);
	return t_done();
}
