/*
 * embeval.h - evaluators of sentence embeddings: similarity, retrieval,
 * classification from embeddings, clustering; and the exact top-k search
 * they share (docs/evaluators.md says what each figure means).
 *
 *   similarity      Pearson and Spearman (ties get their average rank)
 *                   correlation of cosine similarities with gold scores.
 *   retrieval       per query, the ranked corpus (mtl_embeval_search) and
 *                   its relevance judgements give MRR@10, NDCG@10,
 *                   Recall@1/10/100 and MAP@100, averaged over the queries
 *                   that have a relevant document (as trec_eval and MTEB).
 *   kNN             majority vote of the k nearest training embeddings.
 *   probe           multinomial logistic regression on train embeddings,
 *                   scored on test embeddings (as MTEB's classification).
 *   clustering      k-means (k-means++ from a fixed seed, restarts) and
 *                   the V-measure of its clusters against gold labels.
 *
 * Example (leave-one-out retrieval of same-label sentences):
 *
 *	int32_t *idx = malloc(n * 10 * sizeof *idx); float *sc = ...;
 *	if (mtl_embeval_search(idx, sc, X, n, X, n, D, 10, 0, 2, &err)) ...;
 *	struct mtl_embeval_ir ir = {0};
 *	...for each query, mtl_embeval_ir_add(&ir, rel, 10, n_rel, ideal, ...);
 *	mtl_embeval_ir_finish(&ir);    ir.mrr10, ir.ndcg10, ...
 *
 * Embeddings are float32 rows [n, D], row-major.  Cosine similarity is the
 * dot product of L2-normalised rows: callers normalise first
 * (mtl_l2norm_forward in ops.h), and a zero row stays zero (similarity 0
 * with everything).
 *
 * Determinism: every result depends only on the inputs and the given
 * seed, never on the thread count (each query's scores come from one
 * single-threaded product over the same corpus blocks).
 *
 * Ownership: nothing is kept; outputs go to caller storage.  Failure:
 * functions that allocate return 0 or MTL_ERR_NOMEM; bad arguments from our
 * own code are MTL_ASSERTs.
 */
#ifndef MTL_EMBEVAL_H
#define MTL_EMBEVAL_H

#include <stdint.h>

#include "err.h"

/* --- similarity --- */

/* (Pearson and Spearman: metrics.h, mtl_pearson and mtl_spearman.) */
/* out[i] = the cosine similarity of rows a[i,:] and b[i,:] (not assumed
 * normalised; 0 when either is zero), in double. */
void mtl_embeval_cosine_pairs(double *out, const float *a, const float *b,
			      long n, int D);

/* --- top-k search --- */

/*
 * For each query row i of Q[nq,D], the k rows of C[nc,D] with the largest
 * dot product, best first: corpus indices to idx[i*k + r] and scores to
 * score[i*k + r] (r = 0 is rank 1).  Equal scores rank in corpus order
 * (the lower index first), so the result is exact and the same on any
 * thread count.  When self0 >= 0 the queries are corpus rows too: query
 * i is never matched with corpus row self0 + i (leave-one-out).  A query
 * that has fewer than k candidates (k larger than the corpus) fills the
 * rest of its row with idx -1 and score -INFINITY.
 *
 * Scores come from BLIS products of query blocks against corpus blocks
 * (mtl_linear_forward, one thread each), merged into a bounded heap per
 * query, so memory is O(nq*k + block) besides Q and C.  nt threads share
 * the query blocks.  0, or MTL_ERR_NOMEM.
 */
int mtl_embeval_search(int32_t *idx, float *score, const float *Q, long nq,
		       const float *C, long nc, int D, int k, long self0,
		       int nt, struct mtl_err *err);

/* --- retrieval metrics --- */

/*
 * Sums over queries, then means: mtl_embeval_ir_add() each query, then
 * mtl_embeval_ir_finish().  Start from a zeroed struct.
 */
struct mtl_embeval_ir {
	long queries;  /* queries scored (they have a relevant document) */
	long skipped;  /* queries without any relevant document */
	double mrr10, ndcg10, recall1, recall10, recall100, map100;
};

/*
 * Adds one query: rel[0..n) the relevance (0: not relevant, >0: its
 * grade) of its results best first (n = the results retrieved, at most
 * 100 are looked at); n_rel the number of relevant documents in the whole
 * corpus; ideal[0..n_ideal) the largest grades among them, sorted
 * descending (n_ideal <= 10 is enough; NULL with n_ideal 0 means every
 * relevant document has grade 1).  With n_rel == 0 the query is only
 * counted in skipped.
 *
 *   MRR@10     1 / rank of the first relevant result in the top 10, or 0
 *   NDCG@10    DCG@10 / IDCG@10, DCG = sum rel_r / log2(r + 1) (linear
 *              gain, as trec_eval and pytrec_eval)
 *   Recall@k   relevant results in the top k / n_rel
 *   MAP@100    sum of precision@r over the ranks r <= 100 holding a
 *              relevant result, / n_rel (trec_eval's map_cut_100, MTEB's
 *              MAP@100)
 */
void mtl_embeval_ir_add(struct mtl_embeval_ir *acc, const int *rel, int n,
			long n_rel, const int *ideal, int n_ideal);
/* Turns the sums into means over acc->queries (NaN when there is none). */
void mtl_embeval_ir_finish(struct mtl_embeval_ir *acc);

/* --- classification from embeddings --- */

/*
 * kNN votes: for each query i, its neighbours' labels
 * label[idx[i*k + r]] (r < k, idx -1 skipped, as mtl_embeval_search
 * writes) each vote once; the label with most votes wins, a tie going to
 * the label of the tied ones with the largest summed score, then to the
 * smaller label.  pred[i] = -1 when no neighbour votes.  Labels are in
 * [0, n_labels).  0, or MTL_ERR_NOMEM.
 */
int mtl_embeval_knn(int *pred, const int32_t *idx, const float *score,
		    long nq, int k, const int *label, int n_labels,
		    struct mtl_err *err);

/* Logistic-regression probe settings (defaults: mtl_embeval_probe_init). */
struct mtl_embeval_probe {
	double c;       /* inverse L2 strength, as scikit-learn's C (1.0) */
	int iters;      /* gradient steps (500) */
};

void mtl_embeval_probe_init(struct mtl_embeval_probe *p);

/*
 * Trains a multinomial logistic regression (weights W[L,D] and a bias b[L]
 * not regularised) on X[n,D] with labels y[n] in [0, L) by minimising
 * scikit-learn's objective  C * sum_i CE(i) + |W|^2 / 2  (divided by C n,
 * which does not move the minimum) with Nesterov's accelerated gradient at
 * the fixed step 1/L_f, L_f = max_i (|x_i|^2 + 1) / 2 + 1 / (C n), a bound
 * on the objective's curvature, for p->iters steps from zero: no line
 * search, no randomness, the same result on any machine with the same
 * float rounding.  Then predicts test rows T[m,D] into pred[m].  0, or
 * MTL_ERR_NOMEM.
 */
int mtl_embeval_probe_run(int *pred, const float *T, long m, const float *X,
			  const int *y, long n, int D, int L,
			  const struct mtl_embeval_probe *p,
			  struct mtl_err *err);

/* --- clustering --- */

/*
 * k-means of X[n,D] into k clusters (Euclidean): `restarts` runs, each from
 * k-means++ seeds drawn with lib/rng seeded by seed + run, of Lloyd steps
 * until no assignment changes or 300 steps; the run with the least
 * inertia (sum of squared distances, ties to the earlier run) gives
 * assign[n].  An empty cluster keeps its centre.  k > n gives at most n
 * non-empty clusters.  0, or MTL_ERR_NOMEM.
 */
int mtl_embeval_kmeans(int *assign, const float *X, long n, int D, int k,
		       int restarts, uint64_t seed, struct mtl_err *err);

/*
 * V-measure (beta 1) of a clustering against gold labels, both in
 * [0, n_class) and [0, n_clust):  h = 1 - H(C|K)/H(C),
 * c = 1 - H(K|C)/H(K),  v = 2hc/(h + c)  (h = 1 when H(C) = 0, c = 1 when
 * H(K) = 0, v = 0 when h + c = 0; as scikit-learn).  Homogeneity and
 * completeness go to *h and *c when not NULL.  0, or MTL_ERR_NOMEM.
 */
int mtl_embeval_vmeasure(double *v, double *h, double *c, const int *gold,
			 int n_class, const int *clust, int n_clust, long n,
			 struct mtl_err *err);

#endif
