/*
 * test_emb.c - the embedding task's losses against the PyTorch reference
 * (tools/ref_emb.py): each loss and its gradient with respect to the
 * pooled embeddings (fixtures/golden/emb-loss.safetensors), then one
 * training step of the tiny model through the trainer, the extra rows of
 * positives and negatives included (fixtures/golden/emb-train.safetensors),
 * every encoder gradient to 1e-5; and the loss's own gradient against
 * central finite differences.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emb.h"
#include "head.h"
#include "st.h"
#include "task.h"
#include "train.h"
#include "t.h"
#include "t_golden.h"

static struct mtl_st *gold;

static void need(const char *name, float *dst, int64_t n)
{
	if (mtl_st_read_f32(mtl_st_find(gold, name), dst, n, NULL))
		t_bail(name);
}

static void need_i32(const char *name, int32_t *dst, int64_t n)
{
	if (mtl_st_read_i32(mtl_st_find(gold, name), dst, n, NULL))
		t_bail(name);
}

enum { R = 13, H = 16, N = 5 };

struct emb_case {
	const char *name;
	enum mtl_emb_loss loss;
	int symmetric, negatives, n_dims;
	int dims[3];
	float weights[3];
};

static const struct emb_case cases[] = {
	{ "mnrl", MTL_EMB_MNRL, 0, 0, 0, { 0 }, { 0 } },
	{ "mnrl_sym", MTL_EMB_MNRL, 1, 0, 0, { 0 }, { 0 } },
	{ "mnrl_neg", MTL_EMB_MNRL, 0, 1, 0, { 0 }, { 0 } },
	{ "mnrl_sym_neg", MTL_EMB_MNRL, 1, 1, 0, { 0 }, { 0 } },
	{ "cosent", MTL_EMB_COSENT, 0, 0, 0, { 0 }, { 0 } },
	{ "cosine_mse", MTL_EMB_COSINE_MSE, 0, 0, 0, { 0 }, { 0 } },
	{ "mnrl_neg_matryoshka", MTL_EMB_MNRL, 0, 1, 3, { 16, 8, 4 },
	  { 1.0f, 0.5f, 0.25f } },
	{ "cosent_matryoshka", MTL_EMB_COSENT, 0, 0, 3, { 16, 8, 4 },
	  { 1.0f, 1.0f, 1.0f } },
};

static void spec_of(struct mtl_task_emb *s, const struct emb_case *c)
{
	memset(s, 0, sizeof(*s));
	s->loss = c->loss;
	s->scale = 20;
	s->symmetric = c->symmetric;
	s->n_dims = c->n_dims;
	for (int k = 0; k < c->n_dims; k++) {
		s->dims[k] = c->dims[k];
		s->weights[k] = c->weights[k];
	}
}

static double loss_at(const float *P, const int32_t *a, const int32_t *p,
		      const int32_t *g, const float *y,
		      const struct mtl_task_emb *s)
{
	float dP[R * H];
	double L;

	memset(dP, 0, sizeof(dP));
	if (mtl_emb_loss(&L, dP, P, R, H, a, p, g, y, N, s, 1.0f, NULL, NULL))
		t_bail("out of memory");
	return L;
}

static void test_losses(void)
{
	struct mtl_err err = { "" };
	float P[R * H], y[N], dP[R * H], want[R * H], wl;
	int32_t a[N], p[N], g[N];

	if (mtl_st_open(&gold, "fixtures/golden/emb-loss.safetensors", &err))
		t_bail(err.msg);
	need("pooled", P, R * H);
	need("scores", y, N);
	need_i32("anchors", a, N);
	need_i32("positives", p, N);
	need_i32("negatives", g, N);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct mtl_task_emb s;
		char name[64];
		double L, dl, dg;

		spec_of(&s, &cases[c]);
		memset(dP, 0, sizeof(dP));
		T_OK(!mtl_emb_loss(&L, dP, P, R, H, a, p,
				   cases[c].negatives ? g : NULL, y, N, &s,
				   1.0f, NULL, &err), "%s: computed", cases[c].name);
		snprintf(name, sizeof(name), "loss.%s", cases[c].name);
		need(name, &wl, 1);
		snprintf(name, sizeof(name), "grad.%s", cases[c].name);
		need(name, want, R * H);
		dl = fabs(L - wl);
		dg = t_maxdiff(dP, want, R * H);
		T_OK(dl <= 1e-5 && dg <= 1e-5,
		     "%s: loss %.6f (torch %.6f, diff %.2g), dL/dpooled max abs diff %.2g",
		     cases[c].name, L, wl, dl, dg);
	}
	/* the gradient of the symmetric MNRL with negatives and Matryoshka
	 * dims, against central differences in double around P */
	{
		struct mtl_task_emb s = { MTL_EMB_MNRL, 20, 1, 3, { 16, 8, 4 },
					  { 1, 0.5f, 0.25f } };
		double worst = 0, L;

		memset(dP, 0, sizeof(dP));
		if (mtl_emb_loss(&L, dP, P, R, H, a, p, g, y, N, &s, 1.0f, NULL, NULL))
			t_bail("out of memory");
		for (int i = 0; i < R * H; i++) {
			float keep = P[i], h = 1e-2f;
			double fp, fm;

			P[i] = keep + h;
			fp = loss_at(P, a, p, g, y, &s);
			P[i] = keep - h;
			fm = loss_at(P, a, p, g, y, &s);
			P[i] = keep;
			worst = fmax(worst, fabs((fp - fm) / (2.0 * h) - dP[i]));
		}
		T_OK(worst < 2e-3, "symmetric MNRL + Matryoshka: finite differences agree (max %.2g)",
		     worst);
	}
	mtl_st_close(gold);
	gold = NULL;
}

static const char emb_tasks[] =
	"{\"tasks\": [{\"name\": \"sim\", \"kind\": \"embedding\", "
	"\"loss\": \"mnrl\", \"symmetric\": true, "
	"\"matryoshka_dims\": [32, 16, 8], \"matryoshka_weights\": [1, 0.5, 0.5]}]}";

/*
 * One gradient pass of the trainer over a batch of 4 anchors with 6 extra
 * rows (4 positives, 2 hard negatives), dropout off, against the
 * reference's encoder gradients.
 */
static void test_train(void)
{
	enum { TB = 4, TE = 6, TT = 8 };
	struct mtl_err err = { "" };
	struct mtl_bert *m;
	struct mtl_tasks *ts;
	struct mtl_heads *hd;
	struct mtl_train *tr;
	struct mtl_train_opts o;
	struct mtl_step_stats st;
	struct mtl_batch b;
	const struct mtl_batch *bp = &b;
	int32_t ids[(TB + TE) * TT], mask[(TB + TE) * TT], len[TB + TE] = { 0 };
	int32_t pos[TB], neg[TB], *labels[1] = { pos }, *negs[1] = { neg };
	float wl, *want;
	double worst = 0;
	int bad = 0;

	if (mtl_st_open(&gold, "fixtures/golden/emb-train.safetensors", &err) ||
	    mtl_bert_load(&m, "fixtures/tiny", &err) ||
	    mtl_task_parse(&ts, emb_tasks, sizeof(emb_tasks) - 1, "tasks", &err) ||
	    mtl_heads_new(&hd, ts, m->cfg.hidden, MTL_POOL_CLS, &err))
		t_bail(err.msg);
	mtl_train_opts_defaults(&o);
	o.dropout = 0;
	if (mtl_train_new(&tr, m, hd, &o, &err))
		t_bail(err.msg);
	need_i32("input_ids", ids, (TB + TE) * TT);
	need_i32("attention_mask", mask, (TB + TE) * TT);
	need_i32("negatives", neg, TB);
	need_i32("positives", pos, TB);
	for (int i = 0; i < (TB + TE) * TT; i++)
		len[i / TT] += mask[i];
	memset(&b, 0, sizeof(b));
	b.B = TB;
	b.E = TE;
	b.T = TT;
	b.ids = ids;
	b.lengths = len;
	b.labels = labels;
	b.neg = negs;
	b.n_tasks = 1;
	T_OK(mtl_train_rows(tr, &b) == TB + TE, "the forward runs the %d extra rows", TE);
	if (mtl_step_stats_init(&st, 1) || mtl_train_grad(tr, &bp, 1, &st, &err))
		t_bail(err.msg);
	need("loss", &wl, 1);
	T_OK(fabs(st.task_loss[0] - wl) <= 1e-5 && st.labelled[0] == TB,
	     "trainer: loss %.6f (torch %.6f), %lld labelled rows", st.task_loss[0],
	     wl, (long long)st.labelled[0]);
	for (size_t i = 0; i < m->n_tensors; i++) {
		const struct mtl_bert_tensor *t = &m->tensors[i];
		char name[160];
		double d;

		snprintf(name, sizeof(name), "grad.%s", t->name);
		want = malloc(sizeof(float) * t->numel);
		need(name, want, (int64_t)t->numel);
		d = t_maxdiff(tr->grad + t->offset, want, (long)t->numel);
		worst = fmax(worst, d);
		if (d > 1e-5) {
			T_NOTE("%s: max abs diff %.3g", t->name, d);
			bad++;
		}
		free(want);
	}
	T_OK(!bad, "trainer: every encoder gradient within 1e-5 of torch's (max %.2g)",
	     worst);
	{
		/* mtl_train_step's slotted step (train.h): the same gradient
		 * bits, the extra rows' included */
		struct mtl_bert *m2;
		struct mtl_heads *hd2;
		struct mtl_train *tr2;
		int same = 1;

		if (mtl_bert_load(&m2, "fixtures/tiny", &err) ||
		    mtl_heads_new(&hd2, ts, m2->cfg.hidden, MTL_POOL_CLS, &err) ||
		    mtl_train_new(&tr2, m2, hd2, &o, &err) ||
		    mtl_train_step(tr2, &bp, 1, &st, &err) < 0)
			t_bail(err.msg);
		for (size_t i = 0; i < m->n_tensors; i++)
			same &= !memcmp(mtl_train_tensor_grad(tr2, i), tr->grad + m->tensors[i].offset,
					sizeof(float) * m->tensors[i].numel);
		T_OK(tr2->slotted && same,
		     "trainer: the slotted step's encoder gradients are the gradient pass's bits");
		mtl_train_free(tr2);
		mtl_heads_free(hd2);
		mtl_bert_free(m2);
	}
	mtl_step_stats_release(&st);
	mtl_train_free(tr);
	mtl_heads_free(hd);
	mtl_task_free(ts);
	mtl_bert_free(m);
	mtl_st_close(gold);
	gold = NULL;
}

int main(void)
{
	test_losses();
	test_train();
	return t_done();
}
