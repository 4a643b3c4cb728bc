/*
 * loss.c - cross-entropy with ignore label and label smoothing; see loss.h.
 */
#include "loss.h"

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
