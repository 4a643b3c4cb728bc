/*
 * train.h - the multi-task trainer: encoder + heads + losses + AdamW, one
 * optimiser step over one or more (accumulated) batches.
 *
 * Example:
 *
 *	struct mtl_train_opts o;
 *	struct mtl_train *tr;
 *	mtl_train_opts_defaults(&o);
 *	o.lr = 5e-5f; o.total = 1000;
 *	if (mtl_train_new(&tr, model, heads, &o, &err)) die(...);
 *	while (read a group of o.accumulate batches into b[])
 *		rc = mtl_train_step(tr, b, n, &stats, &err);  // 1 = skipped
 *	mtl_train_free(tr);
 *
 * A step is a gradient pass and an update.  mtl_train_step() is the
 * plain one: mtl_train_grad() (the tasks' spec weights), then
 * mtl_train_apply().  A layer above (balance.h: task balancing) makes
 * its own gradient pass from the primitives below and then calls
 * mtl_train_apply() in the same way:
 *
 *	mtl_train_grad_weighted()   every task's loss under given weights,
 *	                            in one backward per batch
 *	mtl_train_count()           each task's labelled items in a step
 *	mtl_train_zero_grad()       the gradient blocks to zero
 *	mtl_train_forward()         the training forward of one batch
 *	mtl_train_task_backward()   one task's loss and heads backward: its
 *	                            gradient at the encoder output
 *	mtl_train_encoder_backward() an output gradient through the encoder
 *	                            into a gradient block
 *	mtl_train_grad_norm()       the global norm of the gradient blocks
 *
 * The trainer knows nothing of the layers above it.  Data parallelism
 * (dist.h) sits below: mtl_train_set_dist() attaches a group, and the
 * gradient pass then sums over it.
 *
 * State (llm.c style): the encoder's gradient, first and second moment
 * blocks have the layout of its parameter block, the heads' likewise; the
 * optimiser groups come from the two tensor tables (weight decay off for
 * biases and LayerNorm weights; learning-rate multipliers for the heads
 * and for layer-wise decay).  All of it is allocated by mtl_train_new();
 * a step allocates only when a batch is larger than any before.
 *
 * Accumulation: the loss of task t over a step's n batches is the mean
 * over the labelled items of t in all n batches together, so n batches
 * give the gradient of the one batch made of them (up to rounding).
 *
 * Ownership: the trainer borrows the model and the heads (and the heads'
 * tasks); they must outlive it.  mtl_train_free() accepts NULL.
 */
#ifndef MTL_TRAIN_H
#define MTL_TRAIN_H

#include <stdint.h>

#include "adamw.h"
#include "bert.h"
#include "data.h"
#include "freeze.h"
#include "head.h"
#include "metrics.h"
#include "rng.h"

struct mtl_train_opts {
	float lr;            /* peak learning rate (5e-5) */
	float head_lr;       /* heads' peak learning rate; <= 0: lr */
	float layer_decay;   /* layer-wise lr decay factor (1: none) */
	float weight_decay;  /* 0.01 */
	long warmup;         /* warm-up steps; < 0: mtl_train_warmup() */
	double warmup_ratio; /* 0; double, as Hugging Face's: 0.1f * 150 > 15 */
	long total;          /* optimiser steps of the schedule */
	enum mtl_sched sched; /* linear */
	float clip;          /* max global gradient norm; <= 0: none (1.0) */
	float label_smoothing; /* 0 */
	float dropout;       /* < 0: config and tasks.json; else every dropout */
	uint64_t seed;       /* dropout masks (42) */
	/* one layer's gradient at a time: each step runs its backward
	 * twice, the first for the global norm, the second updating each
	 * layer as its gradient completes (mtl_train_step only; one batch
	 * a step, one process, no cached features, no contrastive term).
	 * The same parameters, bit for bit. (0) */
	int low_memory;
};

void mtl_train_opts_defaults(struct mtl_train_opts *o);

/* What one step (or one evaluation) measured. */
struct mtl_step_stats {
	int n_tasks;
	double loss;         /* sum_t weight_t loss_t */
	double *task_loss;   /* [n_tasks] */
	int64_t *labelled;   /* [n_tasks] */
	int64_t *correct;    /* [n_tasks] argmax == label */
	double grad_norm;    /* before clipping */
	float lr;            /* the encoder's learning rate for the step */
	float head_lr;       /* the heads' */
	int64_t tokens;      /* real tokens in the step's batches */
	long step;           /* optimiser steps done after this one */
	int bwd_layers;      /* encoder layers the backward ran through */
	double bwd_ms;       /* wall time of the step's backward passes */
};

struct mtl_dist;

/*
 * The trainer.  The fields down to "private" are the public state a
 * layer above may read (the gradient blocks also write, between a
 * gradient pass and mtl_train_apply); con and fz_last are the caller's
 * to set; dist is set by mtl_train_set_dist only.
 */
struct mtl_train {
	struct mtl_bert *m;
	struct mtl_heads *hd;
	struct mtl_train_opts o;
	struct mtl_adamw adam;
	float *grad, *mom1, *mom2;    /* encoder: n_params each */
	/*
	 * [vocab]: the word-embedding rows of grad a backward may have
	 * written since the gradient was last zeroed (the model's
	 * wte_rows); the other rows are zero, and neither written nor read
	 * (so they hold no memory: bge-base's 94 MB table gradient holds
	 * what a batch's tokens reach).  A caller that writes grad there
	 * itself marks the rows.  All ones, for good, in a data-parallel
	 * group (tr->dist set: every rank's rows are summed into each), where
	 * the table is cleared and summed as one block.
	 */
	uint8_t *wte_rows;
	/* [vocab]: 0 for a word-embedding row whose moments are zero: no
	 * step has given it a gradient yet (adamw.h, seen), so they are
	 * neither read nor written and hold no memory.
	 * mtl_train_moments_set() marks the rows again after the moments
	 * were written from outside (a checkpoint). */
	uint8_t *wte_seen;
	float *hgrad, *hmom1, *hmom2; /* heads: hd->n_params each */
	struct mtl_adamw_group *groups, *hgroups;
	size_t n_groups, n_hgroups;
	struct mtl_rng rng;
	long step;
	/* AdamW steps each task's head has taken: only steps with labelled
	 * items of the task update it (torch skips parameters without a
	 * gradient); [ts->n] */
	long *head_steps;
	/* data-parallel group (set by mtl_train_set_dist; read only), NULL:
	 * this process alone; when set, a step's counts, gradients and
	 * statistics are sums over every process of the group */
	struct mtl_dist *dist;
	/* ---- freezing (mtl_train_freeze); zero when nothing is frozen ---- */
	struct mtl_freeze fz;
	long unfreeze_at;       /* first step that trains everything; 0: never */
	int fz_lo, fz_emb;      /* backward bounds while frozen */
	struct mtl_adamw_group *fz_g[2]; /* [0] always trained, [1] frozen */
	size_t fz_n[2];
	/* cached encoder outputs (feat.h) of the next step's batches, [B,T,H]
	 * each, set by the caller; NULL: run the encoder.  Needs the whole
	 * encoder frozen. */
	const float *const *fz_last;
	/* ---- end of freezing ---- */
	/* contrast.h: the contrastive term, NULL for none (borrowed) */
	struct mtl_contrast *con;
	/* private: per-batch buffers, grown; per-task counts */
	float *dlast;
	int32_t *mask;
	size_t cap;
	uint8_t *skip;
	int64_t *norm;
	/* private, embedding tasks (emb.h): rows of the last forward (B, or
	 * B + E with the batch's extra rows), their pooled output [rows,H],
	 * and per task its loss, labelled rows and dL/dpooled [rows,H] */
	int rows;
	float *pooled, *emb_dP;
	size_t emb_cap;
	double *emb_loss;
	int *emb_n;
	int64_t *emb_correct;   /* MNRL's in-batch top-1 hits (emb.h) */
	/* private, o.low_memory (train.c): the step's state; one layer's
	 * gradient block (lgrad_n floats, carved as lg: mtl_bert_layer_carve)
	 * and each layer tensor's place in it (NULL for the others); per
	 * layer its gradient's sum of squares; the embeddings' groups.
	 * slotted: a step of mtl_train_step whose layers' gradients lie in
	 * the activations' slots (bert.h, grad_slots), ltensor pointing
	 * there, from layer lreach up */
	int slotted, lreach;
	struct low_memory *lm;
	double *lsum;
	struct mtl_adamw_group *lgroups;
	float *lgrad, **ltensor;
	size_t lgrad_n;
	struct mtl_bert_params lg;
};

int mtl_train_new(struct mtl_train **out, struct mtl_bert *m,
		  struct mtl_heads *hd, const struct mtl_train_opts *o,
		  struct mtl_err *err);
void mtl_train_free(struct mtl_train *tr);

/* After tr->mom1 and tr->mom2 were written from outside (a checkpoint):
 * marks in tr->wte_seen the word-embedding rows whose moments are not
 * all zero. */
void mtl_train_moments_set(struct mtl_train *tr);

/*
 * Freezes the parts of the model that fz flags (freeze.h; the trainer
 * takes the flag arrays over, fz is zeroed) until optimiser step
 * unfreeze_at (counted from 1; 0: for the whole run).  While frozen, a
 * tensor gets no gradient (zeroed before the norm and clipping), no
 * AdamW update, no weight decay and no moments; the encoder backward stops
 * at the lowest trainable layer and is skipped when the whole encoder is
 * frozen.  From step unfreeze_at on everything trains, and the tensors
 * that were frozen count their own AdamW steps from 1 there (PyTorch's
 * per-parameter step: their moments start at zero).  Call it once, before
 * the first step.  0, or <0 (NOMEM).
 */
int mtl_train_freeze(struct mtl_train *tr, struct mtl_freeze *fz,
		     long unfreeze_at, struct mtl_err *err);
/* Whether step tr->step + 1 runs with the freeze in force. */
int mtl_train_frozen(const struct mtl_train *tr);

/*
 * The warm-up steps of o: o->warmup, or when that is < 0 Hugging Face's
 * ceil(total * warmup_ratio) (TrainingArguments.get_warmup_steps), in
 * double as Python computes it: 0.1 over 150 steps gives 15.
 */
long mtl_train_warmup(const struct mtl_train_opts *o);

/* Allocates the per-task arrays of st for n tasks; release frees them. */
int mtl_step_stats_init(struct mtl_step_stats *st, int n_tasks);
void mtl_step_stats_release(struct mtl_step_stats *st);

/*
 * Forward and backward over b[0..n) (labels as in struct mtl_batch:
 * labels[t] NULL when the batch has none for t), gradients accumulated
 * with the whole-step normalisers, into tr->grad / tr->hgrad, zeroed
 * first, each task's loss weighted by its spec weight.  Fills st (except
 * lr and step).  No optimiser update.
 */
int mtl_train_grad(struct mtl_train *tr, const struct mtl_batch *const *b,
		   int n, struct mtl_step_stats *st, struct mtl_err *err);

/*
 * mtl_train_grad with loss weights w[n_tasks] in place of the tasks'
 * spec weights (w NULL: the spec weights).  The contrastive term
 * (tr->con) and the data-parallel sums (mtl_train_set_dist) take part.
 */
int mtl_train_grad_weighted(struct mtl_train *tr,
			    const struct mtl_batch *const *b, int n,
			    const double *w, struct mtl_step_stats *st,
			    struct mtl_err *err);

/*
 * Encoder tensor i's gradient (mtl_bert_tensors order) from the last
 * gradient pass: its place in tr->grad, or after a step of
 * mtl_train_step that kept the layers' gradients in the activations'
 * slots, there (until the next forward; NULL for a layer below the
 * backward's reach, whose gradient is zero).
 */
const float *mtl_train_tensor_grad(const struct mtl_train *tr, size_t i);

/*
 * norm[t] for every task t: the labelled items of t in b[0..n) (rows of
 * a sequence task, tokens of a token task; MTL_IGNORE not counted), on
 * this process only.  A task's mean loss over a step divides by it.
 */
void mtl_train_count(const struct mtl_train *tr,
		     const struct mtl_batch *const *b, int n, int64_t *norm);

/*
 * Zeroes the gradient blocks tr->grad and tr->hgrad (the encoder's is
 * left alone while the whole encoder is frozen: it stays zero), as a
 * gradient pass starts.
 */
void mtl_train_zero_grad(struct mtl_train *tr);

/*
 * The forward of one batch (train set: dropout and every activation
 * kept for backward) through the encoder and the heads.  The
 * activations stay until the next forward, so any number of
 * mtl_train_task_backward / mtl_train_encoder_backward calls may follow.
 * 0, or <0 (MTL_ERR_NOMEM growing the batch buffers).
 */
int mtl_train_forward(struct mtl_train *tr, const struct mtl_batch *b,
		      int train, struct mtl_err *err);

/*
 * The rows the training forward of b runs through the encoder: b->B, and
 * b->E more when an embedding task labels b (its positives, pair texts
 * and negatives, data.h) and the encoder trains.  An output gradient
 * (dout below) has rows x T x H floats.
 */
int mtl_train_rows(const struct mtl_train *tr, const struct mtl_batch *b);

/*
 * Task t alone over batch b, after mtl_train_forward(tr, b, 1): zeroes
 * dout[rows*T*H] (mtl_train_rows); then, when b has labels for t, takes head t's
 * cross-entropy (label smoothing from the options) with the loss scaled
 * by scale (e.g. 1 / mtl_train_count's norm[t], for the step's mean):
 * adds the unscaled loss sum into st->task_loss[t] and the correct count
 * into st->correct[t], head t's gradient into tr->hgrad (the other heads'
 * untouched) and writes the loss's gradient with respect to the encoder
 * output into dout.  An embedding task has no head: its loss (emb.h)
 * over the pooled rows of the forward, scaled likewise, adds the loss
 * sum (labelled rows x the batch loss) and writes the gradient at every
 * row it reads.  Returns 1 when b has labels for t, 0 when not (dout
 * then stays zero).
 */
int mtl_train_task_backward(struct mtl_train *tr, const struct mtl_batch *b,
			    int t, float scale, float *dout,
			    struct mtl_step_stats *st);

/*
 * The encoder backward of dout[B*T*H] (a gradient at the encoder output
 * of the batch of the last mtl_train_forward) ADDED into grad, a block
 * of tr->m->n_params floats laid out as tr->grad (tr->grad itself, or the
 * caller's).  Frozen layers (mtl_train_freeze) are not run through.
 * Returns the number of encoder layers run through.
 */
int mtl_train_encoder_backward(struct mtl_train *tr, float *grad,
			       const float *dout);

/*
 * The global norm of the gradient blocks: sqrt(|grad|^2 + |hgrad|^2),
 * summed tensor by tensor in a fixed order (the word embeddings' rows,
 * the other embedding tensors, each layer's tensors, layer by layer, the
 * heads), so that the low-memory step, which sums each layer as its
 * gradient completes, gets the same bits.
 */
double mtl_train_grad_norm(const struct mtl_train *tr);

/*
 * The optimiser update after a gradient pass whose statistics are st
 * (st->loss, st->grad_norm and st->labelled read; st->lr, st->head_lr
 * and st->step written): when the loss and the norm are finite,
 * clipping, the scheduled learning rates and AdamW over tr->grad and
 * the heads' part of tr->hgrad.  As torch's AdamW skips a parameter
 * without a gradient, the head of a task with st->labelled[t] == 0 (and
 * the pooler, in no loss) takes no step, not even weight decay; each
 * head counts its own steps (tr->head_steps) for the bias corrections.
 * Returns 0 after an update (tr->step advanced), 1 when the step was
 * skipped (non-finite loss or gradient: parameters, moments and the step
 * counter untouched).
 */
int mtl_train_apply(struct mtl_train *tr, struct mtl_step_stats *st);

/*
 * One optimiser step: mtl_train_grad, then mtl_train_apply.  Returns 0
 * after an update, 1 when the step was skipped, <0 on error.  With
 * o.low_memory: the two passes of that option (MTL_ERR_ARG for more than
 * one batch, a data-parallel group, cached features or a contrastive
 * term).  Otherwise, for one batch in one process without recompute,
 * cached features or a contrastive term, each layer's gradient goes
 * over activations its backward is done with (bert.h, grad_slots)
 * rather than into tr->grad, which saves the memory of one of the two:
 * the same bits; mtl_train_tensor_grad() finds the gradients after it.
 */
int mtl_train_step(struct mtl_train *tr, const struct mtl_batch *const *b,
		   int n, struct mtl_step_stats *st, struct mtl_err *err);

/*
 * Makes the trainer data-parallel over d (dist.h) when d has more than
 * one process (d NULL or of one process: nothing changes): plans the
 * buckets of its gradient blocks (mtl_dist_attach) and gives this rank
 * its dropout stream: rngs[rank] when rngs is given (every rank's
 * stream from a checkpoint of as many ranks, ckpt.h), else one turned
 * from the trainer's current stream (mtl_dist_derive_rng: rank 0 keeps
 * it, so it draws what one process would).  From then on rank 0 holds
 * every rank's stream (mtl_dist_rngs), gathered after each gradient
 * pass.  Call it after anything that sets the trainer's state (a resumed
 * checkpoint).  Every rank must then run the same steps.  d is borrowed
 * and must outlive the trainer.  0, or <0 (MTL_ERR_NOMEM, MTL_ERR_IO).
 */
int mtl_train_set_dist(struct mtl_train *tr, struct mtl_dist *d,
		       const struct mtl_rng *rngs, struct mtl_err *err);

/*
 * Evaluation forward (no dropout) of one batch: adds the loss sums, the
 * labelled and correct counts into st (task_loss holds sums until the
 * caller divides by labelled) and, when conf is not NULL, each labelled
 * item's (gold, argmax) into conf[t] (initialised for the task's labels).
 */
int mtl_train_eval(struct mtl_train *tr, const struct mtl_batch *b,
		   struct mtl_step_stats *st, struct mtl_confusion *conf,
		   struct mtl_err *err);

/*
 * The sentence vectors of the last forward of b (mtl_train_forward or
 * mtl_train_eval): its encoder output pooled by mode (ops.h; not
 * normalised) into out[rows, H], where rows, returned, is b->B plus
 * b->E when an embedding task's extra rows took part (data.h: row
 * b->labels[t][i] is example i's positive).
 */
int mtl_train_pool(const struct mtl_train *tr, const struct mtl_batch *b,
		   enum mtl_pool mode, float *out);

#endif
