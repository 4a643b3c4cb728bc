/*
 * test_adamw.c - the optimiser beyond the one-step golden: several steps
 * against a float64 transcription of torch.optim.AdamW (bias corrections
 * past t = 1, clipping folded in, per-group lr and decay), the schedules,
 * the clipping factor, and the trainer's parameter groups (no decay on
 * biases and LayerNorm weights, --head-lr, layer-wise decay).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adamw.h"
#include "bert.h"
#include "head.h"
#include "rng.h"
#include "task.h"
#include "train.h"
#include "t.h"

static void test_steps(void)
{
	enum { N = 40 };
	struct mtl_adamw o;
	struct mtl_adamw_group gr[2] = {
		{ .off = 0, .n = 25, .lr_mult = 1.0f, .decay = 1 },
		{ .off = 25, .n = 15, .lr_mult = 0.5f, .decay = 0 },
	};
	float w[N], g[N], m[N] = { 0 }, v[N] = { 0 };
	double wd[N], md[N] = { 0 }, vd[N] = { 0 }, maxd = 0;
	struct mtl_rng r;

	mtl_adamw_defaults(&o);
	mtl_rng_init(&r, 9);
	for (int i = 0; i < N; i++)
		wd[i] = w[i] = (float)mtl_rng_normal(&r);
	for (int t = 1; t <= 5; t++) {
		float lr = 1e-2f / (float)t, gs = t == 3 ? 0.25f : 1.0f;

		for (int i = 0; i < N; i++)
			g[i] = (float)(mtl_rng_normal(&r) * (i % 7 ? 1 : 1e-9));
		mtl_adamw_step(&o, w, g, m, v, gr, 2, lr, t, gs, 2);
		for (int i = 0; i < N; i++) {
			int k = i < 25 ? 0 : 1;
			double plr = (double)lr * gr[k].lr_mult, gi = (double)g[i] * gs;
			double bc1 = 1 - pow(0.9, t), bc2 = 1 - pow(0.999, t);

			if (gr[k].decay)
				wd[i] *= 1 - plr * 0.01;
			md[i] = 0.9 * md[i] + 0.1 * gi;
			vd[i] = 0.999 * vd[i] + 0.001 * gi * gi;
			wd[i] -= plr / bc1 * md[i] / (sqrt(vd[i]) / sqrt(bc2) + 1e-8);
		}
	}
	for (int i = 0; i < N; i++)
		maxd = fmax(maxd, fabs(w[i] - wd[i]));
	T_OK(maxd < 1e-6, "5 AdamW steps with two groups and a clipped step match float64 (max abs diff %.3g)",
	     maxd);
}

static void test_schedules(void)
{
	int ok = 1;

	/* 0-based steps, as Hugging Face's schedulers */
	ok &= mtl_adamw_lr_at(MTL_SCHED_LINEAR, 1.0f, 0, 2, 10) == 0.0f;
	ok &= mtl_adamw_lr_at(MTL_SCHED_LINEAR, 1.0f, 1, 2, 10) == 0.5f;
	ok &= mtl_adamw_lr_at(MTL_SCHED_LINEAR, 1.0f, 2, 2, 10) == 1.0f;
	ok &= fabsf(mtl_adamw_lr_at(MTL_SCHED_LINEAR, 1.0f, 6, 2, 10) - 0.5f) < 1e-7f;
	ok &= mtl_adamw_lr_at(MTL_SCHED_LINEAR, 1.0f, 10, 2, 10) == 0.0f;
	ok &= mtl_adamw_lr_at(MTL_SCHED_LINEAR, 1.0f, 12, 2, 10) == 0.0f;
	ok &= fabsf(mtl_adamw_lr_at(MTL_SCHED_COSINE, 1.0f, 6, 2, 10) - 0.5f) < 1e-6f;
	ok &= fabsf(mtl_adamw_lr_at(MTL_SCHED_COSINE, 1.0f, 4, 2, 10) -
		    (float)(0.5 * (1 + cos(M_PI * 0.25)))) < 1e-6f;
	ok &= mtl_adamw_lr_at(MTL_SCHED_CONSTANT, 0.3f, 500, 0, 10) == 0.3f;
	ok &= mtl_adamw_lr_at(MTL_SCHED_CONSTANT, 0.3f, 0, 4, 10) == 0.0f;
	T_OK(ok, "schedules: warm-up, linear, cosine, constant");
	ok = mtl_adamw_clip_scale(10.0, 1.0f) == (float)(1.0 / (10.0 + 1e-6)) &&
	     mtl_adamw_clip_scale(0.5, 1.0f) == 1.0f && mtl_adamw_clip_scale(1e9, 0) == 1.0f;
	T_OK(ok, "clipping factor: max_norm / (norm + 1e-6) below 1, else 1; 0 disables");
}

static void test_groups(void)
{
	static const char tj[] = "{\"tasks\":[{\"name\":\"a\",\"kind\":\"sequence\","
		"\"labels\":[\"x\",\"y\"],\"head\":{\"hidden\":3}}]}";
	struct mtl_bert_config cfg = { 20, 8, 3, 2, 16, 8, 2, 1e-12f, 0, 0.1f, 0.1f };
	struct mtl_bert *m;
	struct mtl_tasks *ts;
	struct mtl_heads *hd;
	struct mtl_train *tr;
	struct mtl_train_opts o;
	int ok_decay = 1, ok_lr = 1, ok_head = 1;

	mtl_bert_new(&m, &cfg, NULL);
	mtl_task_parse(&ts, tj, sizeof(tj) - 1, "t", NULL);
	mtl_heads_new(&hd, ts, 8, MTL_POOL_CLS, NULL);
	mtl_train_opts_defaults(&o);
	o.lr = 1e-3f;
	o.head_lr = 4e-3f;
	o.layer_decay = 0.5f;
	mtl_train_new(&tr, m, hd, &o, NULL);
	for (size_t i = 0; i < tr->n_groups; i++) {
		const char *n = m->tensors[i].name;
		int bias = strlen(n) > 4 && !strcmp(n + strlen(n) - 4, "bias");
		int lnw = strstr(n, "LayerNorm.weight") != NULL;
		int layer = -1;
		float want;

		ok_decay &= tr->groups[i].decay == !(bias || lnw);
		/* the pooler, in no loss, is no AdamW range (train.c) */
		ok_decay &= tr->groups[i].off == m->tensors[i].offset &&
			    tr->groups[i].n == (strncmp(n, "pooler.", 7)
						? m->tensors[i].numel : 0);
		if (sscanf(n, "encoder.layer.%d.", &layer) == 1)
			want = powf(0.5f, (float)(2 - layer));
		else
			want = strncmp(n, "embeddings.", 11) ? 1.0f : powf(0.5f, 3);
		ok_lr &= fabsf(tr->groups[i].lr_mult - want) < 1e-7f;
	}
	for (size_t i = 0; i < tr->n_hgroups; i++) {
		const char *n = hd->tensors[i].name;

		ok_head &= tr->hgroups[i].lr_mult == 1.0f;
		ok_head &= tr->hgroups[i].decay == !strstr(n, "bias");
	}
	T_OK(ok_decay, "no weight decay exactly on biases and LayerNorm weights (%zu encoder tensors)",
	     tr->n_groups);
	T_OK(ok_lr, "layer-wise decay 0.5: top layer 1, layer 0 0.25, embeddings 0.125, pooler 1");
	T_OK(ok_head && tr->n_hgroups == 4, "heads: their own schedule (multiplier 1), decay on weights only");
	mtl_train_free(tr);
	mtl_heads_free(hd);
	mtl_task_free(ts);
	mtl_bert_free(m);
}

/* --lr 0 --head-lr F trains the heads alone; the encoder stays put. */
static void test_heads_only(void)
{
	static const char tj[] = "{\"tasks\":[{\"name\":\"a\",\"kind\":\"sequence\","
		"\"labels\":[\"x\",\"y\"]}]}";
	struct mtl_bert_config cfg = { 20, 8, 2, 2, 16, 8, 2, 1e-12f, 0, 0.1f, 0.1f };
	struct mtl_bert *m;
	struct mtl_tasks *ts;
	struct mtl_heads *hd;
	struct mtl_train *tr;
	struct mtl_train_opts o;
	struct mtl_step_stats st;
	struct mtl_batch b = { 0 };
	int32_t ids[6] = { 2, 5, 3, 2, 7, 3 }, len[2] = { 3, 3 }, la[2] = { 0, 1 };
	int32_t *labels[1] = { la };
	const struct mtl_batch *bp = &b;
	float *enc0, *head0;
	int enc_same, head_moved = 0, rc;

	mtl_bert_new(&m, &cfg, NULL);
	mtl_bert_init_random(m, 4);
	mtl_bert_set_threads(m, 1);
	mtl_task_parse(&ts, tj, sizeof(tj) - 1, "t", NULL);
	mtl_heads_new(&hd, ts, 8, MTL_POOL_CLS, NULL);
	mtl_heads_init_random(hd, 5);
	mtl_train_opts_defaults(&o);
	o.lr = 0;
	o.head_lr = 1e-2f;
	o.weight_decay = 0.1f;
	o.sched = MTL_SCHED_CONSTANT;
	mtl_train_new(&tr, m, hd, &o, NULL);
	mtl_step_stats_init(&st, 1);
	b.B = 2, b.T = 3, b.ids = ids, b.lengths = len, b.labels = labels, b.n_tasks = 1;
	enc0 = malloc(sizeof(float) * m->n_params);
	head0 = malloc(sizeof(float) * hd->n_params);
	memcpy(enc0, m->params, sizeof(float) * m->n_params);
	memcpy(head0, hd->params, sizeof(float) * hd->n_params);
	rc = mtl_train_step(tr, &bp, 1, &st, NULL);
	enc_same = memcmp(enc0, m->params, sizeof(float) * m->n_params) == 0;
	for (size_t i = 0; i < hd->n_params; i++)
		head_moved += hd->params[i] != head0[i];
	T_OK(rc == 0 && enc_same && head_moved == (int)hd->n_params && st.lr == 0,
	     "--lr 0 --head-lr 1e-2: encoder unchanged, all %d head parameters moved",
	     head_moved);
	free(enc0);
	free(head0);
	mtl_step_stats_release(&st);
	mtl_train_free(tr);
	mtl_heads_free(hd);
	mtl_task_free(ts);
	mtl_bert_free(m);
}

enum { R = 50, C = 24, N = R * C };
static float w[2][N], m[2][N], v[2][N], g[2][N];

/*
 * Four steps over w[0], m[0], v[0] as one dense group and over w[1],
 * m[1], v[1] as one with the row table rows (and seen), the rows marked at
 * step t by mark(k, t): the same gradients, zero in the dense one and
 * NaN in the sparse one where a row is not marked; 1 and 3 threads in
 * turn, and clipping's factor at step 2.
 */
static void four_steps(uint8_t *rows, uint8_t *seen, int (*mark)(int k, int t),
		       struct mtl_rng *r)
{
	struct mtl_adamw o;
	struct mtl_adamw_group dense = { .off = 0, .n = N, .lr_mult = 1.0f, .decay = 1 };
	struct mtl_adamw_group sparse = dense;

	mtl_adamw_defaults(&o);
	sparse.rows = rows;
	sparse.row = C;
	sparse.seen = seen;
	for (int t = 1; t <= 4; t++) {
		for (int k = 0; k < R; k++)
			rows[k] = (uint8_t)mark(k, t);
		for (int i = 0; i < N; i++) {
			float x = (float)mtl_rng_normal(r);

			g[0][i] = rows[i / C] ? x : 0.0f;
			g[1][i] = rows[i / C] ? x : NAN;
		}
		mtl_adamw_step(&o, w[0], g[0], m[0], v[0], &dense, 1, 1e-2f, t,
			       t == 2 ? 0.5f : 1.0f, t % 2 ? 1 : 3);
		mtl_adamw_step(&o, w[1], g[1], m[1], v[1], &sparse, 1, 1e-2f, t,
			       t == 2 ? 0.5f : 1.0f, t % 2 ? 3 : 1);
	}
}

static int every_third(int k, int t)
{
	return (k * 7 + t) % 3 == 0;
}

/*
 * A group with a row table (the word embeddings' gradient, whose rows
 * outside the batch are zero and never written): the rows marked 0 are
 * stepped as if their gradient were zero, without reading it (NaN
 * there), and every byte of w, m and v equals the dense step's over the
 * zeroed gradient.
 */
static void test_rows(void)
{
	uint8_t rows[R];
	struct mtl_rng r;
	int same;

	mtl_rng_init(&r, 12);
	for (int i = 0; i < N; i++) {
		w[0][i] = w[1][i] = (float)mtl_rng_normal(&r);
		m[0][i] = m[1][i] = v[0][i] = v[1][i] = 0;
	}
	four_steps(rows, NULL, every_third, &r);
	same = !memcmp(w[0], w[1], sizeof(w[0])) && !memcmp(m[0], m[1], sizeof(m[0])) &&
	       !memcmp(v[0], v[1], sizeof(v[0]));
	T_OK(same, "a row table: unmarked rows stepped with a zero gradient, never read; the dense step's bytes");
}

/* rows 0, 5, .. from step 1, rows 1, 6, .. from step 3, the others never */
static int two_fifths(int k, int t)
{
	return k % 5 == 0 || (t >= 3 && k % 5 == 1);
}

/*
 * A row table with seen (the word embeddings' moments, adamw.h): rows
 * first marked at step 1, rows first marked at step 3 and rows never
 * marked.  A row not yet seen takes only its weight decay without
 * reading or writing its moments (NaN there, left as they are); w, and
 * the moments of every seen row, are the dense step's bytes; seen ends
 * as the rows ever marked.
 */
static void test_seen(void)
{
	uint8_t rows[R], seen[R] = { 0 };
	struct mtl_rng r;
	int same, marks = 1, untouched = 1;

	mtl_rng_init(&r, 13);
	for (int i = 0; i < N; i++) {
		w[0][i] = w[1][i] = (float)mtl_rng_normal(&r);
		m[0][i] = v[0][i] = 0;
		m[1][i] = v[1][i] = (i / C) % 5 < 2 ? 0.0f : NAN;
	}
	four_steps(rows, seen, two_fifths, &r);
	same = !memcmp(w[0], w[1], sizeof(w[0]));
	for (int i = 0; i < N; i++) {
		if ((i / C) % 5 < 2)
			same &= !memcmp(&m[0][i], &m[1][i], sizeof(float)) &&
				!memcmp(&v[0][i], &v[1][i], sizeof(float));
		else
			untouched &= isnan(m[1][i]) && isnan(v[1][i]);
	}
	for (int k = 0; k < R; k++)
		marks &= seen[k] == (k % 5 < 2);
	T_OK(same && untouched && marks,
	     "seen rows: the dense step's bytes; rows never marked take their decay alone, their moments neither read nor written");
}

int main(void)
{
	test_rows();
	test_seen();
	test_steps();
	test_schedules();
	test_groups();
	test_heads_only();
	return t_done();
}
