/*
 * contrast.h - contrastive regularisation of the sentence embeddings:
 * an in-batch InfoNCE loss between two views of each example, added to
 * the task losses by the trainer (docs/balancing.md).
 *
 * The embedding of a view is the pooled last hidden state (cls or mean,
 * as the model pools), L2-normalised.  With anchors a_i and positives
 * p_i of a batch of B and temperature tau:
 *
 *	S_ij = a_i . p_j / tau
 *	L    = (1/B) sum_i -log( exp(S_ii) / sum_j exp(S_ij) )
 *
 * The other examples' positives are the negatives: it is the embedding
 * task's MNRL loss at scale 1/tau (emb.h computes it).  The anchor is the
 * training forward the heads read; the positive is a second training
 * forward of the batch's pair texts when it has them (pair_ids), else of
 * the same ids with fresh dropout masks (SimCSE's unsupervised form).
 * The second view's activations are not kept: its backward re-runs its
 * forward from a saved copy of the dropout generator, so both views are
 * exact at the price of a third forward.
 *
 * Nothing here prints; mtl_contrast_new() and the passes that plan
 * buffers may fail with MTL_ERR_NOMEM; mtl_contrast_free accepts NULL.
 */
#ifndef MTL_CONTRAST_H
#define MTL_CONTRAST_H

#include <stdint.h>

#include "bert.h"
#include "data.h"
#include "err.h"
#include "rng.h"

struct mtl_contrast {
	float weight;          /* the loss's weight in the total */
	float temperature;     /* tau (0.05) */
	enum mtl_pool pool;    /* cls or mean */
	double loss;           /* the last step's loss (mean over its batches) */
	/* private: P [2B,H] the pooled anchors then views, dP its gradient;
	 * rows [B] of 0..B-1, pos [B] of B..2B-1 */
	float *P, *dP;
	int32_t *rows, *pos;
	int32_t *pmask;        /* [B,Tp] */
	float *dh;             /* [B,Tp,H] second view's output gradient */
	size_t cap, mcap;
	struct mtl_rng saved;  /* the generator before the second view */
};

int mtl_contrast_new(struct mtl_contrast **out, float weight,
		     float temperature, enum mtl_pool pool,
		     struct mtl_err *err);
void mtl_contrast_free(struct mtl_contrast *c);

/*
 * The second view of batch b (pair_ids when b has them, else ids) by a
 * training forward of m with dropout ph, pa drawn from rng (saved first
 * for the re-run): its normalised embeddings kept.  Call before the
 * anchor's forward.
 */
int mtl_contrast_view(struct mtl_contrast *c, struct mtl_bert *m,
		      const struct mtl_batch *b, float ph, float pa,
		      struct mtl_rng *rng, struct mtl_err *err);
/*
 * After the anchor's training forward (mask its [B,T] attention mask):
 * the loss times scale (1/batches of the step) into *loss, and scale *
 * weight * dL/d(last hidden) of the anchor added into dlast[B,T,H].  0,
 * or MTL_ERR_NOMEM (the loss's scratch).
 */
int mtl_contrast_anchor(struct mtl_contrast *c, struct mtl_bert *m,
			const struct mtl_batch *b, const int32_t *mask,
			float *dlast, float scale, double *loss,
			struct mtl_err *err);
/*
 * The second view's backward: re-runs its forward from the saved
 * generator (the same masks) and adds its gradient (as scaled above)
 * into grad.  Overwrites m's activations.
 */
int mtl_contrast_backward(struct mtl_contrast *c, struct mtl_bert *m,
			  const struct mtl_batch *b, float ph, float pa,
			  float *grad, struct mtl_err *err);

#endif
