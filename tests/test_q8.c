/*
 * test_q8.c - int8 linear maps (q8.h): the quantiser's rounding and
 * scale, every kernel path this CPU has against an exact integer
 * reference over many shapes (edges of every tile size, the extremes
 * that would saturate int16 pair sums), the dequantised output against a
 * double reference and against fp32, and the whole encoder forward in
 * int8 against fp32 (cosine of embeddings >= 0.995).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "q8.h"
#include "rng.h"
#include "t.h"

static const enum mtl_q8_path paths[] = { MTL_Q8_C, MTL_Q8_AVX2, MTL_Q8_VNNI };

static void fill_normal(float *x, size_t n, struct mtl_rng *r, float sd)
{
	for (size_t i = 0; i < n; i++)
		x[i] = sd * (float)mtl_rng_normal(r);
}

static void test_quantize(void)
{
	struct mtl_rng r;
	float x[301], zero[5] = { 0 };
	int8_t q[301];
	int worst = 0, amax = 0;
	float s, err = 0;

	mtl_rng_init(&r, 1);
	fill_normal(x, 301, &r, 3.0f);
	x[17] = -40.0f; /* the largest magnitude, negative */
	s = mtl_q8_quantize(q, x, 301);
	T_OK(fabsf(s - 40.0f / 127) < 1e-6f, "scale is max|x| / 127 (%g)", s);
	for (int k = 0; k < 301; k++) {
		float e = fabsf(x[k] - q[k] * s);

		err = e > err ? e : err;
		amax = abs(q[k]) > amax ? abs(q[k]) : amax;
		worst |= q[k] < -127;
	}
	T_OK(err <= s * 0.5f * 1.0001f, "round to nearest: max error %g <= s/2", err);
	T_OK(q[17] == -127 && amax == 127 && !worst, "range is [-127, 127]");
	s = mtl_q8_quantize(q, zero, 5);
	T_OK(s == 0 && !q[0] && !q[4], "all-zero row: scale 0, values 0");
}

/*
 * The forward's own quantisation of its float input (vectorised on the
 * x86 paths) against mtl_q8_quantize, bit for bit, seen through identity
 * weights: row 0 has max|x| 127, so every x * inv is x itself and the
 * halves are ties (nearest even, as qround); row 1 is scaled by 3 and
 * has a NaN.  C = 37: blocks of 16 and a tail.
 */
static void test_quantize_paths(void)
{
	enum { C = 37 };
	static const float ties[] = { 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f,
				      -126.5f, 63.5f, 64.5f, 127.0f, -127.0f };
	float x[2 * C], w[C * C], out[2 * C];
	int8_t q[C];
	struct mtl_err err;

	memset(w, 0, sizeof(w));
	for (int k = 0; k < C; k++) {
		w[k * C + k] = 1.0f;
		x[k] = ties[k % 12] * (k % 5 == 4 ? 0.25f : 1.0f);
		x[C + k] = 3.0f * x[k] + 0.01f * (float)k;
	}
	x[C + 20] = NAN;
	for (size_t p = 0; p < sizeof(paths) / sizeof(*paths); p++) {
		struct mtl_q8_linear *ql = NULL;
		struct mtl_q8_buf buf;
		int same = 1;

		if (!mtl_q8_path_supported(paths[p]))
			continue;
		mtl_q8_buf_init(&buf);
		if (mtl_q8_linear_new(&ql, w, C, C, paths[p], &err) ||
		    mtl_q8_buf_reserve(&buf, 2, C, &err)) {
			T_OK(0, "%s: %s", mtl_q8_path_name(paths[p]), err.msg);
			continue;
		}
		mtl_q8_linear_forward(out, x, ql, NULL, 2, &buf, 1);
		for (int i = 0; i < 2; i++) {
			float xs = mtl_q8_quantize(q, x + i * C, C);

			/* the weights' scale is 1/127 and their values 127 */
			for (int k = 0; k < C; k++)
				same &= out[i * C + k] ==
					(float)(127 * q[k]) * (xs * (1.0f / 127)) + 0.0f;
		}
		T_OK(same, "%s: the forward quantises its input as mtl_q8_quantize, ties and NaN included",
		     mtl_q8_path_name(paths[p]));
		mtl_q8_linear_free(ql);
		mtl_q8_buf_release(&buf);
	}
}

/* One shape on one path: exact int32 sums, then the dequantised floats. */
static int check_shape(enum mtl_q8_path path, int N, int C, int OC, int nt,
		       int extreme, struct mtl_rng *r)
{
	float *w = malloc(sizeof(float) * (size_t)OC * C);
	float *x = malloc(sizeof(float) * (size_t)N * C);
	float *b = malloc(sizeof(float) * (size_t)OC);
	float *ws = malloc(sizeof(float) * (size_t)OC);
	float *xs = malloc(sizeof(float) * (size_t)N);
	float *out = malloc(sizeof(float) * (size_t)N * OC);
	int8_t *wq = malloc((size_t)OC * C), *xq = malloc((size_t)N * C);
	int32_t *o32 = malloc(sizeof(int32_t) * (size_t)N * OC);
	struct mtl_q8_linear *q = NULL;
	struct mtl_q8_buf buf;
	struct mtl_err err;
	int ok = 1;
	double dq = 0, df = 0, omax = 0;

	mtl_q8_buf_init(&buf);
	fill_normal(w, (size_t)OC * C, r, 0.05f);
	fill_normal(x, (size_t)N * C, r, 1.0f);
	fill_normal(b, (size_t)OC, r, 0.1f);
	if (extreme)
		/* every weight +-max and every activation at 127 (u8 255
		 * after VNNI's offset): int16 pair sums would saturate */
		for (size_t i = 0; i < (size_t)OC * C; i++)
			w[i] = i % 3 ? 1.0f : -1.0f;
	for (int j = 0; j < OC; j++)
		ws[j] = mtl_q8_quantize(wq + (size_t)j * C, w + (size_t)j * C, C);
	for (int i = 0; i < N; i++) {
		xs[i] = mtl_q8_quantize(xq + (size_t)i * C, x + (size_t)i * C, C);
		if (extreme)
			memset(xq + (size_t)i * C, 127, (size_t)C);
	}
	if (mtl_q8_linear_new(&q, w, OC, C, path, &err) ||
	    mtl_q8_buf_reserve(&buf, N, C, &err)) {
		T_NOTE("%s", err.msg);
		ok = 0;
		goto out;
	}
	ok &= mtl_q8_linear_path(q) == path;
	mtl_q8_linear_forward_i32(o32, xq, q, N, &buf, nt);
	for (int i = 0; i < N; i++)
		for (int j = 0; j < OC; j++) {
			int64_t s = 0;

			for (int k = 0; k < C; k++)
				s += (int64_t)xq[(size_t)i * C + k] * wq[(size_t)j * C + k];
			ok &= o32[(size_t)i * OC + j] == s;
		}
	if (!extreme) {
		mtl_q8_linear_forward(out, x, q, b, N, &buf, nt);
		for (int i = 0; i < N; i++)
			for (int j = 0; j < OC; j++) {
				double s = 0, f = 0, o = out[(size_t)i * OC + j];

				for (int k = 0; k < C; k++) {
					s += (double)xq[(size_t)i * C + k] * wq[(size_t)j * C + k];
					f += (double)x[(size_t)i * C + k] * w[(size_t)j * C + k];
				}
				s = s * xs[i] * ws[j] + b[j];
				f += b[j];
				dq = fmax(dq, fabs(o - s) / (1 + fabs(s)));
				df = fmax(df, fabs(o - f));
				omax = fmax(omax, fabs(f));
			}
		/* float rounding of the dequantisation; the quantisation
		 * error is about 1% of the output's range */
		ok &= dq < 1e-5 && df < 0.03 * omax;
	}
out:
	if (!ok)
		T_NOTE("%s N=%d C=%d OC=%d nt=%d: dequant %g, vs fp32 %g of %g",
		       mtl_q8_path_name(path), N, C, OC, nt, dq, df, omax);
	mtl_q8_linear_free(q);
	mtl_q8_buf_release(&buf);
	free(w); free(x); free(b); free(ws); free(xs); free(out);
	free(wq); free(xq); free(o32);
	return ok;
}

static void test_paths(void)
{
	/* N, C, OC: tile edges (rows of 6, 48; columns of 16, 64; k of 4) */
	static const int shapes[][3] = {
		{ 1, 1, 1 }, { 1, 3, 17 }, { 5, 4, 16 }, { 6, 8, 64 },
		{ 7, 17, 65 }, { 13, 64, 15 }, { 48, 33, 130 }, { 50, 100, 63 },
		{ 97, 384, 192 }, { 12, 1030, 40 }, { 30, 3072, 70 },
	};
	struct mtl_rng r;
	struct mtl_q8_linear *q;
	struct mtl_err err;
	float w1 = 1;

	mtl_rng_init(&r, 2);
	T_OK(mtl_q8_path_supported(mtl_q8_path_best()) &&
	     mtl_q8_path_best() != MTL_Q8_AUTO, "best path: %s",
	     mtl_q8_path_name(mtl_q8_path_best()));
	T_OK(!mtl_q8_linear_new(&q, &w1, 1, 1, MTL_Q8_AUTO, &err) &&
	     mtl_q8_linear_path(q) == mtl_q8_path_best(), "auto is the best path");
	mtl_q8_linear_free(q);
	T_OK(mtl_q8_linear_new(&q, &w1, 1, 70000, MTL_Q8_C, &err) == MTL_ERR_ARG &&
	     strstr(err.msg, "out of range"), "C above 65536 refused: %s", err.msg);
	for (size_t p = 0; p < sizeof(paths) / sizeof(*paths); p++) {
		int ok = 1;

		if (!mtl_q8_path_supported(paths[p])) {
			T_OK(mtl_q8_linear_new(&q, &w1, 1, 1, paths[p], &err) ==
			     MTL_ERR_ARG, "%s refused on this cpu: %s",
			     mtl_q8_path_name(paths[p]), err.msg);
			t_skip("this cpu lacks the path");
			continue;
		}
		for (size_t s = 0; s < sizeof(shapes) / sizeof(*shapes); s++)
			for (int nt = 1; nt <= 3; nt += 2)
				ok &= check_shape(paths[p], shapes[s][0], shapes[s][1],
						  shapes[s][2], nt, 0, &r);
		T_OK(ok, "%s: exact int32 sums, dequantised output, %zu shapes",
		     mtl_q8_path_name(paths[p]), sizeof(shapes) / sizeof(*shapes));
		T_OK(check_shape(paths[p], 7, 3072, 70, 2, 1, &r),
		     "%s: exact at the extremes (no int16 saturation)",
		     mtl_q8_path_name(paths[p]));
	}
}

static double cosine(const float *a, const float *b, int n)
{
	double ab = 0, aa = 0, bb = 0;

	for (int i = 0; i < n; i++) {
		ab += (double)a[i] * b[i];
		aa += (double)a[i] * a[i];
		bb += (double)b[i] * b[i];
	}
	return ab / sqrt(aa * bb);
}

/* The encoder in int8 against fp32, on each path. */
static void test_bert(void)
{
	struct mtl_bert_config cfg = {
		.vocab = 500, .hidden = 96, .layers = 3, .heads = 4,
		.intermediate = 384, .max_pos = 64, .type_vocab = 2,
		.ln_eps = 1e-12f, .pad_id = 0,
	};
	struct mtl_bert_pooling pool = { MTL_POOL_MEAN, 1, 64 };
	enum { B = 6, T = 24 };
	int32_t ids[B * T], mask[B * T];
	float e32[B * 96], e8[B * 96], h32[B * T * 96];
	struct mtl_bert *m;
	struct mtl_err err;
	struct mtl_rng r;

	if (mtl_bert_new(&m, &cfg, &err)) {
		T_OK(0, "model: %s", err.msg);
		return;
	}
	mtl_bert_init_random(m, 3);
	/* weights of trained size: N(0, 0.02) leaves the layers near identity */
	mtl_rng_init(&r, 4);
	for (size_t i = 0; i < m->n_params; i++)
		m->params[i] += 0.05f * (float)mtl_rng_normal(&r);
	mtl_bert_set_threads(m, 2);
	for (int i = 0; i < B * T; i++) {
		ids[i] = 1 + (int)mtl_rng_below(&r, 499);
		mask[i] = i % T < T - 3 * (i / T);
	}
	T_OK(!mtl_bert_embed(m, &pool, e32, ids, NULL, mask, B, T, &err),
	     "fp32 embed");
	T_OK(!mtl_bert_forward(m, ids, NULL, mask, B, T, 1, &err),
	     "fp32 training forward");
	memcpy(h32, mtl_bert_last_hidden(m), sizeof(h32));
	for (size_t p = 0; p < sizeof(paths) / sizeof(*paths); p++) {
		double cmin = 1, dmax = 0;

		if (!mtl_q8_path_supported(paths[p])) {
			t_skip("this cpu lacks the path");
			continue;
		}
		if (mtl_bert_set_int8(m, 1, paths[p], &err) ||
		    mtl_bert_embed(m, &pool, e8, ids, NULL, mask, B, T, &err)) {
			T_OK(0, "int8 embed: %s", err.msg);
			continue;
		}
		for (int b = 0; b < B; b++) {
			double c = cosine(e32 + b * 96, e8 + b * 96, 96);

			cmin = c < cmin ? c : cmin;
		}
		dmax = t_maxdiff(e32, e8, B * 96);
		T_OK(cmin >= 0.995 && dmax > 0,
		     "%s encoder: cosine to fp32 >= 0.995 (min %.5f, max diff %.3g)",
		     mtl_q8_path_name(paths[p]), cmin, dmax);
		T_OK(!mtl_bert_forward(m, ids, NULL, mask, B, T, 1, &err) &&
		     t_maxdiff(h32, mtl_bert_last_hidden(m), B * T * 96) == 0,
		     "%s: a training forward stays fp32", mtl_q8_path_name(paths[p]));
	}
	mtl_bert_set_int8(m, 0, MTL_Q8_AUTO, NULL);
	T_OK(!mtl_bert_embed(m, &pool, e8, ids, NULL, mask, B, T, &err) &&
	     t_maxdiff(e32, e8, B * 96) == 0, "int8 off: fp32 again");
	mtl_bert_free(m);
}

int main(void)
{
	test_quantize();
	test_quantize_paths();
	test_paths();
	test_bert();
	return t_done();
}
