/*
 * loss.c - cross-entropy with ignore label and label smoothing, binary
 * cross-entropy for multilabel tasks, squared error for regression; see
 * loss.h.
 */
#include "loss.h"

#include "data.h"

#include <math.h>
#include <string.h>

#define IGNORE (-100)

int64_t mtl_loss_count(const int32_t *labels, int64_t n)
{
	int64_t k = 0;

	for (int64_t i = 0; labels && i < n; i++)
		k += labels[i] != IGNORE;
	return k;
}

double mtl_loss_ce(float *dlogits, int64_t *correct, const float *logits,
		   const int32_t *labels, int64_t n, int C, float eps,
		   float scale)
{
	double total = 0;

	for (int64_t i = 0; i < n; i++) {
		const float *z = logits + i * C;
		float *dz = dlogits + i * C;
		int y = labels ? labels[i] : IGNORE, arg = 0;
		double mx, lse = 0, sumlogp = 0;

		if (y == IGNORE) {
			memset(dz, 0, sizeof(float) * (size_t)C);
			continue;
		}
		/* log-sum-exp in double: logits are few, precision is cheap */
		mx = z[0];
		for (int c = 1; c < C; c++)
			if (z[c] > mx) {
				mx = z[c];
				arg = c;
			}
		for (int c = 0; c < C; c++)
			lse += exp((double)z[c] - mx);
		lse = mx + log(lse);
		for (int c = 0; c < C; c++)
			sumlogp += (double)z[c] - lse;
		total += (1.0 - eps) * (lse - z[y]) - (eps / C) * sumlogp;
		for (int c = 0; c < C; c++) {
			double p = exp((double)z[c] - lse);
			double t = (c == y ? 1.0 - eps : 0.0) + (double)eps / C;

			dz[c] = (float)(scale * (p - t));
		}
		if (correct)
			*correct += arg == y;
	}
	return total;
}

int mtl_loss_bce_yes(float z, double threshold)
{
	return (double)z >= log(threshold / (1.0 - threshold));
}

double mtl_loss_bce(float *dlogits, int64_t *correct, const float *logits,
		    const int32_t *labels, int64_t n, int C, double threshold,
		    float scale)
{
	double total = 0;

	for (int64_t i = 0; i < n * C; i++) {
		int y = labels ? labels[i] : IGNORE;
		double z = logits[i], p;

		if (y == IGNORE) {
			dlogits[i] = 0;
			continue;
		}
		/* log1p(exp(-|z|)): no overflow for large |z| */
		total += (z > 0 ? z : 0) - z * y + log1p(exp(-fabs(z)));
		p = 1.0 / (1.0 + exp(-z));
		dlogits[i] = (float)(scale * (p - y));
		if (correct)
			*correct += mtl_loss_bce_yes(logits[i], threshold) == (y == 1);
	}
	return total;
}

double mtl_loss_mse(float *dlogits, const float *logits, const int32_t *labels,
		    int64_t n, float scale)
{
	double total = 0;

	for (int64_t i = 0; i < n; i++) {
		double d;

		if (!labels || labels[i] == IGNORE) {
			dlogits[i] = 0;
			continue;
		}
		d = (double)logits[i] - mtl_label_value(labels[i]);
		total += d * d;
		dlogits[i] = (float)(scale * 2 * d);
	}
	return total;
}
