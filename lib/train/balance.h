/*
 * balance.h - task balancing for the multi-task trainer: loss weighting
 * (static, uncertainty, dynamic weight average, GradNorm, random loss
 * weighting) and gradient surgery (PCGrad, CAGrad, Nash-MTL).  docs/balancing.md
 * gives each method's formula, paper and cost.
 *
 * Example:
 *
 *	struct mtl_balance_opts bo;
 *	struct mtl_balance *bal;
 *	mtl_balance_opts_defaults(&bo);
 *	bo.kind = MTL_BALANCE_PCGRAD;
 *	if (mtl_balance_new(&bal, tr, &bo, &err)) die(...);
 *	... mtl_balance_step(bal, b, n, &st, &err); bal->hw, bal->cos ...
 *	mtl_balance_free(bal);
 *
 * Layering: balancing sits above the trainer (train.h) and uses only its
 * public primitives: a step is the balanced gradient pass
 * (mtl_balance_grad: mtl_train_grad_weighted for loss weighting; for the
 * gradient methods, mtl_train_forward, then per task
 * mtl_train_task_backward and mtl_train_encoder_backward), then the
 * trainer's update (mtl_train_apply), then the strategy's own.  The
 * trainer does not know it is balanced: a program calls either
 * mtl_train_step or mtl_balance_step.
 *
 * Every method is written as one combined gradient of the shared
 * encoder, sum_t coef[t] g_t (g_t the gradient of task t's mean loss),
 * and head t's gradient w[t] times its own.  Loss weighting sets coef =
 * w.  Gradient methods take per-task gradients on a recompute step and
 * derive coef from their Gram matrix K[i][j] = g_i . g_j (PCGrad's
 * projections and CAGrad's update are both linear combinations of the
 * g_t), so --balance-every k reuses coef for k - 1 steps at the cost of
 * one ordinary backward.  Per-task gradients are taken either over the
 * whole encoder (one encoder backward per task after the one forward) or
 * at the encoder output (one backward per task through the heads only,
 * then one encoder backward of the combined output gradient).
 *
 * Missing tasks: a task without labels in a step has no gradient, no
 * loss and takes no part: its weight is reported but not applied, its
 * history and learned variables stay as they were.
 *
 * State: struct mtl_balance_state is plain data, everything a resume
 * needs to continue bit for bit (with the trainer's own state);
 * mtl_balance_state_pack()/_unpack() write it to and read it from one
 * msgpack map, _to_json()/_from_json() to and from the JSON object a
 * checkpoint keeps (mtl-step --save-every / --resume use those).
 *
 * Ownership: mtl_balance_new() borrows the trainer, which must outlive
 * the balancer; mtl_balance_free() accepts NULL.  bal->hw (the weights
 * in force), bal->cos and bal->ms describe the last step.
 *
 * The contrastive term (contrast.h, tr->con) joins the loss-weighting
 * paths; the per-task gradient passes leave it out, so mtl-step refuses
 * the combination.  Loss weighting works with freezing (train.h); the
 * gradient methods fail with MTL_ERR_ARG while anything is frozen.
 */
#ifndef MTL_BALANCE_H
#define MTL_BALANCE_H

#include <jansson.h>
#include <msgpack.h>
#include <stdint.h>

#include "data.h"
#include "err.h"
#include "rng.h"

struct mtl_train;
struct mtl_step_stats;

enum mtl_balance_kind {
	MTL_BALANCE_STATIC,      /* spec weights (the default) */
	MTL_BALANCE_UNCERTAINTY, /* Kendall et al. 2018 */
	MTL_BALANCE_DWA,         /* Liu et al. 2019 */
	MTL_BALANCE_GRADNORM,    /* Chen et al. 2018 */
	MTL_BALANCE_RLW,         /* Lin et al. 2021 */
	MTL_BALANCE_PCGRAD,      /* Yu et al. 2020 */
	MTL_BALANCE_CAGRAD,      /* Liu et al. 2021 */
	MTL_BALANCE_NASH,        /* Navon et al. 2022 (Nash-MTL) */
};

enum mtl_balance_at {
	MTL_BALANCE_AT_ENCODER, /* per-task gradients of every encoder parameter */
	MTL_BALANCE_AT_OUTPUT,  /* per-task gradients at the encoder output */
};

struct mtl_balance_opts {
	enum mtl_balance_kind kind;
	enum mtl_balance_at at;
	int every;              /* recompute weights/coefficients every k steps (1) */
	double dwa_temperature; /* 2 */
	double gradnorm_alpha;  /* 1.5 */
	double gradnorm_lr;     /* 0.025: step of the weights' own update */
	double cagrad_c;        /* 0.5 */
	uint64_t seed;          /* PCGrad's task order, RLW's draws (42) */
};

void mtl_balance_opts_defaults(struct mtl_balance_opts *o);
/* "static", "uncertainty", ...: 0 and *k, or -1 for an unknown name. */
int mtl_balance_parse(enum mtl_balance_kind *k, const char *name);
/* --grad-at: "encoder" or "encoder-output" into *at; 0, or -1 for
 * another name (*at untouched). */
int mtl_balance_parse_at(enum mtl_balance_at *at, const char *name);
const char *mtl_balance_name(enum mtl_balance_kind k);
/* Whether the method needs per-task gradients. */
int mtl_balance_is_gradient(enum mtl_balance_kind k);

/* What a checkpoint keeps (all arrays [n_tasks] unless said). */
struct mtl_balance_state {
	int n_tasks;
	struct mtl_rng rng;    /* PCGrad order, RLW draws */
	double *w;             /* loss weights in force */
	double *coef;          /* encoder coefficients in force */
	float *logvar;         /* uncertainty: s_t = log sigma_t^2 */
	float *logvar_m, *logvar_v; /* its AdamW moments */
	double *hist;          /* [2*n] DWA: mean loss of the last window
				* (hist[t]) and the one before (hist[n+t]);
				* NaN: not seen yet */
	double *win_sum;       /* DWA: loss sum over the current window */
	int64_t *win_n;        /* DWA: steps in it that had the task */
	double *loss0;         /* GradNorm: first loss seen (NaN: none) */
};

/* Allocates for n tasks: w = coef = 1, logvar 0, histories NaN. */
int mtl_balance_state_init(struct mtl_balance_state *s, int n, uint64_t seed);
void mtl_balance_state_release(struct mtl_balance_state *s);
/* One msgpack map holding every field (doubles as doubles, exactly). */
void mtl_balance_state_pack(msgpack_packer *pk,
			    const struct mtl_balance_state *s);
/*
 * Reads a map written by _pack into s (initialised for the same number of
 * tasks).  A missing field or a different task count fails with
 * MTL_ERR_FORMAT, s then partly written.
 */
int mtl_balance_state_unpack(struct mtl_balance_state *s,
			     const msgpack_object *o, struct mtl_err *err);

/*
 * The state as a JSON object (a checkpoint's trainer.json "strategy",
 * ckpt.h): "method" (the --balance name) and every field, exactly:
 * doubles to 17 digits, NaN as null, the generator as 16-hex-digit
 * strings.  NULL when out of memory.  _from_json reads one back into s
 * (initialised for the same task count); a missing or mistyped field, or
 * another method than method, fails with MTL_ERR_FORMAT.
 */
json_t *mtl_balance_state_to_json(const struct mtl_balance_state *s,
				  const char *method);
int mtl_balance_state_from_json(struct mtl_balance_state *s, const json_t *j,
				const char *method, struct mtl_err *err);

struct mtl_balance {
	struct mtl_balance_opts o;
	struct mtl_balance_state s;
	struct mtl_train *tr;  /* borrowed */
	int T;
	/* the last step, for its record */
	double *cos;           /* [T*T] cosines of task gradients (NaN: none) */
	int have_cos;          /* 1 when this step computed cos */
	double ms;             /* time of the per-task passes and solve */
	double reg;            /* uncertainty: sum of s_t over present tasks */
	/* private */
	double *hw;            /* [T] the loss weights of the last step */
	double *K, *Kl, *cw, *loss;
	uint8_t *active;
	int64_t *norm;         /* [T] the step's labelled items per task */
	float *G;              /* [T, n_params] per-task encoder gradients */
	float *D;              /* [drows, B*T*H] output gradients: at =
				* output, one per task and their combination
				* (row T); at = encoder, the task's in turn */
	float *ds;             /* [T] uncertainty gradient */
	size_t dcap;           /* floats per row of D */
	int drows;
	int *order;
};

/* A balancer for tr's tasks; w starts at the tasks' spec weights. */
int mtl_balance_new(struct mtl_balance **out, struct mtl_train *tr,
		    const struct mtl_balance_opts *o, struct mtl_err *err);
void mtl_balance_free(struct mtl_balance *bal);

/*
 * The trainer's gradient under the strategy, into the trainer's gradient
 * blocks: the same contract as mtl_train_grad (train.h), with st->loss
 * the balanced loss (uncertainty: plus sum s_t).  Gradient methods fail
 * with MTL_ERR_ARG on a data-parallel or frozen trainer.  No update.
 */
int mtl_balance_grad(struct mtl_balance *bal, const struct mtl_batch *const *b,
		     int n, struct mtl_step_stats *st, struct mtl_err *err);
/*
 * One optimiser step under the strategy, in place of mtl_train_step:
 * mtl_balance_grad, the trainer's update (mtl_train_apply), then, after
 * an update, the strategy's own (uncertainty: AdamW on s_t at the heads'
 * learning rate, no weight decay; DWA's loss window; GradNorm's
 * weights).  Returns 0 after an update, 1 when the step was skipped
 * (non-finite loss or gradient: the trainer untouched, the strategy's
 * own update not made), <0 on error.
 */
int mtl_balance_step(struct mtl_balance *bal, const struct mtl_batch *const *b,
		     int n, struct mtl_step_stats *st, struct mtl_err *err);

/* ---- the arithmetic, on plain arrays (tests call these) ---- */

/* Gram matrix K[T*T] of the T vectors g[t*n .. t*n+n) (doubles). */
void mtl_balance_gram(double *K, const float *g, int T, size_t n, int nt);
/* cos[T*T] from K; NaN where a norm is 0 or a task inactive. */
void mtl_balance_cosine(double *cos, const double *K, const uint8_t *active,
			int T);
/*
 * PCGrad on the Gram matrix of the unweighted task gradients: task i's
 * gradient w[i] g_i is projected, task by task in order[] (a permutation
 * of 0..T-1 drawn afresh for each i from rng), off every original
 * w[j] g_j it conflicts with (negative dot product); coef[T] is the sum
 * of the projected gradients as a combination of the g_t.
 */
void mtl_balance_pcgrad(double *coef, const double *K, const double *w,
			const uint8_t *active, int T, struct mtl_rng *rng);
/*
 * CAGrad: d = g0 + (c |g0| / |gw|) gw, g0 = the mean of the active
 * w[t] g_t, gw the mix over the simplex minimising gw.g0 + c|g0||gw|,
 * divided by (1 + c^2) as in the authors' code, and scaled by the number
 * of active tasks so that c = 0 gives the plain sum.  coef[T] as above.
 */
void mtl_balance_cagrad(double *coef, const double *K, const double *w,
			const uint8_t *active, int T, double c);
/*
 * Nash-MTL: alpha > 0 with (K_w alpha)_t = 1 / alpha_t over the active
 * tasks with a non-zero gradient (K_w the Gram matrix of the w_t g_t),
 * found by damped Newton on the strictly convex
 * f(alpha) = alpha K_w alpha / 2 - sum_t log alpha_t; coef_t = w_t alpha_t.
 * Returns the largest |(K_w alpha)_t alpha_t - 1| left (0 when solved).
 */
double mtl_balance_nash(double *coef, const double *K, const double *w,
			const uint8_t *active, int T);
/* Uncertainty: returns sum_t exp(-s_t) L_t + s_t and sets ds[t]. */
double mtl_balance_uncertainty(float *ds, const float *s, const double *L,
			       const uint8_t *active, int T);
/*
 * DWA: w_t = A exp(r_t / temp) / sum_j exp(r_j / temp), r_t = last[t] /
 * prev[t], over the A active tasks; 1 for every active task while any of
 * them lacks two losses.
 */
void mtl_balance_dwa(double *w, const double *last, const double *prev,
		     const uint8_t *active, int T, double temp);
/*
 * GradNorm's weight update: gn[t] = |grad of L_t| (unweighted) on the
 * shared layer, G_t = w_t gn[t], target_t = mean(G) (L_t/L0_t / mean
 * of those)^alpha held constant; w_t -= lr sign(G_t - target_t) gn[t],
 * floored at 1e-3, then the active weights rescaled to keep their sum.
 */
void mtl_balance_gradnorm(double *w, const double *gn, const double *L,
			  const double *L0, const uint8_t *active, int T,
			  double alpha, double lr);
/* RLW: the active w_t = A softmax(z)_t, z_t ~ N(0, 1) from rng. */
void mtl_balance_rlw(double *w, const uint8_t *active, int T,
		     struct mtl_rng *rng);

#endif
