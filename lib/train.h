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

struct mtl_train {
	struct mtl_bert *m;
	struct mtl_heads *hd;
	struct mtl_train_opts o;
	struct mtl_adamw adam;
	float *grad, *mom1, *mom2;    /* encoder: n_params each */
	float *hgrad, *hmom1, *hmom2; /* heads: hd->n_params each */
	struct mtl_adamw_group *groups, *hgroups;
	size_t n_groups, n_hgroups;
	struct mtl_rng rng;
	long step;
	/* AdamW steps each task's head has taken: only steps with labelled
	 * items of the task update it (torch skips parameters without a
	 * gradient); [ts->n] */
	long *head_steps;
	/* data-parallel group (mtl_dist_train in dist.h), NULL: this process
	 * alone; when set, a step's counts, gradients and statistics are
	 * sums over every process of the group */
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
	/* balance.h: the task-balancing strategy, NULL for the spec weights
	 * (borrowed; set by the caller after mtl_balance_new) */
	struct mtl_balance *bal;
	/* contrast.h: the contrastive term, NULL for none (borrowed) */
	struct mtl_contrast *con;
	/* private: per-batch buffers, grown */
	float *dlast;
	int32_t *mask;
	size_t cap;
	uint8_t *skip;
	int64_t *norm;
};

int mtl_train_new(struct mtl_train **out, struct mtl_bert *m,
		  struct mtl_heads *hd, const struct mtl_train_opts *o,
		  struct mtl_err *err);
void mtl_train_free(struct mtl_train *tr);

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
 * first.  Fills st (except lr and step).  No optimiser update.
 */
int mtl_train_grad(struct mtl_train *tr, const struct mtl_batch *const *b,
		   int n, struct mtl_step_stats *st, struct mtl_err *err);

/*
 * mtl_train_grad with loss weights w[n_tasks] in place of the tasks'
 * spec weights (w NULL: the spec weights), never through tr->bal.
 */
int mtl_train_grad_weighted(struct mtl_train *tr,
			    const struct mtl_batch *const *b, int n,
			    const double *w, struct mtl_step_stats *st,
			    struct mtl_err *err);

/*
 * The forward of one batch (train set: dropout and every activation
 * kept for backward) through the encoder and the heads; fills tr->mask.
 */
int mtl_train_forward(struct mtl_train *tr, const struct mtl_batch *b,
		      int train, struct mtl_err *err);

/*
 * One optimiser step: mtl_train_grad, then, when the loss and every
 * gradient are finite, clipping, the scheduled learning rate and AdamW.
 * Returns 0 after an update, 1 when the step was skipped (non-finite
 * loss or gradient: parameters and moments untouched, the step counter
 * not advanced), <0 on error.
 */
int mtl_train_step(struct mtl_train *tr, const struct mtl_batch *const *b,
		   int n, struct mtl_step_stats *st, struct mtl_err *err);

/*
 * Evaluation forward (no dropout) of one batch: adds the loss sums, the
 * labelled and correct counts into st (task_loss holds sums until the
 * caller divides by labelled) and, when conf is not NULL, each labelled
 * item's (gold, argmax) into conf[t] (initialised for the task's labels).
 */
int mtl_train_eval(struct mtl_train *tr, const struct mtl_batch *b,
		   struct mtl_step_stats *st, struct mtl_confusion *conf,
		   struct mtl_err *err);

#endif
