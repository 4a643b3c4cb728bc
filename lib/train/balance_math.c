/*
 * balance_math.c - task balancing's arithmetic: Gram matrices and
 * cosines of per-task gradients, the gradient-surgery methods (PCGrad,
 * CAGrad, Nash-MTL) and the loss-weighting ones (uncertainty, DWA,
 * GradNorm, RLW); see balance.h and docs/balancing.md.  The balancer
 * that runs them is in balance.c.
 */
#include "balance_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
/*
 * K[i][j] += sum_{k<len} g_i[off+k] g_j[off+k], rows stride floats apart,
 * over the rows whose active[] is set (NULL: all); the rows of absent
 * tasks are never read (their buffers hold stale values).
 */
void gram_acc(double *K, const float *g, int T, size_t stride,
	      size_t off, size_t len, int nt, const uint8_t *active)
{
	for (int i = 0; i < T; i++)
		for (int j = i; j < T; j++) {
			const float *a = g + (size_t)i * stride + off;
			const float *b = g + (size_t)j * stride + off;
			double s;

			if (active && (!active[i] || !active[j]))
				continue;
			s = mtl_dot(a, b, (int64_t)len, nt);
			K[i * T + j] += s;
			if (j != i)
				K[j * T + i] += s;
		}
}

void mtl_balance_gram(double *K, const float *g, int T, size_t n, int nt)
{
	memset(K, 0, sizeof(double) * (size_t)T * T);
	gram_acc(K, g, T, n, 0, n, nt > 0 ? nt : 1, NULL);
}

void mtl_balance_cosine(double *cos, const double *K, const uint8_t *active,
			int T)
{
	for (int i = 0; i < T; i++)
		for (int j = 0; j < T; j++) {
			double d = K[i * T + i] * K[j * T + j];

			cos[i * T + j] = active[i] && active[j] && d > 0
				? K[i * T + j] / sqrt(d) : NAN;
		}
}

void mtl_balance_pcgrad(double *coef, const double *K, const double *w,
			const uint8_t *active, int T, struct mtl_rng *rng)
{
	int order[64];
	double a[64];

	MTL_ASSERT(T <= 64);
	for (int t = 0; t < T; t++)
		coef[t] = 0;
	for (int i = 0; i < T; i++) {
		if (!active[i])
			continue;
		/* a: task i's projected gradient as a combination of the g_t */
		for (int t = 0; t < T; t++) {
			a[t] = t == i ? w[i] : 0;
			order[t] = t;
		}
		mtl_rng_shuffle(rng, order, (size_t)T, sizeof(int));
		for (int k = 0; k < T; k++) {
			int j = order[k];
			double dot = 0, jj = w[j] * w[j] * K[j * T + j];

			if (j == i || !active[j] || !(jj > 0))
				continue;
			for (int t = 0; t < T; t++)
				dot += a[t] * w[j] * K[t * T + j];
			/* conflict: remove the component along w_j g_j */
			if (dot < 0)
				a[j] -= dot / jj * w[j];
		}
		for (int t = 0; t < T; t++)
			coef[t] += a[t];
	}
}

/* x^T K y over the active entries. */
static double quad(const double *K, const double *x, const double *y, int T)
{
	double s = 0;

	for (int i = 0; i < T; i++)
		for (int j = 0; j < T; j++)
			s += x[i] * K[i * T + j] * y[j];
	return s;
}

void mtl_balance_cagrad(double *coef, const double *K, const double *w,
			const uint8_t *active, int T, double c)
{
	double Kw[64 * 64], b[64], x[64], best[64], Kb[64], Kx[64];
	double g0n, fbest = INFINITY, lam, gwn;
	int A = 0;

	MTL_ASSERT(T <= 64);
	/* Kw: the Gram matrix of the weighted gradients w_t g_t */
	for (int i = 0; i < T; i++)
		for (int j = 0; j < T; j++)
			Kw[i * T + j] = active[i] && active[j]
				? w[i] * w[j] * K[i * T + j] : 0;
	for (int t = 0; t < T; t++)
		A += active[t] != 0;
	for (int t = 0; t < T; t++) {
		coef[t] = 0;
		b[t] = x[t] = best[t] = active[t] ? 1.0 / A : 0;
	}
	if (!A)
		return;
	g0n = sqrt(fmax(quad(Kw, b, b, T), 0));
	for (int i = 0; i < T; i++) {
		Kb[i] = 0;
		for (int j = 0; j < T; j++)
			Kb[i] += Kw[i * T + j] * b[j];
	}
	/*
	 * F(x) = x.Kb + c |g0| sqrt(x K x) is convex on the simplex:
	 * exponentiated gradient, steps scaled by the gradient's range and
	 * shrinking as 1/sqrt(k); the best iterate is kept.
	 */
	for (int k = 0; k < 2000; k++) {
		double xkx, f, gr[64], lo = INFINITY, hi = -INFINITY, eta, z = 0;

		for (int i = 0; i < T; i++) {
			Kx[i] = 0;
			for (int j = 0; j < T; j++)
				Kx[i] += Kw[i * T + j] * x[j];
		}
		xkx = fmax(quad(Kw, x, x, T), 0);
		f = 0;
		for (int i = 0; i < T; i++)
			f += x[i] * Kb[i];
		f += c * g0n * sqrt(xkx);
		if (f < fbest) {
			fbest = f;
			memcpy(best, x, sizeof(double) * (size_t)T);
		}
		for (int i = 0; i < T; i++) {
			if (!active[i])
				continue;
			gr[i] = Kb[i] + (xkx > 0 ? c * g0n * Kx[i] / sqrt(xkx) : 0);
			lo = fmin(lo, gr[i]);
			hi = fmax(hi, gr[i]);
		}
		if (!(hi > lo))
			break;
		eta = 4.0 / ((hi - lo) * sqrt(k + 1.0));
		for (int i = 0; i < T; i++)
			if (active[i]) {
				x[i] *= exp(-eta * (gr[i] - lo));
				z += x[i];
			}
		for (int i = 0; i < T; i++)
			x[i] /= z;
	}
	gwn = sqrt(fmax(quad(Kw, best, best, T), 0));
	lam = gwn > 0 ? c * g0n / gwn : 0;
	for (int t = 0; t < T; t++)
		if (active[t])
			coef[t] = w[t] * (b[t] + lam * best[t]) / (1 + c * c) * A;
}

/* Solves A x = b (n x n, row-major) by Gaussian elimination with
 * partial pivoting; A and b are overwritten.  0, or -1 when singular. */
static int solve_linear(double *x, double *A, double *b, int n)
{
	for (int c = 0; c < n; c++) {
		int p = c;

		for (int r = c + 1; r < n; r++)
			if (fabs(A[r * n + c]) > fabs(A[p * n + c]))
				p = r;
		if (!(fabs(A[p * n + c]) > 0))
			return -1;
		for (int k = 0; k < n && p != c; k++) {
			double t = A[c * n + k];

			A[c * n + k] = A[p * n + k];
			A[p * n + k] = t;
		}
		if (p != c) {
			double t = b[c];

			b[c] = b[p];
			b[p] = t;
		}
		for (int r = c + 1; r < n; r++) {
			double f = A[r * n + c] / A[c * n + c];

			for (int k = c; k < n; k++)
				A[r * n + k] -= f * A[c * n + k];
			b[r] -= f * b[c];
		}
	}
	for (int r = n - 1; r >= 0; r--) {
		double s = b[r];

		for (int k = r + 1; k < n; k++)
			s -= A[r * n + k] * x[k];
		x[r] = s / A[r * n + r];
	}
	return 0;
}

/* f(a) = a K a / 2 - sum log a over the n compacted tasks; +inf off a > 0. */
static double nash_f(const double *K, const double *a, int n)
{
	double f = 0;

	for (int i = 0; i < n; i++) {
		if (!(a[i] > 0))
			return INFINITY;
		f -= log(a[i]);
		for (int j = 0; j < n; j++)
			f += 0.5 * a[i] * K[i * n + j] * a[j];
	}
	return f;
}

double mtl_balance_nash(double *coef, const double *K, const double *w,
			const uint8_t *active, int T)
{
	double Kc[64 * 64], H[64 * 64], a[64], g[64], p[64], na[64], res = 0;
	int idx[64], n = 0;

	MTL_ASSERT(T <= 64);
	for (int t = 0; t < T; t++) {
		coef[t] = 0;
		if (active[t] && w[t] * w[t] * K[t * T + t] > 0)
			idx[n++] = t;
	}
	if (!n)
		return 0;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
			Kc[i * n + j] = w[idx[i]] * w[idx[j]] * K[idx[i] * T + idx[j]];
	/* start where each task alone would be solved: 1 / |w_t g_t| */
	for (int i = 0; i < n; i++)
		a[i] = 1 / sqrt(Kc[i * n + i]);
	for (int it = 0; it < 100; it++) {
		double f0 = nash_f(Kc, a, n), step = 1, dec = 0, gmax = 0;

		for (int i = 0; i < n; i++) {
			double ka = 0;

			for (int j = 0; j < n; j++)
				ka += Kc[i * n + j] * a[j];
			g[i] = ka - 1 / a[i];
			gmax = fmax(gmax, fabs(g[i] * a[i]));
			for (int j = 0; j < n; j++)
				H[i * n + j] = Kc[i * n + j] + (i == j ? 1 / (a[i] * a[i]) : 0);
			p[i] = -g[i];
		}
		if (gmax < 1e-12 || solve_linear(na, H, p, n))
			break;
		for (int i = 0; i < n; i++)
			dec += g[i] * na[i];
		/* backtracking (Armijo) inside a > 0 */
		for (int k = 0; k < 60; k++, step *= 0.5) {
			double trial[64];

			for (int i = 0; i < n; i++)
				trial[i] = a[i] + step * na[i];
			if (nash_f(Kc, trial, n) <= f0 + 1e-4 * step * dec) {
				memcpy(a, trial, sizeof(double) * (size_t)n);
				break;
			}
		}
	}
	for (int i = 0; i < n; i++) {
		double ka = 0;

		for (int j = 0; j < n; j++)
			ka += Kc[i * n + j] * a[j];
		res = fmax(res, fabs(ka * a[i] - 1));
		coef[idx[i]] = w[idx[i]] * a[i];
	}
	return res;
}

double mtl_balance_uncertainty(float *ds, const float *s, const double *L,
			       const uint8_t *active, int T)
{
	double total = 0;

	for (int t = 0; t < T; t++) {
		double e = exp(-(double)s[t]);

		ds[t] = 0;
		if (!active[t])
			continue;
		total += e * L[t] + s[t];
		ds[t] = (float)(1 - e * L[t]);
	}
	return total;
}

void mtl_balance_dwa(double *w, const double *last, const double *prev,
		     const uint8_t *active, int T, double temp)
{
	double r[64], mx = -INFINITY, z = 0;
	int A = 0, ready = 1;

	MTL_ASSERT(T <= 64);
	for (int t = 0; t < T; t++) {
		if (!active[t])
			continue;
		A++;
		if (!(isfinite(last[t]) && isfinite(prev[t]) && prev[t] > 0))
			ready = 0;
	}
	for (int t = 0; t < T; t++) {
		if (!active[t])
			continue;
		if (!ready) {
			w[t] = 1;
			continue;
		}
		r[t] = last[t] / prev[t] / temp;
		mx = fmax(mx, r[t]);
	}
	if (!ready)
		return;
	/* softmax with the max subtracted, for large ratios */
	for (int t = 0; t < T; t++)
		if (active[t])
			z += exp(r[t] - mx);
	for (int t = 0; t < T; t++)
		if (active[t])
			w[t] = A * exp(r[t] - mx) / z;
}

void mtl_balance_gradnorm(double *w, const double *gn, const double *L,
			  const double *L0, const uint8_t *active, int T,
			  double alpha, double lr)
{
	double G[64], rt[64], gbar = 0, rbar = 0, sum0 = 0, sum1 = 0;
	int A = 0;

	MTL_ASSERT(T <= 64);
	for (int t = 0; t < T; t++) {
		if (!active[t] || !(L0[t] > 0))
			continue;
		A++;
		G[t] = w[t] * gn[t];
		rt[t] = L[t] / L0[t];
		gbar += G[t];
		rbar += rt[t];
		sum0 += w[t];
	}
	if (!A)
		return;
	gbar /= A;
	rbar /= A;
	for (int t = 0; t < T; t++) {
		double target, d;

		if (!active[t] || !(L0[t] > 0))
			continue;
		target = gbar * pow(rt[t] / rbar, alpha);
		/* d/dw_t |w_t gn_t - target| with the target held fixed */
		d = G[t] > target ? gn[t] : G[t] < target ? -gn[t] : 0;
		w[t] = fmax(w[t] - lr * d, 1e-3);
		sum1 += w[t];
	}
	for (int t = 0; t < T; t++)
		if (active[t] && L0[t] > 0)
			w[t] *= sum0 / sum1;
}

void mtl_balance_rlw(double *w, const uint8_t *active, int T,
		     struct mtl_rng *rng)
{
	double z[64], mx = -INFINITY, s = 0;
	int A = 0;

	MTL_ASSERT(T <= 64);
	for (int t = 0; t < T; t++)
		if (active[t]) {
			z[t] = mtl_rng_normal(rng);
			mx = fmax(mx, z[t]);
			A++;
		}
	for (int t = 0; t < T; t++)
		if (active[t])
			s += exp(z[t] - mx);
	for (int t = 0; t < T; t++)
		if (active[t])
			w[t] = A * exp(z[t] - mx) / s;
}
