/*
 * train.c - the trainer: one accumulated forward/backward, the optimiser
 * groups and the AdamW step; see train.h.
 */
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "contrast.h"
#include "dist.h"
#include "emb.h"
#include "loss.h"
#include "ops.h"

/* The low-memory step's second pass: its update, and its own statistics
 * (low_memory_step, at the end). */
struct low_memory {
	int update;
	int forward;  /* the second pass runs the forward again */
	float lr;
	long t;
	float gscale;
	struct mtl_step_stats st;
};

void mtl_train_opts_defaults(struct mtl_train_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->lr = 5e-5f;
	o->head_lr = 0;
	o->layer_decay = 1;
	o->weight_decay = 0.01f;
	o->warmup = -1;
	o->warmup_ratio = 0;
	o->total = 0;
	o->sched = MTL_SCHED_LINEAR;
	o->clip = 1.0f;
	o->label_smoothing = 0;
	o->dropout = -1;
	o->seed = 42;
}

int mtl_step_stats_init(struct mtl_step_stats *st, int n)
{
	memset(st, 0, sizeof(*st));
	st->n_tasks = n;
	st->task_loss = calloc((size_t)n + 1, sizeof(double));
	st->labelled = calloc((size_t)n + 1, sizeof(int64_t));
	st->correct = calloc((size_t)n + 1, sizeof(int64_t));
	if (!st->task_loss || !st->labelled || !st->correct) {
		mtl_step_stats_release(st);
		return MTL_ERR_NOMEM;
	}
	return 0;
}

void mtl_step_stats_release(struct mtl_step_stats *st)
{
	free(st->task_loss);
	free(st->labelled);
	free(st->correct);
	st->task_loss = NULL;
	st->labelled = st->correct = NULL;
}

static void stats_zero(struct mtl_step_stats *st)
{
	int n = st->n_tasks;

	memset(st->task_loss, 0, sizeof(double) * (size_t)n);
	memset(st->labelled, 0, sizeof(int64_t) * (size_t)n);
	memset(st->correct, 0, sizeof(int64_t) * (size_t)n);
	st->loss = 0;
	st->grad_norm = 0;
	st->tokens = 0;
}

/* No weight decay on biases and LayerNorm weights (docs/reference.md). */
static int decays(const char *name)
{
	size_t n = strlen(name);

	return !(n >= 4 && strcmp(name + n - 4, "bias") == 0) &&
	       !strstr(name, "LayerNorm.weight");
}

/* ltensor: layer l's tensors where they lie in the layer block at blk. */
static void point_layer(struct mtl_train *tr, int l, float *blk)
{
	const struct mtl_bert *m = tr->m;

	for (size_t i = 0; i < m->n_tensors; i++)
		if (m->tensors[i].layer == l)
			tr->ltensor[i] = blk + mtl_bert_layer_offset(&m->cfg,
								     m->tensors[i].offset);
}

int mtl_train_new(struct mtl_train **out, struct mtl_bert *m,
		  struct mtl_heads *hd, const struct mtl_train_opts *o,
		  struct mtl_err *err)
{
	struct mtl_train *tr = calloc(1, sizeof(*tr));
	int L = m->cfg.layers;

	if (!tr)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	tr->m = m;
	tr->hd = hd;
	tr->o = *o;
	mtl_adamw_defaults(&tr->adam);
	tr->adam.wd = o->weight_decay;
	mtl_rng_init(&tr->rng, o->seed);
	tr->grad = calloc(m->n_params, sizeof(float));
	tr->wte_rows = calloc((size_t)m->cfg.vocab, 1);
	tr->wte_seen = calloc((size_t)m->cfg.vocab, 1);
	tr->mom1 = calloc(m->n_params, sizeof(float));
	tr->mom2 = calloc(m->n_params, sizeof(float));
	tr->hgrad = calloc(hd->n_params + 1, sizeof(float));
	tr->hmom1 = calloc(hd->n_params + 1, sizeof(float));
	tr->hmom2 = calloc(hd->n_params + 1, sizeof(float));
	tr->groups = calloc(m->n_tensors, sizeof(*tr->groups));
	tr->hgroups = calloc(hd->n_tensors + 1, sizeof(*tr->hgroups));
	tr->skip = calloc((size_t)hd->ts->n + 1, 1);
	tr->norm = calloc((size_t)hd->ts->n + 1, sizeof(int64_t));
	tr->head_steps = calloc((size_t)hd->ts->n + 1, sizeof(long));
	tr->emb_loss = calloc((size_t)hd->ts->n + 1, sizeof(double));
	tr->emb_n = calloc((size_t)hd->ts->n + 1, sizeof(int));
	tr->emb_correct = calloc((size_t)hd->ts->n + 1, sizeof(int64_t));
	if (!tr->grad || !tr->wte_rows || !tr->wte_seen || !tr->mom1 || !tr->mom2 || !tr->hgrad || !tr->hmom1 ||
	    !tr->hmom2 || !tr->groups || !tr->hgroups || !tr->skip ||
	    !tr->norm || !tr->head_steps || !tr->emb_loss || !tr->emb_n ||
	    !tr->emb_correct) {
		mtl_train_free(tr);
		return mtl_err_set(err, MTL_ERR_NOMEM,
				   "cannot allocate the optimiser state");
	}
	/*
	 * Layer-wise decay d: the top layer trains at lr, each layer below
	 * at d times the one above, the embeddings at d^L.  The pooler is in
	 * no loss (torch: its .grad stays None, AdamW skips it): its range is
	 * empty, so it keeps its weights, without weight decay.
	 */
	for (size_t i = 0; i < m->n_tensors; i++) {
		const struct mtl_bert_tensor *t = &m->tensors[i];
		struct mtl_adamw_group *g = &tr->groups[i];
		int depth = t->layer >= 0 ? L - 1 - t->layer
			  : strncmp(t->name, "embeddings.", 11) == 0 ? L : 0;

		g->off = t->offset;
		g->n = strncmp(t->name, "pooler.", 7) ? t->numel : 0;
		g->decay = decays(t->name);
		g->lr_mult = (float)pow(o->layer_decay, depth);
		if (t->offset == 0) { /* the word embeddings: wte_rows */
			g->rows = tr->wte_rows;
			g->seen = tr->wte_seen;
			g->row = (size_t)m->cfg.hidden;
		}
	}
	tr->n_groups = m->n_tensors;
	m->wte_rows = tr->wte_rows;
	/* a layer's gradients in blocks of their own (the low-memory
	 * step's one block, or the activations' slots): where each layer
	 * tensor lies, the layers' sums of squares, and room for the
	 * embeddings' groups */
	tr->lgrad_n = mtl_bert_layer_carve(&tr->lg, NULL, &m->cfg);
	tr->ltensor = calloc(m->n_tensors, sizeof(float *));
	tr->lsum = calloc((size_t)L + 1, sizeof(double));
	tr->lgroups = calloc(m->n_tensors, sizeof(*tr->lgroups));
	if (o->low_memory)
		tr->lgrad = calloc(tr->lgrad_n, sizeof(float));
	if (!tr->ltensor || !tr->lsum || !tr->lgroups || (o->low_memory && !tr->lgrad)) {
		mtl_train_free(tr);
		return mtl_err_set(err, MTL_ERR_NOMEM,
				   "cannot allocate the optimiser state");
	}
	if (o->low_memory) {
		mtl_bert_layer_carve(&tr->lg, tr->lgrad, &m->cfg);
		for (int l = 0; l < L; l++)
			point_layer(tr, l, tr->lgrad);
	}
	for (size_t i = 0; i < hd->n_tensors; i++) {
		struct mtl_adamw_group *g = &tr->hgroups[i];

		g->off = hd->tensors[i].offset;
		g->n = hd->tensors[i].numel;
		g->decay = decays(hd->tensors[i].name);
		g->lr_mult = 1.0f; /* the heads follow their own schedule */
	}
	tr->n_hgroups = hd->n_tensors;
	for (int t = 0; t < hd->ts->n; t++) {
		const struct mtl_task *task = &hd->ts->task[t];

		if (task->kind != MTL_TASK_EMBEDDING)
			continue;
		if (hd->h[t].pool != MTL_POOL_CLS && hd->h[t].pool != MTL_POOL_MEAN) {
			mtl_train_free(tr);
			return mtl_err_set(err, MTL_ERR_ARG,
					   "embedding task '%s' needs cls or mean pooling",
					   task->name);
		}
		for (int k = 0; k < task->emb.n_dims; k++)
			if (task->emb.dims[k] > m->cfg.hidden) {
				mtl_train_free(tr);
				return mtl_err_set(err, MTL_ERR_ARG,
						   "embedding task '%s': Matryoshka dim %d is wider than the model (%d)",
						   task->name, task->emb.dims[k],
						   m->cfg.hidden);
			}
	}
	if (o->dropout >= 0)
		for (int t = 0; t < hd->ts->n; t++)
			hd->p[t] = o->dropout;
	hd->nt = m->threads;
	*out = tr;
	return 0;
}

void mtl_train_moments_set(struct mtl_train *tr)
{
	size_t H = (size_t)tr->m->cfg.hidden;

	for (size_t r = 0; r < (size_t)tr->m->cfg.vocab; r++) {
		const float *m = tr->mom1 + r * H, *v = tr->mom2 + r * H;
		int any = 0;

		for (size_t i = 0; i < H && !any; i++)
			any = m[i] != 0 || v[i] != 0;
		tr->wte_seen[r] = (uint8_t)any;
	}
}

void mtl_train_free(struct mtl_train *tr)
{
	if (!tr)
		return;
	if (tr->m && tr->m->wte_rows == tr->wte_rows)
		tr->m->wte_rows = NULL;
	free(tr->grad);
	free(tr->wte_rows);
	free(tr->wte_seen);
	free(tr->mom1);
	free(tr->mom2);
	free(tr->hgrad);
	free(tr->hmom1);
	free(tr->hmom2);
	free(tr->groups);
	free(tr->hgroups);
	free(tr->dlast);
	free(tr->mask);
	free(tr->skip);
	free(tr->norm);
	free(tr->head_steps);
	free(tr->emb_loss);
	free(tr->emb_n);
	free(tr->emb_correct);
	free(tr->lsum);
	free(tr->lgroups);
	free(tr->lgrad);
	free(tr->ltensor);
	if (tr->lm)
		mtl_step_stats_release(&tr->lm->st);
	free(tr->lm);
	free(tr->pooled);
	free(tr->emb_dP);
	mtl_freeze_release(&tr->fz);
	for (int k = 0; k < 2; k++) {
		free(tr->fz_g[k]);
	}
	free(tr);
}

/* ---- freezing ---- */

int mtl_train_freeze(struct mtl_train *tr, struct mtl_freeze *fz,
		     long unfreeze_at, struct mtl_err *err)
{
	tr->fz = *fz;
	memset(fz, 0, sizeof(*fz));
	tr->unfreeze_at = unfreeze_at;
	mtl_freeze_bounds(&tr->fz, tr->m, &tr->fz_lo, &tr->fz_emb);
	for (int k = 0; k < 2; k++) {
		tr->fz_g[k] = calloc(tr->n_groups + 1, sizeof(*tr->groups));
		if (!tr->fz_g[k])
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	/* the groups are the tensors, in table order (mtl_train_new) */
	for (size_t i = 0; i < tr->n_groups; i++) {
		int k = tr->fz.enc[i] != 0;
		tr->fz_g[k][tr->fz_n[k]++] = tr->groups[i];
	}
	return 0;
}

int mtl_train_frozen(const struct mtl_train *tr)
{
	return tr->fz.enc &&
	       (tr->unfreeze_at <= 0 || tr->step + 1 < tr->unfreeze_at);
}

/*
 * Zeroes the word-embedding rows of grad that wte_rows marks, and with
 * unmark clears the marks; in a data-parallel group, where every row
 * stays marked, the whole table in one pass.
 */
static void clear_wte(struct mtl_train *tr, int unmark)
{
	size_t H = (size_t)tr->m->cfg.hidden;

	if (tr->dist) {
		mtl_zero(tr->grad, (int64_t)tr->m->cfg.vocab * (int64_t)H,
			 tr->m->threads);
		return;
	}
	for (int r = 0; r < tr->m->cfg.vocab; r++)
		if (tr->wte_rows[r]) {
			memset(tr->grad + r * H, 0, sizeof(float) * H);
			tr->wte_rows[r] = (uint8_t)!unmark;
		}
}

/* Zeroes the gradients of frozen tensors (the backward passes through
 * frozen layers above the lowest trainable one, and through frozen heads). */
static void freeze_grads(struct mtl_train *tr)
{
	for (size_t i = 0; i < tr->fz.n_enc; i++) {
		int l = tr->m->tensors[i].layer;

		if (!tr->fz.enc[i])
			continue;
		if (tr->m->tensors[i].offset == 0)
			clear_wte(tr, 0);
		/* a slotted step: in its slot, if the backward reached it */
		else if (l >= 0 && tr->slotted) {
			if (l >= tr->lreach)
				memset(tr->ltensor[i], 0,
				       sizeof(float) * tr->m->tensors[i].numel);
		}
		/* the low-memory step: a layer's gradient is never in grad,
		 * and its hook leaves out what is frozen */
		else if (!(tr->o.low_memory && l >= 0))
			memset(tr->grad + tr->m->tensors[i].offset, 0,
			       sizeof(float) * tr->m->tensors[i].numel);
	}
	for (size_t i = 0; i < tr->fz.n_head; i++)
		if (tr->fz.head[i])
			memset(tr->hgrad + tr->hd->tensors[i].offset, 0,
			       sizeof(float) * tr->hd->tensors[i].numel);
}

/*
 * AdamW over encoder groups g[0..n) at their step t.  Before a group's
 * first step (t 1) its moments are zero and their pages untouched:
 * AdamW would read each page first (the kernel maps the shared zero page)
 * and then write it (a copy-on-write fault that flushes the TLB on every
 * CPU the threads run on), two faults and an interrupt a page; writing
 * the zeros first makes it one fault a page.  bge-base's first step spent
 * about 9 s in the kernel that way.
 */
static void encoder_adamw(struct mtl_train *tr,
			  const struct mtl_adamw_group *g, size_t n, float lr,
			  long t, float gscale)
{
	/* (the word embeddings' moments are written row by row, from a
	 * row's first gradient on: adamw.h, seen) */
	for (size_t k = 0; t == 1 && k < n; k++) {
		if (g[k].seen)
			continue;
		mtl_zero(tr->mom1 + g[k].off, (int64_t)g[k].n, tr->m->threads);
		mtl_zero(tr->mom2 + g[k].off, (int64_t)g[k].n, tr->m->threads);
	}
	mtl_adamw_step(&tr->adam, tr->m->params, tr->grad, tr->mom1, tr->mom2,
		       g, n, lr, t, gscale, tr->m->threads);
}

/* AdamW over the trained encoder groups; tensors frozen until
 * unfreeze_at count their steps from there. */
static void freeze_adamw(struct mtl_train *tr, float lr, float gscale)
{
	int frozen = tr->unfreeze_at <= 0 || tr->step < tr->unfreeze_at;

	for (int k = 0; k < (frozen ? 1 : 2); k++) {
		long t = k ? tr->step - tr->unfreeze_at + 1 : tr->step;

		encoder_adamw(tr, tr->fz_g[k], tr->fz_n[k], lr, t, gscale);
	}
}

/*
 * The AdamW step of encoder tensor i when the step counter reaches t, as
 * freeze_adamw counts it: t, or from unfreeze_at on for a tensor that
 * was frozen; 0 while it is frozen.
 */
static long tensor_step(const struct mtl_train *tr, size_t i, long t)
{
	if (!tr->fz.enc || !tr->fz.enc[i])
		return t;
	return tr->unfreeze_at <= 0 || t < tr->unfreeze_at ? 0
							   : t - tr->unfreeze_at + 1;
}

/* ---- end of freezing ---- */

/*
 * AdamW over the heads that have a gradient in this step (tr->step,
 * counted).  torch's AdamW skips a parameter whose .grad is None, i.e.
 * one the step's loss does not reach: the head of a task t with no
 * labelled item in the step (labelled[t] == 0: the step's count over
 * every process), and a frozen head.  Each head counts its own steps
 * (torch's per-parameter state["step"]) for the bias corrections.  A
 * head's tensors are adjacent in the table (head.c).
 */
static void heads_adamw(struct mtl_train *tr, const int64_t *labelled,
			float hlr, float gscale)
{
	const struct mtl_heads *hd = tr->hd;
	int frozen = tr->fz.head &&
		     (tr->unfreeze_at <= 0 || tr->step < tr->unfreeze_at);

	for (size_t i = 0, j; i < hd->n_tensors; i = j) {
		int t = hd->tensors[i].task;

		for (j = i; j < hd->n_tensors && hd->tensors[j].task == t; j++)
			;
		if (labelled[t] == 0 || (frozen && tr->fz.head[i]))
			continue;
		mtl_adamw_step(&tr->adam, hd->params, tr->hgrad, tr->hmom1,
			       tr->hmom2, &tr->hgroups[i], j - i, hlr,
			       ++tr->head_steps[t], gscale, 1);
	}
}

/* Grows dlast and mask for the rows x T of batch b and fills the mask. */
static int prepare(struct mtl_train *tr, const struct mtl_batch *b, int rows,
		   struct mtl_err *err)
{
	size_t BT = (size_t)rows * b->T;

	if (BT > tr->cap) {
		free(tr->dlast);
		free(tr->mask);
		tr->dlast = malloc(BT * tr->m->cfg.hidden * sizeof(float));
		tr->mask = malloc(BT * sizeof(int32_t));
		tr->cap = tr->dlast && tr->mask ? BT : 0;
		if (!tr->cap)
			return mtl_err_set(err, MTL_ERR_NOMEM,
					   "cannot allocate a %dx%d batch",
					   b->B, b->T);
	}
	mtl_batch_mask(tr->mask, b->lengths, rows, b->T);
	return 0;
}

/* Label entries of task t in b: rows times mtl_task_width. */
static int64_t task_rows(const struct mtl_heads *hd, int t,
			 const struct mtl_batch *b)
{
	return (int64_t)b->B * mtl_task_width(&hd->ts->task[t], b->T);
}

/* Task t's loss sum over the last forward and its dlogits (scaled): cross-
 * entropy, binary cross-entropy for a multilabel task, squared error for
 * a regression task. */
static double task_loss(const struct mtl_heads *hd, int t, const int32_t *lab,
			float eps, float scale, int64_t *correct)
{
	const struct mtl_head *h = &hd->h[t];
	const struct mtl_task *task = &hd->ts->task[t];

	if (task->kind == MTL_TASK_MULTILABEL)
		return mtl_loss_bce(h->dlogits, correct, h->logits, lab, h->N,
				    h->C, task->threshold, scale);
	if (task->kind == MTL_TASK_REGRESSION)
		return mtl_loss_mse(h->dlogits, h->logits, lab, h->N, scale);
	return mtl_loss_ce(h->dlogits, correct, h->logits, lab, h->N, h->C,
			   eps, scale);
}

/* The encoder's training dropout: hidden and attention. */
static void dropout_of(const struct mtl_train *tr, float *ph, float *pa)
{
	const struct mtl_bert_config *c = &tr->m->cfg;

	*ph = tr->o.dropout >= 0 ? tr->o.dropout : c->hidden_dropout;
	*pa = tr->o.dropout >= 0 ? tr->o.dropout : c->attn_dropout;
}

/* ---- embedding tasks (emb.h): the loss over the pooled rows ---- */

static int encoder_trains(const struct mtl_train *tr, int *lo, int *emb);

/* Whether an embedding task labels b (so its extra rows take part). */
static int emb_labelled(const struct mtl_train *tr, const struct mtl_batch *b)
{
	for (int t = 0; b->E && t < tr->hd->ts->n && t < b->n_tasks; t++)
		if (tr->hd->ts->task[t].kind == MTL_TASK_EMBEDDING && b->labels[t])
			return 1;
	return 0;
}

/*
 * After the encoder forward over tr->rows rows: pools them, and for each
 * embedding task labelling b keeps its loss, its labelled rows and its
 * gradient with respect to the pooled rows.  A scored loss needs every
 * labelled row's score.  0 or <0.
 */
static int emb_forward(struct mtl_train *tr, const struct mtl_batch *b,
		       struct mtl_err *err)
{
	const struct mtl_tasks *ts = tr->hd->ts;
	int R = tr->rows, H = tr->m->cfg.hidden, B = b->B, rc = 0;
	size_t RH = (size_t)R * H;
	int32_t *a = malloc(sizeof(int32_t) * 3 * (size_t)B);
	float *y = malloc(sizeof(float) * (size_t)B);

	if (RH * ts->n > tr->emb_cap) {
		free(tr->pooled);
		free(tr->emb_dP);
		tr->pooled = malloc(sizeof(float) * RH);
		tr->emb_dP = malloc(sizeof(float) * RH * ts->n);
		tr->emb_cap = tr->pooled && tr->emb_dP ? RH * ts->n : 0;
	}
	if (!a || !y || !tr->emb_cap) {
		rc = mtl_err_set(err, MTL_ERR_NOMEM,
				 "cannot allocate the embedding loss buffers");
		goto out;
	}
	for (int t = 0; t < ts->n; t++)
		/* every embedding task pools as the model does */
		if (ts->task[t].kind == MTL_TASK_EMBEDDING) {
			mtl_pool_forward(tr->pooled, mtl_bert_last_hidden(tr->m),
					 tr->mask, R, b->T, H, tr->hd->h[t].pool);
			break;
		}
	for (int t = 0; t < ts->n; t++) {
		const struct mtl_task *task = &ts->task[t];
		int32_t *p = a + B, *g = a + 2 * B;
		int n = 0;

		tr->emb_n[t] = 0;
		if (task->kind != MTL_TASK_EMBEDDING || t >= b->n_tasks || !b->labels[t])
			continue;
		for (int i = 0; i < B; i++) {
			if (b->labels[t][i] == MTL_IGNORE)
				continue;
			a[n] = i;
			p[n] = b->labels[t][i];
			g[n] = b->neg && b->neg[t] ? b->neg[t][i] : -1;
			y[n] = b->score && b->score[t] ? b->score[t][i] : NAN;
			if (task->emb.loss != MTL_EMB_MNRL && isnan(y[n])) {
				rc = mtl_err_set(err, MTL_ERR_FORMAT,
						 "task '%s' (%s): row %d is a pair without a score",
						 task->name,
						 mtl_task_emb_loss_name(task->emb.loss), i);
				goto out;
			}
			n++;
		}
		memset(tr->emb_dP + RH * t, 0, sizeof(float) * RH);
		tr->emb_correct[t] = 0;
		if (n && (rc = mtl_emb_loss(&tr->emb_loss[t], tr->emb_dP + RH * t,
					    tr->pooled, R, H, a, p, g, y, n,
					    &task->emb, 1.0f, &tr->emb_correct[t],
					    err)))
			goto out;
		tr->emb_n[t] = n;
	}
out:
	free(a);
	free(y);
	return rc;
}

/*
 * Task t's part of the output gradient dout[rows,T,H]: scale times the
 * summed loss (labelled rows x batch loss), whose value is added into
 * st->task_loss[t] (and the top-1 hits into st->correct[t]).  Returns 1 when t is an embedding task that labels the batch.
 */
static int emb_backward(struct mtl_train *tr, const struct mtl_batch *b,
			int t, float scale, float *dout,
			struct mtl_step_stats *st)
{
	int R = tr->rows, H = tr->m->cfg.hidden, n = tr->emb_n[t];
	size_t RH = (size_t)R * H;
	float *d = tr->emb_dP + RH * t;

	if (tr->hd->ts->task[t].kind != MTL_TASK_EMBEDDING || !n)
		return 0;
	st->task_loss[t] += n * tr->emb_loss[t];
	st->correct[t] += tr->emb_correct[t];
	/* in place: the kept gradient is not needed again for this batch */
	for (size_t i = 0; i < RH; i++)
		d[i] *= scale * (float)n;
	mtl_pool_backward(dout, d, tr->mask, R, b->T, H, tr->hd->h[t].pool);
	return 1;
}

/* ---- end of embedding tasks ---- */

int mtl_train_rows(const struct mtl_train *tr, const struct mtl_batch *b)
{
	int lo, emb;

	return b->B + (emb_labelled(tr, b) && encoder_trains(tr, &lo, &emb)
		       && !tr->fz_last ? b->E : 0);
}

static int encoder_trains(const struct mtl_train *tr, int *lo, int *emb);

/* last: the batch's cached encoder output (feat.h), or NULL to run it */
static int forward(struct mtl_train *tr, const struct mtl_batch *b, int train,
		   const float *last, struct mtl_err *err)
{
	float ph = 0, pa = 0;
	int rc, lo, emb, infer;

	if (train)
		dropout_of(tr, &ph, &pa);
	/* an evaluation forward computes the embedding losses too */
	tr->rows = last ? b->B : train ? mtl_train_rows(tr, b)
		   : b->B + (emb_labelled(tr, b) ? b->E : 0);
	for (int t = 0; t < tr->hd->ts->n; t++)
		tr->emb_n[t] = 0;
	if ((rc = prepare(tr, b, tr->rows, err)))
		return rc;
	if (last)
		return mtl_heads_forward(tr->hd, last, tr->mask, b->B, b->T,
					 train, &tr->rng, err);
	/*
	 * evaluation takes the inference forward: one layer of activations,
	 * the real tokens alone; so does a step whose encoder is wholly
	 * frozen, without dropout (no encoder backward): its fused attention
	 * gives the numbers of mtl-score --features, bit for bit
	 */
	infer = !train || (ph == 0 && pa == 0 && !encoder_trains(tr, &lo, &emb));
	rc = infer ? mtl_bert_forward_real(tr->m, b->ids, b->type_ids, tr->mask,
					   tr->rows, b->T, err)
		   : mtl_bert_forward_train(tr->m, b->ids, b->type_ids, tr->mask,
					    tr->rows, b->T, ph, pa, &tr->rng, err);
	if (rc || (rc = mtl_heads_forward(tr->hd, mtl_bert_last_hidden(tr->m),
				    tr->mask, b->B, b->T, train, &tr->rng,
				    err)))
		return rc;
	if (tr->rows > b->B && (rc = emb_forward(tr, b, err)))
		return rc;
	return 0;
}

int mtl_train_forward(struct mtl_train *tr, const struct mtl_batch *b,
		      int train, struct mtl_err *err)
{
	return forward(tr, b, train, NULL, err);
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return 1e3 * (double)(t.tv_sec - t0->tv_sec) +
	       1e-6 * (double)(t.tv_nsec - t0->tv_nsec);
}

int mtl_train_grad(struct mtl_train *tr, const struct mtl_batch *const *b,
		   int n, struct mtl_step_stats *st, struct mtl_err *err)
{
	return mtl_train_grad_weighted(tr, b, n, NULL, st, err);
}

const float *mtl_train_tensor_grad(const struct mtl_train *tr, size_t i)
{
	const struct mtl_bert_tensor *t = &tr->m->tensors[i];

	if (!tr->slotted || t->layer < 0)
		return tr->grad + t->offset;
	return t->layer >= tr->lreach ? tr->ltensor[i] : NULL;
}

void mtl_train_count(const struct mtl_train *tr,
		     const struct mtl_batch *const *b, int n, int64_t *norm)
{
	for (int t = 0; t < tr->hd->ts->n; t++) {
		int emb = tr->hd->ts->task[t].kind == MTL_TASK_EMBEDDING;

		norm[t] = 0;
		for (int k = 0; k < n; k++)
			/* an embedding task counts where its loss runs */
			if (b[k]->n_tasks > t && b[k]->labels[t] &&
			    (!emb || mtl_train_rows(tr, b[k]) > b[k]->B))
				norm[t] += mtl_loss_count(b[k]->labels[t],
							  task_rows(tr->hd, t, b[k]));
	}
}

/* Whether the encoder trains in this step (not wholly frozen), and the
 * bounds of its backward: layers from *lo up, the embeddings when *emb. */
static int encoder_trains(const struct mtl_train *tr, int *lo, int *emb)
{
	int frozen = mtl_train_frozen(tr);

	*lo = frozen ? tr->fz_lo : 0;
	*emb = frozen ? tr->fz_emb : 1;
	return *lo < tr->m->cfg.layers || *emb;
}

/* Whether the layers' gradients lie in blocks of their own (the
 * low-memory step's one block, or a slotted step's slots: ltensor)
 * rather than in grad. */
static int layer_blocks(const struct mtl_train *tr)
{
	return tr->o.low_memory || tr->slotted;
}

/* mtl_train_zero_grad for a gradient pass, slotted or not. */
static void zero_grad(struct mtl_train *tr)
{
	int lo, emb;

	/* a wholly frozen encoder: its gradient block stays zero, untouched */
	if (encoder_trains(tr, &lo, &emb)) {
		int64_t nw = (int64_t)tr->m->cfg.vocab * tr->m->cfg.hidden;

		/* layers in blocks of their own (the low-memory step, or
		 * slots): their places in grad are neither read nor written
		 * (their pages untouched unless a plain pass used them), and
		 * the blocks are cleared where they are filled; a layer
		 * below the backward's reach sums to zero */
		int blocks = layer_blocks(tr);

		clear_wte(tr, 1);
		if (blocks)
			memset(tr->lsum, 0, sizeof(double) * (size_t)tr->m->cfg.layers);
		tr->lreach = tr->m->cfg.layers;
		for (size_t i = 1; blocks && i < tr->m->n_tensors; i++)
			if (tr->m->tensors[i].layer < 0)
				mtl_zero(tr->grad + tr->m->tensors[i].offset,
					 (int64_t)tr->m->tensors[i].numel,
					 tr->m->threads);
		if (!blocks)
			mtl_zero(tr->grad + nw, (int64_t)tr->m->n_params - nw,
				 tr->m->threads);
	}
	memset(tr->hgrad, 0, sizeof(float) * tr->hd->n_params);
}

void mtl_train_zero_grad(struct mtl_train *tr)
{
	tr->slotted = 0;
	zero_grad(tr);
}

int mtl_train_task_backward(struct mtl_train *tr, const struct mtl_batch *b,
			    int t, float scale, float *dout,
			    struct mtl_step_stats *st)
{
	struct mtl_heads *hd = tr->hd;
	const int32_t *lab = b->n_tasks > t ? b->labels[t] : NULL;

	mtl_zero(dout, (int64_t)tr->rows * b->T * tr->m->cfg.hidden, tr->m->threads);
	if (hd->ts->task[t].kind == MTL_TASK_EMBEDDING)
		return emb_backward(tr, b, t, scale, dout, st);
	if (!lab)
		return 0;
	st->task_loss[t] += task_loss(hd, t, lab, tr->o.label_smoothing, scale,
				      &st->correct[t]);
	for (int u = 0; u < hd->ts->n; u++)
		tr->skip[u] = u != t;
	mtl_heads_backward(hd, tr->hgrad, dout, tr->skip);
	return 1;
}

int mtl_train_encoder_backward(struct mtl_train *tr, float *grad,
			       const float *dout)
{
	int lo, emb;

	if (!encoder_trains(tr, &lo, &emb))
		return 0;
	return mtl_bert_backward_to(tr->m, grad, dout, lo, emb);
}

/* The sum of squares of layer l's gradient, its tensors in table order
 * (from its layer block in the low-memory step and a slotted one). */
static double layer_norm2(const struct mtl_train *tr, int l)
{
	const struct mtl_bert *m = tr->m;
	double s = 0;

	int frozen = mtl_train_frozen(tr);

	for (size_t i = 0; i < m->n_tensors; i++) {
		const float *g = layer_blocks(tr) ? tr->ltensor[i]
						  : tr->grad + m->tensors[i].offset;

		/* a frozen tensor's gradient counts as zero (freeze_grads) */
		if (tr->m->tensors[i].layer == l && !(frozen && tr->fz.enc[i]))
			s += mtl_dot(g, g, (int64_t)m->tensors[i].numel, m->threads);
	}
	return s;
}

double mtl_train_grad_norm(const struct mtl_train *tr)
{
	int lo, emb;
	int64_t H = tr->m->cfg.hidden;
	double s = 0;

	/* a wholly frozen encoder's block is zero: no need to read it;
	 * the word embeddings' unmarked rows are zero (a data-parallel
	 * group sums the whole table: below, as one tensor) */
	if (encoder_trains(tr, &lo, &emb)) {
		for (int r = 0; !tr->dist && r < tr->m->cfg.vocab; r++)
			if (tr->wte_rows[r])
				s += mtl_dot(tr->grad + r * H, tr->grad + r * H, H, 1);
		for (size_t i = tr->dist ? 0 : 1; i < tr->m->n_tensors; i++)
			if (tr->m->tensors[i].layer < 0)
				s += mtl_dot(tr->grad + tr->m->tensors[i].offset,
					     tr->grad + tr->m->tensors[i].offset,
					     (int64_t)tr->m->tensors[i].numel,
					     tr->m->threads);
		/* the low-memory step and a slotted one summed each layer
		 * as it completed */
		for (int l = 0; l < tr->m->cfg.layers; l++)
			s += layer_blocks(tr) ? tr->lsum[l] : layer_norm2(tr, l);
	}
	return sqrt(s + mtl_dot(tr->hgrad, tr->hgrad,
				(int64_t)tr->hd->n_params, 1));
}

/*
 * dist hook: the end of a step's gradient pass across processes: waits
 * for the gradient sums, gathers every rank's dropout stream on rank 0,
 * then sums st's per-task loss sums, correct counts and token count over
 * the group.
 */
static int dist_finish(struct mtl_train *tr, struct mtl_step_stats *st,
		       struct mtl_err *err)
{
	int n = st->n_tasks, rc;
	double *v;

	if ((rc = mtl_dist_wait(tr->dist, err)))
		return rc;
	/* after the step's last draw: every rank's dropout stream to rank 0,
	 * for a checkpoint that resumes each rank where it stands */
	if ((rc = mtl_dist_gather_rng(tr->dist, &tr->rng, err)))
		return rc;
	/* counts travel as doubles: exact below 2^53 */
	v = malloc(sizeof(double) * (2 * (size_t)n + 1));
	if (!v)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	for (int t = 0; t < n; t++) {
		v[t] = st->task_loss[t];
		v[n + t] = (double)st->correct[t];
	}
	v[2 * n] = (double)st->tokens;
	rc = mtl_dist_sum_f64(tr->dist, v, 2 * n + 1, err);
	for (int t = 0; !rc && t < n; t++) {
		st->task_loss[t] = v[t];
		st->correct[t] = (int64_t)v[n + t];
	}
	if (!rc)
		st->tokens = (int64_t)v[2 * n];
	free(v);
	return rc;
}

static void low_memory_layer(void *arg, int l);
static int grad_pass(struct mtl_train *tr, const struct mtl_batch *const *b,
		     int n, const double *w, int slotted,
		     struct mtl_step_stats *st, struct mtl_err *err);
static void layer_adamw(struct mtl_train *tr, int l, float lr, long t,
			float gscale);
static void embeddings_adamw(struct mtl_train *tr, float lr, long t,
			     float gscale);

/* grad_ready (bert.h) in a slotted step: layer l's gradient is complete
 * in its slot; its tensors' places there and its sum of squares. */
static void slotted_layer(void *arg, int l)
{
	struct mtl_train *tr = arg;

	if (l < 0)
		return;
	point_layer(tr, l, mtl_bert_grad_slot(tr->m, l));
	tr->lsum[l] = layer_norm2(tr, l);
	tr->lreach = l;
}

int mtl_train_grad_weighted(struct mtl_train *tr,
			    const struct mtl_batch *const *b, int n,
			    const double *w, struct mtl_step_stats *st,
			    struct mtl_err *err)
{
	return grad_pass(tr, b, n, w, 0, st, err);
}

/*
 * mtl_train_grad_weighted; with slotted, the layers' gradients in the
 * activations' slots (mtl_train_step, slots_fit).
 */
static int grad_pass(struct mtl_train *tr, const struct mtl_batch *const *b,
		     int n, const double *w, int slotted,
		     struct mtl_step_stats *st, struct mtl_err *err)
{
	struct mtl_heads *hd = tr->hd;
	int nt = hd->ts->n, rc, lo, emb;
	int enc = encoder_trains(tr, &lo, &emb);
	struct timespec t0;
	/* contrast.c's term needs a trained encoder: without one it moves
	 * no parameter */
	struct mtl_contrast *con = enc ? tr->con : NULL;
	double con_loss = 0;
	float ph, pa;

	/* the second view's backward would come after the gradients are
	 * summed across processes */
	if (con && tr->dist)
		return mtl_err_set(err, MTL_ERR_ARG,
				   "the contrastive term does not train across processes yet");
	stats_zero(st);
	dropout_of(tr, &ph, &pa);
	/* normalisers over the whole accumulated step */
	mtl_train_count(tr, b, n, tr->norm);
	/* dist hook: over the whole global batch of every process */
	if (tr->dist && (rc = mtl_dist_sum_i64(tr->dist, tr->norm, nt, err)))
		return rc;
	for (int t = 0; t < nt; t++)
		st->labelled[t] = tr->norm[t];
	tr->slotted = slotted;
	zero_grad(tr);
	st->bwd_layers = 0;
	st->bwd_ms = 0;
	for (int k = 0; k < n; k++) {
		const struct mtl_batch *bk = b[k];
		size_t BTH;

		if (bk->B == 0) /* a process's share of a small batch */
			continue;
		MTL_ASSERT(!tr->fz_last || !enc);
		/* contrast.c: the second view goes first */
		if (con && (rc = mtl_contrast_view(con, tr->m, bk, ph, pa,
						   &tr->rng, err)))
			return rc;
		/* the low-memory step's second pass backs through the first
		 * pass's forward again: the encoder's and the heads' backward
		 * leave their activations as they were (an embedding task's
		 * loss does not: low_memory_step) */
		if (!(tr->lm && tr->lm->update && !tr->lm->forward) &&
		    (rc = forward(tr, bk, 1, tr->fz_last ? tr->fz_last[k] : NULL,
				  err)))
			return rc;
		BTH = (size_t)tr->rows * bk->T * tr->m->cfg.hidden;
		for (int i = 0; i < bk->B; i++)
			st->tokens += bk->lengths[i];
		for (int t = 0; t < nt; t++) {
			const int32_t *lab = bk->n_tasks > t ? bk->labels[t] : NULL;
			float scale;

			tr->skip[t] = !lab || tr->norm[t] == 0 ||
				      hd->ts->task[t].kind == MTL_TASK_EMBEDDING;
			if (tr->skip[t])
				continue;
			scale = (float)((w ? w[t] : hd->ts->task[t].weight) /
					(double)tr->norm[t]);
			st->task_loss[t] += task_loss(hd, t, lab,
						      tr->o.label_smoothing,
						      scale, &st->correct[t]);
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		mtl_zero(tr->dlast, (int64_t)BTH, tr->m->threads);
		mtl_heads_backward(hd, tr->hgrad, tr->dlast, tr->skip);
		for (int t = 0; t < nt; t++)
			if (tr->norm[t])
				emb_backward(tr, bk, t,
					     (float)((w ? w[t] : hd->ts->task[t].weight) /
						     (double)tr->norm[t]),
					     tr->dlast, st);
		if (con) {
			double cl;

			if ((rc = mtl_contrast_anchor(con, tr->m, bk, tr->mask,
						      tr->dlast, 1.0f / (float)n,
						      &cl, err)))
				return rc;
			con_loss += cl;
		}
		/* dist hook: the last batch completes each bucket of gradients;
		 * start summing it across processes at once */
		if (tr->dist && k == n - 1) {
			mtl_dist_ready(tr->dist, MTL_DIST_BUCKET_HEADS);
			tr->m->grad_ready = mtl_dist_layer_ready;
			tr->m->grad_ready_arg = tr->dist;
		}
		/* the low-memory step: each layer in the layer block, taken
		 * as it completes */
		if (tr->lm) {
			tr->m->grad_ready = low_memory_layer;
			tr->m->grad_ready_arg = tr;
			tr->m->layer_grad = &tr->lg;
		}
		/* a slotted step: each layer's sum as it completes */
		if (tr->slotted) {
			tr->m->grad_ready = slotted_layer;
			tr->m->grad_ready_arg = tr;
		}
		st->bwd_layers = mtl_train_encoder_backward(tr, tr->grad, tr->dlast);
		tr->m->grad_ready = NULL;
		tr->m->layer_grad = NULL;
		if (con && (rc = mtl_contrast_backward(con, tr->m, bk, ph, pa,
						       tr->grad, err)))
			return rc;
		st->bwd_ms += ms_since(&t0);
	}
	if (con) {
		con->loss = con_loss;
		st->loss += con->weight * con_loss;
	}
	/* dist hook: the summed gradient blocks, losses and counts (before
	 * anything writes the blocks again) */
	if (tr->dist && (rc = dist_finish(tr, st, err)))
		return rc;
	if (mtl_train_frozen(tr))
		freeze_grads(tr);
	for (int t = 0; t < nt; t++) {
		if (tr->norm[t])
			st->task_loss[t] /= (double)tr->norm[t];
		st->loss += (w ? w[t] : hd->ts->task[t].weight) * st->task_loss[t];
	}
	st->grad_norm = mtl_train_grad_norm(tr);
	return 0;
}

long mtl_train_warmup(const struct mtl_train_opts *o)
{
	return o->warmup >= 0 ? o->warmup
			      : (long)ceil((double)o->total * o->warmup_ratio);
}

int mtl_train_apply(struct mtl_train *tr, struct mtl_step_stats *st)
{
	const struct mtl_train_opts *o = &tr->o;
	long warmup = mtl_train_warmup(o);
	float lr, hlr, gscale;

	st->step = tr->step;
	lr = mtl_adamw_lr_at(o->sched, o->lr, tr->step, warmup, o->total);
	hlr = mtl_adamw_lr_at(o->sched, o->head_lr > 0 ? o->head_lr : o->lr, tr->step,
			warmup, o->total);
	st->lr = lr;
	st->head_lr = hlr;
	/* a NaN or Inf anywhere makes the sum of squares non-finite */
	if (!isfinite(st->loss) || !isfinite(st->grad_norm))
		return 1;
	gscale = mtl_adamw_clip_scale(st->grad_norm, o->clip);
	tr->step++;
	if (tr->slotted) {
		for (int l = tr->lreach; l < tr->m->cfg.layers; l++)
			layer_adamw(tr, l, lr, tr->step, gscale);
		embeddings_adamw(tr, lr, tr->step, gscale);
	} else if (tr->fz.enc)
		freeze_adamw(tr, lr, gscale);
	else
		encoder_adamw(tr, tr->groups, tr->n_groups, lr, tr->step,
			      gscale);
	heads_adamw(tr, st->labelled, hlr, gscale);
	st->step = tr->step;
	return 0;
}

/* ---- the low-memory step ---- */

/* AdamW over the embeddings' groups (and the pooler's, empty) at step
 * t: those trained all along, then those frozen until unfreeze_at. */
static void embeddings_adamw(struct mtl_train *tr, float lr, long t,
			     float gscale)
{
	for (int late = 0; late < 2; late++) {
		size_t n = 0;
		long tt = 0;

		for (size_t i = 0; i < tr->n_groups; i++) {
			long ti = tensor_step(tr, i, t);

			if (tr->m->tensors[i].layer < 0 && ti && (ti != t) == late) {
				tr->lgroups[n++] = tr->groups[i];
				tt = ti;
			}
		}
		if (n)
			encoder_adamw(tr, tr->lgroups, n, lr, tt, gscale);
	}
}

/*
 * AdamW on layer l's tensors from their layer block (ltensor) at step t,
 * zeroing their moments first at a tensor's step 1, as encoder_adamw
 * does.  AdamW is element by element: by layer, it gives the bits of
 * encoder_adamw over all groups at once.
 */
static void layer_adamw(struct mtl_train *tr, int l, float lr, long t,
			float gscale)
{
	int nt = tr->m->threads;

	for (size_t i = 0; i < tr->n_groups; i++) {
		struct mtl_adamw_group g = tr->groups[i];
		size_t off = g.off;
		long ti = tensor_step(tr, i, t);

		if (tr->m->tensors[i].layer != l || ti == 0)
			continue;
		g.off = 0;
		if (ti == 1) {
			mtl_zero(tr->mom1 + off, (int64_t)g.n, nt);
			mtl_zero(tr->mom2 + off, (int64_t)g.n, nt);
		}
		mtl_adamw_step(&tr->adam, tr->m->params + off, tr->ltensor[i],
			       tr->mom1 + off, tr->mom2 + off, &g, 1, lr, ti,
			       gscale, nt);
	}
}

/*
 * grad_ready (bert.h): layer l's gradient is complete in the layer block.
 * Its sum of squares for the norm; in the second pass AdamW on each of
 * its tensors; then the block back to zero for the layer below.
 */
static void low_memory_layer(void *arg, int l)
{
	struct mtl_train *tr = arg;
	const struct low_memory *lm = tr->lm;

	if (l < 0)
		return;
	tr->lsum[l] = layer_norm2(tr, l);
	if (lm->update)
		layer_adamw(tr, l, lm->lr, lm->t, lm->gscale);
	mtl_zero(tr->lgrad, (int64_t)tr->lgrad_n, tr->m->threads);
}

/*
 * mtl_train_step with o.low_memory (train.h).  The first pass is
 * mtl_train_grad with each layer's gradient summed and let go of as it
 * completes; then mtl_train_apply's schedule and clipping factor; the
 * second pass backs through the same forward again (with an embedding
 * task, runs it again from the same dropout stream), updating each
 * layer as its gradient completes, then the embeddings and the heads.
 * AdamW is element by element, so the order changes no bit; the second
 * pass must give the first pass's loss and norm, bit for bit, or the
 * step fails rather than train on something else.
 */
static int low_memory_step(struct mtl_train *tr,
			   const struct mtl_batch *const *b, int n,
			   struct mtl_step_stats *st, struct mtl_err *err)
{
	const struct mtl_train_opts *o = &tr->o;
	long warmup = mtl_train_warmup(o);
	struct mtl_rng r0 = tr->rng;
	int rc, again = 0;
	float hlr;

	for (int t = 0; t < tr->hd->ts->n; t++)
		again |= tr->hd->ts->task[t].kind == MTL_TASK_EMBEDDING;
	if (n != 1 || tr->dist || tr->con || tr->fz_last)
		return mtl_err_set(err, MTL_ERR_ARG,
				   "the low-memory step takes one batch a step, in one process, without cached features or a contrastive term");
	if (!tr->lm) {
		tr->lm = calloc(1, sizeof(*tr->lm));
		if (!tr->lm || mtl_step_stats_init(&tr->lm->st, st->n_tasks))
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	tr->lm->update = 0;
	if ((rc = mtl_train_grad(tr, b, n, st, err)))
		return rc;
	st->step = tr->step;
	st->lr = mtl_adamw_lr_at(o->sched, o->lr, tr->step, warmup, o->total);
	st->head_lr = hlr = mtl_adamw_lr_at(o->sched, o->head_lr > 0 ? o->head_lr : o->lr,
					    tr->step, warmup, o->total);
	if (!isfinite(st->loss) || !isfinite(st->grad_norm))
		return 1;
	*tr->lm = (struct low_memory){
		.update = 1, .forward = again, .lr = st->lr, .t = tr->step + 1,
		.gscale = mtl_adamw_clip_scale(st->grad_norm, o->clip),
		.st = tr->lm->st,
	};
	/* an embedding task's loss works on the pooled rows in place: then
	 * the forward runs again, from the same dropout stream */
	if (again)
		tr->rng = r0;
	rc = mtl_train_grad(tr, b, n, &tr->lm->st, err);
	tr->lm->update = 0;
	if (rc)
		return rc;
	if (tr->lm->st.loss != st->loss || tr->lm->st.grad_norm != st->grad_norm)
		return mtl_err_set(err, MTL_ERR_ARG,
				   "the low-memory step's second pass differs from its first (gradient norm %.17g, then %.17g)",
				   st->grad_norm, tr->lm->st.grad_norm);
	tr->step++;
	embeddings_adamw(tr, st->lr, tr->step, tr->lm->gscale);
	heads_adamw(tr, st->labelled, hlr, tr->lm->gscale);
	st->bwd_ms += tr->lm->st.bwd_ms;
	st->step = tr->step;
	return 0;
}

/*
 * Whether a step can keep its layers' gradients in the activations'
 * slots (bert.h, grad_slots): its one backward is the last over its
 * forward (one batch, no contrastive term's second view, no cached
 * features), in one process (a data-parallel sum reads grad), and each
 * layer keeps activations to give way (not with recompute).
 */
static int slots_fit(const struct mtl_train *tr, int n)
{
	int lo, emb;

	return n == 1 && !tr->dist && !tr->con && !tr->fz_last &&
	       !tr->m->recompute && encoder_trains(tr, &lo, &emb);
}

int mtl_train_step(struct mtl_train *tr, const struct mtl_batch *const *b,
		   int n, struct mtl_step_stats *st, struct mtl_err *err)
{
	int rc;

	if (tr->o.low_memory)
		return low_memory_step(tr, b, n, st, err);
	/* the gradients in memory the activations free, the same bits */
	tr->m->grad_slots = slots_fit(tr, n);
	rc = grad_pass(tr, b, n, NULL, tr->m->grad_slots, st, err);
	tr->m->grad_slots = 0;
	return rc ? rc : mtl_train_apply(tr, st);
}

int mtl_train_set_dist(struct mtl_train *tr, struct mtl_dist *d,
		       const struct mtl_rng *rngs, struct mtl_err *err)
{
	int rc;

	if (!d || mtl_dist_size(d) == 1)
		return 0;
	if (tr->o.low_memory)
		return mtl_err_set(err, MTL_ERR_ARG,
				   "--low-memory runs in one process: its gradients are gone before they could be summed");
	if ((rc = mtl_dist_attach(d, tr->m, tr->grad, tr->hd, tr->hgrad, err)))
		return rc;
	/* the sums reach every rank's rows: the whole table, always */
	memset(tr->wte_rows, 1, (size_t)tr->m->cfg.vocab);
	/* a checkpoint's stream of this rank; else one from the trainer's
	 * current stream (the seed's, or a resumed checkpoint's), so rank 0
	 * keeps the one-process masks */
	if (rngs)
		tr->rng = rngs[mtl_dist_rank(d)];
	else
		mtl_dist_derive_rng(d, &tr->rng);
	tr->dist = d;
	/* so that rank 0 holds every rank's stream before the first step */
	return mtl_dist_gather_rng(d, &tr->rng, err);
}

int mtl_train_eval(struct mtl_train *tr, const struct mtl_batch *b,
		   struct mtl_step_stats *st, struct mtl_confusion *conf,
		   struct mtl_err *err)
{
	struct mtl_heads *hd = tr->hd;
	int rc;

	if ((rc = forward(tr, b, 0, NULL, err)))
		return rc;
	for (int i = 0; i < b->B; i++)
		st->tokens += b->lengths[i];
	for (int t = 0; t < hd->ts->n; t++) {
		struct mtl_head *h = &hd->h[t];
		const int32_t *lab = b->n_tasks > t ? b->labels[t] : NULL;

		if (hd->ts->task[t].kind == MTL_TASK_EMBEDDING) {
			st->labelled[t] += tr->emb_n[t];
			st->task_loss[t] += tr->emb_n[t] * tr->emb_loss[t];
			st->correct[t] += tr->emb_correct[t];
			continue;
		}
		if (!lab)
			continue;
		st->labelled[t] += mtl_loss_count(lab, task_rows(hd, t, b));
		st->task_loss[t] += task_loss(hd, t, lab, 0.0f, 1.0f,
					      &st->correct[t]);
		if (!conf || hd->ts->task[t].kind == MTL_TASK_MULTILABEL ||
		    hd->ts->task[t].kind == MTL_TASK_REGRESSION)
			continue;
		for (int i = 0; i < h->N; i++) {
			const float *z = h->logits + (size_t)i * h->C;
			int arg = 0;

			if (lab[i] == MTL_IGNORE)
				continue;
			for (int c = 1; c < h->C; c++)
				if (z[c] > z[arg])
					arg = c;
			mtl_confusion_add(&conf[t], lab[i], arg);
		}
	}
	return 0;
}

int mtl_train_pool(const struct mtl_train *tr, const struct mtl_batch *b,
		   enum mtl_pool mode, float *out)
{
	mtl_pool_forward(out, mtl_bert_last_hidden(tr->m), tr->mask, tr->rows,
			 b->T, tr->m->cfg.hidden, mode);
	return tr->rows;
}
