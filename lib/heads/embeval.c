/*
 * embeval.c - evaluators of sentence embeddings and the exact top-k
 * search; see embeval.h.
 *
 * The heavy parts are matrix products, done by BLIS through
 * mtl_linear_forward/backward (ops.h) on one thread each so that a result
 * never depends on how work was split; everything summed over examples
 * (correlations, metric means, centres, losses) is summed in double.
 */
#include "embeval.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "par.h"
#include "rng.h"

/* ---- similarity ---- */

void mtl_embeval_cosine_pairs(double *out, const float *a, const float *b,
			      long n, int D)
{
	for (long i = 0; i < n; i++) {
		const float *u = a + (size_t)i * (size_t)D, *v = b + (size_t)i * (size_t)D;
		double uv = 0, uu = 0, vv = 0;

		for (int j = 0; j < D; j++) {
			uv += (double)u[j] * v[j];
			uu += (double)u[j] * u[j];
			vv += (double)v[j] * v[j];
		}
		out[i] = uu > 0 && vv > 0 ? uv / (sqrt(uu) * sqrt(vv)) : 0;
	}
}

/* ---- top-k search ---- */

/* Query rows per product, and corpus rows per product: a 4 MiB block of
 * scores per thread, which stays in L2/L3 while the heaps read it. */
#define SEARCH_QB 256
#define SEARCH_CB 4096

/* Whether (sa, ia) ranks below (sb, ib): a lower score, or the same score
 * at a later corpus row. */
static int ranks_below(float sa, int32_t ia, float sb, int32_t ib)
{
	return sa < sb || (sa == sb && ia > ib);
}

/* Restores the heap (the lowest-ranked entry at the root) below slot i of
 * the m entries s/x. */
static void sift_down(float *s, int32_t *x, int i, int m)
{
	for (;;) {
		int l = 2 * i + 1, w = i;
		float ts;
		int32_t tx;

		if (l < m && ranks_below(s[l], x[l], s[w], x[w]))
			w = l;
		if (l + 1 < m && ranks_below(s[l + 1], x[l + 1], s[w], x[w]))
			w = l + 1;
		if (w == i)
			return;
		ts = s[i], s[i] = s[w], s[w] = ts;
		tx = x[i], x[i] = x[w], x[w] = tx;
		i = w;
	}
}

static void sift_up(float *s, int32_t *x, int i)
{
	while (i > 0) {
		int p = (i - 1) / 2;
		float ts;
		int32_t tx;

		if (!ranks_below(s[i], x[i], s[p], x[p]))
			return;
		ts = s[i], s[i] = s[p], s[p] = ts;
		tx = x[i], x[i] = x[p], x[p] = tx;
		i = p;
	}
}

/* Offers corpus row ci with score v to the heap s/x of *m entries (at
 * most kk). */
static void heap_offer(float *s, int32_t *x, int *m, int kk, float v,
		       int32_t ci)
{
	if (*m < kk) {
		s[*m] = v;
		x[*m] = ci;
		sift_up(s, x, (*m)++);
	} else if (kk > 0 && ranks_below(s[0], x[0], v, ci)) {
		s[0] = v;
		x[0] = ci;
		sift_down(s, x, 0, kk);
	}
}

/* Heap sort in place: the lowest-ranked entry goes last, so the m entries
 * end best first. */
static void heap_sort(float *s, int32_t *x, int m)
{
	for (int e = m - 1; e > 0; e--) {
		float ts = s[0];
		int32_t tx = x[0];

		s[0] = s[e], s[e] = ts;
		x[0] = x[e], x[e] = tx;
		sift_down(s, x, 0, e);
	}
}

/* The arguments of mtl_embeval_search's blocks of queries. */
struct search_job {
	int32_t *idx;
	float *score;
	const float *Q, *C;
	long nq, nc, self0;
	int D, k, kk;
	float **S;           /* [nt] each slot's scores, made on first use */
	_Atomic int failed;  /* a slot's S could not be allocated */
};

/* Query blocks b0..b1-1 (SEARCH_QB queries each), with slot's S. */
static void search_blocks(void *arg, int64_t b0, int64_t b1, int slot)
{
	struct search_job *j = arg;
	long nq = j->nq, nc = j->nc;
	int D = j->D, k = j->k, kk = j->kk;
	float *S = j->S[slot];
	int cnt[SEARCH_QB];

	if (!S && !(S = j->S[slot] = malloc(sizeof(float) * SEARCH_QB * SEARCH_CB))) {
		j->failed = 1;
		return;
	}
	for (long b = (long)b0; b < b1; b++) {
		long q0 = b * SEARCH_QB;
		int qn = (int)(nq - q0 < SEARCH_QB ? nq - q0 : SEARCH_QB);

		memset(cnt, 0, sizeof(cnt));
		for (long c0 = 0; c0 < nc; c0 += SEARCH_CB) {
			int cn = (int)(nc - c0 < SEARCH_CB ? nc - c0 : SEARCH_CB);

			/* S[qn,cn] = Q[q0.., D] @ C[c0.., D]^T */
			mtl_linear_forward(S, j->Q + (size_t)q0 * (size_t)D,
					   j->C + (size_t)c0 * (size_t)D, NULL, qn,
					   D, cn, 1);
			for (int i = 0; i < qn; i++) {
				const float *row = S + (size_t)i * (size_t)cn;
				float *hs = j->score + (size_t)(q0 + i) * (size_t)k;
				int32_t *hx = j->idx + (size_t)(q0 + i) * (size_t)k;
				long self = j->self0 >= 0 ? j->self0 + q0 + i : -1;

				for (int c = 0; c < cn; c++)
					if (c0 + c != self)
						heap_offer(hs, hx, &cnt[i], kk, row[c],
							   (int32_t)(c0 + c));
			}
		}
		for (int i = 0; i < qn; i++) {
			float *hs = j->score + (size_t)(q0 + i) * (size_t)k;
			int32_t *hx = j->idx + (size_t)(q0 + i) * (size_t)k;

			heap_sort(hs, hx, cnt[i]);
			for (int r = cnt[i]; r < k; r++) {
				hs[r] = -INFINITY;
				hx[r] = -1;
			}
		}
	}
}

int mtl_embeval_search(int32_t *idx, float *score, const float *Q, long nq,
		       const float *C, long nc, int D, int k, long self0,
		       int nt, struct mtl_err *err)
{
	struct search_job j = { idx, score, Q, C, nq, nc, self0, D, k,
				(long)k < nc ? k : (int)nc, NULL, 0 };
	long nblk = (nq + SEARCH_QB - 1) / SEARCH_QB;

	MTL_ASSERT(k >= 0 && D > 0 && nc <= INT32_MAX);
	if (nt < 1)
		nt = 1;
	if (!(j.S = calloc((size_t)nt, sizeof(*j.S))))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	/* one block a chunk: blocks are large, and taken as threads come */
	mtl_par_for(nt, nblk, 1, search_blocks, &j);
	for (int t = 0; t < nt; t++)
		free(j.S[t]);
	free(j.S);
	if (j.failed)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	return 0;
}

/* ---- retrieval metrics ---- */

void mtl_embeval_ir_add(struct mtl_embeval_ir *acc, const int *rel, int n,
			long n_rel, const int *ideal, int n_ideal)
{
	double dcg = 0, idcg = 0, ap = 0, rr = 0;
	long hits = 0, h1 = 0, h10 = 0;
	int m = n < 100 ? n : 100;

	if (n_rel <= 0) {
		acc->skipped++;
		return;
	}
	for (int r = 0; r < m; r++) {
		if (rel[r] <= 0)
			continue;
		hits++;
		if (r < 10) {
			if (rr == 0)
				rr = 1.0 / (r + 1);
			dcg += rel[r] / log2(r + 2.0);
			h10++;
		}
		if (r < 1)
			h1++;
		ap += (double)hits / (r + 1);
	}
	if (ideal)
		for (int j = 0; j < n_ideal && j < 10; j++)
			idcg += (ideal[j] > 0 ? ideal[j] : 0) / log2(j + 2.0);
	else
		for (long j = 0; j < n_rel && j < 10; j++)
			idcg += 1 / log2(j + 2.0);
	acc->queries++;
	acc->mrr10 += rr;
	acc->ndcg10 += idcg > 0 ? dcg / idcg : 0;
	acc->recall1 += (double)h1 / (double)n_rel;
	acc->recall10 += (double)h10 / (double)n_rel;
	acc->recall100 += (double)hits / (double)n_rel;
	acc->map100 += ap / (double)n_rel;
}

void mtl_embeval_ir_finish(struct mtl_embeval_ir *acc)
{
	double q = acc->queries > 0 ? (double)acc->queries : NAN;

	acc->mrr10 /= q;
	acc->ndcg10 /= q;
	acc->recall1 /= q;
	acc->recall10 /= q;
	acc->recall100 /= q;
	acc->map100 /= q;
}

/* ---- classification from embeddings ---- */

int mtl_embeval_knn(int *pred, const int32_t *idx, const float *score,
		    long nq, int k, const int *label, int n_labels,
		    struct mtl_err *err)
{
	int *votes = calloc((size_t)(n_labels > 0 ? n_labels : 1), sizeof(int));
	double *sum = calloc((size_t)(n_labels > 0 ? n_labels : 1), sizeof(double));

	if (!votes || !sum) {
		free(votes);
		free(sum);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	for (long i = 0; i < nq; i++) {
		const int32_t *x = idx + (size_t)i * (size_t)k;
		const float *s = score + (size_t)i * (size_t)k;
		int best = -1;

		for (int r = 0; r < k; r++) {
			int l;

			if (x[r] < 0)
				continue;
			l = label[x[r]];
			MTL_ASSERT(l >= 0 && l < n_labels);
			votes[l]++;
			sum[l] += s[r];
		}
		for (int r = 0; r < k; r++) {
			int l;

			if (x[r] < 0)
				continue;
			l = label[x[r]];
			if (best < 0 || votes[l] > votes[best] ||
			    (votes[l] == votes[best] &&
			     (sum[l] > sum[best] || (sum[l] == sum[best] && l < best))))
				best = l;
		}
		pred[i] = best;
		for (int r = 0; r < k; r++)
			if (x[r] >= 0) {
				votes[label[x[r]]] = 0;
				sum[label[x[r]]] = 0;
			}
	}
	free(votes);
	free(sum);
	return 0;
}

void mtl_embeval_probe_init(struct mtl_embeval_probe *p)
{
	p->c = 1.0;
	p->iters = 500;
}

/*
 * The gradient of the probe's objective at W[L,D], b[L] into gW, gb:
 * (1/n) sum_i (softmax(W x_i + b) - onehot(y_i)) x_i^T + W / (C n).  P is
 * scratch [n,L].
 */
static void probe_grad(float *gW, float *gb, float *P, const float *W,
		       const float *b, const float *X, const int *y, long n,
		       int D, int L, double c)
{
	mtl_linear_forward(P, X, W, b, (int)n, D, L, 1);
	for (long i = 0; i < n; i++) {
		float *p = P + (size_t)i * (size_t)L;
		double mx = p[0], z = 0;

		for (int j = 1; j < L; j++)
			if (p[j] > mx)
				mx = p[j];
		for (int j = 0; j < L; j++)
			z += exp(p[j] - mx);
		for (int j = 0; j < L; j++)
			p[j] = (float)((exp(p[j] - mx) / z - (j == y[i])) / (double)n);
	}
	for (long j = 0; j < (long)L * D; j++)
		gW[j] = (float)(W[j] / (c * (double)n));
	memset(gb, 0, sizeof(float) * (size_t)L);
	mtl_linear_backward(NULL, gW, gb, P, X, W, (int)n, D, L, 1);
}

int mtl_embeval_probe_run(int *pred, const float *T, long m, const float *X,
			  const int *y, long n, int D, int L,
			  const struct mtl_embeval_probe *p,
			  struct mtl_err *err)
{
	size_t nw = (size_t)L * (size_t)D + (size_t)L;
	/* weights then bias, one block each for the iterate, the previous
	 * iterate, the look-ahead point and the gradient */
	float *w = calloc(nw, sizeof(float)), *w0 = calloc(nw, sizeof(float));
	float *v = calloc(nw, sizeof(float)), *g = calloc(nw, sizeof(float));
	size_t rows = (size_t)(n > m ? n : m);
	float *P = malloc(sizeof(float) * rows * (size_t)L);
	double xx = 0, lf, step;
	int rc = 0;

	if (!w || !w0 || !v || !g || !P) {
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (long i = 0; i < n; i++) {
		double s = 1;

		for (int j = 0; j < D; j++)
			s += (double)X[(size_t)i * (size_t)D + (size_t)j] * X[(size_t)i * (size_t)D + (size_t)j];
		if (s > xx)
			xx = s;
	}
	lf = xx / 2 + 1 / (p->c * (double)(n > 0 ? n : 1));
	step = 1 / lf;
	for (int t = 1; n > 0 && t <= p->iters; t++) {
		/* Nesterov: v = w + (t-1)/(t+2) (w - w0); w0 = w; w = v - step g(v) */
		double mom = (t - 1.0) / (t + 2.0);

		for (size_t j = 0; j < nw; j++)
			v[j] = (float)(w[j] + mom * ((double)w[j] - w0[j]));
		probe_grad(g, g + (size_t)L * (size_t)D, P, v, v + (size_t)L * (size_t)D,
			   X, y, n, D, L, p->c);
		memcpy(w0, w, nw * sizeof(float));
		for (size_t j = 0; j < nw; j++)
			w[j] = (float)(v[j] - step * g[j]);
	}
	if (m > 0)
		mtl_linear_forward(P, T, w, w + (size_t)L * (size_t)D, (int)m, D, L, 1);
	for (long i = 0; i < m; i++) {
		const float *q = P + (size_t)i * (size_t)L;
		int best = 0;

		for (int j = 1; j < L; j++)
			if (q[j] > q[best])
				best = j;
		pred[i] = best;
	}
out:
	free(w);
	free(w0);
	free(v);
	free(g);
	free(P);
	return rc;
}

/* ---- clustering ---- */

/* Squared norms of the n rows of X[n,D], in double. */
static void row_norms(double *out, const float *X, long n, int D)
{
	for (long i = 0; i < n; i++) {
		double s = 0;

		for (int j = 0; j < D; j++)
			s += (double)X[(size_t)i * (size_t)D + (size_t)j] * X[(size_t)i * (size_t)D + (size_t)j];
		out[i] = s;
	}
}

/* |x - c|^2 in double. */
static double dist2(const float *x, const float *c, int D)
{
	double s = 0;

	for (int j = 0; j < D; j++) {
		double d = (double)x[j] - c[j];
		s += d * d;
	}
	return s;
}

/* k-means++ seeding: the first centre uniform, each next one drawn with
 * probability proportional to the squared distance to the nearest centre
 * chosen (d2 is scratch [n]). */
static void kmeanspp(float *cen, double *d2, const float *X, long n, int D,
		     int k, struct mtl_rng *rng)
{
	long first = (long)mtl_rng_below(rng, (uint64_t)n);

	memcpy(cen, X + (size_t)first * (size_t)D, sizeof(float) * (size_t)D);
	for (long i = 0; i < n; i++)
		d2[i] = dist2(X + (size_t)i * (size_t)D, cen, D);
	for (int c = 1; c < k; c++) {
		double tot = 0, u, acc = 0;
		long pick = n - 1;

		for (long i = 0; i < n; i++)
			tot += d2[i];
		u = mtl_rng_double(rng) * tot;
		if (tot > 0)
			for (long i = 0; i < n; i++) {
				acc += d2[i];
				if (d2[i] > 0 && u < acc) {
					pick = i;
					break;
				}
			}
		else
			pick = (long)mtl_rng_below(rng, (uint64_t)n);
		memcpy(cen + (size_t)c * (size_t)D, X + (size_t)pick * (size_t)D,
		       sizeof(float) * (size_t)D);
		for (long i = 0; i < n; i++) {
			double d = dist2(X + (size_t)i * (size_t)D, cen + (size_t)c * (size_t)D, D);
			if (d < d2[i])
				d2[i] = d;
		}
	}
}

/*
 * Lloyd's steps from the centres cen[k,D] until no assignment changes (or
 * 300 steps); returns the inertia.  Distances for the assignment come from
 * one product X cen^T (|x|^2 + |c|^2 - 2 x.c), the inertia from exact
 * differences.  S [n,k], sum [k,D] and cnt [k] are scratch.
 */
static double lloyd(int *as, float *cen, float *S, double *sum, long *cnt,
		    const double *xn, const float *X, long n, int D, int k)
{
	double inertia = 0;

	for (long i = 0; i < n; i++)
		as[i] = -1;
	for (int it = 0; it < 300; it++) {
		int changed = 0;

		mtl_linear_forward(S, X, cen, NULL, (int)n, D, k, 1);
		for (int c = 0; c < k; c++) {
			double s = 0;

			for (int j = 0; j < D; j++)
				s += (double)cen[(size_t)c * (size_t)D + (size_t)j] * cen[(size_t)c * (size_t)D + (size_t)j];
			sum[c] = s; /* |c|^2 for now */
		}
		for (long i = 0; i < n; i++) {
			const float *s = S + (size_t)i * (size_t)k;
			double best = INFINITY;
			int bc = 0;

			for (int c = 0; c < k; c++) {
				double d = xn[i] + sum[c] - 2.0 * s[c];
				if (d < best) {
					best = d;
					bc = c;
				}
			}
			changed |= as[i] != bc;
			as[i] = bc;
		}
		if (!changed)
			break;
		memset(sum, 0, sizeof(double) * (size_t)k * (size_t)D);
		memset(cnt, 0, sizeof(long) * (size_t)k);
		for (long i = 0; i < n; i++) {
			cnt[as[i]]++;
			for (int j = 0; j < D; j++)
				sum[(size_t)as[i] * (size_t)D + (size_t)j] += X[(size_t)i * (size_t)D + (size_t)j];
		}
		for (int c = 0; c < k; c++)
			if (cnt[c] > 0)
				for (int j = 0; j < D; j++)
					cen[(size_t)c * (size_t)D + (size_t)j] =
						(float)(sum[(size_t)c * (size_t)D + (size_t)j] / (double)cnt[c]);
	}
	for (long i = 0; i < n; i++)
		inertia += dist2(X + (size_t)i * (size_t)D, cen + (size_t)as[i] * (size_t)D, D);
	return inertia;
}

int mtl_embeval_kmeans(int *assign, const float *X, long n, int D, int k,
		       int restarts, uint64_t seed, struct mtl_err *err)
{
	float *cen = malloc(sizeof(float) * (size_t)k * (size_t)D);
	float *S = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1) * (size_t)k);
	double *sum = malloc(sizeof(double) * (size_t)k * (size_t)D);
	double *xn = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
	double *d2 = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
	long *cnt = malloc(sizeof(long) * (size_t)k);
	int *as = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
	double best = INFINITY;
	int rc = 0;

	MTL_ASSERT(k > 0 && D > 0);
	if (!cen || !S || !sum || !xn || !d2 || !cnt || !as) {
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (n == 0)
		goto out;
	row_norms(xn, X, n, D);
	for (int run = 0; run < (restarts > 0 ? restarts : 1); run++) {
		struct mtl_rng rng;
		double in;

		mtl_rng_init(&rng, seed + (uint64_t)run);
		kmeanspp(cen, d2, X, n, D, k < n ? k : (int)n, &rng);
		for (int c = (int)(k < n ? k : n); c < k; c++)
			memcpy(cen + (size_t)c * (size_t)D, cen, sizeof(float) * (size_t)D);
		in = lloyd(as, cen, S, sum, cnt, xn, X, n, D, k);
		if (in < best) {
			best = in;
			memcpy(assign, as, sizeof(int) * (size_t)n);
		}
	}
out:
	free(cen);
	free(S);
	free(sum);
	free(xn);
	free(d2);
	free(cnt);
	free(as);
	return rc;
}

int mtl_embeval_vmeasure(double *v, double *h, double *c, const int *gold,
			 int n_class, const int *clust, int n_clust, long n,
			 struct mtl_err *err)
{
	long *tab = calloc((size_t)n_class * (size_t)n_clust + 1, sizeof(long));
	long *rs = calloc((size_t)n_class + 1, sizeof(long));
	long *cs = calloc((size_t)n_clust + 1, sizeof(long));
	double hc = 0, hk = 0, hck = 0, hkc = 0, hom, com, N = (double)n;

	if (!tab || !rs || !cs) {
		free(tab);
		free(rs);
		free(cs);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	for (long i = 0; i < n; i++) {
		MTL_ASSERT(gold[i] >= 0 && gold[i] < n_class && clust[i] >= 0 && clust[i] < n_clust);
		tab[(size_t)gold[i] * (size_t)n_clust + (size_t)clust[i]]++;
		rs[gold[i]]++;
		cs[clust[i]]++;
	}
	for (int a = 0; a < n_class; a++)
		if (rs[a])
			hc -= rs[a] / N * log(rs[a] / N);
	for (int b = 0; b < n_clust; b++)
		if (cs[b])
			hk -= cs[b] / N * log(cs[b] / N);
	for (int a = 0; a < n_class; a++)
		for (int b = 0; b < n_clust; b++) {
			double nab = (double)tab[(size_t)a * (size_t)n_clust + (size_t)b];

			if (nab == 0)
				continue;
			hck -= nab / N * log(nab / (double)cs[b]);
			hkc -= nab / N * log(nab / (double)rs[a]);
		}
	hom = hc > 0 ? 1 - hck / hc : 1;
	com = hk > 0 ? 1 - hkc / hk : 1;
	*v = hom + com > 0 ? 2 * hom * com / (hom + com) : 0;
	if (h)
		*h = hom;
	if (c)
		*c = com;
	free(tab);
	free(rs);
	free(cs);
	return 0;
}
