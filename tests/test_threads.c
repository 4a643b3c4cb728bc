/*
 * test_threads.c - a training step's weights do not depend on which
 * thread ran which chunk (lib/base/par.h hands chunks to whichever thread
 * asks).  Two steps (dropout, a sequence and a token head, AdamW) of a
 * model big enough that every loop is cut between threads give the same
 * bytes at 1, 2 and 3 threads, with either way of threading the
 * projections, when clipping is off; with clipping on, the gradient norm
 * is summed in one block a thread (ops.h's mtl_dot), so each thread
 * count must give the same bytes every time.
 *
 * The word embeddings' gradient rows that no token of the batch reaches
 * are never read (train.h's wte_rows): NaN there changes no byte.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "head.h"
#include "ops.h"
#include "task.h"
#include "train.h"
#include "t.h"

static const char tasks_json[] =
	"{\"tasks\":["
	"{\"name\":\"seq\",\"kind\":\"sequence\",\"labels\":[\"a\",\"b\",\"c\"],\"head\":{\"dropout\":0.1}},"
	"{\"name\":\"tok\",\"kind\":\"token\",\"labels\":[\"a\",\"b\",\"c\",\"d\",\"e\"],\"head\":{\"dropout\":0.1}}]}";

enum { B = 16, T = 64 };

/* The encoder's and the heads' parameters after two steps on nt threads
 * (malloc'd, *n floats), or NULL; with poison, NaN in the gradient rows
 * of the word embeddings the batch does not reach, during each step. */
static float *train(int nt, int split, float clip, int poison, size_t *n)
{
	struct mtl_bert_config cfg = {
		.vocab = 2048, .hidden = 64, .layers = 2, .heads = 4,
		.intermediate = 256, .max_pos = T, .type_vocab = 2,
		.ln_eps = 1e-12f, .pad_id = 0, .hidden_dropout = 0.1f,
		.attn_dropout = 0.1f,
	};
	struct mtl_bert *m = NULL;
	struct mtl_tasks *ts = NULL;
	struct mtl_heads *hd = NULL;
	struct mtl_train *tr = NULL;
	struct mtl_train_opts o;
	struct mtl_step_stats st;
	struct mtl_batch b = { 0 };
	const struct mtl_batch *bp = &b;
	struct mtl_rng rng;
	struct mtl_err err;
	int32_t ids[B * T], len[B], seq[B], tok[B * T], *lab[2] = { seq, tok };
	float *out = NULL;
	int ok;

	ok = !mtl_bert_new(&m, &cfg, &err) &&
	     !mtl_task_parse(&ts, tasks_json, sizeof(tasks_json) - 1, "tasks", &err) &&
	     !mtl_heads_new(&hd, ts, cfg.hidden, MTL_POOL_CLS, &err);
	if (ok) {
		mtl_bert_init_random(m, 1);
		mtl_heads_init_random(hd, 2);
		mtl_bert_set_threads(m, nt);
		mtl_bert_set_gemm_split(m, split);
		mtl_train_opts_defaults(&o);
		o.total = 10;
		o.clip = clip;
		ok = !mtl_train_new(&tr, m, hd, &o, &err) &&
		     !mtl_step_stats_init(&st, 2);
	}
	mtl_rng_init(&rng, 5);
	for (int i = 0; i < B * T; i++) {
		ids[i] = (int32_t)mtl_rng_below(&rng, (uint64_t)cfg.vocab);
		tok[i] = (int32_t)mtl_rng_below(&rng, 5);
	}
	for (int i = 0; i < B; i++) {
		len[i] = T - 3 * i; /* some padding */
		seq[i] = (int32_t)mtl_rng_below(&rng, 3);
	}
	b.B = B;
	b.T = T;
	b.n_tasks = 2;
	b.ids = ids;
	b.lengths = len;
	b.labels = lab;
	for (int s = 0; ok && s < 2; s++) {
		uint8_t *in = calloc((size_t)cfg.vocab, 1);
		size_t H = (size_t)cfg.hidden;

		ok = in != NULL;
		for (int i = 0; ok && poison && i < B * T; i++)
			in[ids[i]] = 1;
		for (int r = 0; ok && poison && r < cfg.vocab; r++)
			for (size_t k = 0; !in[r] && k < H; k++)
				tr->grad[r * H + k] = NAN;
		ok = ok && mtl_train_step(tr, &bp, 1, &st, &err) >= 0;
		for (int r = 0; ok && poison && r < cfg.vocab; r++)
			if (!in[r])
				memset(tr->grad + r * H, 0, sizeof(float) * H);
		free(in);
	}
	if (ok && (out = malloc(sizeof(float) * (m->n_params + hd->n_params)))) {
		memcpy(out, m->params, sizeof(float) * m->n_params);
		memcpy(out + m->n_params, hd->params, sizeof(float) * hd->n_params);
		*n = m->n_params + hd->n_params;
	}
	if (!ok)
		printf("# %s\n", err.msg);
	if (tr)
		mtl_step_stats_release(&st);
	mtl_train_free(tr);
	mtl_heads_free(hd);
	mtl_task_free(ts);
	mtl_bert_free(m);
	return out;
}

/*
 * mtl_dot against its contract: nt blocks cut as OpenMP's static schedule
 * cuts them (from 65536 elements), each summed in order, the sums added
 * in order; mtl_axpy against the plain loop.
 */
static void vectors(void)
{
	enum { N = 200003 };
	float *a = malloc(sizeof(float) * N), *b = malloc(sizeof(float) * N);
	float *y = malloc(sizeof(float) * N), *y2 = malloc(sizeof(float) * N);
	struct mtl_rng rng;
	int ok = 1;

	mtl_rng_init(&rng, 9);
	for (int i = 0; i < N; i++) {
		a[i] = (float)mtl_rng_below(&rng, 2000) / 1000.0f - 1.0f;
		b[i] = (float)mtl_rng_below(&rng, 2000) / 1000.0f - 1.0f;
		y[i] = y2[i] = (float)i / N;
	}
	for (int nt = 1; nt <= 5; nt++) {
		int64_t q = N / nt, r = N % nt, i = 0;
		double want = 0;

		for (int k = 0; k < nt; k++) {
			double s = 0;

			for (int64_t end = i + q + (k < r); i < end; i++)
				s += (double)a[i] * b[i];
			want += s;
		}
		ok &= mtl_dot(a, b, N, nt) == want;
	}
	T_OK(ok, "mtl_dot on 1-5 threads: blocks as OpenMP cut them, added in order");
	{
		double want = 0;

		for (int i = 0; i < 1000; i++)
			want += (double)a[i] * b[i];
		T_OK(mtl_dot(a, b, 1000, 4) == want, "mtl_dot of a short vector: one block");
	}
	mtl_axpy(y, 0.37f, a, N, 3);
	for (int i = 0; i < N; i++)
		y2[i] += 0.37f * a[i];
	T_OK(!memcmp(y, y2, sizeof(float) * N), "mtl_axpy on 3 threads: the plain loop's bytes");
	free(a);
	free(b);
	free(y);
	free(y2);
}

/* 1 if two runs gave the same bytes. */
static int same(const float *a, const float *b, size_t n)
{
	return a && b && !memcmp(a, b, sizeof(float) * n);
}

int main(void)
{
	size_t n = 0, n2 = 0;
	float *one = train(1, 1, 0, 0, &n);

	vectors();
	T_OK(one != NULL && n > 65536, "two steps on one thread (%zu parameters)", n);
	for (int nt = 2; nt <= 3; nt++)
		for (int split = 0; split <= 1; split++) {
			float *p = train(nt, split, 0, 0, &n2);

			T_OK(n2 == n && same(one, p, n),
			     "%d threads, %s: the one-thread weights, byte for byte",
			     nt, split ? "column slices" : "whole products");
			free(p);
		}
	for (int nt = 1; nt <= 3; nt++) {
		float *a = train(nt, 1, 0.5f, 0, &n), *b = train(nt, 1, 0.5f, nt == 2, &n2);

		T_OK(n2 == n && same(a, b, n),
		     "%d threads, clipping: the same weights twice%s", nt,
		     nt == 2 ? " (the second with NaN in the embedding gradient's rows the batch does not reach)" : "");
		free(a);
		free(b);
	}
	free(one);
	return t_done();
}
