/*
 * test_balance.c - task balancing: each method's arithmetic on hand-built
 * cases (PCGrad on conflicting and agreeing vectors, the uncertainty loss
 * and its gradient, DWA from a known loss history, one GradNorm update,
 * RLW's weights, CAGrad against a grid search), then the per-task
 * gradient passes on the tiny model (their weighted sum is the ordinary
 * gradient, at the encoder and at its output), every method with a task
 * missing from the batch, and the state's msgpack round trip.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balance.h"
#include "bert.h"
#include "head.h"
#include "mp.h"
#include "task.h"
#include "train.h"
#include "t.h"
#include "t_golden.h"

static int near(double a, double b, double tol)
{
	return fabs(a - b) <= tol * (1 + fabs(b));
}

static void test_pcgrad(void)
{
	/* g1 = (1,0), g2 = (-1,1): g1' = g1 + g2/2, g2' = g2 + g1 */
	double K[4] = { 1, -1, -1, 2 }, w[2] = { 1, 1 }, c[2];
	double Ka[4] = { 1, 1, 1, 2 }, K3[9], c3[3], w3[3] = { 1, 1, 1 };
	uint8_t on[3] = { 1, 1, 1 }, one[2] = { 1, 0 };
	struct mtl_rng r;

	mtl_rng_init(&r, 1);
	mtl_balance_pcgrad(c, K, w, on, 2, &r);
	T_OK(near(c[0], 2, 1e-12) && near(c[1], 1.5, 1e-12),
	     "pcgrad: conflicting (1,0),(-1,1) -> 2 g1 + 1.5 g2 (got %g, %g)",
	     c[0], c[1]);
	/* the result (0.5, 1.5) has no negative dot with either gradient */
	T_OK(2 * 1 + 1.5 * -1 >= 0 && 2 * -1 + 1.5 * 2 >= 0,
	     "pcgrad: the combination agrees with both tasks");
	mtl_balance_pcgrad(c, Ka, w, on, 2, &r);
	T_OK(c[0] == 1 && c[1] == 1, "pcgrad: agreeing gradients are summed unchanged");
	w[0] = 2;
	mtl_balance_pcgrad(c, K, w, on, 2, &r);
	/* 2g1' = 2g1 - (-2/2) g2 = 2 g1 + g2; g2' = g2 - (-2/4)(2 g1) = g2 + g1 */
	T_OK(near(c[0], 3, 1e-12) && near(c[1], 2, 1e-12),
	     "pcgrad: weights scale the projected gradients (got %g, %g)",
	     c[0], c[1]);
	w[0] = 1;
	mtl_balance_pcgrad(c, K, w, one, 2, &r);
	T_OK(c[0] == 1 && c[1] == 0, "pcgrad: a missing task is neither projected nor projected on");
	/*
	 * Three tasks where the order matters: g1=(1,0), g2=(0,1),
	 * g3=(-1,-1).  g1 off g3 gives (0.5,-0.5), which then conflicts
	 * with g2 only if g3 came first: a1 = (1, 0, .5) or (1, .5, .5);
	 * g2 likewise; g3 off both (either order) is 0: a3 = (1, 1, 1).
	 * Over many draws both orders appear.
	 */
	{
		double g[3][2] = { { 1, 0 }, { 0, 1 }, { -1, -1 } };
		int seen_lo = 0, seen_hi = 0, ok = 1;

		for (int i = 0; i < 3; i++)
			for (int j = 0; j < 3; j++)
				K3[i * 3 + j] = g[i][0] * g[j][0] + g[i][1] * g[j][1];
		for (int k = 0; k < 64; k++) {
			mtl_balance_pcgrad(c3, K3, w3, on, 3, &r);
			ok &= near(c3[2], 2, 1e-12) &&
			      (near(c3[0], 2, 1e-12) || near(c3[0], 2.5, 1e-12));
			seen_lo |= near(c3[0], 2, 1e-12);
			seen_hi |= near(c3[0], 2.5, 1e-12);
		}
		T_OK(ok && seen_lo && seen_hi,
		     "pcgrad: three tasks, the random order changes the projections as computed by hand");
	}
}

static void test_cosine(void)
{
	double K[4] = { 4, -2, -2, 4 }, c[4];
	uint8_t on[2] = { 1, 1 }, off[2] = { 1, 0 };

	mtl_balance_cosine(c, K, on, 2);
	T_OK(near(c[1], -0.5, 1e-12) && near(c[2], -0.5, 1e-12) && near(c[0], 1, 1e-12),
	     "cosine from the Gram matrix");
	mtl_balance_cosine(c, K, off, 2);
	T_OK(isnan(c[1]) && isnan(c[2]), "cosine: NaN for a missing task");
}

static void test_uncertainty(void)
{
	float s[3] = { 0, (float)log(2.0), 0.3f }, ds[3], sp[3];
	double L[3] = { 2, 0.5, 7 }, tot, h = 1e-3;
	uint8_t on[3] = { 1, 1, 0 };
	int ok = 1;

	tot = mtl_balance_uncertainty(ds, s, L, on, 3);
	T_OK(near(tot, 2 + 0.25 + log(2.0), 1e-6),
	     "uncertainty: sum exp(-s) L + s = %g", tot);
	T_OK(near(ds[0], -1, 1e-6) && near(ds[1], 0.75, 1e-6) && ds[2] == 0,
	     "uncertainty: d/ds = 1 - exp(-s) L (got %g, %g), 0 when missing",
	     ds[0], ds[1]);
	/* central differences in double on the same formula */
	for (int t = 0; t < 2; t++) {
		double fp, fm;

		memcpy(sp, s, sizeof(s));
		sp[t] = (float)(s[t] + h);
		fp = mtl_balance_uncertainty(ds, sp, L, on, 3);
		sp[t] = (float)(s[t] - h);
		fm = mtl_balance_uncertainty(ds, sp, L, on, 3);
		mtl_balance_uncertainty(ds, s, L, on, 3);
		ok &= near((fp - fm) / ((double)(float)(s[t] + h) - (float)(s[t] - h)),
			   ds[t], 1e-3);
	}
	T_OK(ok, "uncertainty: gradient matches central differences");
}

static void test_dwa(void)
{
	double last[3] = { 1, 2, 5 }, prev[3] = { 2, 2, NAN }, w[3] = { 9, 9, 9 };
	uint8_t on2[3] = { 1, 1, 0 }, on3[3] = { 1, 1, 1 };
	double e1 = exp(0.25), e2 = exp(0.5);

	mtl_balance_dwa(w, last, prev, on2, 3, 2);
	T_OK(near(w[0], 2 * e1 / (e1 + e2), 1e-12) &&
	     near(w[1], 2 * e2 / (e1 + e2), 1e-12) && w[2] == 9,
	     "dwa: w = 2 softmax(r / 2), r = (0.5, 1); a missing task untouched");
	T_OK(near(w[0] + w[1], 2, 1e-12), "dwa: the weights sum to the task count");
	mtl_balance_dwa(w, last, prev, on3, 3, 2);
	T_OK(w[0] == 1 && w[1] == 1 && w[2] == 1,
	     "dwa: all 1 while a present task lacks two losses");
}

static void test_gradnorm(void)
{
	double w[2] = { 1, 1 }, gn[2] = { 2, 1 }, L[2] = { 1, 0.5 },
	       L0[2] = { 1, 1 };
	uint8_t on[2] = { 1, 1 };

	/* alpha 0: target = mean G = 1.5; d|G-target|/dw = (+2, -1) */
	mtl_balance_gradnorm(w, gn, L, L0, on, 2, 0, 0.1);
	T_OK(near(w[0], 0.8 * 2 / 1.9, 1e-12) && near(w[1], 1.1 * 2 / 1.9, 1e-12),
	     "gradnorm: alpha 0, one step of 0.1 then renormalised to sum 2 (got %g, %g)",
	     w[0], w[1]);
	/* alpha 1: targets 1.5 * (4/3, 2/3) = (2, 1) = G: no change */
	w[0] = w[1] = 1;
	mtl_balance_gradnorm(w, gn, L, L0, on, 2, 1, 0.1);
	T_OK(w[0] == 1 && w[1] == 1, "gradnorm: norms on target stay put");
	/* alpha 1, the slower task (higher L/L0) gains weight */
	w[0] = w[1] = 1;
	gn[0] = gn[1] = 1;
	mtl_balance_gradnorm(w, gn, L, L0, on, 2, 1, 0.1);
	T_OK(w[0] > 1 && w[1] < 1 && near(w[0] + w[1], 2, 1e-12),
	     "gradnorm: the task that trains slower gains weight");
	on[1] = 0;
	w[0] = w[1] = 1;
	gn[0] = 2;
	mtl_balance_gradnorm(w, gn, L, L0, on, 2, 0, 0.1);
	T_OK(w[0] == 1 && w[1] == 1, "gradnorm: a lone task keeps its weight, a missing one too");
}

static void test_rlw(void)
{
	struct mtl_rng r;
	double w[3], sum = 0, m[3] = { 0 }, lr = 0, lr2 = 0;
	uint8_t on[3] = { 1, 1, 1 }, two[3] = { 1, 0, 1 };
	int ok = 1, n = 20000;

	mtl_rng_init(&r, 7);
	for (int k = 0; k < n; k++) {
		double d;

		mtl_balance_rlw(w, on, 3, &r);
		ok &= near(w[0] + w[1] + w[2], 3, 1e-12) && w[0] > 0 && w[1] > 0 && w[2] > 0;
		for (int t = 0; t < 3; t++)
			m[t] += w[t] / n;
		/* log(w0 / w1) = z0 - z1 ~ N(0, 2) */
		d = log(w[0] / w[1]);
		lr += d / n;
		lr2 += d * d / n;
		sum += w[0];
	}
	T_OK(ok, "rlw: positive weights summing to the task count");
	T_OK(near(m[0], 1, 0.03) && near(m[1], 1, 0.03) && near(m[2], 1, 0.03),
	     "rlw: every task's mean weight is 1 (%g %g %g)", m[0], m[1], m[2]);
	T_OK(fabs(lr) < 0.05 && near(lr2 - lr * lr, 2, 0.06),
	     "rlw: log weight ratios ~ N(0, 2) (mean %g, var %g)", lr, lr2 - lr * lr);
	w[1] = 5;
	mtl_balance_rlw(w, two, 3, &r);
	T_OK(w[1] == 5 && near(w[0] + w[2], 2, 1e-12),
	     "rlw: a missing task is not drawn, the others sum to 2");
}

/* CAGrad's objective for mix x of the weighted gradients. */
static double cag_f(const double *K, const double *x, int T, double c)
{
	double xb = 0, xx = 0, bb = 0;

	for (int i = 0; i < T; i++)
		for (int j = 0; j < T; j++) {
			xb += x[i] * K[i * T + j] / T;
			xx += x[i] * K[i * T + j] * x[j];
			bb += K[i * T + j] / T / T;
		}
	return xb + c * sqrt(bb) * sqrt(xx);
}

static void test_cagrad(void)
{
	double K[4] = { 1, -0.8, -0.8, 4 }, w[2] = { 1, 1 }, coef[2], best = INFINITY;
	double x[2], lam, g0, gw, c = 0.5;
	uint8_t on[2] = { 1, 1 };

	mtl_balance_cagrad(coef, K, w, on, 2, 0);
	T_OK(near(coef[0], 1, 1e-12) && near(coef[1], 1, 1e-12),
	     "cagrad: c = 0 is the plain sum");
	for (int k = 0; k <= 100000; k++) {
		x[0] = k / 100000.0;
		x[1] = 1 - x[0];
		best = fmin(best, cag_f(K, x, 2, c));
	}
	mtl_balance_cagrad(coef, K, w, on, 2, c);
	/* recover the mix from coef = (b + lam x) 2 / (1 + c^2) */
	for (int t = 0; t < 2; t++)
		x[t] = coef[t] * (1 + c * c) / 2 - 0.5;
	lam = x[0] + x[1];
	x[0] /= lam;
	x[1] /= lam;
	T_OK(cag_f(K, x, 2, c) <= best + 1e-6,
	     "cagrad: the mix reaches the grid minimum (%.8f vs %.8f)",
	     cag_f(K, x, 2, c), best);
	g0 = sqrt((K[0] + 2 * K[1] + K[3]) / 4);
	gw = sqrt(x[0] * x[0] * K[0] + 2 * x[0] * x[1] * K[1] + x[1] * x[1] * K[3]);
	T_OK(near(lam, c * g0 / gw, 1e-6), "cagrad: lambda = c |g0| / |gw|");
	on[1] = 0;
	mtl_balance_cagrad(coef, K, w, on, 2, c);
	T_OK(coef[1] == 0 && coef[0] > 0, "cagrad: a missing task gets no coefficient");
}

static void test_nash(void)
{
	/* orthogonal g1 = (2,0), g2 = (0,1): alpha_t = 1/|g_t|, d = (1,1) */
	double K[4] = { 4, 0, 0, 1 }, w[2] = { 1, 1 }, c[2], r;
	double Kc[4] = { 1, -1, -1, 2 }, K3[9], c3[3], w3[3] = { 1, 1, 1 };
	uint8_t on[3] = { 1, 1, 1 }, one[2] = { 0, 1 };
	int ok = 1;

	r = mtl_balance_nash(c, K, w, on, 2);
	T_OK(r < 1e-12 && near(c[0], 0.5, 1e-12) && near(c[1], 1, 1e-12),
	     "nash: orthogonal gradients scaled to unit norm each (%g, %g)", c[0], c[1]);
	/* conflicting (1,0), (-1,1): each task's share d.g_t = 1/alpha_t > 0 */
	r = mtl_balance_nash(c, Kc, w, on, 2);
	for (int i = 0; i < 2; i++) {
		double dg = c[0] * Kc[i * 2] + c[1] * Kc[i * 2 + 1];

		ok &= near(dg * c[i], 1, 1e-9) && dg > 0;
	}
	T_OK(r < 1e-9 && ok, "nash: conflicting gradients, (K a)_t a_t = 1 and the update helps both (a = %g, %g)",
	     c[0], c[1]);
	/* scale invariance of the bargaining: w_0 = 3 divides alpha_0 by 3 */
	w[0] = 3;
	mtl_balance_nash(c3, Kc, w, on, 2);
	T_OK(near(c3[0], c[0], 1e-9) && near(c3[1], c[1], 1e-9),
	     "nash: the update does not depend on a task's loss scale");
	w[0] = 1;
	/* three tasks, a random PSD Gram matrix */
	{
		double g[3][4] = { { 1, 2, 0, -1 }, { -2, 1, 1, 0 }, { 0, -1, 3, 1 } };

		for (int i = 0; i < 3; i++)
			for (int j = 0; j < 3; j++) {
				K3[i * 3 + j] = 0;
				for (int k = 0; k < 4; k++)
					K3[i * 3 + j] += g[i][k] * g[j][k];
			}
		r = mtl_balance_nash(c3, K3, w3, on, 3);
		T_OK(r < 1e-9 && c3[0] > 0 && c3[1] > 0 && c3[2] > 0,
		     "nash: three tasks solved (residual %.2g)", r);
	}
	r = mtl_balance_nash(c, K, w, one, 2);
	T_OK(c[0] == 0 && near(c[1], 1, 1e-12), "nash: a missing task gets no coefficient");
}

/* ---- on the tiny model ---- */

struct rig {
	struct mtl_bert *m;
	struct mtl_tasks *ts;
	struct mtl_heads *hd;
	struct mtl_train *tr;
	struct mtl_batch b;
	int32_t *lab[2];
};

static void rig_open(struct rig *g)
{
	struct mtl_err err = { "" };
	struct mtl_train_opts o;
	struct mtl_rng r;
	int B = 3, T = 7;

	memset(g, 0, sizeof(*g));
	t_tiny_model(&g->m, &g->ts, &g->hd);
	mtl_bert_set_threads(g->m, 1);
	mtl_train_opts_defaults(&o);
	o.lr = 1e-3f;
	o.sched = MTL_SCHED_CONSTANT;
	o.dropout = 0;
	if (mtl_train_new(&g->tr, g->m, g->hd, &o, &err)) {
		printf("Bail out! %s\n", err.msg);
		exit(1);
	}
	mtl_rng_init(&r, 3);
	g->b.B = B;
	g->b.T = T;
	g->b.ids = malloc(sizeof(int32_t) * B * T);
	g->b.lengths = malloc(sizeof(int32_t) * B);
	g->lab[0] = malloc(sizeof(int32_t) * B);
	g->lab[1] = malloc(sizeof(int32_t) * B * T);
	for (int i = 0; i < B; i++) {
		g->b.lengths[i] = T - i;
		g->lab[0][i] = (int32_t)mtl_rng_below(&r, (uint64_t)g->ts->task[0].n_labels);
		for (int k = 0; k < T; k++) {
			g->b.ids[i * T + k] = k < T - i
				? 5 + (int32_t)mtl_rng_below(&r, (uint64_t)g->m->cfg.vocab - 5)
				: 0;
			g->lab[1][i * T + k] = k > 0 && k < T - i
				? (int32_t)mtl_rng_below(&r, (uint64_t)g->ts->task[1].n_labels)
				: -100;
		}
	}
	g->b.labels = g->lab;
	g->b.n_tasks = 2;
}

static void rig_close(struct rig *g)
{
	mtl_train_free(g->tr);
	mtl_heads_free(g->hd);
	mtl_task_free(g->ts);
	mtl_bert_free(g->m);
	free(g->b.ids);
	free(g->b.lengths);
	free(g->lab[0]);
	free(g->lab[1]);
}

static double maxdiff(const float *a, const float *b, size_t n, double *scale)
{
	double d = 0, s = 0;

	for (size_t i = 0; i < n; i++) {
		d = fmax(d, fabs((double)a[i] - b[i]));
		s = fmax(s, fabs((double)b[i]));
	}
	*scale = s;
	return d;
}

/*
 * GradNorm uses the weights in force (1, 1) for the step: its gradient
 * from per-task passes must be the ordinary weighted gradient, whether
 * taken over the encoder or at its output.
 */
static void test_per_task_exact(void)
{
	struct rig g;
	struct mtl_balance_opts bo;
	struct mtl_balance *bal;
	struct mtl_step_stats st;
	struct mtl_err err;
	const struct mtl_batch *bp[1];
	double one[2] = { 1, 1 }, s, d, dh, loss;
	float *ref, *href;

	rig_open(&g);
	bp[0] = &g.b;
	mtl_step_stats_init(&st, 2);
	ref = malloc(sizeof(float) * g.m->n_params);
	href = malloc(sizeof(float) * g.hd->n_params);
	mtl_train_grad_weighted(g.tr, bp, 1, one, &st, &err);
	loss = st.loss;
	memcpy(ref, g.tr->grad, sizeof(float) * g.m->n_params);
	memcpy(href, g.tr->hgrad, sizeof(float) * g.hd->n_params);
	for (int at = 0; at < 2; at++) {
		mtl_balance_opts_defaults(&bo);
		bo.kind = MTL_BALANCE_GRADNORM;
		bo.at = at ? MTL_BALANCE_AT_OUTPUT : MTL_BALANCE_AT_ENCODER;
		if (mtl_balance_new(&bal, g.tr, &bo, &err)) {
			printf("Bail out! %s\n", err.msg);
			exit(1);
		}
		T_OK(mtl_balance_grad(bal, bp, 1, &st, &err) == 0, "per-task grad runs");
		d = maxdiff(g.tr->grad, ref, g.m->n_params, &s);
		T_OK(d <= 1e-5 * s, "%s: sum of per-task encoder gradients = the joint one (max diff %.3g of %.3g)",
		     at ? "encoder-output" : "encoder", d, s);
		dh = maxdiff(g.tr->hgrad, href, g.hd->n_params, &s);
		T_OK(dh <= 1e-6 * s, "%s: heads' gradients unchanged (max diff %.3g)",
		     at ? "encoder-output" : "encoder", dh);
		T_OK(near(st.loss, loss, 1e-9), "%s: the same loss", at ? "encoder-output" : "encoder");
		T_OK(bal->have_cos && fabs(bal->cos[1]) <= 1 && bal->cos[1] == bal->cos[2],
		     "%s: a symmetric cosine in [-1, 1] (%g)", at ? "encoder-output" : "encoder", bal->cos[1]);
		if (!at) {
			/* the cosine over the encoder, from G directly */
			size_t n = g.m->n_params;
			double ab = 0, aa = 0, bb = 0;

			for (size_t i = 0; i < n; i++) {
				ab += (double)bal->G[i] * bal->G[n + i];
				aa += (double)bal->G[i] * bal->G[i];
				bb += (double)bal->G[n + i] * bal->G[n + i];
			}
			T_OK(near(bal->cos[1], ab / sqrt(aa * bb), 1e-9),
			     "encoder: the cosine is that of the two task gradients");
		}
		mtl_balance_free(bal);
	}
	/* two accumulated batches: per-task gradients summed over both */
	{
		const struct mtl_batch *b2[2] = { &g.b, &g.b };
		float *ref2 = malloc(sizeof(float) * g.m->n_params);

		mtl_train_grad_weighted(g.tr, b2, 2, one, &st, &err);
		memcpy(ref2, g.tr->grad, sizeof(float) * g.m->n_params);
		for (int at = 0; at < 2; at++) {
			mtl_balance_opts_defaults(&bo);
			bo.kind = MTL_BALANCE_GRADNORM;
			bo.at = at ? MTL_BALANCE_AT_OUTPUT : MTL_BALANCE_AT_ENCODER;
			mtl_balance_new(&bal, g.tr, &bo, &err);
			mtl_balance_grad(bal, b2, 2, &st, &err);
			d = maxdiff(g.tr->grad, ref2, g.m->n_params, &s);
			T_OK(d <= 1e-5 * s && st.labelled[1] > 0,
			     "%s, --accumulate 2: per-task gradients = the joint one (max diff %.3g of %.3g)",
			     at ? "encoder-output" : "encoder", d, s);
			mtl_balance_free(bal);
		}
		free(ref2);
	}
	/* PCGrad: the combination is sum coef_t G_t, and it conflicts with
	 * no task gradient */
	mtl_balance_opts_defaults(&bo);
	bo.kind = MTL_BALANCE_PCGRAD;
	mtl_balance_new(&bal, g.tr, &bo, &err);
	mtl_balance_grad(bal, bp, 1, &st, &err);
	{
		size_t n = g.m->n_params;
		double d1 = 0, d2 = 0, e = 0;

		for (size_t i = 0; i < n; i++) {
			double c = bal->s.coef[0] * bal->G[i] + bal->s.coef[1] * bal->G[n + i];

			e = fmax(e, fabs(c - g.tr->grad[i]));
			d1 += (double)g.tr->grad[i] * bal->G[i];
			d2 += (double)g.tr->grad[i] * bal->G[n + i];
		}
		T_OK(e < 1e-6, "pcgrad: the encoder gradient is sum coef_t g_t");
		T_OK(d1 >= -1e-9 && d2 >= -1e-9,
		     "pcgrad: the result agrees with each task gradient (%g, %g; cos %g)",
		     d1, d2, bal->cos[1]);
	}
	mtl_balance_free(bal);
	free(ref);
	free(href);
	mtl_step_stats_release(&st);
	rig_close(&g);
}

/*
 * Every method with task 1 (ner) missing from the batch: the step runs
 * and is finite, task 1 gets no gradient (its head's slice stays zero),
 * its state stays as it was, and the encoder gradient is task 0's alone
 * times its coefficient.
 */
static void test_missing_task(void)
{
	static const enum mtl_balance_kind kinds[] = {
		MTL_BALANCE_UNCERTAINTY, MTL_BALANCE_DWA, MTL_BALANCE_GRADNORM,
		MTL_BALANCE_RLW, MTL_BALANCE_PCGRAD, MTL_BALANCE_CAGRAD,
		MTL_BALANCE_NASH,
	};
	struct rig g;
	struct mtl_step_stats st;
	struct mtl_err err;
	const struct mtl_batch *bp[1];
	float *ref;
	int32_t *ner, *topic;

	rig_open(&g);
	ner = g.lab[1]; /* g.b.labels is g.lab: keep the pointers */
	topic = g.lab[0];
	bp[0] = &g.b;
	mtl_step_stats_init(&st, 2);
	ref = malloc(sizeof(float) * g.m->n_params);
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		for (int at = 0; at < 2; at++) {
			struct mtl_balance_opts bo;
			struct mtl_balance *bal;
			double one[2] = { 1, 1 }, s, d, h1 = 0;
			int rc[3], ok = 1;
			const char *name = mtl_balance_name(kinds[k]);

			mtl_balance_opts_defaults(&bo);
			bo.kind = kinds[k];
			bo.at = at ? MTL_BALANCE_AT_OUTPUT : MTL_BALANCE_AT_ENCODER;
			mtl_balance_new(&bal, g.tr, &bo, &err);
			/* two steps with both tasks fill histories; the first
			 * step without task 1 may still close its DWA window */
			g.b.labels[1] = ner;
			for (int i = 0; i < 2; i++)
				mtl_balance_step(bal, bp, 1, &st, &err);
			g.b.labels[1] = NULL;
			/* stale per-task buffers must never be read: poison them */
			if (bal->G)
				for (size_t i = 0; i < 2 * g.m->n_params; i++)
					bal->G[i] = NAN;
			if (bal->D)
				for (size_t i = 0; i < bal->drows * bal->dcap; i++)
					bal->D[i] = NAN;
			{
				struct mtl_balance_state before;

				rc[0] = mtl_balance_step(bal, bp, 1, &st, &err);
				mtl_balance_state_init(&before, 2, 0);
				before.w[1] = bal->s.w[1];
				before.logvar[1] = bal->s.logvar[1];
				before.hist[1] = bal->s.hist[1];
				before.hist[3] = bal->s.hist[3];
				before.loss0[1] = bal->s.loss0[1];
				rc[1] = mtl_balance_step(bal, bp, 1, &st, &err);
				ok = bal->s.logvar[1] == before.logvar[1] &&
				     (kinds[k] == MTL_BALANCE_DWA
				      ? bal->s.hist[1] == before.hist[1]
				      : 1) &&
				     (isnan(before.loss0[1]) ? isnan(bal->s.loss0[1])
				      : bal->s.loss0[1] == before.loss0[1]) &&
				     (kinds[k] == MTL_BALANCE_RLW ||
				      kinds[k] == MTL_BALANCE_DWA ||
				      kinds[k] == MTL_BALANCE_UNCERTAINTY ||
				      bal->s.w[1] == before.w[1]);
				mtl_balance_state_release(&before);
			}
			rc[2] = mtl_balance_grad(bal, bp, 1, &st, &err);
			for (size_t i = 0; i < g.hd->n_tensors; i++)
				if (g.hd->tensors[i].task == 1)
					for (size_t j = 0; j < g.hd->tensors[i].numel; j++)
						h1 += fabs(g.tr->hgrad[g.hd->tensors[i].offset + j]);
			T_OK(rc[0] == 0 && rc[1] == 0 && rc[2] == 0 && isfinite(st.loss) &&
			     isfinite(st.grad_norm) && st.labelled[1] == 0 &&
			     isfinite(bal->s.coef[0]) && (!bal->have_cos || isnan(bal->cos[1])),
			     "%s (%s): steps without task 1 run and stay finite",
			     name, at ? "output" : "encoder");
			T_OK(h1 == 0, "%s (%s): task 1's head gets no gradient", name,
			     at ? "output" : "encoder");
			T_OK(ok, "%s (%s): task 1's state untouched while it is missing",
			     name, at ? "output" : "encoder");
			/* the encoder gradient is task 0's, scaled by its coefficient */
			memcpy(ref, g.tr->grad, sizeof(float) * g.m->n_params);
			one[0] = bal->s.coef[0];
			mtl_train_grad_weighted(g.tr, bp, 1, one, &st, &err);
			d = maxdiff(ref, g.tr->grad, g.m->n_params, &s);
			T_OK(s > 0 && d <= 1e-5 * s,
			     "%s (%s): the encoder gradient is coef_0 g_0 (max diff %.3g of %.3g)",
			     name, at ? "output" : "encoder", d, s);
			mtl_balance_free(bal);
		}
	/* a batch with no labels at all */
	g.b.labels[0] = NULL;
	g.b.labels[1] = NULL;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		struct mtl_balance_opts bo;
		struct mtl_balance *bal;
		int rc;

		mtl_balance_opts_defaults(&bo);
		bo.kind = kinds[k];
		mtl_balance_new(&bal, g.tr, &bo, &err);
		rc = mtl_balance_step(bal, bp, 1, &st, &err);
		T_OK(rc == 0 && st.loss == 0 && st.grad_norm == 0,
		     "%s: a batch without labels is a zero step", mtl_balance_name(kinds[k]));
		mtl_balance_free(bal);
	}
	g.lab[0] = topic;
	g.b.labels[1] = ner;
	free(ref);
	mtl_step_stats_release(&st);
	rig_close(&g);
}

/* Uncertainty through the trainer: s_t moves by AdamW on 1 - exp(-s) L. */
static void test_uncertainty_step(void)
{
	struct rig g;
	struct mtl_balance_opts bo;
	struct mtl_balance *bal;
	struct mtl_step_stats st;
	struct mtl_err err;
	const struct mtl_batch *bp[1];
	double L[2], ds[2];

	rig_open(&g);
	bp[0] = &g.b;
	mtl_step_stats_init(&st, 2);
	mtl_balance_opts_defaults(&bo);
	bo.kind = MTL_BALANCE_UNCERTAINTY;
	mtl_balance_new(&bal, g.tr, &bo, &err);
	mtl_balance_step(bal, bp, 1, &st, &err);
	L[0] = st.task_loss[0];
	L[1] = st.task_loss[1];
	for (int t = 0; t < 2; t++)
		ds[t] = 1 - L[t];
	/* AdamW's first step moves by lr * sign(g) (to eps) */
	T_OK(near(bal->s.logvar[0], ds[0] > 0 ? -1e-3 : 1e-3, 1e-4) &&
	     near(bal->s.logvar[1], ds[1] > 0 ? -1e-3 : 1e-3, 1e-4),
	     "uncertainty: one AdamW step of lr against 1 - L (L = %g, %g; s = %g, %g)",
	     L[0], L[1], bal->s.logvar[0], bal->s.logvar[1]);
	T_OK(near(st.loss, L[0] + L[1], 1e-9), "uncertainty: loss at s = 0 is the sum");
	mtl_balance_grad(bal, bp, 1, &st, &err);
	T_OK(near(st.loss, exp(-bal->s.logvar[0]) * st.task_loss[0] + bal->s.logvar[0] +
		  exp(-bal->s.logvar[1]) * st.task_loss[1] + bal->s.logvar[1], 1e-6) &&
	     near(bal->hw[0], exp(-bal->s.logvar[0]), 1e-12),
	     "uncertainty: the loss is sum exp(-s) L + s, weights exp(-s)");
	mtl_balance_free(bal);
	mtl_step_stats_release(&st);
	rig_close(&g);
}

/* --balance-every: coefficients reused between recomputations. */
static void test_every(void)
{
	struct rig g;
	struct mtl_balance_opts bo;
	struct mtl_balance *bal;
	struct mtl_step_stats st;
	struct mtl_err err;
	const struct mtl_batch *bp[1];
	double c0[2];
	int have[3];

	rig_open(&g);
	bp[0] = &g.b;
	mtl_step_stats_init(&st, 2);
	mtl_balance_opts_defaults(&bo);
	bo.kind = MTL_BALANCE_CAGRAD;
	bo.every = 3;
	mtl_balance_new(&bal, g.tr, &bo, &err);
	for (int i = 0; i < 3; i++) {
		mtl_balance_step(bal, bp, 1, &st, &err);
		have[i] = bal->have_cos;
		if (i == 0)
			memcpy(c0, bal->s.coef, sizeof(c0));
	}
	T_OK(have[0] && !have[1] && !have[2] && c0[0] == bal->s.coef[0] &&
	     c0[1] == bal->s.coef[1],
	     "--balance-every 3: per-task gradients on step 0 only, coefficients kept");
	mtl_balance_step(bal, bp, 1, &st, &err);
	T_OK(bal->have_cos && c0[0] != bal->s.coef[0],
	     "--balance-every 3: recomputed on step 3");
	mtl_balance_free(bal);
	mtl_step_stats_release(&st);
	rig_close(&g);
}

static void test_state_roundtrip(void)
{
	struct mtl_balance_state a, b;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked u;
	struct mtl_err err;
	int ok;

	mtl_balance_state_init(&a, 3, 5);
	mtl_balance_state_init(&b, 3, 9);
	for (int t = 0; t < 3; t++) {
		a.w[t] = 0.1 * t + 1.0 / 3;
		a.coef[t] = -t / 7.0;
		a.logvar[t] = 0.3f * (float)t - 0.1f;
		a.logvar_m[t] = 1e-7f * (float)t;
		a.logvar_v[t] = 3e-9f;
		a.win_sum[t] = 2.0 / 3 + t;
		a.win_n[t] = 4 + t;
		a.loss0[t] = t ? 1.0 / t : NAN;
	}
	a.hist[0] = 0.7;
	mtl_rng_u64(&a.rng);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mtl_balance_state_pack(&pk, &a);
	msgpack_unpacked_init(&u);
	msgpack_unpack_next(&u, sb.data, sb.size, NULL);
	T_OK(mtl_balance_state_unpack(&b, &u.data, &err) == 0, "state: unpacks");
	ok = !memcmp(a.rng.s, b.rng.s, sizeof(a.rng.s)) &&
	     !memcmp(a.logvar, b.logvar, 3 * sizeof(float)) &&
	     !memcmp(a.logvar_m, b.logvar_m, 3 * sizeof(float)) &&
	     !memcmp(a.logvar_v, b.logvar_v, 3 * sizeof(float)) &&
	     !memcmp(a.win_n, b.win_n, 3 * sizeof(int64_t));
	for (int t = 0; t < 3; t++)
		ok &= a.w[t] == b.w[t] && a.coef[t] == b.coef[t] &&
		      a.win_sum[t] == b.win_sum[t] &&
		      (isnan(a.loss0[t]) ? isnan(b.loss0[t]) : a.loss0[t] == b.loss0[t]);
	for (int t = 0; t < 6; t++)
		ok &= isnan(a.hist[t]) ? isnan(b.hist[t]) : a.hist[t] == b.hist[t];
	T_OK(ok, "state: every field back bit for bit");
	mtl_balance_state_release(&b);
	mtl_balance_state_init(&b, 2, 0);
	T_OK(mtl_balance_state_unpack(&b, &u.data, &err) == MTL_ERR_FORMAT &&
	     strstr(err.msg, "2 tasks"), "state: another task count fails: %s", err.msg);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	/* the JSON form a checkpoint keeps, through text and back */
	mtl_balance_state_release(&b);
	mtl_balance_state_init(&b, 3, 9);
	{
		json_t *j = mtl_balance_state_to_json(&a, "dwa"), *k;
		char *txt = json_dumps(j, 0);

		k = json_loads(txt, 0, NULL);
		T_OK(mtl_balance_state_from_json(&b, k, "dwa", &err) == 0,
		     "state: reads back from JSON text");
		ok = !memcmp(a.rng.s, b.rng.s, sizeof(a.rng.s)) &&
		     !memcmp(a.logvar, b.logvar, 3 * sizeof(float)) &&
		     !memcmp(a.logvar_m, b.logvar_m, 3 * sizeof(float)) &&
		     !memcmp(a.logvar_v, b.logvar_v, 3 * sizeof(float)) &&
		     !memcmp(a.win_n, b.win_n, 3 * sizeof(int64_t));
		for (int t = 0; t < 3; t++)
			ok &= a.w[t] == b.w[t] && a.coef[t] == b.coef[t] &&
			      a.win_sum[t] == b.win_sum[t] &&
			      (isnan(a.loss0[t]) ? isnan(b.loss0[t]) : a.loss0[t] == b.loss0[t]);
		for (int t = 0; t < 6; t++)
			ok &= isnan(a.hist[t]) ? isnan(b.hist[t]) : a.hist[t] == b.hist[t];
		T_OK(ok, "state: JSON keeps every field bit for bit (NaN as null)");
		T_OK(mtl_balance_state_from_json(&b, k, "pcgrad", &err) == MTL_ERR_FORMAT &&
		     strstr(err.msg, "'dwa', not 'pcgrad'"),
		     "state: another method's state is refused: %s", err.msg);
		free(txt);
		json_decref(j);
		json_decref(k);
	}
	mtl_balance_state_release(&a);
	mtl_balance_state_release(&b);
}

int main(void)
{
	test_pcgrad();
	test_cosine();
	test_uncertainty();
	test_dwa();
	test_gradnorm();
	test_rlw();
	test_cagrad();
	test_nash();
	test_per_task_exact();
	test_missing_task();
	test_uncertainty_step();
	test_every();
	test_state_roundtrip();
	return t_done();
}
