/*
 * test_freeze.c - freezing in the trainer (freeze.h, mtl_train_freeze):
 * specifications, tensor by tensor bit-identity of what is frozen, change
 * of what is not, untouched AdamW moments, the backward cut at the lowest
 * trainable layer (counted), and unfreezing at exactly the given step.
 * The tiny model and the golden batch of fixtures/golden/train.safetensors.
 */
#include <stdlib.h>
#include <string.h>

#include "freeze.h"
#include "st.h"
#include "train.h"

#include "t.h"
#include "t_golden.h"

struct fixture {
	struct mtl_bert *m;
	struct mtl_tasks *ts;
	struct mtl_heads *hd;
	struct mtl_train *tr;
	struct mtl_batch b;
	int32_t *lab[2];
	float *p0, *h0; /* parameters before training */
};

static void load(struct fixture *f, const char *const *spec, int n,
		 long unfreeze_at)
{
	struct mtl_err err = { "" };
	struct mtl_train_opts o;
	struct mtl_freeze fz = { 0 };
	struct mtl_st *gold;

	memset(f, 0, sizeof(*f));
	if (mtl_st_open(&gold, "fixtures/golden/train.safetensors", &err))
		t_bail(err.msg);
	t_tiny_model(&f->m, &f->ts, &f->hd);
	mtl_bert_set_threads(f->m, 1);
	mtl_train_opts_defaults(&o);
	o.lr = 1e-3f;
	o.sched = MTL_SCHED_CONSTANT;
	o.weight_decay = 0.1f; /* decay must not touch frozen tensors either */
	if (mtl_train_new(&f->tr, f->m, f->hd, &o, &err)) {
		printf("Bail out! %s\n", err.msg);
		exit(1);
	}
	if (n) {
		if (mtl_freeze_init(&fz, f->m, f->hd, &err))
			exit(1);
		for (int i = 0; i < n; i++)
			if (mtl_freeze_add(&fz, spec[i], f->m, f->hd, &err)) {
				printf("Bail out! %s\n", err.msg);
				exit(1);
			}
		if (mtl_train_freeze(f->tr, &fz, unfreeze_at, &err))
			exit(1);
	}
	t_golden_batch(gold, &f->b, f->lab);
	mtl_st_close(gold);
	f->p0 = malloc(sizeof(float) * f->m->n_params);
	f->h0 = malloc(sizeof(float) * f->hd->n_params);
	memcpy(f->p0, f->m->params, sizeof(float) * f->m->n_params);
	memcpy(f->h0, f->hd->params, sizeof(float) * f->hd->n_params);
}

static void release(struct fixture *f)
{
	mtl_train_free(f->tr);
	mtl_heads_free(f->hd);
	mtl_task_free(f->ts);
	mtl_bert_free(f->m);
	t_golden_release(&f->b, f->lab);
	free(f->p0);
	free(f->h0);
}

/* Runs n steps; returns the backward layer count of the last. */
static int train(struct fixture *f, int n)
{
	const struct mtl_batch *bp = &f->b;
	struct mtl_step_stats st;
	struct mtl_err err;
	int layers = -1;

	mtl_step_stats_init(&st, 2);
	for (int i = 0; i < n; i++) {
		if (mtl_train_step(f->tr, &bp, 1, &st, &err)) {
			printf("Bail out! step: %s\n", err.msg);
			exit(1);
		}
		layers = st.bwd_layers;
	}
	mtl_step_stats_release(&st);
	return layers;
}

/*
 * mtl_train_step keeps the layers' gradients in the activations' slots
 * (train.h): under freezing too, the parameters and moments of the
 * plain gradient pass and update, bit for bit, over four steps.
 */
static void slotted_same(const char *const *spec, int n, long unfreeze_at,
			 const char *what)
{
	struct fixture f[2];
	const struct mtl_batch *bp;
	struct mtl_step_stats st;
	struct mtl_err err;
	int rc = 0;

	mtl_step_stats_init(&st, 2);
	for (int k = 0; k < 2; k++) {
		load(&f[k], spec, n, unfreeze_at);
		bp = &f[k].b;
		for (int i = 0; i < 4 && rc >= 0; i++)
			rc = k ? mtl_train_step(f[k].tr, &bp, 1, &st, &err)
			       : mtl_train_grad(f[k].tr, &bp, 1, &st, &err) < 0
					 ? -1
					 : mtl_train_apply(f[k].tr, &st);
	}
	T_OK(rc == 0 && !memcmp(f[0].m->params, f[1].m->params, sizeof(float) * f[0].m->n_params) &&
	     !memcmp(f[0].tr->mom1, f[1].tr->mom1, sizeof(float) * f[0].m->n_params) &&
	     !memcmp(f[0].tr->mom2, f[1].tr->mom2, sizeof(float) * f[0].m->n_params) &&
	     !memcmp(f[0].hd->params, f[1].hd->params, sizeof(float) * f[0].hd->n_params),
	     "%s: the slotted step gives the plain one's bits", what);
	mtl_step_stats_release(&st);
	release(&f[0]);
	release(&f[1]);
}

static int enc_same(const struct fixture *f, size_t i)
{
	const struct mtl_bert_tensor *t = &f->m->tensors[i];

	return !memcmp(f->m->params + t->offset, f->p0 + t->offset,
		       sizeof(float) * t->numel);
}

static int head_same(const struct fixture *f, size_t i)
{
	const struct mtl_head_tensor *t = &f->hd->tensors[i];

	return !memcmp(f->hd->params + t->offset, f->h0 + t->offset,
		       sizeof(float) * t->numel);
}

static int zero(const float *v, size_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[off + i] != 0)
			return 0;
	return 1;
}

/*
 * Checks every tensor: frozen ones (frozen(name) true) bit-identical with
 * zero moments, the others changed (the pooler, which never has a
 * gradient, only by weight decay, so it is left out unless frozen).
 */
static void check(const struct fixture *f, const char *what,
		  int (*frozen)(const char *name))
{
	int bad = 0;

	for (size_t i = 0; i < f->m->n_tensors; i++) {
		const struct mtl_bert_tensor *t = &f->m->tensors[i];
		int fr = frozen(t->name), same = enc_same(f, i);

		if (fr && (!same || !zero(f->tr->mom1, t->offset, t->numel) ||
			   !zero(f->tr->mom2, t->offset, t->numel)))
			bad++, T_NOTE("%s: frozen '%s' changed", what, t->name);
		if (!fr && same && strncmp(t->name, "pooler.", 7) &&
		    strcmp(t->name, "embeddings.token_type_embeddings.weight"))
			bad++, T_NOTE("%s: trainable '%s' unchanged", what, t->name);
	}
	for (size_t i = 0; i < f->hd->n_tensors; i++) {
		const struct mtl_head_tensor *t = &f->hd->tensors[i];
		int fr = frozen(t->name), same = head_same(f, i);

		if (fr && (!same || !zero(f->tr->hmom1, t->offset, t->numel)))
			bad++, T_NOTE("%s: frozen '%s' changed", what, t->name);
		if (!fr && same)
			bad++, T_NOTE("%s: trainable '%s' unchanged", what, t->name);
	}
	T_OK(!bad, "%s: every frozen tensor bit-identical, every other changed", what);
}

static int is_encoder(const char *n)
{
	return strchr(n, '.') && (!strncmp(n, "embeddings.", 11) ||
				  !strncmp(n, "encoder.", 8) ||
				  !strncmp(n, "pooler.", 7));
}

static int is_low(const char *n)
{
	return !strncmp(n, "embeddings.", 11) ||
	       !strncmp(n, "encoder.layer.0.", 16);
}

static int is_layer1(const char *n)
{
	return !strncmp(n, "encoder.layer.1.", 16);
}

static int is_topic(const char *n)
{
	return !strncmp(n, "topic.", 6);
}

static int none(const char *n)
{
	(void)n;
	return 0;
}

static void test_specs(void)
{
	static const char *bad[] = { "layers:2", "layers:1-0", "layers:x",
				     "head:nope", "decoder", "layers:0-1x" };
	struct fixture f;
	struct mtl_freeze fz;
	struct mtl_err err;
	size_t all;

	load(&f, NULL, 0, 0);
	mtl_freeze_init(&fz, f.m, f.hd, &err);
	all = mtl_freeze_trainable(&fz, f.m, f.hd);
	T_OK(all == f.m->n_params + f.hd->n_params, "nothing frozen: all trainable");
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		T_OK(mtl_freeze_add(&fz, bad[i], f.m, f.hd, &err) == MTL_ERR_ARG &&
		     strstr(err.msg, bad[i]), "'%s' refused: %s", bad[i], err.msg);
	T_OK(!mtl_freeze_any(&fz), "refused specs freeze nothing");
	T_OK(!mtl_freeze_add(&fz, "encoder", f.m, f.hd, &err) &&
	     mtl_freeze_trainable(&fz, f.m, f.hd) == f.hd->n_params,
	     "encoder: only the heads' parameters are trainable");
	mtl_freeze_release(&fz);
	release(&f);
}

/*
 * The gradient of a trainable layer above frozen ones must be the one the
 * full backward gives: bit for bit, since it is the same run of kernels.
 */
static void test_same_grads(void)
{
	static const char *low[] = { "embeddings", "layers:0" };
	const struct mtl_batch *bp;
	struct fixture a, b;
	struct mtl_step_stats st;
	struct mtl_err err;
	int bad = 0, checked = 0;

	load(&a, NULL, 0, 0);
	load(&b, low, 2, 0);
	bp = &a.b;
	mtl_step_stats_init(&st, 2);
	if (mtl_train_grad(a.tr, &bp, 1, &st, &err))
		exit(1);
	bp = &b.b;
	if (mtl_train_grad(b.tr, &bp, 1, &st, &err))
		exit(1);
	for (size_t i = 0; i < a.m->n_tensors; i++) {
		const struct mtl_bert_tensor *t = &a.m->tensors[i];

		if (strncmp(t->name, "encoder.layer.1.", 16))
			continue;
		checked++;
		bad += !!memcmp(a.tr->grad + t->offset, b.tr->grad + t->offset,
				sizeof(float) * t->numel);
	}
	bad += !!memcmp(a.tr->hgrad, b.tr->hgrad, sizeof(float) * a.hd->n_params);
	T_OK(checked == 16 && !bad,
	     "layer 1 and head gradients above frozen layer 0 equal the full backward's (%d tensors)",
	     checked);
	mtl_step_stats_release(&st);
	release(&a);
	release(&b);
}

int main(void)
{
	struct fixture f;
	static const char *enc[] = { "encoder" };
	static const char *low[] = { "embeddings", "layers:0-0" };
	static const char *l1[] = { "layers:1" };
	static const char *topic[] = { "head:topic" };
	int layers;

	test_specs();
	test_same_grads();

	load(&f, NULL, 0, 0);
	T_OK(train(&f, 3) == 2, "nothing frozen: backward through both layers");
	check(&f, "nothing frozen", none);
	release(&f);

	load(&f, enc, 1, 0);
	T_OK(train(&f, 3) == 0, "--freeze encoder: no encoder backward at all");
	check(&f, "--freeze encoder", is_encoder);
	release(&f);

	load(&f, low, 2, 0);
	layers = train(&f, 3);
	T_OK(layers == 1,
	     "--freeze embeddings,layers:0-0: backward runs 1 layer (%d)", layers);
	check(&f, "--freeze embeddings,layers:0-0", is_low);
	release(&f);

	/* a frozen layer above a trainable one: passed through, not updated */
	load(&f, l1, 1, 0);
	T_OK(train(&f, 3) == 2, "--freeze layers:1: backward still reaches the embeddings");
	check(&f, "--freeze layers:1", is_layer1);
	release(&f);

	load(&f, topic, 1, 0);
	train(&f, 3);
	check(&f, "--freeze head:topic", is_topic);
	release(&f);

	slotted_same(low, 2, 0, "--freeze embeddings,layers:0-0");
	slotted_same(l1, 1, 0, "--freeze layers:1");
	slotted_same(low, 2, 3, "--freeze embeddings,layers:0-0 --unfreeze-at 3");
	slotted_same(enc, 1, 3, "--freeze encoder --unfreeze-at 3");

	/* --unfreeze-at 3: steps 1 and 2 frozen, step 3 trains everything */
	load(&f, enc, 1, 3);
	T_OK(train(&f, 2) == 0, "unfreeze at 3: step 2 still frozen");
	check(&f, "unfreeze at 3, after step 2", is_encoder);
	T_OK(train(&f, 1) == 2, "unfreeze at 3: step 3 runs the whole backward");
	check(&f, "unfreeze at 3, after step 3", none);
	{
		/*
		 * The released tensors take AdamW step 1 at step 3: with zero
		 * moments the bias-corrected update is lr * g / (|g| + eps),
		 * so the largest change is lr (up to the tiny decay); a shared
		 * step count t = 3 would give 0.64 lr.
		 */
		const struct mtl_bert_tensor *t =
			mtl_bert_tensor_find(f.m, "encoder.layer.1.output.dense.weight");
		double big = 0;

		for (size_t i = 0; i < t->numel; i++) {
			double d = fabs((double)f.m->params[t->offset + i] -
					f.p0[t->offset + i]);
			big = d > big ? d : big;
		}
		T_OK(fabs(big - 1e-3) < 2e-5,
		     "unfrozen tensors start their own AdamW count: max change %.6g = lr", big);
	}
	release(&f);
	return t_done();
}
