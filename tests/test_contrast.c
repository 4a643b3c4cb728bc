/*
 * test_contrast.c - the contrastive term's gradient against central
 * finite differences: InfoNCE (emb.c's MNRL at 1/tau) through L2
 * normalisation, checked by hand too, then the whole
 * tiny model through the trainer (two dropout views of the same ids, and
 * pair texts), where the second view's backward re-runs its forward from
 * the saved dropout generator.  The pooling and normalisation kernels
 * have their own checks in test_grad.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "contrast.h"
#include "emb.h"
#include "head.h"
#include "task.h"
#include "train.h"
#include "t.h"

enum { B = 4, H = 6 };

/* InfoNCE of anchors X[0..B) against positives X[B..2B) at temperature
 * tau, as the contrastive term computes it (emb.h: MNRL at 1/tau). */
static double infonce(float *dX, const float *X, float tau)
{
	struct mtl_task_emb spec = { .loss = MTL_EMB_MNRL, .scale = 1.0f / tau };
	int32_t a[B], p[B];
	double L;

	for (int i = 0; i < B; i++) {
		a[i] = i;
		p[i] = B + i;
	}
	memset(dX, 0, sizeof(float) * 2 * B * H);
	if (mtl_emb_loss(&L, dX, X, 2 * B, H, a, p, NULL, NULL, B, &spec, 1.0f,
			 NULL, NULL))
		T_OK(0, "infonce: out of memory");
	return L;
}

static void test_infonce(float tau)
{
	float X[2 * B * H], g[2 * B * H], d[2 * B * H];
	struct mtl_rng r;
	double worst = 0, scale = 0, L, ref = 0;

	mtl_rng_init(&r, 11);
	for (int i = 0; i < B * H; i++) {
		X[i] = (float)mtl_rng_normal(&r);
		X[B * H + i] = X[i] + 0.5f * (float)mtl_rng_normal(&r);
	}
	L = infonce(g, X, tau);
	/* by hand: -log softmax of the matched cosine over each row */
	for (int i = 0; i < B; i++) {
		double z = 0, c[B];

		for (int j = 0; j < B; j++) {
			double dot = 0, na = 0, np = 0;

			for (int k = 0; k < H; k++) {
				dot += (double)X[i * H + k] * X[(B + j) * H + k];
				na += (double)X[i * H + k] * X[i * H + k];
				np += (double)X[(B + j) * H + k] * X[(B + j) * H + k];
			}
			c[j] = dot / sqrt(na * np) / tau;
			z += exp(c[j]);
		}
		ref += (log(z) - c[i]) / B;
	}
	T_OK(fabs(L - ref) < 1e-5 && L > 0, "infonce (tau %g): loss %g, by hand %g", tau, L, ref);
	for (int i = 0; i < 2 * B * H; i++) {
		float keep = X[i], h = 1e-2f;
		double fp, fm, fd;

		X[i] = keep + h;
		fp = infonce(d, X, tau);
		X[i] = keep - h;
		fm = infonce(d, X, tau);
		X[i] = keep;
		fd = (fp - fm) / ((double)(keep + h) - (double)(keep - h));
		worst = fmax(worst, fabs(fd - g[i]));
		scale = fmax(scale, fabs(g[i]));
	}
	T_OK(worst <= 2e-3 * scale + 1e-5,
	     "infonce (tau %g): gradient through normalisation = finite differences (max diff %.3g of %.3g)",
	     tau, worst, scale);
	/* all positives on their anchors and far from the rest: loss near 0 */
	for (int i = 0; i < B * H; i++)
		X[i] = X[B * H + i] = (i % H == i / H) ? 1.0f : 0.0f;
	T_OK(infonce(d, X, 0.05f) < 1e-6, "infonce: orthogonal matched pairs cost nothing");
}

/* The trainer with task weights 0: its loss and gradient are the
 * contrastive term's alone. */
static void test_model(int pairs, enum mtl_pool pool)
{
	struct mtl_err err = { "" };
	struct mtl_bert *m;
	struct mtl_tasks *ts;
	struct mtl_heads *hd;
	struct mtl_train *tr;
	struct mtl_train_opts o;
	struct mtl_contrast *c;
	struct mtl_step_stats st;
	struct mtl_batch b;
	const struct mtl_batch *bp[1] = { &b };
	double zero[2] = { 0, 0 }, worst = 0, scale = 0;
	struct mtl_rng r;
	float *g;
	int32_t *labels[2] = { NULL, NULL };
	int Bm = 4, T = 6, checked = 0;

	if (mtl_bert_load(&m, "fixtures/tiny", &err) ||
	    mtl_task_load(&ts, "fixtures/tiny/tasks.json", &err) ||
	    mtl_heads_new(&hd, ts, m->cfg.hidden, MTL_POOL_CLS, &err)) {
		printf("Bail out! %s\n", err.msg);
		exit(1);
	}
	mtl_bert_set_threads(m, 1);
	mtl_train_opts_defaults(&o);
	o.dropout = 0.1f;
	mtl_train_new(&tr, m, hd, &o, &err);
	mtl_contrast_new(&c, 1.0f, 0.05f, pool, &err);
	tr->con = c;
	mtl_step_stats_init(&st, 2);
	memset(&b, 0, sizeof(b));
	b.B = Bm;
	b.T = T;
	b.ids = malloc(sizeof(int32_t) * Bm * T);
	b.lengths = malloc(sizeof(int32_t) * Bm);
	b.labels = labels;
	b.n_tasks = 2;
	mtl_rng_init(&r, 9);
	for (int i = 0; i < Bm * T; i++)
		b.ids[i] = 5 + (int32_t)mtl_rng_below(&r, (uint64_t)m->cfg.vocab - 5);
	for (int i = 0; i < Bm; i++)
		b.lengths[i] = T - i % 3;
	if (pairs) {
		b.Tp = T + 1;
		b.pair_ids = malloc(sizeof(int32_t) * Bm * b.Tp);
		b.pair_lengths = malloc(sizeof(int32_t) * Bm);
		for (int i = 0; i < Bm * b.Tp; i++)
			b.pair_ids[i] = 5 + (int32_t)mtl_rng_below(&r, (uint64_t)m->cfg.vocab - 5);
		for (int i = 0; i < Bm; i++)
			b.pair_lengths[i] = b.Tp - i % 2;
	}
	mtl_rng_init(&tr->rng, 77);
	mtl_train_grad_weighted(tr, bp, 1, zero, &st, &err);
	g = malloc(sizeof(float) * m->n_params);
	memcpy(g, tr->grad, sizeof(float) * m->n_params);
	T_OK(st.loss > 0 && st.loss == c->loss, "%s, %s: the loss is the contrastive term (%g)",
	     pairs ? "pairs" : "dropout views", pool ? "mean" : "cls", st.loss);
	/* the parameters with the largest gradients, and some at random */
	for (int k = 0; k < 24; k++) {
		size_t i = 0;
		float keep, h = 1e-3f;
		double fp, fm, fd;

		if (k < 12) {
			double best = -1;

			for (size_t j = (size_t)k; j < m->n_params; j += 12)
				if (fabs(g[j]) > best) {
					best = fabs(g[j]);
					i = j;
				}
		} else {
			i = (size_t)mtl_rng_below(&r, m->n_params);
		}
		keep = m->params[i];
		m->params[i] = keep + h;
		mtl_rng_init(&tr->rng, 77);
		mtl_train_grad_weighted(tr, bp, 1, zero, &st, &err);
		fp = st.loss;
		m->params[i] = keep - h;
		mtl_rng_init(&tr->rng, 77);
		mtl_train_grad_weighted(tr, bp, 1, zero, &st, &err);
		fm = st.loss;
		m->params[i] = keep;
		fd = (fp - fm) / ((double)(keep + h) - (double)(keep - h));
		worst = fmax(worst, fabs(fd - g[i]));
		scale = fmax(scale, fabs(g[i]));
		checked++;
	}
	T_OK(scale > 0 && worst <= 5e-3 * scale,
	     "%s, %s: %d parameters' gradients through both encoder passes = finite differences (max diff %.3g of %.3g)",
	     pairs ? "pairs" : "dropout views", pool ? "mean" : "cls", checked,
	     worst, scale);
	tr->con = NULL;
	free(g);
	b.labels = NULL;
	b.n_tasks = 0;
	mtl_batch_release(&b);
	mtl_step_stats_release(&st);
	mtl_contrast_free(c);
	mtl_train_free(tr);
	mtl_heads_free(hd);
	mtl_task_free(ts);
	mtl_bert_free(m);
}

int main(void)
{
	test_infonce(0.5f);
	test_infonce(0.05f);
	test_model(0, MTL_POOL_CLS);
	test_model(0, MTL_POOL_MEAN);
	test_model(1, MTL_POOL_MEAN);
	return t_done();
}
