/*
 * emb.h - the losses of an embedding task (task kind "embedding",
 * docs/tasks.md): a bi-encoder objective on the pooled, L2-normalised
 * sentence embeddings of the texts of a batch, as sentence-transformers
 * computes them.
 *
 * The texts of a batch are rows of one pooled matrix P[R,H] (pooled, not
 * yet normalised: the trainer pools the encoder output of every row,
 * anchors and the extra rows of positives, pair texts and negatives
 * alike).  An embedding task's n labelled examples name their rows:
 * anchor a[i], positive (or the scored pair's other text) p[i], hard
 * negative g[i] (-1: none), gold score y[i] (scored losses).  With
 * e_r = P[r] / ||P[r]|| and c the cosine:
 *
 *   MNRL (MultipleNegativesRankingLoss): the candidates are every
 *   positive, then every hard negative given, K of them; with
 *   S_ik = scale * e_a[i] . e_cand[k]
 *	L = (1/n) sum_i ( logsumexp_k S_ik - S_ii )
 *   symmetric (MultipleNegativesSymmetricRankingLoss): the mean of that
 *   and the positives' ranking of the anchors,
 *	L = ( L_fwd + (1/n) sum_j ( logsumexp_i S_ij - S_jj ) ) / 2
 *   CoSENT (CoSENTLoss): with s_i = scale * c(a_i, p_i),
 *	L = log( 1 + sum_{y_i < y_j} exp(s_i - s_j) )
 *   cosine MSE (CosineSimilarityLoss): L = (1/n) sum_i (c(a_i, p_i) - y_i)^2
 *
 * Matryoshka (MatryoshkaLoss): with dims d_1..d_m and weights w_k the
 * loss is sum_k w_k L(P[:, :d_k]), each truncation normalised anew; no
 * dims means the whole width with weight 1.
 *
 * Every loss is a batch loss in the mean form sentence-transformers
 * reports (a batch of n gives the value its loss gives); the gradient
 * flows back through the normalisations to P.  Sums run in double.
 * Nothing here allocates but mtl_emb_loss's scratch (MTL_ERR_NOMEM) or
 * prints.
 */
#ifndef MTL_EMB_H
#define MTL_EMB_H

#include <stdint.h>

#include "err.h"
#include "task.h"

/*
 * The loss of spec over the n labelled examples whose rows a, p, g (g may
 * be NULL: no negatives) and scores y (NULL for MNRL) name in P[R,H]:
 * returns L in *loss and adds gscale * dL/dP into dP[R,H].  MNRL also
 * adds into *correct (may be NULL) the anchors whose most similar
 * candidate is their own positive (in-batch top-1, at the first
 * Matryoshka dim or the whole width); the scored losses add none.  0, or
 * MTL_ERR_NOMEM (dP untouched).  A row index outside [0, R) or a
 * Matryoshka dim above H is a caller bug (asserted).
 */
int mtl_emb_loss(double *loss, float *dP, const float *P, int R, int H,
		 const int32_t *a, const int32_t *p, const int32_t *g,
		 const float *y, int n, const struct mtl_task_emb *spec,
		 float gscale, int64_t *correct, struct mtl_err *err);

#endif
