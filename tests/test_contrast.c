/*
 * test_contrast.c - the contrastive term's gradient against central
 * finite differences: InfoNCE through L2 normalisation, then the whole
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
#include "head.h"
#include "task.h"
#include "train.h"
#include "t.h"

enum { B = 4, H = 6 };

static double loss_of(const float *xa, const float *xp, float tau)
{
	float a[B * H], p[B * H], da[B * H], dp[B * H];

	mtl_l2norm_forward(a, NULL, xa, B, H);
	mtl_l2norm_forward(p, NULL, xp, B, H);
	return mtl_contrast_infonce(da, dp, a, p, B, H, tau, 1.0f);
}

static void test_infonce(float tau)
{
	float xa[B * H], xp[B * H], a[B * H], p[B * H], na[B], np[B];
	float da[B * H], dp[B * H], ga[B * H], gp[B * H];
	struct mtl_rng r;
	double worst = 0, scale = 0, L, l0;

	mtl_rng_init(&r, 11);
	for (int i = 0; i < B * H; i++) {
		xa[i] = (float)mtl_rng_normal(&r);
		xp[i] = xa[i] + 0.5f * (float)mtl_rng_normal(&r);
	}
	mtl_l2norm_forward(a, na, xa, B, H);
	mtl_l2norm_forward(p, np, xp, B, H);
	L = mtl_contrast_infonce(da, dp, a, p, B, H, tau, 1.0f);
	l0 = loss_of(xa, xp, tau);
	T_OK(L == l0 && L > 0, "infonce (tau %g): a positive loss %g", tau, L);
	memset(ga, 0, sizeof(ga));
	memset(gp, 0, sizeof(gp));
	mtl_l2norm_backward(ga, da, a, na, B, H);
	mtl_l2norm_backward(gp, dp, p, np, B, H);
	for (int side = 0; side < 2; side++)
		for (int i = 0; i < B * H; i++) {
			float *x = side ? xp : xa, keep = x[i], h = 1e-2f;
			double fp, fm, fd, g = side ? gp[i] : ga[i];

			x[i] = keep + h;
			fp = loss_of(xa, xp, tau);
			x[i] = keep - h;
			fm = loss_of(xa, xp, tau);
			x[i] = keep;
			fd = (fp - fm) / ((double)(keep + h) - (double)(keep - h));
			worst = fmax(worst, fabs(fd - g));
			scale = fmax(scale, fabs(g));
		}
	T_OK(worst <= 2e-3 * scale + 1e-5,
	     "infonce (tau %g): gradient through normalisation = finite differences (max diff %.3g of %.3g)",
	     tau, worst, scale);
	/* all positives on their anchors and far from the rest: loss near 0 */
	for (int i = 0; i < B * H; i++)
		xa[i] = xp[i] = (i % H == i / H) ? 1.0f : 0.0f;
	T_OK(loss_of(xa, xp, 0.05f) < 1e-6, "infonce: orthogonal matched pairs cost nothing");
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
