/*
 * test_embeval.c - the embedding evaluators (lib/heads/embeval.h): hand-computed
 * cases for every figure, the search against a brute-force ranking across
 * block boundaries and thread counts, and the reference figures of
 * tools/ref_embeval.py (fixtures/embeval/ref.txt) within 1e-6.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "embeval.h"
#include "metrics.h"
#include "rng.h"
#include "t.h"

static int near(double a, double b, double tol)
{
	return fabs(a - b) <= tol;
}

static void test_correlation(void)
{
	double x[] = { 1, 2, 3 }, y[] = { 2, 4, 7 }, k[] = { 5, 5, 5 }, rho;
	double sx[] = { 1, 2, 2, 3 }, sy[] = { 1, 3, 2, 4 };
	int nomem;

	/* sxy = 5, sxx = 2, syy = 114/9: r = 15/sqrt(228) */
	T_OK(near(mtl_pearson(x, y, 3), 15 / sqrt(228), 1e-12), "pearson by hand");
	T_OK(isnan(mtl_pearson(x, k, 3)), "pearson of a constant is NaN");
	T_OK(isnan(mtl_pearson(x, y, 1)), "pearson of one pair is NaN");
	/* ranks [1, 2.5, 2.5, 4] and [1, 3, 2, 4]: rho = 4.5/sqrt(22.5) */
	T_OK((rho = mtl_spearman(sx, sy, 4, &nomem), nomem) == 0, "spearman runs");
	T_OK(near(rho, 3 / sqrt(10), 1e-12), "spearman averages tied ranks (%g)", rho);
	T_OK((rho = mtl_spearman(y, x, 3, &nomem), nomem) == 0 && near(rho, 1, 1e-12),
	     "spearman of a monotone relation is 1");
	T_OK((rho = mtl_spearman(x, y, 0, &nomem), nomem) == 0 && isnan(rho),
	     "spearman of nothing is NaN");
}

static void test_cosine_pairs(void)
{
	float a[] = { 1, 0, 3, 4, 0, 0, 2, 0 }, b[] = { 0, 1, 3, 4, 1, 1, -5, 0 };
	double out[4];

	mtl_embeval_cosine_pairs(out, a, b, 4, 2);
	T_OK(out[0] == 0 && near(out[1], 1, 1e-15) && out[2] == 0 && near(out[3], -1, 1e-15),
	     "cosine pairs: orthogonal, equal, a zero row, opposite");
}

static void test_search_small(void)
{
	/* c0 and c2 tie for a query along x */
	float C[] = { 1, 0, 0, 1, 1, 0, -1, 0 }, q[] = { 1, 0 };
	int32_t idx[4 * 6];
	float sc[4 * 6];

	T_OK(mtl_embeval_search(idx, sc, q, 1, C, 4, 2, 6, -1, 1, NULL) == 0, "search runs");
	T_OK(idx[0] == 0 && idx[1] == 2 && idx[2] == 1 && idx[3] == 3,
	     "ranked best first, a tie in corpus order (%d %d %d %d)", idx[0], idx[1], idx[2], idx[3]);
	T_OK(sc[0] == 1 && sc[1] == 1 && sc[2] == 0 && sc[3] == -1, "scores are the dot products");
	T_OK(idx[4] == -1 && idx[5] == -1 && isinf(sc[4]) && sc[4] < 0,
	     "k larger than the corpus: the rest is -1, -inf");
	/* every row as a query against the others */
	T_OK(mtl_embeval_search(idx, sc, C, 4, C, 4, 2, 3, 0, 1, NULL) == 0, "leave-one-out runs");
	T_OK(idx[0] == 2 && idx[1] == 1 && idx[2] == 3, "query 0 never finds itself");
	T_OK(idx[6] == 0 && idx[7] == 1 && idx[8] == 3, "query 2 finds its twin first");
	T_OK(mtl_embeval_search(idx, sc, q, 1, C, 4, 2, 0, -1, 1, NULL) == 0, "k = 0 is allowed");
}

/* Brute force: the rank of every corpus row by (-score, row). */
static void brute_topk(int32_t *idx, const float *Q, const float *C, long nc,
		       int D, int k)
{
	char *used = calloc((size_t)nc, 1);

	for (int r = 0; r < k; r++) {
		long best = -1;
		double bs = 0;

		for (long j = 0; j < nc; j++) {
			double s = 0;

			if (used[j])
				continue;
			for (int d = 0; d < D; d++)
				s += (double)Q[d] * C[(size_t)j * (size_t)D + (size_t)d];
			if (best < 0 || s > bs) {
				best = j;
				bs = s;
			}
		}
		used[best] = 1;
		idx[r] = (int32_t)best;
	}
	free(used);
}

static void test_search_blocks(void)
{
	/* past one query block (256) and two corpus blocks (4096); values in
	 * 1/16 so that every dot product is exact and ties are common */
	enum { NQ = 300, NC = 9000, D = 8, K = 12 };
	float *Q = malloc(sizeof(float) * NQ * D), *C = malloc(sizeof(float) * NC * D);
	int32_t *i1 = malloc(sizeof(int32_t) * NQ * K), *i2 = malloc(sizeof(int32_t) * NQ * K);
	float *s1 = malloc(sizeof(float) * NQ * K), *s2 = malloc(sizeof(float) * NQ * K);
	int32_t ref[K];
	struct mtl_rng rng;
	int bad = 0;

	mtl_rng_init(&rng, 7);
	for (long i = 0; i < (long)NQ * D; i++)
		Q[i] = (float)((int)mtl_rng_below(&rng, 9) - 4) / 16;
	for (long i = 0; i < (long)NC * D; i++)
		C[i] = (float)((int)mtl_rng_below(&rng, 9) - 4) / 16;
	mtl_embeval_search(i1, s1, Q, NQ, C, NC, D, K, -1, 1, NULL);
	mtl_embeval_search(i2, s2, Q, NQ, C, NC, D, K, -1, 2, NULL);
	T_OK(!memcmp(i1, i2, sizeof(int32_t) * NQ * K) && !memcmp(s1, s2, sizeof(float) * NQ * K),
	     "1 and 2 threads give the same result");
	for (int q = 0; q < NQ; q += 37) {
		brute_topk(ref, Q + (size_t)q * D, C, NC, D, K);
		bad += memcmp(ref, i1 + (size_t)q * K, sizeof(ref)) != 0;
	}
	T_OK(bad == 0, "blocked search equals brute force across blocks (%d queries differ)", bad);
	free(Q);
	free(C);
	free(i1);
	free(i2);
	free(s1);
	free(s2);
}

static void test_ir(void)
{
	struct mtl_embeval_ir ir = { 0 };
	int rel[] = { 0, 2, 0, 1 }, ideal[] = { 2, 1, 1 }, none[3] = { 0 };
	int far[120] = { 0 };
	double dcg = 2 / log2(3) + 1 / log2(5), idcg = 2 + 1 / log2(3) + 0.5;

	/* relevant at ranks 2 (grade 2) and 4 (grade 1), three relevant */
	mtl_embeval_ir_add(&ir, rel, 4, 3, ideal, 3);
	mtl_embeval_ir_add(&ir, none, 3, 0, NULL, 0);   /* nothing relevant */
	mtl_embeval_ir_finish(&ir);
	T_OK(ir.queries == 1 && ir.skipped == 1, "a query without relevant documents is skipped");
	T_OK(near(ir.mrr10, 0.5, 1e-15) && near(ir.ndcg10, dcg / idcg, 1e-15) &&
	     ir.recall1 == 0 && near(ir.recall10, 2.0 / 3, 1e-15) &&
	     near(ir.recall100, 2.0 / 3, 1e-15) && near(ir.map100, (0.5 + 0.5) / 3, 1e-15),
	     "MRR, NDCG, recall and MAP by hand");

	memset(&ir, 0, sizeof(ir));
	far[0] = 1;    /* rank 1 */
	far[100] = 1;  /* rank 101: past every cut-off */
	mtl_embeval_ir_add(&ir, far, 120, 2, NULL, 0);
	mtl_embeval_ir_add(&ir, none, 0, 1, NULL, 0); /* nothing retrieved */
	mtl_embeval_ir_finish(&ir);
	T_OK(ir.queries == 2 && near(ir.mrr10, 0.5, 1e-15) && near(ir.recall1, 0.25, 1e-15) &&
	     near(ir.recall100, 0.25, 1e-15) && near(ir.map100, 0.25, 1e-15) &&
	     near(ir.ndcg10, 0.5 / (1 + 1 / log2(3)), 1e-15),
	     "rank 101 counts nowhere; an empty result scores 0");

	memset(&ir, 0, sizeof(ir));
	mtl_embeval_ir_finish(&ir);
	T_OK(isnan(ir.mrr10) && isnan(ir.map100), "no query: NaN");
}

static void test_knn(void)
{
	int label[] = { 0, 1, 1, 0, 2 }, pred[4];
	int32_t idx[] = {
		1, 2, 0,      /* 1 1 0: majority 1 */
		0, 1, -1,     /* 0 1: tie, the larger score sum (1) */
		4, 3, -1,     /* 2 0: tie, equal sums: the smaller label */
		-1, -1, -1,   /* no neighbour */
	};
	float sc[] = { .9f, .8f, .7f,  .5f, .6f, -INFINITY,  .5f, .5f, -INFINITY,
		       -INFINITY, -INFINITY, -INFINITY };

	T_OK(mtl_embeval_knn(pred, idx, sc, 4, 3, label, 3, NULL) == 0, "knn runs");
	T_OK(pred[0] == 1 && pred[1] == 1 && pred[2] == 0 && pred[3] == -1,
	     "knn: majority, ties by score then label, no neighbour (%d %d %d %d)",
	     pred[0], pred[1], pred[2], pred[3]);
}

static void test_probe(void)
{
	/* three classes around three directions, and test points near them */
	float X[] = { 1, 0, .9f, .1f, .8f, -.2f,  -1, 0, -.9f, .2f, -.8f, -.1f,
		      0, 1, .1f, .9f, -.2f, .8f };
	int y[] = { 0, 0, 0, 1, 1, 1, 2, 2, 2 }, p1[4], p2[4];
	float T[] = { .7f, .05f, -.6f, -.1f, 0, .5f, .9f, -.3f };
	struct mtl_embeval_probe p;

	mtl_embeval_probe_init(&p);
	T_OK(p.c == 1 && p.iters == 500, "probe defaults: C 1, 500 steps");
	T_OK(mtl_embeval_probe_run(p1, T, 4, X, y, 9, 2, 3, &p, NULL) == 0, "probe runs");
	T_OK(p1[0] == 0 && p1[1] == 1 && p1[2] == 2 && p1[3] == 0,
	     "probe separates three directions (%d %d %d %d)", p1[0], p1[1], p1[2], p1[3]);
	mtl_embeval_probe_run(p2, T, 4, X, y, 9, 2, 3, &p, NULL);
	T_OK(!memcmp(p1, p2, sizeof(p1)), "probe is deterministic");
}

static void test_clustering(void)
{
	/* three tight blobs */
	float X[] = { 0, 0, .1f, 0, 0, .1f,  5, 5, 5.1f, 5, 5, 5.1f,  -5, 5, -5.1f, 5, -5, 5.1f };
	int gold[] = { 2, 2, 2, 0, 0, 0, 1, 1, 1 }, as[9], as2[9];
	int g4[] = { 0, 0, 1, 1 }, c4[] = { 0, 0, 1, 2 }, one[] = { 0, 0, 0, 0 }, all[] = { 0, 1, 2, 3 };
	double v, h, c;

	T_OK(mtl_embeval_kmeans(as, X, 9, 2, 3, 4, 42, NULL) == 0, "k-means runs");
	mtl_embeval_vmeasure(&v, &h, &c, gold, 3, as, 3, 9, NULL);
	T_OK(near(v, 1, 1e-12), "k-means finds three blobs: V-measure 1 (%g)", v);
	mtl_embeval_kmeans(as2, X, 9, 2, 3, 4, 42, NULL);
	T_OK(!memcmp(as, as2, sizeof(as)), "k-means is deterministic for a seed");
	T_OK(mtl_embeval_kmeans(as, X, 2, 2, 3, 2, 1, NULL) == 0 && as[0] != as[1],
	     "k larger than n: each point its own cluster");

	/* scikit-learn's documented case: h 1, c 2/3, v 0.8 */
	mtl_embeval_vmeasure(&v, &h, &c, g4, 2, c4, 3, 4, NULL);
	T_OK(near(h, 1, 1e-12) && near(c, 2.0 / 3, 1e-12) && near(v, 0.8, 1e-12),
	     "V-measure by hand (%g %g %g)", v, h, c);
	mtl_embeval_vmeasure(&v, &h, &c, g4, 2, one, 1, 4, NULL);
	T_OK(h == 0 && c == 1 && v == 0, "one cluster: homogeneity 0, V 0");
	mtl_embeval_vmeasure(&v, &h, &c, one, 1, all, 4, 4, NULL);
	T_OK(h == 1 && near(c, 0, 1e-12) && near(v, 0, 1e-12), "one class in singletons: completeness 0");
}

/* --- the reference figures --- */

/* Reads "NAME R C" and R*C numbers into a new array; NULL on a mismatch. */
static double *read_rows(FILE *f, const char *name, int *r, int *c)
{
	char got[32];
	double *v;

	if (fscanf(f, "%31s %d %d", got, r, c) != 3 || strcmp(got, name))
		return NULL;
	v = malloc(sizeof(double) * (size_t)*r * (size_t)*c);
	for (long i = 0; i < (long)*r * *c; i++)
		if (fscanf(f, "%lf", &v[i]) != 1) {
			free(v);
			return NULL;
		}
	return v;
}

static int read_named(FILE *f, const char *name, double *v)
{
	char got[32];

	return fscanf(f, "%31s %lf", got, v) == 2 && !strcmp(got, name) ? 0 : -1;
}

static double maxdiff;

static int close_ref(double got, double ref)
{
	double d = fabs(got - ref);

	if (d > maxdiff)
		maxdiff = d;
	return d <= 1e-6;
}

static void test_reference(void)
{
	FILE *f = fopen("fixtures/embeval/ref.txt", "r");
	static const char *const names[] = { "mrr10", "ndcg10", "recall1", "recall10",
					     "recall100", "map100" };
	int nomem;
	double *q, *c, *top, *xy, *gc, want[6], rho_ref, r_ref, v_ref[3], rho, v, h, cc;
	int nq, d, nc, d2, tr, tk, n2, nxy, n3, ngc, n_qrels, qn, qs, top_ok = 1, ok = 1;
	float *qf, *cf, *sc;
	int32_t *idx;
	struct mtl_embeval_ir ir = { 0 };
	char line[256];

	if (!T_OK(f != NULL, "fixtures/embeval/ref.txt opens"))
		return;
	if (!fgets(line, sizeof(line), f)) /* the comment */
		return;
	q = read_rows(f, "queries", &nq, &d);
	c = read_rows(f, "corpus", &nc, &d2);
	T_OK(q && c && d == d2, "reference vectors read (%d x %d, %d)", nq, nc, d);
	if (!q || !c)
		return;
	qf = malloc(sizeof(float) * (size_t)nq * (size_t)d);
	cf = malloc(sizeof(float) * (size_t)nc * (size_t)d);
	for (long i = 0; i < (long)nq * d; i++)
		qf[i] = (float)q[i];
	for (long i = 0; i < (long)nc * d; i++)
		cf[i] = (float)c[i];
	{
		char got[32];
		int (*qr)[3];
		if (fscanf(f, "%31s %d", got, &n_qrels) != 2 || strcmp(got, "qrels"))
			return;
		qr = malloc(sizeof(*qr) * (size_t)n_qrels);
		for (int i = 0; i < n_qrels; i++)
			if (fscanf(f, "%d %d %d", &qr[i][0], &qr[i][1], &qr[i][2]) != 3)
				return;
		top = read_rows(f, "topk", &tr, &tk);
		idx = malloc(sizeof(int32_t) * (size_t)nq * (size_t)tk);
		sc = malloc(sizeof(float) * (size_t)nq * (size_t)tk);
		mtl_embeval_search(idx, sc, qf, nq, cf, nc, d, tk, -1, 2, NULL);
		for (long i = 0; top && i < (long)nq * tk; i++)
			top_ok &= idx[i] == (int32_t)top[i];
		T_OK(top && tr == nq && top_ok, "top-%d of every query is the reference's", tk);
		for (int i = 0; i < nq; i++) {
			int *rel = calloc((size_t)tk, sizeof(int)), ideal[64], ni = 0;
			long n_rel = 0;

			for (int j = 0; j < n_qrels; j++) {
				if (qr[j][0] != i || qr[j][2] <= 0)
					continue;
				n_rel++;
				ideal[ni++] = qr[j][2];
				for (int r = 0; r < tk; r++)
					if (idx[(size_t)i * (size_t)tk + (size_t)r] == qr[j][1])
						rel[r] = qr[j][2];
			}
			/* grades sorted descending */
			for (int a = 1; a < ni; a++)
				for (int b = a; b > 0 && ideal[b] > ideal[b - 1]; b--) {
					int t = ideal[b];
					ideal[b] = ideal[b - 1];
					ideal[b - 1] = t;
				}
			mtl_embeval_ir_add(&ir, rel, tk, n_rel, ideal, ni);
			free(rel);
		}
		mtl_embeval_ir_finish(&ir);
		free(qr);
	}
	{
		char got[32];
		if (fscanf(f, "%31s %d %d", got, &qn, &qs) != 3)
			return;
	}
	for (int i = 0; i < 6; i++)
		ok &= read_named(f, names[i], &want[i]) == 0;
	T_OK(ok && ir.queries == qn && ir.skipped == qs, "queries scored %ld of %d, skipped %ld",
	     ir.queries, qn + qs, ir.skipped);
	T_OK(close_ref(ir.mrr10, want[0]) && close_ref(ir.ndcg10, want[1]) &&
	     close_ref(ir.recall1, want[2]) && close_ref(ir.recall10, want[3]) &&
	     close_ref(ir.recall100, want[4]) && close_ref(ir.map100, want[5]),
	     "retrieval metrics equal the reference (MRR@10 %.6f, NDCG@10 %.6f, MAP@100 %.6f)",
	     ir.mrr10, ir.ndcg10, ir.map100);
	xy = read_rows(f, "corr", &n2, &nxy);
	ok = xy && n2 == 2 && read_named(f, "spearman", &rho_ref) == 0 &&
	     read_named(f, "pearson", &r_ref) == 0;
	if (ok)
		rho = mtl_spearman(xy, xy + nxy, nxy, &nomem);
	T_OK(ok && close_ref(rho, rho_ref) && close_ref(mtl_pearson(xy, xy + nxy, nxy), r_ref),
	     "spearman and pearson equal the reference (%.6f, %.6f)", rho_ref, r_ref);
	gc = read_rows(f, "clusters", &n3, &ngc);
	ok = gc && n3 == 2 && fscanf(f, "%*s %lf %lf %lf", &v_ref[0], &v_ref[1], &v_ref[2]) == 3;
	if (ok) {
		int *g = malloc(sizeof(int) * (size_t)ngc), *k = malloc(sizeof(int) * (size_t)ngc);
		int ng = 0, nk = 0;

		for (int i = 0; i < ngc; i++) {
			g[i] = (int)gc[i];
			k[i] = (int)gc[ngc + i];
			ng = g[i] + 1 > ng ? g[i] + 1 : ng;
			nk = k[i] + 1 > nk ? k[i] + 1 : nk;
		}
		mtl_embeval_vmeasure(&v, &h, &cc, g, ng, k, nk, ngc, NULL);
		free(g);
		free(k);
	}
	T_OK(ok && close_ref(v, v_ref[0]) && close_ref(h, v_ref[1]) && close_ref(cc, v_ref[2]),
	     "V-measure, homogeneity, completeness equal the reference (%.6f)", v_ref[0]);
	T_NOTE("max difference from the reference: %.3g", maxdiff);
	free(q);
	free(c);
	free(qf);
	free(cf);
	free(top);
	free(idx);
	free(sc);
	free(xy);
	free(gc);
	fclose(f);
}

int main(void)
{
	test_correlation();
	test_cosine_pairs();
	test_search_small();
	test_search_blocks();
	test_ir();
	test_knn();
	test_probe();
	test_clustering();
	test_reference();
	return t_done();
}
