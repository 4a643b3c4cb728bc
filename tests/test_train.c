/*
 * test_train.c - one training step of the whole tiny model against the
 * PyTorch goldens (fixtures/golden/train*.safetensors): logits, losses,
 * every parameter's gradient and, for train.safetensors, every parameter
 * after one AdamW step.  Also checks that accumulating two half batches
 * gives the gradient of the whole batch.  Each tensor is reported with
 * its max abs diff; any failure makes the exit status non-zero.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "head.h"
#include "st.h"
#include "task.h"
#include "train.h"
#include "t.h"
#include "t_golden.h"

static struct mtl_st *gold;
static int gemm_split; /* 1: the projections threaded by column slices */

/* Compares n floats with the golden tensor name: |c - r| <= atol or
 * |c - r| <= rtol |r|, element by element. */
static int cmp(const char *name, const float *c, size_t n, double atol,
	       double rtol)
{
	const struct mtl_st_tensor *t = mtl_st_find(gold, name);
	float *r;
	double maxd = 0;
	int ok = 1;

	if (!t || t->numel != (int64_t)n) {
		T_OK(0, "%s: golden tensor present with %zu elements", name, n);
		return 0;
	}
	r = malloc(n * sizeof(float));
	mtl_st_read_f32(t, r, (int64_t)n, NULL);
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)c[i] - r[i]);

		if (d > maxd || d != d)
			maxd = d != d ? INFINITY : d;
		/* within atol absolutely or within rtol relatively */
		if (!(d <= atol || d <= rtol * fabs(r[i])))
			ok = 0;
	}
	free(r);
	T_OK(ok, "%-52s max abs diff %.3g", name, maxd);
	return ok;
}

struct fixture {
	struct mtl_bert *m;
	struct mtl_tasks *ts;
	struct mtl_heads *hd;
	struct mtl_train *tr;
	struct mtl_batch b;
	int32_t *lab[2];
};

static void load(struct fixture *f, const char *golden, float ls)
{
	struct mtl_err err = { "" };
	struct mtl_train_opts o;

	if (mtl_st_open(&gold, golden, &err))
		t_bail(err.msg);
	t_tiny_model(&f->m, &f->ts, &f->hd);
	mtl_bert_set_threads(f->m, 2);
	mtl_bert_set_gemm_split(f->m, gemm_split);
	mtl_train_opts_defaults(&o);
	o.lr = 1e-3f;
	o.clip = 0;
	o.warmup = 0;
	o.sched = MTL_SCHED_CONSTANT;
	o.dropout = 0;
	o.label_smoothing = ls;
	if (mtl_train_new(&f->tr, f->m, f->hd, &o, &err)) {
		printf("Bail out! %s\n", err.msg);
		exit(1);
	}
	t_golden_batch(gold, &f->b, f->lab);
}

static void release(struct fixture *f)
{
	mtl_train_free(f->tr);
	mtl_heads_free(f->hd);
	mtl_task_free(f->ts);
	mtl_bert_free(f->m);
	t_golden_release(&f->b, f->lab);
	mtl_st_close(gold);
	gold = NULL;
}

static void check_grads(struct fixture *f)
{
	char name[160];

	for (size_t i = 0; i < f->m->n_tensors; i++) {
		const struct mtl_bert_tensor *t = &f->m->tensors[i];
		/* the key bias gradient is 0 analytically: compare absolutely */
		int keyb = strstr(t->name, "key.bias") != NULL;

		snprintf(name, sizeof(name), "grad.%s", t->name);
		cmp(name, mtl_train_tensor_grad(f->tr, i), t->numel, keyb ? 1e-6 : 1e-5,
		    keyb ? 0 : 1e-3);
	}
	for (size_t i = 0; i < f->hd->n_tensors; i++) {
		const struct mtl_head_tensor *t = &f->hd->tensors[i];

		snprintf(name, sizeof(name), "grad.%s", t->name);
		cmp(name, f->tr->hgrad + t->offset, t->numel, 1e-5, 1e-3);
	}
}

static void check_forward(struct fixture *f, struct mtl_step_stats *st)
{
	float l;

	cmp("logits.topic", f->hd->h[0].logits, (size_t)f->b.B * 3, 1e-5, 1e-4);
	cmp("logits.ner", f->hd->h[1].logits, (size_t)f->b.B * f->b.T * 5,
	    1e-5, 1e-4);
	l = (float)st->task_loss[0];
	cmp("loss.topic", &l, 1, 1e-5, 1e-4);
	l = (float)st->task_loss[1];
	cmp("loss.ner", &l, 1, 1e-5, 1e-4);
	l = (float)st->loss;
	cmp("loss.total", &l, 1, 1e-5, 1e-4);
}

/* Every parameter after one AdamW step against the golden's. */
static void check_after(struct fixture *f)
{
	char name[160];

	for (size_t i = 0; i < f->m->n_tensors; i++) {
		const struct mtl_bert_tensor *t = &f->m->tensors[i];

		snprintf(name, sizeof(name), "after.%s", t->name);
		cmp(name, f->m->params + t->offset, t->numel, 1e-5, 1e-4);
	}
	for (size_t i = 0; i < f->hd->n_tensors; i++) {
		const struct mtl_head_tensor *t = &f->hd->tensors[i];

		snprintf(name, sizeof(name), "after.%s", t->name);
		cmp(name, f->hd->params + t->offset, t->numel, 1e-5, 1e-4);
	}
}

static void golden_step(void)
{
	struct fixture f;
	struct mtl_step_stats st;
	struct mtl_err err = { "" };
	const struct mtl_batch *bp;
	int rc;

	T_NOTE("train.safetensors: one step, label smoothing 0");
	load(&f, "fixtures/golden/train.safetensors", 0);
	mtl_step_stats_init(&st, 2);
	bp = &f.b;
	rc = mtl_train_step(f.tr, &bp, 1, &st, &err);
	T_OK(rc == 0, "train step runs (%s)", err.msg);
	check_forward(&f, &st);
	check_grads(&f);
	check_after(&f);
	mtl_step_stats_release(&st);
	release(&f);
}

/*
 * The primitives a layer above the trainer composes (balance.c): the
 * counts, the zeroed blocks, one forward, each task's backward at the
 * encoder output (its spec weight over its count) taken through the
 * encoder, the norm, the labelled counts and the update give the golden
 * step, as mtl_train_step does.
 */
static void primitives(void)
{
	struct fixture f;
	struct mtl_step_stats st;
	struct mtl_err err = { "" };
	const struct mtl_batch *bp;
	struct mtl_batch nolab;
	int32_t *lab[2];
	int64_t norm[2], want[2] = { 0, 0 };
	size_t BTH;
	float *dout, before[16];
	int ok = 1, layers = 0, rc;

	T_NOTE("train.safetensors: one step composed of the trainer's primitives");
	load(&f, "fixtures/golden/train.safetensors", 0);
	mtl_step_stats_init(&st, 2);
	bp = &f.b;
	BTH = (size_t)f.b.B * f.b.T * f.m->cfg.hidden;
	dout = malloc(sizeof(float) * BTH);
	for (int i = 0; i < f.b.B; i++) {
		want[0] += f.lab[0][i] != MTL_IGNORE;
		for (int k = 0; k < f.b.T; k++)
			want[1] += f.lab[1][i * f.b.T + k] != MTL_IGNORE;
	}
	mtl_train_count(f.tr, &bp, 1, norm);
	T_OK(norm[0] == want[0] && norm[1] == want[1],
	     "mtl_train_count: %lld topic rows, %lld NER tokens labelled",
	     (long long)norm[0], (long long)norm[1]);
	/* poisoned blocks: the zeroing must reach every element (a caller
	 * that writes word-embedding rows marks them) */
	for (size_t i = 0; i < f.m->n_params; i++)
		f.tr->grad[i] = NAN;
	memset(f.tr->wte_rows, 1, (size_t)f.m->cfg.vocab);
	for (size_t i = 0; i < f.hd->n_params; i++)
		f.tr->hgrad[i] = NAN;
	mtl_train_zero_grad(f.tr);
	rc = mtl_train_forward(f.tr, &f.b, 1, &err);
	T_OK(rc == 0, "mtl_train_forward runs (%s)", err.msg);
	for (int t = 0; t < 2; t++) {
		ok &= mtl_train_task_backward(f.tr, &f.b, t,
					      (float)(f.ts->task[t].weight / (double)norm[t]),
					      dout, &st) == 1;
		layers = mtl_train_encoder_backward(f.tr, f.tr->grad, dout);
		st.task_loss[t] /= (double)norm[t];
		st.loss += f.ts->task[t].weight * st.task_loss[t];
		st.labelled[t] = norm[t]; /* which heads mtl_train_apply steps */
	}
	T_OK(ok && layers == f.m->cfg.layers,
	     "each task's backward and an encoder backward through %d layers", layers);
	st.grad_norm = mtl_train_grad_norm(f.tr);
	check_forward(&f, &st);
	check_grads(&f);
	T_OK(mtl_train_apply(f.tr, &st) == 0 && st.step == 1 && f.tr->step == 1,
	     "mtl_train_apply: step %ld done", st.step);
	check_after(&f);
	/* a batch without labels for a task: no loss, dout all zero */
	nolab = f.b;
	lab[0] = f.lab[0];
	lab[1] = NULL;
	nolab.labels = lab;
	for (size_t i = 0; i < BTH; i++)
		dout[i] = NAN;
	ok = mtl_train_forward(f.tr, &nolab, 1, &err) == 0 &&
	     mtl_train_task_backward(f.tr, &nolab, 1, 1.0f, dout, &st) == 0;
	for (size_t i = 0; i < BTH; i++)
		ok &= dout[i] == 0;
	T_OK(ok, "a task without labels in the batch: returns 0, dout zeroed");
	/* a non-finite loss: skipped, nothing moves */
	st.loss = NAN;
	memcpy(before, f.m->params, sizeof(before));
	T_OK(mtl_train_apply(f.tr, &st) == 1 && f.tr->step == 1 &&
	     !memcmp(before, f.m->params, sizeof(before)),
	     "mtl_train_apply skips a non-finite loss");
	free(dout);
	mtl_step_stats_release(&st);
	release(&f);
}

static void golden_grad(const char *file, float ls, int nolabel)
{
	struct fixture f;
	struct mtl_step_stats st;
	struct mtl_err err = { "" };
	const struct mtl_batch *bp;
	int rc;

	T_NOTE("%s: gradients, label smoothing %g", file, ls);
	load(&f, file, ls);
	mtl_step_stats_init(&st, 2);
	bp = &f.b;
	rc = mtl_train_grad(f.tr, &bp, 1, &st, &err);
	T_OK(rc == 0, "forward and backward run (%s)", err.msg);
	check_forward(&f, &st);
	check_grads(&f);
	if (nolabel) {
		int zero = 1;

		T_OK(st.task_loss[1] == 0 && st.labelled[1] == 0,
		     "no NER labels: loss exactly 0 (%g), 0 labelled",
		     st.task_loss[1]);
		T_OK(isfinite(st.loss), "total loss finite");
		for (size_t i = 0; i < f.hd->n_tensors; i++)
			if (f.hd->tensors[i].task == 1)
				for (size_t j = 0; j < f.hd->tensors[i].numel; j++)
					zero &= f.tr->hgrad[f.hd->tensors[i].offset + j] == 0;
		T_OK(zero, "NER head gradients exactly 0");
	}
	mtl_step_stats_release(&st);
	release(&f);
}

/* Rows [r0, r1) of f->b as a batch of their own (labels copied). */
static void sub_batch(struct mtl_batch *s, int32_t *lab[2],
		      const struct fixture *f, int r0, int r1)
{
	int T = f->b.T;

	memset(s, 0, sizeof(*s));
	s->B = r1 - r0;
	s->T = T;
	s->ids = f->b.ids + r0 * T;
	s->lengths = f->b.lengths + r0;
	lab[0] = f->lab[0] + r0;
	lab[1] = f->lab[1] + r0 * T;
	s->labels = lab;
	s->n_tasks = 2;
}

static void accumulation(void)
{
	struct fixture f;
	struct mtl_step_stats st, st2;
	struct mtl_batch s[2];
	const struct mtl_batch *bp[2];
	int32_t *lab[2][2];
	float *g1, *h1;
	double dmax = 0, gmax = 0;
	int ok = 1;

	T_NOTE("accumulation: rows 0-0 and 1-3 as two batches vs all four");
	load(&f, "fixtures/golden/train.safetensors", 0);
	mtl_step_stats_init(&st, 2);
	mtl_step_stats_init(&st2, 2);
	bp[0] = &f.b;
	mtl_train_grad(f.tr, bp, 1, &st, NULL);
	g1 = malloc(sizeof(float) * f.m->n_params);
	h1 = malloc(sizeof(float) * f.hd->n_params);
	memcpy(g1, f.tr->grad, sizeof(float) * f.m->n_params);
	memcpy(h1, f.tr->hgrad, sizeof(float) * f.hd->n_params);
	/* uneven split: row 0 has a topic label only, so the NER
	 * normaliser must come from the other batch */
	sub_batch(&s[0], lab[0], &f, 0, 1);
	sub_batch(&s[1], lab[1], &f, 1, 4);
	bp[0] = &s[0];
	bp[1] = &s[1];
	mtl_train_grad(f.tr, bp, 2, &st2, NULL);
	for (size_t i = 0; i < f.m->n_params; i++) {
		double d = fabs((double)g1[i] - f.tr->grad[i]);

		dmax = d > dmax ? d : dmax;
		gmax = fabs(g1[i]) > gmax ? fabs(g1[i]) : gmax;
		ok &= d <= 1e-7 + 1e-5 * fabs(g1[i]);
	}
	for (size_t i = 0; i < f.hd->n_params; i++) {
		double d = fabs((double)h1[i] - f.tr->hgrad[i]);

		dmax = d > dmax ? d : dmax;
		ok &= d <= 1e-7 + 1e-5 * fabs(h1[i]);
	}
	T_OK(ok, "accumulated gradients equal the one-batch ones (max abs diff %.3g, max |g| %.3g)",
	     dmax, gmax);
	T_OK(fabs(st.loss - st2.loss) <= 1e-6 * fabs(st.loss),
	     "accumulated loss %.9g equals one-batch loss %.9g", st2.loss,
	     st.loss);
	T_OK(st.labelled[1] == st2.labelled[1] && st.labelled[0] == st2.labelled[0],
	     "same labelled counts (%lld, %lld)", (long long)st2.labelled[0],
	     (long long)st2.labelled[1]);
	free(g1);
	free(h1);
	mtl_step_stats_release(&st);
	mtl_step_stats_release(&st2);
	release(&f);
}

/*
 * torch's AdamW skips parameters whose .grad is None: the pooler (in no
 * loss) and the head of a task without labels in the step keep their
 * weights, no weight decay; a head's first labelled step is its AdamW
 * step 1 (bias corrections of t = 1: each weight moves by about lr).
 */
static void no_gradient_no_step(void)
{
	struct fixture f;
	struct mtl_step_stats st;
	struct mtl_err err = { "" };
	const struct mtl_batch *bp;
	const struct mtl_head_tensor *w = NULL;
	const struct mtl_bert_tensor *pw = NULL;
	float *hbefore, *pbefore;
	double lo = INFINITY, hi = 0;
	int rc, moved = 1;

	T_NOTE("train-nolabel.safetensors: no ner labels, then some");
	load(&f, "fixtures/golden/train-nolabel.safetensors", 0);
	mtl_step_stats_init(&st, 2);
	for (size_t i = 0; i < f.hd->n_tensors; i++)
		if (!w && f.hd->tensors[i].task == 1 && f.hd->tensors[i].ndim == 2)
			w = &f.hd->tensors[i];
	for (size_t i = 0; i < f.m->n_tensors; i++)
		if (!strcmp(f.m->tensors[i].name, "pooler.dense.weight"))
			pw = &f.m->tensors[i];
	if (!w || !pw)
		t_bail("no ner head weight or pooler weight");
	hbefore = malloc(sizeof(float) * f.hd->n_params);
	pbefore = malloc(sizeof(float) * pw->numel);
	memcpy(hbefore, f.hd->params, sizeof(float) * f.hd->n_params);
	memcpy(pbefore, f.m->params + pw->offset, sizeof(float) * pw->numel);
	f.tr->o.weight_decay = f.tr->adam.wd = 0.1f; /* a visible decay */
	bp = &f.b;
	for (int k = 0; k < 2; k++)
		rc = mtl_train_step(f.tr, &bp, 1, &st, &err);
	T_OK(rc == 0 && st.labelled[1] == 0, "two steps without ner labels (%s)", err.msg);
	T_OK(!memcmp(hbefore + w->offset, f.hd->params + w->offset,
		     sizeof(float) * w->numel),
	     "the ner head without labels keeps its weights (no decay)");
	T_OK(!memcmp(pbefore, f.m->params + pw->offset, sizeof(float) * pw->numel),
	     "the pooler keeps its weights (no decay)");
	T_OK(f.tr->head_steps[0] == 2 && f.tr->head_steps[1] == 0,
	     "AdamW steps per head: topic %ld, ner %ld", f.tr->head_steps[0],
	     f.tr->head_steps[1]);
	for (int i = 0; i < f.b.B * f.b.T; i++)
		f.lab[1][i] = i % f.b.T < f.b.lengths[i / f.b.T] ? 0 : MTL_IGNORE;
	rc = mtl_train_step(f.tr, &bp, 1, &st, &err);
	for (size_t i = 0; i < w->numel; i++) {
		size_t k = w->offset + i;
		/* take the decay out: |lr * mhat / (sqrt(vhat) + eps)| */
		double d = fabs(hbefore[k] * (1 - 1e-3 * 0.1) - f.hd->params[k]);

		if (f.tr->hgrad[k] == 0)
			continue;
		moved &= d > 0;
		lo = fmin(lo, d);
		hi = fmax(hi, d);
	}
	T_OK(rc == 0 && f.tr->head_steps[1] == 1 && moved && lo > 0.99e-3 &&
	     hi < 1.01e-3, "the ner head's first labelled step is its step 1: moves %.4g..%.4g (lr 1e-3)",
	     lo, hi);
	free(hbefore);
	free(pbefore);
	mtl_step_stats_release(&st);
	release(&f);
}

/* Whether runs a and b hold the same parameters, moments and heads. */
static int same_state(const struct fixture *a, const struct fixture *b)
{
	size_t n = a->m->n_params;

	return !memcmp(a->m->params, b->m->params, sizeof(float) * n) &&
	       !memcmp(a->tr->mom1, b->tr->mom1, sizeof(float) * n) &&
	       !memcmp(a->tr->mom2, b->tr->mom2, sizeof(float) * n) &&
	       !memcmp(a->hd->params, b->hd->params, sizeof(float) * a->hd->n_params);
}

/* Whether no layer tensor's place in f's tr->grad was written. */
static int layers_untouched(const struct fixture *f)
{
	for (size_t i = 0; i < f->m->n_tensors; i++)
		for (size_t j = 0; f->m->tensors[i].layer >= 0 && j < f->m->tensors[i].numel; j++)
			if (f->tr->grad[f->m->tensors[i].offset + j] != 0)
				return 0;
	return 1;
}

/*
 * Three steps with dropout, clipping that bites, layer-wise decay and a
 * task without labels in the last, three ways: the plain gradient pass
 * and update (mtl_train_grad, mtl_train_apply), o.low_memory, and
 * mtl_train_step's slotted step.  The same parameters, heads and
 * moments bit for bit; the layers' gradients of the two others never
 * reach tr->grad (the low-memory one-layer block is left zero); the
 * slotted step's are the plain pass's bits where mtl_train_tensor_grad
 * finds them; more than one batch a low-memory step is refused.
 */
static void low_memory(void)
{
	struct fixture f[3];
	struct mtl_step_stats st[3];
	struct mtl_err err = { "" };
	const struct mtl_batch *bp[3];
	int rc[3] = { 0, 0, 0 }, same, untouched = 1, clipped = 1, found = 1;
	int32_t *ner;

	T_NOTE("the low-memory and the slotted step against the plain one");
	for (int k = 0; k < 3; k++) {
		struct mtl_train_opts o;

		if (mtl_st_open(&gold, "fixtures/golden/train.safetensors", &err))
			t_bail(err.msg);
		t_tiny_model(&f[k].m, &f[k].ts, &f[k].hd);
		mtl_bert_set_threads(f[k].m, 2);
		mtl_train_opts_defaults(&o);
		o.lr = 1e-3f;
		o.clip = 0.05f;
		o.layer_decay = 0.8f;
		o.dropout = 0.1f;
		o.low_memory = k == 1;
		if (mtl_train_new(&f[k].tr, f[k].m, f[k].hd, &o, &err))
			t_bail(err.msg);
		t_golden_batch(gold, &f[k].b, f[k].lab);
		mtl_step_stats_init(&st[k], 2);
		bp[k] = &f[k].b;
		ner = f[k].lab[1]; /* b.labels is lab */
		for (int s = 0; s < 3 && !rc[k]; s++) {
			if (s == 2) /* no ner labels: its head takes no step */
				f[k].lab[1] = NULL;
			rc[k] = k ? mtl_train_step(f[k].tr, &bp[k], 1, &st[k], &err)
				  : mtl_train_grad(f[k].tr, &bp[k], 1, &st[k], &err) ||
					    mtl_train_apply(f[k].tr, &st[k]);
			clipped &= st[k].grad_norm > 0.05;
		}
		f[k].lab[1] = ner;
		mtl_st_close(gold);
		gold = NULL;
	}
	same = same_state(&f[0], &f[1]) && st[0].grad_norm == st[1].grad_norm &&
	       st[0].loss == st[1].loss;
	T_OK(!rc[0] && !rc[1] && clipped && same,
	     "low-memory: three clipped steps, the same parameters, moments and heads, bit for bit (%s)",
	     err.msg);
	same = same_state(&f[0], &f[2]) && st[0].grad_norm == st[2].grad_norm &&
	       st[0].loss == st[2].loss;
	T_OK(!rc[2] && same,
	     "slotted: three clipped steps, the same parameters, moments and heads, bit for bit (%s)",
	     err.msg);
	for (size_t j = 0; j < f[1].tr->lgrad_n; j++)
		untouched &= f[1].tr->lgrad[j] == 0;
	T_OK(untouched && layers_untouched(&f[1]) && !layers_untouched(&f[0]),
	     "low-memory: the layers' gradients went through the one-layer block only");
	for (size_t i = 0; i < f[2].m->n_tensors; i++)
		found &= !memcmp(mtl_train_tensor_grad(f[2].tr, i),
				 f[0].tr->grad + f[2].m->tensors[i].offset,
				 sizeof(float) * f[2].m->tensors[i].numel);
	T_OK(f[2].tr->slotted && layers_untouched(&f[2]) && found,
	     "slotted: the layers' gradients never reached tr->grad; the plain pass's bits where mtl_train_tensor_grad finds them");
	bp[1] = &f[1].b;
	{
		const struct mtl_batch *two[2] = { &f[1].b, &f[1].b };

		T_OK(mtl_train_step(f[1].tr, two, 2, &st[1], &err) == MTL_ERR_ARG,
		     "two batches a step: refused (%s)", err.msg);
	}
	for (int k = 0; k < 3; k++) {
		mtl_step_stats_release(&st[k]);
		mtl_train_free(f[k].tr);
		mtl_heads_free(f[k].hd);
		mtl_task_free(f[k].ts);
		mtl_bert_free(f[k].m);
		t_golden_release(&f[k].b, f[k].lab);
	}
}

/* --warmup-ratio as Hugging Face counts it: ceil(total * ratio) in double */
static void warmup_steps(void)
{
	static const struct { double ratio; long total, want; } c[] = {
		{ 0.1, 150, 15 }, { 0.1, 151, 16 }, { 0.06, 1000, 60 },
		{ 0.3, 10, 3 }, { 0.05, 7, 1 }, { 0, 100, 0 }, { 1, 9, 9 },
	};
	struct mtl_train_opts o;

	mtl_train_opts_defaults(&o);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		o.warmup_ratio = c[i].ratio;
		o.total = c[i].total;
		T_OK(mtl_train_warmup(&o) == c[i].want,
		     "warm-up ratio %g over %ld steps: %ld steps (want %ld)",
		     c[i].ratio, c[i].total, mtl_train_warmup(&o), c[i].want);
	}
	o.warmup = 4;
	T_OK(mtl_train_warmup(&o) == 4, "--warmup wins over the ratio");
}

int main(void)
{
	warmup_steps();
	no_gradient_no_step();
	golden_step();
	primitives();
	golden_grad("fixtures/golden/train-ls.safetensors", 0.1f, 0);
	golden_grad("fixtures/golden/train-nolabel.safetensors", 0, 1);
	gemm_split = 1;
	T_NOTE("again with the projections threaded by column slices");
	golden_grad("fixtures/golden/train.safetensors", 0, 0);
	gemm_split = 0;
	accumulation();
	low_memory();
	return t_done();
}
