/*
 * adamw.h - the AdamW optimiser (PyTorch's torch.optim.AdamW semantics),
 * global gradient-norm clipping and the learning-rate schedule.
 *
 * Parameters, gradients and the two moment blocks share one layout; a
 * table of groups (contiguous ranges of that layout, built from the
 * model's tensor table) gives each range its learning-rate multiplier
 * (parameter groups: head learning rate, layer-wise decay) and whether it
 * takes weight decay (not biases, not LayerNorm weights).  The step is
 * one flat loop over each range (split over threads).  For step t (from 1), per element:
 *
 *	g  = g * gscale                       (clipping folded in)
 *	w  = w * (1 - lr * wd)                (decoupled decay)
 *	m  = b1 m + (1 - b1) g
 *	v  = b2 v + (1 - b2) g^2
 *	w  = w - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *
 * eps is added after the bias-corrected square root, as PyTorch does.
 * Nothing here allocates or fails.
 */
#ifndef MTL_ADAMW_H
#define MTL_ADAMW_H

#include <stddef.h>
#include <stdint.h>

struct mtl_adamw_group {
	size_t off, n;  /* range of the block */
	float lr_mult;  /* lr of this range = lr * lr_mult */
	int decay;      /* 1: weight decay applies */
	/* NULL, or [n / row] bytes: the gradient of row r (the group's
	 * elements r*row..) is zero where rows[r] is 0, and is not read */
	const uint8_t *rows;
	size_t row;
	/* with rows, NULL or [n / row] bytes: 0 where row r's moments are
	 * known to be zero (a row no step has given a gradient yet).  With
	 * a zero gradient they stay zero, so such a row takes only its
	 * weight decay (the same bits) and its moments are neither read
	 * nor written: their memory is never touched.  A step sets seen[r]
	 * where rows[r]. */
	uint8_t *seen;
};

struct mtl_adamw {
	float b1, b2, eps, wd; /* 0.9, 0.999, 1e-8, 0.01 by default */
};

/* Sets PyTorch's defaults, with weight decay 0.01 (the Hugging Face one). */
void mtl_adamw_defaults(struct mtl_adamw *o);

/*
 * One step t >= 1 at base learning rate lr over the ranges of groups,
 * updating w, m, v (blocks of the shared layout) from g, on nt threads
 * (elements are independent: the result does not depend on nt).
 */
void mtl_adamw_step(const struct mtl_adamw *o, float *w, const float *g,
		    float *m, float *v, const struct mtl_adamw_group *groups,
		    size_t n_groups, float lr, long t, float gscale, int nt);

/*
 * The factor of the gradient for clipping to max_norm given the global
 * norm (PyTorch's clip_grad_norm_: max_norm / (norm + 1e-6) when that is
 * below 1, else 1); max_norm <= 0 disables clipping.
 */
float mtl_adamw_clip_scale(double norm, float max_norm);

enum mtl_sched { MTL_SCHED_LINEAR, MTL_SCHED_COSINE, MTL_SCHED_CONSTANT };

/* The schedule named "linear", "cosine" or "constant" into *s: 0, or -1
 * (*s untouched) for another name. */
int mtl_adamw_sched_parse(enum mtl_sched *s, const char *name);

/*
 * Learning rate of optimiser step `step` (0-based, as Hugging Face's
 * schedulers count): linear warm-up from 0 over warmup steps, then
 * linear decay to 0 at total, half a cosine to 0, or constant.
 */
float mtl_adamw_lr_at(enum mtl_sched s, float lr, long step, long warmup,
		long total);

#endif
