/*
 * contrast.c - in-batch InfoNCE on two views of each example (emb.c's
 * MNRL), its exact gradient through pooling and both encoder passes; see
 * contrast.h.
 */
#include "contrast.h"

#include <stdlib.h>
#include <string.h>

#include "emb.h"
#include "ops.h"

int mtl_contrast_new(struct mtl_contrast **out, float weight,
		     float temperature, enum mtl_pool pool,
		     struct mtl_err *err)
{
	struct mtl_contrast *c;

	if (!(temperature > 0) || (pool != MTL_POOL_CLS && pool != MTL_POOL_MEAN))
		return mtl_err_set(err, MTL_ERR_ARG,
				   "contrastive loss needs a positive temperature and cls or mean pooling");
	c = calloc(1, sizeof(*c));
	if (!c)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	c->weight = weight;
	c->temperature = temperature;
	c->pool = pool;
	*out = c;
	return 0;
}

void mtl_contrast_free(struct mtl_contrast *c)
{
	if (!c)
		return;
	free(c->P);
	free(c->dP);
	free(c->rows);
	free(c->pos);
	free(c->pmask);
	free(c->dh);
	free(c);
}

/* Grows the pooled rows, their gradient, and the second view's mask and
 * gradient. */
static int grow(struct mtl_contrast *c, int B, int Tp, int H,
		struct mtl_err *err)
{
	size_t n = 2 * (size_t)B * H, m = (size_t)B * Tp;

	if (n > c->cap) {
		free(c->P);
		free(c->dP);
		free(c->rows);
		free(c->pos);
		c->P = malloc(n * sizeof(float));
		c->dP = malloc(n * sizeof(float));
		c->rows = malloc((size_t)B * sizeof(int32_t));
		c->pos = malloc((size_t)B * sizeof(int32_t));
		c->cap = c->P && c->dP && c->rows && c->pos ? n : 0;
	}
	if (m > c->mcap) {
		free(c->pmask);
		free(c->dh);
		c->pmask = malloc(m * sizeof(int32_t));
		c->dh = malloc(m * H * sizeof(float));
		c->mcap = c->pmask && c->dh ? m : 0;
	}
	if (!c->cap || !c->mcap)
		return mtl_err_set(err, MTL_ERR_NOMEM,
				   "cannot allocate the contrastive buffers");
	return 0;
}

/* The second view's ids, lengths and width. */
static const int32_t *view_of(const struct mtl_batch *b, const int32_t **len,
			      int *T)
{
	if (b->pair_ids) {
		*len = b->pair_lengths;
		*T = b->Tp;
		return b->pair_ids;
	}
	*len = b->lengths;
	*T = b->T;
	return b->ids;
}

int mtl_contrast_view(struct mtl_contrast *c, struct mtl_bert *m,
		      const struct mtl_batch *b, float ph, float pa,
		      struct mtl_rng *rng, struct mtl_err *err)
{
	const int32_t *len, *ids;
	int Tp, H = m->cfg.hidden, rc;

	ids = view_of(b, &len, &Tp);
	if ((rc = grow(c, b->B, Tp > b->T ? Tp : b->T, H, err)))
		return rc;
	mtl_batch_mask(c->pmask, len, b->B, Tp);
	c->saved = *rng;
	if ((rc = mtl_bert_forward_train(m, ids, ids == b->ids ? b->type_ids : NULL, c->pmask, b->B, Tp, ph,
					 pa, rng, err)))
		return rc;
	mtl_pool_forward(c->P + (size_t)b->B * H, mtl_bert_last_hidden(m),
			 c->pmask, b->B, Tp, H, c->pool);
	return 0;
}

int mtl_contrast_anchor(struct mtl_contrast *c, struct mtl_bert *m,
			const struct mtl_batch *b, const int32_t *mask,
			float *dlast, float scale, double *loss,
			struct mtl_err *err)
{
	/* InfoNCE is MNRL at scale 1/tau: no negatives, one direction */
	struct mtl_task_emb spec = { .loss = MTL_EMB_MNRL,
				     .scale = 1.0f / c->temperature };
	int B = b->B, H = m->cfg.hidden, rc;
	double L;

	mtl_pool_forward(c->P, mtl_bert_last_hidden(m), mask, B, b->T, H,
			 c->pool);
	for (int i = 0; i < B; i++) {
		c->rows[i] = i;
		c->pos[i] = B + i;
	}
	memset(c->dP, 0, sizeof(float) * 2 * (size_t)B * H);
	if ((rc = mtl_emb_loss(&L, c->dP, c->P, 2 * B, H, c->rows, c->pos,
			       NULL, NULL, B, &spec, scale * c->weight, NULL,
			       err)))
		return rc;
	mtl_pool_backward(dlast, c->dP, mask, B, b->T, H, c->pool);
	*loss = scale * L;
	return 0;
}

int mtl_contrast_backward(struct mtl_contrast *c, struct mtl_bert *m,
			  const struct mtl_batch *b, float ph, float pa,
			  float *grad, struct mtl_err *err)
{
	struct mtl_rng r = c->saved;
	const int32_t *len, *ids;
	int Tp, H = m->cfg.hidden, rc;

	ids = view_of(b, &len, &Tp);
	mtl_batch_mask(c->pmask, len, b->B, Tp);
	if ((rc = mtl_bert_forward_train(m, ids, ids == b->ids ? b->type_ids : NULL, c->pmask, b->B, Tp, ph,
					 pa, &r, err)))
		return rc;
	memset(c->dh, 0, sizeof(float) * (size_t)b->B * Tp * H);
	mtl_pool_backward(c->dh, c->dP + (size_t)b->B * H, c->pmask, b->B, Tp,
			  H, c->pool);
	mtl_bert_backward(m, grad, c->dh);
	return 0;
}
