/*
 * freeze.h - which parameters a run trains: frozen-tensor flags parsed
 * from --freeze specifications, the lowest layer the backward must reach
 * and the count of trainable parameters.
 *
 * A specification names a part of the model:
 *
 *	encoder        every encoder tensor (embeddings, layers, pooler)
 *	embeddings     the embeddings.* tensors
 *	layers:A-B     encoder layers A to B inclusive (layers:N for one)
 *	pooler         the pooler (which gets no gradient anyway)
 *	head:NAME      every tensor of task NAME's head
 *	heads          every head
 *
 * Specifications add up; the trainer (train.h, mtl_train_freeze) keeps
 * frozen tensors out of the optimiser and stops the backward at the
 * lowest trainable layer.
 *
 * Ownership: mtl_freeze_init() allocates the flag arrays that
 * mtl_freeze_release() frees (it accepts a zeroed struct).  The model and
 * the heads are only read.
 *
 * Failure: a specification that names nothing (an unknown part, a layer
 * out of range, an unknown task) fails with MTL_ERR_ARG quoting it.
 */
#ifndef MTL_FREEZE_H
#define MTL_FREEZE_H

#include <stddef.h>
#include <stdint.h>

#include "bert.h"
#include "err.h"
#include "head.h"

struct mtl_freeze {
	uint8_t *enc;   /* [m->n_tensors] 1: frozen */
	uint8_t *head;  /* [hd->n_tensors] 1: frozen */
	size_t n_enc, n_head;
};

/* Nothing frozen yet.  0, or MTL_ERR_NOMEM. */
int mtl_freeze_init(struct mtl_freeze *f, const struct mtl_bert *m,
		    const struct mtl_heads *hd, struct mtl_err *err);
void mtl_freeze_release(struct mtl_freeze *f);

/* Freezes what spec names (see above).  0, or MTL_ERR_ARG with f as it was. */
int mtl_freeze_add(struct mtl_freeze *f, const char *spec,
		   const struct mtl_bert *m, const struct mtl_heads *hd,
		   struct mtl_err *err);

/* Whether anything at all is frozen. */
int mtl_freeze_any(const struct mtl_freeze *f);

/*
 * How far the encoder backward must go: *lo is the lowest layer with a
 * trainable tensor (cfg.layers when none), *emb whether any embedding
 * tensor is trainable (then *lo is 0).  The pooler does not count.
 */
void mtl_freeze_bounds(const struct mtl_freeze *f, const struct mtl_bert *m,
		       int *lo, int *emb);

/* Parameters (floats) not frozen, encoder and heads together. */
size_t mtl_freeze_trainable(const struct mtl_freeze *f,
			    const struct mtl_bert *m,
			    const struct mtl_heads *hd);

#endif
