/*
 * test_kinds.c - the task kinds beyond sequence and token against the
 * PyTorch reference: fixtures/golden/train-multilabel.safetensors is the
 * tiny model's training batch with a multilabel task ("tags": sigmoid +
 * binary cross-entropy, one row unlabelled) beside topic and ner, and
 * train-regression.safetensors the same with a regression task ("score":
 * a relu hidden layer over mean pooling, squared error, one row without a
 * target), and train-pair.safetensors a batch of text pairs ([CLS] a
 * [SEP] b [SEP], token type ids 0 then 1) with a pair task ("nli", one row
 * unlabelled).  One gradient pass must give the new head's outputs, every
 * loss and every parameter's gradient (the encoder's too, and
 * token_type_embeddings' row 1 for the pairs) to 1e-5.  Also:
 * mtl_loss_bce and mtl_loss_mse against hand-computed cases.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "data.h"
#include "head.h"
#include "loss.h"
#include "st.h"
#include "task.h"
#include "train.h"
#include "t.h"

static struct mtl_st *gold;

static void bail(const char *msg)
{
	printf("Bail out! %s\n", msg);
	exit(1);
}

/* n floats of c against the golden tensor name: |c - r| <= atol or
 * <= rtol |r| element by element. */
static void cmp(const char *name, const float *c, size_t n, double atol,
		double rtol)
{
	const struct mtl_st_tensor *t = mtl_st_find(gold, name);
	float *r = malloc((n + 1) * sizeof(float));
	double maxd = 0;
	int ok = t && t->numel == (int64_t)n && r &&
		 !mtl_st_read_f32(t, r, (int64_t)n, NULL);

	for (size_t i = 0; ok && i < n; i++) {
		double d = fabs((double)c[i] - r[i]);

		maxd = d > maxd || d != d ? (d != d ? INFINITY : d) : maxd;
		if (!(d <= atol || d <= rtol * fabs(r[i])))
			ok = 0;
	}
	free(r);
	T_OK(ok, "%-52s max abs diff %.3g", name, maxd);
}

/* The golden's labels.NAME (n int32) into a new array. */
static int32_t *labels(const char *name, int64_t n)
{
	char key[64];
	int32_t *v = malloc((size_t)n * sizeof(int32_t));

	snprintf(key, sizeof(key), "labels.%s", name);
	if (!v || mtl_st_read_i32(mtl_st_find(gold, key), v, n, NULL))
		bail("golden labels unreadable");
	return v;
}

/*
 * Heads for the golden's tasks: the tiny model's topic and ner heads from
 * fixtures/tiny/heads.safetensors, the new head from the golden's init.*.
 */
static void load_heads(struct mtl_heads *hd)
{
	struct mtl_st *tiny;
	struct mtl_err err = { "" };
	char key[128];

	if (mtl_st_open(&tiny, "fixtures/tiny/heads.safetensors", &err))
		bail(err.msg);
	for (size_t i = 0; i < hd->n_tensors; i++) {
		const struct mtl_head_tensor *t = &hd->tensors[i];
		const struct mtl_st_tensor *s = mtl_st_find(tiny, t->name);

		snprintf(key, sizeof(key), "init.%s", t->name);
		if (!s)
			s = mtl_st_find(gold, key);
		if (!s || mtl_st_read_f32(s, hd->params + t->offset,
					  (int64_t)t->numel, &err))
			bail("head tensor missing from both files");
	}
	mtl_st_close(tiny);
}

/* The golden's labels.NAME of a regression task (F32, NaN: none) as
 * label slots. */
static int32_t *targets(const char *name, int64_t n)
{
	char key[64];
	float *v = malloc((size_t)n * sizeof(float));
	int32_t *l = malloc((size_t)n * sizeof(int32_t));

	snprintf(key, sizeof(key), "labels.%s", name);
	if (!v || !l || mtl_st_read_f32(mtl_st_find(gold, key), v, n, NULL))
		bail("golden targets unreadable");
	for (int64_t i = 0; i < n; i++)
		l[i] = isnan(v[i]) ? MTL_IGNORE : mtl_label_of_value(v[i]);
	free(v);
	return l;
}

/* One gradient pass over the golden batch of file, whose third task is
 * of the kind given, with width outputs per example. */
static void golden(const char *file, enum mtl_task_kind kind)
{
	struct mtl_err err = { "" };
	struct mtl_bert *m;
	struct mtl_tasks *ts;
	struct mtl_heads *hd;
	struct mtl_train *tr;
	struct mtl_train_opts o;
	struct mtl_step_stats st;
	struct mtl_batch b = { 0 };
	const struct mtl_batch *bp = &b;
	const struct mtl_st_tensor *ids;
	const char *spec;
	int32_t *mask, *lab[3];
	char name[160];
	float l;
	int B, T, C;

	T_NOTE("%s: topic, ner and a %s task", file, mtl_task_kind_name(kind));
	if (mtl_st_open(&gold, file, &err))
		bail(err.msg);
	spec = mtl_st_meta(gold, "tasks");
	if (!spec || mtl_task_parse(&ts, spec, strlen(spec), "meta tasks", &err) ||
	    mtl_bert_load(&m, "fixtures/tiny", &err) ||
	    mtl_heads_new(&hd, ts, m->cfg.hidden, MTL_POOL_CLS, &err))
		bail(err.msg[0] ? err.msg : "golden without tasks");
	T_OK(ts->n == 3 && ts->task[2].kind == kind,
	     "the golden's third task is a %s task", mtl_task_kind_name(kind));
	load_heads(hd);
	mtl_train_opts_defaults(&o);
	o.lr = 1e-3f;
	o.clip = 0;
	o.warmup = 0;
	o.sched = MTL_SCHED_CONSTANT;
	o.dropout = 0;
	if (mtl_train_new(&tr, m, hd, &o, &err))
		bail(err.msg);

	ids = mtl_st_find(gold, "input_ids");
	if (!ids)
		bail("golden without input_ids");
	B = (int)ids->shape[0];
	T = (int)ids->shape[1];
	C = ts->task[2].n_labels;
	b.B = B;
	b.T = T;
	b.ids = malloc(sizeof(int32_t) * B * T);
	b.type_ids = malloc(sizeof(int32_t) * B * T);
	b.lengths = calloc((size_t)B, sizeof(int32_t));
	mask = malloc(sizeof(int32_t) * B * T);
	if (!b.ids || !b.type_ids || !b.lengths || !mask ||
	    mtl_st_read_i32(ids, b.ids, (int64_t)B * T, NULL) ||
	    mtl_st_read_i32(mtl_st_find(gold, "token_type_ids"), b.type_ids,
			    (int64_t)B * T, NULL) ||
	    mtl_st_read_i32(mtl_st_find(gold, "attention_mask"), mask,
			    (int64_t)B * T, NULL))
		bail("golden batch unreadable");
	for (int i = 0; i < B * T; i++)
		b.lengths[i / T] += mask[i];
	free(mask);
	lab[0] = labels("topic", B);
	lab[1] = labels("ner", (int64_t)B * T);
	lab[2] = kind == MTL_TASK_REGRESSION ? targets(ts->task[2].name, B)
					     : labels(ts->task[2].name, (int64_t)B *
						      (kind == MTL_TASK_MULTILABEL ? C : 1));
	b.labels = lab;
	b.n_tasks = 3;

	mtl_step_stats_init(&st, 3);
	T_OK(mtl_train_grad(tr, &bp, 1, &st, &err) == 0, "gradient pass (%s)", err.msg);
	if (kind == MTL_TASK_PAIR) {
		int second = 0;

		for (int i = 0; i < B * T; i++)
			second += b.type_ids[i];
		T_OK(second > 0, "the pairs' second texts have token type id 1 (%d tokens)",
		     second);
	}
	T_OK(st.labelled[2] == 3 * (int64_t)(kind == MTL_TASK_MULTILABEL ? C : 1),
	     "the normaliser counts labelled entries: 3 rows of %d (%lld)",
	     kind == MTL_TASK_MULTILABEL ? C : 1, (long long)st.labelled[2]);
	snprintf(name, sizeof(name), "logits.%s", ts->task[2].name);
	cmp(name, hd->h[2].logits, (size_t)B * C, 1e-5, 1e-4);
	cmp("logits.topic", hd->h[0].logits, (size_t)B * 3, 1e-5, 1e-4);
	l = (float)st.task_loss[2];
	snprintf(name, sizeof(name), "loss.%s", ts->task[2].name);
	cmp(name, &l, 1, 1e-5, 1e-4);
	l = (float)st.task_loss[0];
	cmp("loss.topic", &l, 1, 1e-5, 1e-4);
	l = (float)st.task_loss[1];
	cmp("loss.ner", &l, 1, 1e-5, 1e-4);
	l = (float)st.loss;
	cmp("loss.total", &l, 1, 1e-5, 1e-4);
	for (size_t i = 0; i < m->n_tensors; i++) {
		const struct mtl_bert_tensor *t = &m->tensors[i];
		/* the key bias gradient is 0 analytically: compare absolutely */
		int keyb = strstr(t->name, "key.bias") != NULL;

		snprintf(name, sizeof(name), "grad.%s", t->name);
		cmp(name, tr->grad + t->offset, t->numel, keyb ? 1e-6 : 1e-5,
		    keyb ? 0 : 1e-3);
	}
	for (size_t i = 0; i < hd->n_tensors; i++) {
		const struct mtl_head_tensor *t = &hd->tensors[i];

		snprintf(name, sizeof(name), "grad.%s", t->name);
		cmp(name, tr->hgrad + t->offset, t->numel, 1e-5, 1e-3);
	}
	mtl_step_stats_release(&st);
	for (int k = 0; k < 3; k++)
		free(lab[k]);
	free(b.ids);
	free(b.type_ids);
	free(b.lengths);
	mtl_train_free(tr);
	mtl_heads_free(hd);
	mtl_bert_free(m);
	mtl_task_free(ts);
	mtl_st_close(gold);
}

/*
 * Two rows of two labels, the second row ignored: the loss is the sum of
 * the first row's terms, log(1 + e^-z) for y = 1 and log(1 + e^z) for
 * y = 0; the gradient sigmoid(z) - y times scale; ignored entries 0.
 */
static void bce_by_hand(void)
{
	const float z[4] = { 2.0f, -1.0f, 5.0f, 5.0f };
	const int32_t y[4] = { 1, 1, -100, -100 };
	float dz[4] = { 9, 9, 9, 9 };
	int64_t correct = 0;
	double want = log1p(exp(-2.0)) + log1p(exp(1.0));
	double l = mtl_loss_bce(dz, &correct, z, y, 2, 2, 0.5, 0.5f);

	T_OK(fabs(l - want) < 1e-12, "bce: loss %.12g (want %.12g)", l, want);
	T_OK(fabs(dz[0] - 0.5 * (1 / (1 + exp(-2.0)) - 1)) < 1e-7 &&
	     fabs(dz[1] - 0.5 * (1 / (1 + exp(1.0)) - 1)) < 1e-7 &&
	     dz[2] == 0 && dz[3] == 0, "bce: gradient, 0 where ignored");
	T_OK(correct == 1, "bce: one of two labelled entries decided right");
	T_OK(mtl_loss_bce_yes(0.0f, 0.5) && !mtl_loss_bce_yes(-1e-6f, 0.5) &&
	     mtl_loss_bce_yes((float)log(0.3 / 0.7) + 1e-6f, 0.3) &&
	     !mtl_loss_bce_yes((float)log(0.3 / 0.7) - 1e-6f, 0.3),
	     "bce: a label is predicted from sigmoid(z) >= threshold");
	T_OK(mtl_loss_bce(dz, NULL, z, NULL, 2, 2, 0.5, 1) == 0 && dz[0] == 0,
	     "bce: no labels, no loss");
}

/* Rows 0 and 2 have targets 1 and -2, row 1 none: the loss is the sum of
 * squared errors, the gradient scale * 2 (z - y), 0 without a target. */
static void mse_by_hand(void)
{
	const float z[3] = { 1.5f, 7.0f, -1.0f };
	const int32_t y[3] = { mtl_label_of_value(1.0f), MTL_IGNORE,
			       mtl_label_of_value(-2.0f) };
	float dz[3] = { 9, 9, 9 };
	double l = mtl_loss_mse(dz, z, y, 3, 0.5f);

	T_OK(l == 0.25 + 1.0, "mse: loss %g (want 1.25)", l);
	T_OK(dz[0] == 0.5f && dz[1] == 0 && dz[2] == 1.0f,
	     "mse: gradient, 0 without a target");
	T_OK(mtl_loss_mse(dz, z, NULL, 3, 1) == 0 && dz[0] == 0,
	     "mse: no targets, no loss");
}

int main(void)
{
	bce_by_hand();
	mse_by_hand();
	golden("fixtures/golden/train-multilabel.safetensors", MTL_TASK_MULTILABEL);
	golden("fixtures/golden/train-regression.safetensors", MTL_TASK_REGRESSION);
	golden("fixtures/golden/train-pair.safetensors", MTL_TASK_PAIR);
	return t_done();
}
