/*
 * test_grad.c - every backward kernel against central finite differences
 * of a float64 reference of its forward (naive loops, so each BLIS path
 * is also compared with a plain loop), on small shapes; then the whole
 * trainer (encoder, heads with gelu/tanh/relu, cls and mean pooling,
 * every dropout on, label smoothing) against float32 finite differences
 * of its loss with the dropout masks held fixed; then the sentence-vector
 * kernels (pooling, L2 normalisation).
 *
 * For an op y = f(x) the test draws r of y's shape and checks the
 * gradient of L = sum(y * r): backward is called with dout = r.
 */
#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "rng.h"
#include "t.h"
#include "train.h"

static struct mtl_rng R;

static void fill(float *x, size_t n, double s)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(s * mtl_rng_normal(&R));
}

/* ---- float64 references: L = sum(f(x) * r) ---- */

/* The function under test, in double, over the parameter vector p. */
typedef double (*ref_fn)(const double *p, void *ctx);

/*
 * Checks analytic g[n] (float, from backward) against central
 * differences of f at p[n] (double, step h).
 */
static int fd_check(const char *name, const float *g, const float *x,
		    size_t n, ref_fn f, void *ctx, double h, double atol,
		    double rtol)
{
	double *p = malloc(n * sizeof(double)), maxd = 0;
	int ok = 1;

	for (size_t i = 0; i < n; i++)
		p[i] = x[i];
	for (size_t i = 0; i < n; i++) {
		double s = p[i], lp, lm, num, d;

		p[i] = s + h;
		lp = f(p, ctx);
		p[i] = s - h;
		lm = f(p, ctx);
		p[i] = s;
		num = (lp - lm) / (2 * h);
		d = fabs(num - g[i]);
		maxd = d > maxd ? d : maxd;
		if (!(d <= atol + rtol * fabs(num)))
			ok = 0;
	}
	free(p);
	T_OK(ok, "%-40s max abs diff %.3g", name, maxd);
	return ok;
}

static int fwd_check(const char *name, const float *y, const double *ref,
		     size_t n, double tol)
{
	double maxd = 0;

	for (size_t i = 0; i < n; i++) {
		double d = fabs(y[i] - ref[i]);
		maxd = d > maxd || d != d ? (d != d ? INFINITY : d) : maxd;
	}
	T_OK(maxd <= tol, "%-40s max abs diff %.3g", name, maxd);
	return maxd <= tol;
}

/* ---- linear ---- */

struct lin { int N, C, OC, which; const float *x, *w, *b, *r; double *y; };

/* which: 0 = inp varies, 1 = w varies, 2 = b varies */
static double lin_ref(const double *p, void *v)
{
	struct lin *c = v;
	double L = 0;

	for (int n = 0; n < c->N; n++)
		for (int o = 0; o < c->OC; o++) {
			double s = c->which == 2 ? p[o] : c->b[o];

			for (int k = 0; k < c->C; k++) {
				double xi = c->which == 0 ? p[n * c->C + k] : c->x[n * c->C + k];
				double wi = c->which == 1 ? p[o * c->C + k] : c->w[o * c->C + k];
				s += xi * wi;
			}
			if (c->y)
				c->y[n * c->OC + o] = s;
			L += s * c->r[n * c->OC + o];
		}
	return L;
}

static void test_linear(void)
{
	enum { N = 5, C = 7, OC = 6 };
	float x[N * C], w[OC * C], b[OC], r[N * OC], y[N * OC];
	float dx[N * C] = { 0 }, dw[OC * C] = { 0 }, db[OC] = { 0 };
	double yr[N * OC];
	struct lin c = { N, C, OC, 0, x, w, b, r, yr };

	fill(x, N * C, 1);
	fill(w, OC * C, 0.5);
	fill(b, OC, 0.5);
	fill(r, N * OC, 1);
	mtl_linear_forward(y, x, w, b, N, C, OC, 2);
	lin_ref(NULL, &(struct lin){ N, C, OC, 3, x, w, b, r, yr });
	fwd_check("linear forward (BLIS vs loop)", y, yr, N * OC, 1e-5);
	/* twice: beta = 1 must accumulate, so the result is 2x */
	mtl_linear_backward(dx, dw, db, r, x, w, N, C, OC, 2);
	mtl_linear_backward(dx, dw, db, r, x, w, N, C, OC, 2);
	for (int i = 0; i < N * C; i++) dx[i] /= 2;
	for (int i = 0; i < OC * C; i++) dw[i] /= 2;
	for (int i = 0; i < OC; i++) db[i] /= 2;
	c.y = NULL;
	c.which = 0;
	fd_check("linear dinp (accumulated twice)", dx, x, N * C, lin_ref, &c, 1e-6, 1e-5, 1e-5);
	c.which = 1;
	fd_check("linear dw", dw, w, OC * C, lin_ref, &c, 1e-6, 1e-5, 1e-5);
	c.which = 2;
	fd_check("linear db", db, b, OC, lin_ref, &c, 1e-6, 1e-5, 1e-5);
}

/* The slice-threaded backward against the BLIS-threaded one. */
static void test_linear_split(void)
{
	enum { N = 37, C = 70, OC = 53 };
	static float x[N * C], w[OC * C], r[N * OC];
	static float dx1[N * C], dw1[OC * C], db1[OC], dx2[N * C], dw2[OC * C], db2[OC];

	fill(x, N * C, 1);
	fill(w, OC * C, 0.5);
	fill(r, N * OC, 1);
	for (int nt = 2; nt <= 3; nt++) {
		double md = 0;

		memset(dx1, 0, sizeof(dx1)), memset(dw1, 0, sizeof(dw1)), memset(db1, 0, sizeof(db1));
		memset(dx2, 0, sizeof(dx2)), memset(dw2, 0, sizeof(dw2)), memset(db2, 0, sizeof(db2));
		mtl_linear_backward(dx1, dw1, db1, r, x, w, N, C, OC, nt);
		mtl_linear_backward_split(dx2, dw2, db2, r, x, w, N, C, OC, nt);
		for (int i = 0; i < N * C; i++) md = fmax(md, fabs(dx1[i] - dx2[i]));
		for (int i = 0; i < OC * C; i++) md = fmax(md, fabs(dw1[i] - dw2[i]));
		for (int i = 0; i < OC; i++) md = fmax(md, fabs(db1[i] - db2[i]));
		T_OK(md < 1e-5, "linear backward, column slices on %d threads = BLIS-threaded (max abs diff %.3g)",
		     nt, md);
	}
}

/* ---- layernorm ---- */

struct ln { int N, C, which; const float *x, *w, *b, *r; float eps; double *y; };

static double ln_ref(const double *p, void *v)
{
	struct ln *c = v;
	double L = 0;

	for (int n = 0; n < c->N; n++) {
		double m = 0, var = 0, s;
		double x[64];

		for (int j = 0; j < c->C; j++) {
			x[j] = c->which == 0 ? p[n * c->C + j] : c->x[n * c->C + j];
			m += x[j];
		}
		m /= c->C;
		for (int j = 0; j < c->C; j++)
			var += (x[j] - m) * (x[j] - m);
		var /= c->C;
		s = 1 / sqrt(var + c->eps);
		for (int j = 0; j < c->C; j++) {
			double w = c->which == 1 ? p[j] : c->w[j];
			double b = c->which == 2 ? p[j] : c->b[j];
			double y = (x[j] - m) * s * w + b;

			if (c->y)
				c->y[n * c->C + j] = y;
			L += y * c->r[n * c->C + j];
		}
	}
	return L;
}

static void test_layernorm(void)
{
	enum { N = 4, C = 24 };
	float x[N * C], w[C], b[C], r[N * C], y[N * C], mean[N], rstd[N];
	float dx[N * C] = { 0 }, dw[C] = { 0 }, db[C] = { 0 };
	double yr[N * C];
	struct ln c = { N, C, 3, x, w, b, r, 1e-12f, yr };

	fill(x, N * C, 1);
	for (int i = 0; i < C; i++) {
		w[i] = (float)(1 + 0.3 * mtl_rng_normal(&R));
		b[i] = (float)(0.3 * mtl_rng_normal(&R));
	}
	fill(r, N * C, 1);
	mtl_layernorm_forward(y, mean, rstd, x, w, b, N, C, c.eps, 2);
	ln_ref(NULL, &c);
	fwd_check("layernorm forward", y, yr, N * C, 1e-5);
	mtl_layernorm_backward(dx, dw, db, r, x, w, mean, rstd, N, C, 2);
	c.y = NULL;
	c.which = 0;
	fd_check("layernorm dinp", dx, x, N * C, ln_ref, &c, 1e-6, 1e-5, 1e-4);
	c.which = 1;
	fd_check("layernorm dw", dw, w, C, ln_ref, &c, 1e-6, 1e-5, 1e-4);
	c.which = 2;
	fd_check("layernorm db", db, b, C, ln_ref, &c, 1e-6, 1e-5, 1e-4);
}

/* ---- element-wise ---- */

struct ew { int n, kind; const float *r; const uint8_t *keep; float p; };

static double ew_ref(const double *x, void *v)
{
	struct ew *c = v;
	double L = 0;

	for (int i = 0; i < c->n; i++) {
		double y;

		switch (c->kind) {
		case 0: y = 0.5 * x[i] * erfc(-x[i] / sqrt(2)); break;
		case 1: y = tanh(x[i]); break;
		case 2: y = x[i] > 0 ? x[i] : 0; break;
		default: y = c->keep[i] ? x[i] / (1 - c->p) : 0; break;
		}
		L += y * c->r[i];
	}
	return L;
}

/* The counter-based masks: any slice drawn again gives the same bits. */
static void test_mask_at(void)
{
	enum { n = 100003 };
	static uint8_t all[n], part[n];
	int64_t kept = 0, at = 0, len = 1;
	int ok = 1;

	mtl_dropout_mask_at(all, n, 0.1f, 1234, 5);
	for (int64_t i = 0; i < n; i++)
		kept += all[i];
	T_OK(fabs((double)kept / n - 0.9) < 0.003,
	     "counter-based dropout keeps %.4f at p=0.1", (double)kept / n);
	/* slices of every parity, as forward and backward of a head draw */
	for (; at < n; at += len, len = len * 3 % 1000 + 1)
		mtl_dropout_mask_at(part + at, at + len <= n ? len : n - at, 0.1f,
				    1234, 5 + (uint64_t)at);
	T_OK(!memcmp(all, part, n), "the stream drawn in slices gives the same mask");
	for (int64_t e = 5; e < 5 + 64; e++) {
		uint64_t x = mtl_rng_at(1234, e / 2);
		uint32_t b = e % 2 ? (uint32_t)(x >> 16) & 0xffffff : (uint32_t)(x >> 40);

		ok &= all[e - 5] == ((float)b * 0x1.0p-24f >= 0.1f);
	}
	T_OK(ok, "element e is kept iff its 24-bit uniform >= p");
	mtl_dropout_mask_at(part, n, 0.1f, 1235, 5);
	T_OK(memcmp(all, part, n), "another seed, another mask");
	mtl_dropout_mask_at(part, n, 0, 1234, 5);
	ok = 1;
	for (int64_t i = 0; i < n; i++)
		ok &= part[i] == 1;
	T_OK(ok, "p = 0 keeps everything");
}

static void test_elementwise(void)
{
	enum { n = 301 };
	static const char *names[] = { "gelu", "tanh", "relu", "dropout p=0.3" };
	float x[n], r[n], y[n], dx[n];
	uint8_t keep[n];
	double yr[n];
	int kept = 0;

	fill(x, n, 2);
	for (int i = 0; i < n; i++)  /* keep relu's kink away from the FD step */
		if (fabsf(x[i]) < 1e-3f)
			x[i] = 0.5f;
	fill(r, n, 1);
	mtl_dropout_mask(keep, n, 0.3f, &R);
	for (int i = 0; i < n; i++)
		kept += keep[i];
	T_OK(kept > 0.6 * n && kept < 0.8 * n, "dropout keeps %d of %d at p=0.3", kept, n);
	test_mask_at();
	for (int k = 0; k < 4; k++) {
		struct ew c = { n, k, r, keep, 0.3f };
		char nm[64];

		switch (k) {
		case 0: mtl_gelu_forward(y, x, n, 1); break;
		case 1: mtl_tanh_forward(y, x, n); break;
		case 2: mtl_relu_forward(y, x, n); break;
		default: mtl_dropout_forward(y, x, keep, 0.3f, n); break;
		}
		for (int i = 0; i < n; i++) {
			double xi = x[i];
			yr[i] = k == 0 ? 0.5 * xi * erfc(-xi / sqrt(2)) : k == 1 ? tanh(xi)
			      : k == 2 ? (xi > 0 ? xi : 0) : (keep[i] ? xi / 0.7 : 0);
		}
		snprintf(nm, sizeof(nm), "%s forward", names[k]);
		fwd_check(nm, y, yr, n, 2e-6);
		memset(dx, 0, sizeof(dx));
		switch (k) {
		case 0: mtl_gelu_backward(dx, x, r, n, 1); break;
		case 1: mtl_tanh_backward(dx, y, r, n); break;
		case 2: mtl_relu_backward(dx, y, r, n); break;
		default: mtl_dropout_backward(dx, r, keep, 0.3f, n); break;
		}
		snprintf(nm, sizeof(nm), "%s backward", names[k]);
		fd_check(nm, dx, x, n, ew_ref, &c, 1e-6, 1e-5, 1e-4);
	}
	{ /* residual: both inputs get dout */
		float a[n] = { 0 }, b2[n] = { 0 };
		int ok = 1;

		mtl_residual_backward(a, b2, r, n, 1);
		for (int i = 0; i < n; i++)
			ok &= a[i] == r[i] && b2[i] == r[i];
		mtl_residual_forward(y, x, r, n, 1);
		for (int i = 0; i < n; i++)
			ok &= y[i] == x[i] + r[i];
		T_OK(ok, "residual forward and backward");
	}
}

/* ---- softmax ---- */

struct sm { int R, C; const float *mask, *r; };

static double sm_ref(const double *s, void *v)
{
	struct sm *c = v;
	double L = 0;

	for (int i = 0; i < c->R; i++) {
		double mx = -INFINITY, z = 0;

		for (int j = 0; j < c->C; j++)
			mx = fmax(mx, s[i * c->C + j] + c->mask[j]);
		for (int j = 0; j < c->C; j++)
			z += exp(s[i * c->C + j] + c->mask[j] - mx);
		for (int j = 0; j < c->C; j++)
			L += exp(s[i * c->C + j] + c->mask[j] - mx) / z * c->r[i * c->C + j];
	}
	return L;
}

static void test_softmax(void)
{
	enum { Rr = 3, C = 9 };
	float s[Rr * C], r[Rr * C], p[Rr * C], ds[Rr * C] = { 0 };
	float mask[C] = { 0 };
	struct sm c = { Rr, C, mask, r };
	int zero = 1;

	mask[7] = mask[8] = -FLT_MAX;
	fill(s, Rr * C, 2);
	fill(r, Rr * C, 1);
	mtl_softmax_forward(p, s, mask, Rr, C);
	mtl_softmax_backward(ds, p, r, Rr, C);
	for (int i = 0; i < Rr; i++)
		zero &= p[i * C + 7] == 0 && ds[i * C + 8] == 0;
	T_OK(zero, "masked keys: probability and gradient exactly 0");
	fd_check("softmax backward (masked)", ds, s, Rr * C, sm_ref, &c, 1e-6, 1e-6, 1e-4);
}

/* ---- attention ---- */

struct at { int B, T, H, NH; const float *mask_add, *r; const uint8_t *drop; float p; double *y; };

static double at_ref(const double *qkv, void *v)
{
	struct at *c = v;
	int B = c->B, T = c->T, H = c->H, NH = c->NH, D = H / NH;
	double L = 0, s[16];

	for (int b = 0; b < B; b++)
		for (int h = 0; h < NH; h++)
			for (int i = 0; i < T; i++) {
				double mx = -INFINITY, z = 0;
				const double *q = qkv + ((size_t)b * T + i) * 3 * H + h * D;

				for (int j = 0; j < T; j++) {
					const double *k = qkv + ((size_t)b * T + j) * 3 * H + H + h * D;
					double dot = 0;

					for (int d = 0; d < D; d++)
						dot += q[d] * k[d];
					s[j] = dot / sqrt(D) + c->mask_add[b * T + j];
					mx = fmax(mx, s[j]);
				}
				for (int j = 0; j < T; j++)
					z += (s[j] = exp(s[j] - mx));
				for (int d = 0; d < D; d++) {
					double o = 0;

					for (int j = 0; j < T; j++) {
						const double *vv = qkv + ((size_t)b * T + j) * 3 * H + 2 * H + h * D;
						size_t mi = (((size_t)b * NH + h) * T + i) * T + j;
						double pj = s[j] / z;

						if (c->drop)
							pj = c->drop[mi] ? pj / (1 - c->p) : 0;
						o += pj * vv[d];
					}
					if (c->y)
						c->y[((size_t)b * T + i) * H + h * D + d] = o;
					L += o * c->r[((size_t)b * T + i) * H + h * D + d];
				}
			}
	return L;
}

static void test_attention(void)
{
	enum { B = 2, T = 5, H = 8, NH = 2 };
	/* scratch below: 2 threads of mtl_attention_train_scratch(T) */
	MTL_ASSERT(mtl_attention_train_scratch(T) == 96);
	float qkv[B * T * 3 * H], r[B * T * H], ctx[B * T * H], ctx2[B * T * H];
	float att[B * NH * T * T], att2[B * NH * T * T], mask_add[B * T];
	float scratch[2 * 96]; /* 2 threads of mtl_attention_train_scratch(5) */
	float dqkv[B * T * 3 * H];
	uint8_t drop[B * NH * T * T];
	double yr[B * T * H];

	fill(qkv, B * T * 3 * H, 1);
	fill(r, B * T * H, 1);
	for (int i = 0; i < B * T; i++)  /* row 1 has 2 pads */
		mask_add[i] = i >= T + 3 ? -FLT_MAX : 0.0f;
	for (int pass = 0; pass < 2; pass++) {
		float p = pass ? 0.25f : 0.0f;
		struct at c = { B, T, H, NH, mask_add, r, pass ? drop : NULL, p, yr };
		char nm[64];

		/* the masks of elements 7.. of stream 99, as the kernel
		 * draws them (an odd start: half a draw first) */
		mtl_dropout_mask_at(drop, B * NH * T * T, 0.25f, 99, 7);
		mtl_attention_forward_train(ctx, scratch, qkv, mask_add, p, 99,
					    7, B, T, H, NH, 2);
		{
			double *q = malloc(sizeof(double) * B * T * 3 * H);
			for (int i = 0; i < B * T * 3 * H; i++)
				q[i] = qkv[i];
			at_ref(q, &c);
			free(q);
		}
		snprintf(nm, sizeof(nm), "attention forward, dropout %g", p);
		fwd_check(nm, ctx, yr, B * T * H, 1e-5);
		if (!pass) {
			mtl_attention_forward_ex(MTL_ATTN_UNFUSED, ctx2, scratch,
						 qkv, mask_add, B, T, H, NH, 2);
			T_OK(memcmp(ctx, ctx2, sizeof(ctx)) == 0,
			     "unfused inference attention equals the train form at p=0");
			mtl_attention_forward(ctx2, att, qkv, mask_add, B, T, H,
					      NH, 1, 2);
			mtl_attention_probs(att2, qkv, mask_add, B, T, H, NH, 1);
			T_OK(memcmp(ctx, ctx2, sizeof(ctx)) == 0 &&
				     memcmp(att, att2, sizeof(att)) == 0,
			     "the train form, the keep form and the probabilities "
			     "the backward recomputes agree bit for bit");
		}
		memset(dqkv, 0, sizeof(dqkv));
		mtl_attention_backward(dqkv, scratch, r, qkv, mask_add, p, 99, 7,
				       B, T, H, NH, 2);
		c.y = NULL;
		snprintf(nm, sizeof(nm), "attention backward, dropout %g", p);
		fd_check(nm, dqkv, qkv, B * T * 3 * H, at_ref, &c, 1e-6, 1e-5, 1e-4);
	}
}

/* ---- embeddings ---- */

static void test_embed(void)
{
	enum { B = 2, T = 3, H = 4, V = 6 };
	int32_t ids[B * T] = { 1, 4, 4, 2, 0, 4 }, types[B * T] = { 0, 0, 1, 0, 1, 1 };
	float dout[B * T * H], dwte[V * H] = { 0 }, dwpe[T * H] = { 0 }, dwtt[2 * H] = { 0 };
	double e_wte[V * H] = { 0 }, e_wpe[T * H] = { 0 }, e_wtt[2 * H] = { 0 };
	double md = 0;
	int untouched = 1, pad = 1;

	fill(dout, B * T * H, 1);
	mtl_embed_backward(dwte, dwpe, dwtt, dout, ids, types, -1, B, T, H);
	for (int bt = 0; bt < B * T; bt++)
		for (int i = 0; i < H; i++) {
			e_wte[ids[bt] * H + i] += dout[bt * H + i];
			e_wpe[(bt % T) * H + i] += dout[bt * H + i];
			e_wtt[types[bt] * H + i] += dout[bt * H + i];
		}
	for (int i = 0; i < V * H; i++) md = fmax(md, fabs(dwte[i] - e_wte[i]));
	for (int i = 0; i < T * H; i++) md = fmax(md, fabs(dwpe[i] - e_wpe[i]));
	for (int i = 0; i < 2 * H; i++) md = fmax(md, fabs(dwtt[i] - e_wtt[i]));
	for (int i = 0; i < H; i++)
		untouched &= dwte[3 * H + i] == 0 && dwte[5 * H + i] == 0;
	T_OK(md < 1e-6, "embedding backward: word, position, type (max abs diff %.3g)", md);
	T_OK(untouched, "embedding backward leaves rows of absent ids alone");
	/* pad_id 4 (three real tokens have it): HF's padding_idx */
	memset(dwte, 0, sizeof(dwte));
	memset(dwpe, 0, sizeof(dwpe));
	memset(dwtt, 0, sizeof(dwtt));
	mtl_embed_backward(dwte, dwpe, dwtt, dout, ids, types, 4, B, T, H);
	md = 0;
	for (int i = 0; i < V * H; i++)
		if (i / H == 4)
			pad &= dwte[i] == 0;
		else
			md = fmax(md, fabs(dwte[i] - e_wte[i]));
	for (int i = 0; i < T * H; i++) md = fmax(md, fabs(dwpe[i] - e_wpe[i]));
	for (int i = 0; i < 2 * H; i++) md = fmax(md, fabs(dwtt[i] - e_wtt[i]));
	T_OK(pad, "embedding backward: no gradient to the pad_id row, as padding_idx");
	T_OK(md < 1e-6, "embedding backward with pad_id: other rows, positions and types as before (max abs diff %.3g)", md);
}

/* ---- the whole trainer, dropout on ---- */

static const char tasks_json[] =
	"{\"tasks\":["
	"{\"name\":\"a\",\"kind\":\"sequence\",\"labels\":[\"x\",\"y\",\"z\"],"
	" \"weight\":1.0,\"head\":{\"hidden\":6,\"activation\":\"gelu\",\"dropout\":0.2,\"pooling\":\"mean\"}},"
	"{\"name\":\"b\",\"kind\":\"sequence\",\"labels\":[\"x\",\"y\"],"
	" \"weight\":0.7,\"head\":{\"hidden\":5,\"activation\":\"relu\",\"dropout\":0.2}},"
	"{\"name\":\"c\",\"kind\":\"token\",\"labels\":[\"p\",\"q\",\"r\",\"s\"],"
	" \"weight\":0.5,\"head\":{\"hidden\":4,\"activation\":\"tanh\",\"dropout\":0.2}}]}";

static double total_loss(struct mtl_train *tr, const struct mtl_batch *b,
			 struct mtl_rng saved, struct mtl_step_stats *st)
{
	const struct mtl_batch *bp = b;

	tr->rng = saved;  /* the same dropout masks every time */
	mtl_train_grad(tr, &bp, 1, st, NULL);
	return st->loss;
}

static void test_trainer(void)
{
	struct mtl_bert_config cfg = { 30, 16, 2, 2, 24, 8, 2, 1e-12f, 0, 0.1f, 0.1f };
	enum { B = 3, T = 6 };
	struct mtl_bert *m;
	struct mtl_tasks *ts;
	struct mtl_heads *hd;
	struct mtl_train *tr;
	struct mtl_train_opts o;
	struct mtl_step_stats st;
	struct mtl_batch b = { 0 };
	struct mtl_rng saved;
	int32_t ids[B * T], len[B] = { 6, 4, 2 }, la[B] = { 2, -100, 0 },
		lb[B] = { 1, 0, 1 }, lc[B * T];
	int32_t *labels[3] = { la, lb, lc };
	float *g, *hg;
	double h = 1e-3, maxd = 0, maxg = 0;
	int ok = 1, checked = 0;

	mtl_bert_new(&m, &cfg, NULL);
	mtl_bert_init_random(m, 7);
	/* LayerNorm weights and biases away from 1 and 0 */
	for (size_t i = 0; i < m->n_tensors; i++)
		if (m->tensors[i].ndim == 1)
			for (size_t j = 0; j < m->tensors[i].numel; j++)
				m->params[m->tensors[i].offset + j] +=
					(float)(0.1 * mtl_rng_normal(&R));
	/* larger weights than 0.02 so that attention is not uniform */
	for (size_t i = 0; i < m->n_params; i++)
		m->params[i] *= 5;
	mtl_bert_set_threads(m, 1);
	mtl_task_parse(&ts, tasks_json, sizeof(tasks_json) - 1, "tasks", NULL);
	mtl_heads_new(&hd, ts, cfg.hidden, MTL_POOL_CLS, NULL);
	mtl_heads_init_random(hd, 3);
	for (size_t i = 0; i < hd->n_params; i++)
		hd->params[i] = (float)(0.5 * mtl_rng_normal(&R));
	mtl_train_opts_defaults(&o);
	o.label_smoothing = 0.1f;
	o.dropout = 0.2f;
	mtl_train_new(&tr, m, hd, &o, NULL);
	for (int i = 0; i < B * T; i++) {
		ids[i] = (int32_t)mtl_rng_below(&R, cfg.vocab);
		lc[i] = i % T < len[i / T] && i % 3 ? (int32_t)mtl_rng_below(&R, 4) : -100;
	}
	b.B = B;
	b.T = T;
	b.ids = ids;
	b.lengths = len;
	b.labels = labels;
	b.n_tasks = 3;
	mtl_step_stats_init(&st, 3);
	saved = tr->rng;
	total_loss(tr, &b, saved, &st);
	g = malloc(sizeof(float) * m->n_params);
	hg = malloc(sizeof(float) * hd->n_params);
	memcpy(g, tr->grad, sizeof(float) * m->n_params);
	memcpy(hg, tr->hgrad, sizeof(float) * hd->n_params);
	/* float32 differences: every 13th parameter, step 1e-3 */
	for (int blk = 0; blk < 2; blk++) {
		float *P = blk ? hd->params : m->params;
		const float *G = blk ? hg : g;
		size_t n = blk ? hd->n_params : m->n_params;

		for (size_t i = 0; i < n; i += 13) {
			float s = P[i];
			double lp, lm, num, d;

			if (!blk && i < (size_t)cfg.vocab * cfg.hidden &&
			    G[i] == 0)
				continue; /* rows of ids not in the batch */
			P[i] = s + (float)h;
			lp = total_loss(tr, &b, saved, &st);
			P[i] = s - (float)h;
			lm = total_loss(tr, &b, saved, &st);
			P[i] = s;
			num = (lp - lm) / (2 * h);
			d = fabs(num - G[i]);
			maxd = d > maxd ? d : maxd;
			maxg = fabs(G[i]) > maxg ? fabs(G[i]) : maxg;
			if (!(d <= 2e-3 + 2e-2 * fabs(num)))
				T_NOTE("block %d param %zu: analytic %g numeric %g", blk, i, G[i], num);
			ok &= d <= 2e-3 + 2e-2 * fabs(num);
			checked++;
		}
	}
	T_OK(ok, "trainer with dropout 0.2, smoothing 0.1, gelu/relu/tanh heads, mean pooling:"
	     " %d parameters vs finite differences (max abs diff %.3g, max |g| %.3g)",
	     checked, maxd, maxg);
	free(g);
	free(hg);
	mtl_step_stats_release(&st);
	mtl_train_free(tr);
	mtl_heads_free(hd);
	mtl_task_free(ts);
	mtl_bert_free(m);
}

/* ---- pooling and L2 normalisation ---- */

struct pl { int B, T, H; const int32_t *mask; const float *r; enum mtl_pool mode; double *y; };

static double pool_ref(const double *x, void *v)
{
	struct pl *c = v;
	double L = 0;

	for (int b = 0; b < c->B; b++)
		for (int j = 0; j < c->H; j++) {
			double y = c->mode == MTL_POOL_MAX ? -INFINITY : 0, n = 0;

			for (int t = 0; t < c->T; t++) {
				int real = c->mask[b * c->T + t];
				double xt = x[((size_t)b * c->T + t) * c->H + j];

				if (c->mode == MTL_POOL_MAX)
					y = fmax(y, real ? xt : -1e9);
				else if (real && (c->mode == MTL_POOL_MEAN || t == 0))
					y += xt, n++;
			}
			if (c->mode == MTL_POOL_MEAN)
				y /= fmax(n, 1e-9);
			if (c->y)
				c->y[b * c->H + j] = y;
			L += y * c->r[b * c->H + j];
		}
	return L;
}

static void test_pool(void)
{
	enum { B = 3, T = 4, H = 5 };
	static const char *names[] = { "", "cls", "mean", "max" };
	/* a padded row, a one-token row, a full row */
	const int32_t mask[B * T] = { 1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1 };
	float x[B * T * H], r[B * H], y[B * H], dx[B * T * H];
	double xd[B * T * H], yr[B * H];

	fill(x, B * T * H, 1);
	fill(r, B * H, 1);
	for (int i = 0; i < B * T * H; i++)
		xd[i] = x[i];
	for (int mode = MTL_POOL_CLS; mode <= MTL_POOL_MAX; mode++) {
		struct pl c = { B, T, H, mask, r, (enum mtl_pool)mode, yr };
		char nm[64];

		mtl_pool_forward(y, x, mask, B, T, H, c.mode);
		pool_ref(xd, &c);
		snprintf(nm, sizeof(nm), "%s pooling forward", names[mode]);
		fwd_check(nm, y, yr, B * H, 1e-6);
		if (c.mode == MTL_POOL_MAX)
			continue;
		memset(dx, 0, sizeof(dx));
		mtl_pool_backward(dx, r, mask, B, T, H, c.mode);
		c.y = NULL;
		snprintf(nm, sizeof(nm), "%s pooling backward (padding gets 0)", names[mode]);
		fd_check(nm, dx, x, B * T * H, pool_ref, &c, 1e-6, 1e-6, 1e-4);
	}
}

struct l2 { int B, H; const float *r; double *y; };

static double l2_ref(const double *x, void *v)
{
	struct l2 *c = v;
	double L = 0;

	for (int b = 0; b < c->B; b++) {
		double ss = 0, n;

		for (int j = 0; j < c->H; j++)
			ss += x[b * c->H + j] * x[b * c->H + j];
		n = fmax(sqrt(ss), 1e-12);
		for (int j = 0; j < c->H; j++) {
			double y = x[b * c->H + j] / n;

			if (c->y)
				c->y[b * c->H + j] = y;
			L += y * c->r[b * c->H + j];
		}
	}
	return L;
}

static void test_l2norm(void)
{
	enum { B = 3, H = 7 };
	float x[B * H], r[B * H], y[B * H], norm[B], dx[B * H] = { 0 };
	double xd[B * H], yr[B * H];
	struct l2 c = { B, H, r, yr };

	fill(x, B * H, 1);
	fill(r, B * H, 1);
	for (int i = 0; i < B * H; i++)
		xd[i] = x[i];
	mtl_l2norm_forward(y, norm, x, B, H);
	l2_ref(xd, &c);
	fwd_check("l2norm forward", y, yr, B * H, 1e-6);
	mtl_l2norm_backward(dx, r, y, norm, B, H);
	c.y = NULL;
	fd_check("l2norm backward", dx, x, B * H, l2_ref, &c, 1e-6, 1e-6, 1e-4);
}

int main(void)
{
	mtl_rng_init(&R, 12345);
	test_linear();
	test_linear_split();
	test_layernorm();
	test_elementwise();
	test_softmax();
	test_attention();
	test_embed();
	test_trainer();
	test_pool();
	test_l2norm();
	return t_done();
}
