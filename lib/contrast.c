/*
 * contrast.c - in-batch InfoNCE on two views of each example, its exact
 * gradient through normalisation, pooling and both encoder passes; see
 * contrast.h.
 */
#include "contrast.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
	free(c->a);
	free(c->an);
	free(c->p);
	free(c->pn);
	free(c->da);
	free(c->dp);
	free(c->dx);
	free(c->anorm);
	free(c->pnorm);
	free(c->pmask);
	free(c->dh);
	free(c);
}

double mtl_contrast_infonce(float *da, float *dp, const float *a,
			    const float *p, int B, int H, float tau,
			    float scale)
{
	double loss = 0;
	double *S = malloc(sizeof(double) * (size_t)B * B);

	MTL_ASSERT(S);
	for (int i = 0; i < B; i++)
		for (int j = 0; j < B; j++) {
			double s = 0;

			for (int k = 0; k < H; k++)
				s += (double)a[(size_t)i * H + k] * p[(size_t)j * H + k];
			S[i * B + j] = s / tau;
		}
	/* row softmax, max subtracted; S becomes dL/dS = (P - I) / B */
	for (int i = 0; i < B; i++) {
		double mx = -INFINITY, z = 0;

		for (int j = 0; j < B; j++)
			mx = fmax(mx, S[i * B + j]);
		for (int j = 0; j < B; j++)
			z += exp(S[i * B + j] - mx);
		loss += mx + log(z) - S[i * B + i];
		for (int j = 0; j < B; j++)
			S[i * B + j] = (exp(S[i * B + j] - mx) / z - (i == j)) / B;
	}
	for (int i = 0; i < B; i++)
		for (int k = 0; k < H; k++) {
			double ga = 0, gp = 0;

			for (int j = 0; j < B; j++) {
				ga += S[i * B + j] * p[(size_t)j * H + k];
				gp += S[j * B + i] * a[(size_t)j * H + k];
			}
			da[(size_t)i * H + k] = (float)(scale * ga / tau);
			dp[(size_t)i * H + k] = (float)(scale * gp / tau);
		}
	free(S);
	return loss / B;
}

/* Grows the [B,H] buffers and the second view's mask and gradient. */
static int grow(struct mtl_contrast *c, int B, int Tp, int H,
		struct mtl_err *err)
{
	size_t n = (size_t)B * H, m = (size_t)B * Tp;
	float **f[] = { &c->a, &c->an, &c->p, &c->pn, &c->da, &c->dp, &c->dx };

	if (n > c->cap) {
		for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
			free(*f[i]);
			*f[i] = malloc(n * sizeof(float));
		}
		free(c->anorm);
		free(c->pnorm);
		c->anorm = malloc((size_t)B * sizeof(float));
		c->pnorm = malloc((size_t)B * sizeof(float));
		c->cap = n;
		for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
			if (!*f[i])
				c->cap = 0;
		if (!c->anorm || !c->pnorm)
			c->cap = 0;
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
	if ((rc = mtl_bert_forward_train(m, ids, NULL, c->pmask, b->B, Tp, ph,
					 pa, rng, err)))
		return rc;
	mtl_pool_forward(c->p, mtl_bert_last_hidden(m), c->pmask, b->B, Tp, H,
			 c->pool);
	mtl_l2norm_forward(c->pn, c->pnorm, c->p, b->B, H);
	return 0;
}

double mtl_contrast_anchor(struct mtl_contrast *c, struct mtl_bert *m,
			   const struct mtl_batch *b, const int32_t *mask,
			   float *dlast, float scale)
{
	int B = b->B, H = m->cfg.hidden;
	double L;

	mtl_pool_forward(c->a, mtl_bert_last_hidden(m), mask, B, b->T, H,
			 c->pool);
	mtl_l2norm_forward(c->an, c->anorm, c->a, B, H);
	L = mtl_contrast_infonce(c->da, c->dp, c->an, c->pn, B, H,
				 c->temperature, scale * c->weight);
	memset(c->dx, 0, sizeof(float) * (size_t)B * H);
	mtl_l2norm_backward(c->dx, c->da, c->an, c->anorm, B, H);
	mtl_pool_backward(dlast, c->dx, mask, B, b->T, H, c->pool);
	return scale * L;
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
	if ((rc = mtl_bert_forward_train(m, ids, NULL, c->pmask, b->B, Tp, ph,
					 pa, &r, err)))
		return rc;
	memset(c->dh, 0, sizeof(float) * (size_t)b->B * Tp * H);
	memset(c->dx, 0, sizeof(float) * (size_t)b->B * H);
	mtl_l2norm_backward(c->dx, c->dp, c->pn, c->pnorm, b->B, H);
	mtl_pool_backward(c->dh, c->dx, c->pmask, b->B, Tp, H, c->pool);
	mtl_bert_backward(m, grad, c->dh);
	return 0;
}
