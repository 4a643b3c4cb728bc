/*
 * emb.c - the embedding task's losses (MNRL, symmetric MNRL, CoSENT,
 * cosine MSE) and Matryoshka truncation, with their exact gradient
 * through the L2 normalisation; see emb.h for the formulas.
 */
#include "emb.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

static double dot(const float *x, const float *y, int d)
{
	double s = 0;

	for (int k = 0; k < d; k++)
		s += (double)x[k] * y[k];
	return s;
}

/* dE[r] += c * E[s], over d columns */
static void axpy(float *dE, int r, const float *E, int s, double c, int d)
{
	for (int k = 0; k < d; k++)
		dE[(size_t)r * d + k] += (float)(c * E[(size_t)s * d + k]);
}

/*
 * MNRL over normalised rows E[R,d]: returns L, adds dL/dE times gs into
 * dE.  S[n,K] and cand[K] are scratch.
 */
static double mnrl(float *dE, const float *E, int d, const int32_t *a,
		   const int32_t *p, const int32_t *g, int n,
		   const struct mtl_task_emb *sp, double gs, double *S,
		   int32_t *cand, int64_t *correct)
{
	double f = sp->symmetric ? 0.5 : 1.0, L = 0, *G;
	int K = 0;

	for (int i = 0; i < n; i++)
		cand[K++] = p[i];
	for (int i = 0; g && i < n; i++)
		if (g[i] >= 0)
			cand[K++] = g[i];
	for (int i = 0; i < n; i++)
		for (int k = 0; k < K; k++)
			S[(size_t)i * K + k] = sp->scale *
				dot(E + (size_t)a[i] * d, E + (size_t)cand[k] * d, d);
	/* G[i,k] = dL/dS_ik: the anchors' softmax, then the positives' */
	G = S + (size_t)n * K;

	memset(G, 0, sizeof(double) * (size_t)n * K);
	for (int i = 0; i < n; i++) {
		const double *s = S + (size_t)i * K;
		double mx = -INFINITY, z = 0;

		for (int k = 0; k < K; k++)
			mx = fmax(mx, s[k]);
		for (int k = 0; k < K; k++)
			z += exp(s[k] - mx);
		L += f * (mx + log(z) - s[i]) / n;
		if (correct && s[i] == mx)
			++*correct;
		for (int k = 0; k < K; k++)
			G[(size_t)i * K + k] += f * (exp(s[k] - mx) / z - (i == k)) / n;
	}
	/* the positives rank the anchors: column j of S[:, :n] */
	for (int j = 0; sp->symmetric && j < n; j++) {
		double mx = -INFINITY, z = 0;

		for (int i = 0; i < n; i++)
			mx = fmax(mx, S[(size_t)i * K + j]);
		for (int i = 0; i < n; i++)
			z += exp(S[(size_t)i * K + j] - mx);
		L += 0.5 * (mx + log(z) - S[(size_t)j * K + j]) / n;
		for (int i = 0; i < n; i++)
			G[(size_t)i * K + j] += 0.5 *
				(exp(S[(size_t)i * K + j] - mx) / z - (i == j)) / n;
	}
	for (int i = 0; i < n; i++)
		for (int k = 0; k < K; k++) {
			double c = gs * sp->scale * G[(size_t)i * K + k];

			axpy(dE, a[i], E, cand[k], c, d);
			axpy(dE, cand[k], E, a[i], c, d);
		}
	return L;
}

/* CoSENT and cosine MSE over the pairs (a[i], p[i]) with scores y. */
static double scored(float *dE, const float *E, int d, const int32_t *a,
		     const int32_t *p, const float *y, int n,
		     const struct mtl_task_emb *sp, double gs, double *c)
{
	double *dc = c + n, L = 0;

	for (int i = 0; i < n; i++) {
		c[i] = dot(E + (size_t)a[i] * d, E + (size_t)p[i] * d, d);
		dc[i] = 0;
	}
	if (sp->loss == MTL_EMB_COSINE_MSE) {
		for (int i = 0; i < n; i++) {
			L += (c[i] - y[i]) * (c[i] - y[i]) / n;
			dc[i] = 2 * (c[i] - y[i]) / n;
		}
	} else {
		/* log(1 + sum exp(t)), t = s_i - s_j over y_i < y_j, with
		 * the max (0 included) taken out */
		double mx = 0, z;

		for (int i = 0; i < n; i++)
			for (int j = 0; j < n; j++)
				if (y[i] < y[j])
					mx = fmax(mx, sp->scale * (c[i] - c[j]));
		z = exp(-mx);
		for (int i = 0; i < n; i++)
			for (int j = 0; j < n; j++)
				if (y[i] < y[j])
					z += exp(sp->scale * (c[i] - c[j]) - mx);
		L = mx + log(z);
		for (int i = 0; i < n; i++)
			for (int j = 0; j < n; j++)
				if (y[i] < y[j]) {
					double w = exp(sp->scale * (c[i] - c[j]) - mx) / z;

					dc[i] += sp->scale * w;
					dc[j] -= sp->scale * w;
				}
	}
	for (int i = 0; i < n; i++) {
		axpy(dE, a[i], E, p[i], gs * dc[i], d);
		axpy(dE, p[i], E, a[i], gs * dc[i], d);
	}
	return L;
}

int mtl_emb_loss(double *loss, float *dP, const float *P, int R, int H,
		 const int32_t *a, const int32_t *p, const int32_t *g,
		 const float *y, int n, const struct mtl_task_emb *spec,
		 float gscale, int64_t *correct, struct mtl_err *err)
{
	int nd = spec->n_dims ? spec->n_dims : 1;
	size_t RH = (size_t)R * H, K = 2 * (size_t)n;
	float *X = malloc(sizeof(float) * 4 * RH), *E = X + RH, *dE = E + RH,
	      *dX = dE + RH, *nrm = malloc(sizeof(float) * (size_t)(R ? R : 1));
	double *S = malloc(sizeof(double) * (2 * (size_t)n * K + 2 * (size_t)n + 1));
	int32_t *cand = malloc(sizeof(int32_t) * (K ? K : 1));
	double L = 0;

	if (!X || !nrm || !S || !cand) {
		free(X);
		free(nrm);
		free(S);
		free(cand);
		return mtl_err_set(err, MTL_ERR_NOMEM,
				   "cannot allocate the embedding loss buffers");
	}
	for (int i = 0; i < n; i++)
		MTL_ASSERT(a[i] >= 0 && a[i] < R && p[i] >= 0 && p[i] < R &&
			   (!g || g[i] < R));
	for (int k = 0; k < nd; k++) {
		int d = spec->n_dims ? spec->dims[k] : H;
		double w = spec->n_dims ? spec->weights[k] : 1.0;

		MTL_ASSERT(d >= 1 && d <= H);
		for (int r = 0; r < R; r++)
			memcpy(X + (size_t)r * d, P + (size_t)r * H,
			       sizeof(float) * (size_t)d);
		mtl_l2norm_forward(E, nrm, X, R, d);
		memset(dE, 0, sizeof(float) * (size_t)R * d);
		memset(dX, 0, sizeof(float) * (size_t)R * d);
		L += w * (spec->loss == MTL_EMB_MNRL
			  ? mnrl(dE, E, d, a, p, g, n, spec, w * gscale, S, cand,
				 k ? NULL : correct)
			  : scored(dE, E, d, a, p, y, n, spec, w * gscale, S));
		mtl_l2norm_backward(dX, dE, E, nrm, R, d);
		for (int r = 0; r < R; r++)
			for (int j = 0; j < d; j++)
				dP[(size_t)r * H + j] += dX[(size_t)r * d + j];
	}
	free(X);
	free(nrm);
	free(S);
	free(cand);
	*loss = L;
	return 0;
}
