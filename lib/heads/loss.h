/*
 * loss.h - cross-entropy per task, with the ignore label -100 and optional
 * label smoothing, and its gradient with respect to the logits.
 *
 * For one task with C labels, smoothing eps and N labelled items
 * (docs/reference.md):
 *
 *	l_i    = (1 - eps) (-log p_i[y_i]) + (eps / C) sum_c (-log p_i[c])
 *	loss_t = (1 / N) sum_{labelled i} l_i,  0 when N = 0 (never NaN)
 *	total  = sum_t weight_t loss_t
 *
 * The normaliser N is a parameter, not counted here: with gradient
 * accumulation it is the labelled count of the whole accumulated batch,
 * so that N small batches give exactly the gradient of one large batch.
 *
 * Nothing here allocates or fails.
 */
#ifndef MTL_LOSS_H
#define MTL_LOSS_H

#include <stdint.h>

/* Items of labels[n] that are not -100. */
int64_t mtl_loss_count(const int32_t *labels, int64_t n);

/*
 * Over the n rows of logits[n,C] whose label is not -100: returns
 * sum_i l_i (double), sets dlogits[n,C] = scale * d l_i / d logits_i
 * (softmax - (1 - eps) onehot(y) - eps / C) and 0 on unlabelled rows,
 * and adds to *correct the labelled rows whose argmax is the label
 * (correct may be NULL).  scale is weight_t / N for the mean above.
 * labels == NULL means no row is labelled.
 */
double mtl_loss_ce(float *dlogits, int64_t *correct, const float *logits,
		   const int32_t *labels, int64_t n, int C, float eps,
		   float scale);

/*
 * Binary cross-entropy on sigmoid(logits), for multilabel tasks: over the
 * n*C entries of logits[n,C] whose indicator labels[n*C] (0 or 1) is not
 * -100, returns sum of
 *
 *	l = max(z, 0) - z y + log(1 + exp(-|z|))   (= -y log p - (1-y) log(1-p))
 *
 * (double), sets dlogits = scale * (sigmoid(z) - y) and 0 on ignored
 * entries, and adds to *correct the entries where (p >= threshold) == y
 * (correct may be NULL).  The normaliser in scale counts entries, so the
 * mean is PyTorch's BCEWithLogitsLoss over the labelled rows.  labels ==
 * NULL means nothing is labelled.
 */
double mtl_loss_bce(float *dlogits, int64_t *correct, const float *logits,
		    const int32_t *labels, int64_t n, int C, double threshold,
		    float scale);

/*
 * Squared error for regression tasks: over the n outputs logits[n] whose
 * target labels[n] (float bits, data.h's mtl_label_value) is not -100,
 * returns sum (z - y)^2 (double) and sets dlogits = scale * 2 (z - y), 0
 * on rows without a target.  With scale 1/N the mean is PyTorch's
 * MSELoss over the labelled rows.  labels == NULL: nothing labelled.
 */
double mtl_loss_mse(float *dlogits, const float *logits, const int32_t *labels,
		    int64_t n, float scale);

/* Whether a multilabel logit z predicts its label: sigmoid(z) >=
 * threshold, decided as z >= logit(threshold).  Every scorer uses this. */
int mtl_loss_bce_yes(float z, double threshold);

#endif
