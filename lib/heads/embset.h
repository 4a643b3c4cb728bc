/*
 * embset.h - an embeddings stream in memory, the evaluations run over it
 * (lib/heads/embeval.h does the arithmetic), and the records of a search stream.
 *
 * A set holds every "embedding" record of one or more embeddings streams
 * (mtl-score --embed; docs/streams.md): its id (kept as its msgpack
 * encoding, any type), its vector as read, and the gold labels it carries
 * ("labels": {TASK: LABEL}, a string per sequence task, written by
 * mtl-score --embed for labelled examples), per task as label indices.
 *
 * Evaluations over a set (docs/evaluators.md):
 *   labels   with a task's labels: kNN accuracy (leave-one-out, or against
 *            a training set with a logistic-regression probe beside it),
 *            retrieval of same-label rows (each labelled row a query
 *            against every other row), k-means V-measure;
 *   qrels    a set of queries, this set as the corpus, and judgements
 *            (JSON lines {"query": ID, "doc": ID, "relevance": N}):
 *            the retrieval metrics;
 *   pairs    JSON lines {"a": ID, "b": ID, "score": X}: Pearson and
 *            Spearman of the cosine of a and b with X.
 * Vectors are L2-normalised for every evaluation (cosine similarity).
 *
 * Search stream (mtl-search): a header {"stream": "search", "k", "dim",
 * "queries", "corpus"} then one record per query and rank,
 *   {"type": "hit", "query": QID, "id": CID, "rank": R, "score": S}
 * (R from 1, S the cosine as float32), queries in input order, ranks
 * ascending; a query has min(k, corpus size) records.
 *
 * Ownership: a set owns all it holds (_init/_release on caller storage;
 * release accepts a zeroed set).  Results are plain structs.  The label
 * evaluation reads only n, dim, x and task[t].n_labels, .y (and the
 * label names of a training set), so a caller may pass a zeroed set whose
 * fields point into its own arrays (never released; eval.c does).
 *
 * Failure: 0, or <0 with err set: MTL_ERR_FORMAT for bad input, with
 * "NAME: record N: what" for a stream and "FILE: line N: what" for a JSON
 * lines file; MTL_ERR_NOMEM.
 */
#ifndef MTL_EMBSET_H
#define MTL_EMBSET_H

#include <stdint.h>
#include <stdio.h>

#include <msgpack.h>

#include "embeval.h"
#include "err.h"
#include "mp.h"

struct mtl_embset_ref;

struct mtl_embset_task {
	char *name;
	char **label;   /* [n_labels], in order of first appearance */
	int n_labels;
	int *y;         /* [set cap] label index, -1 where unlabelled */
};

struct mtl_embset {
	long n, cap;
	int dim;                /* 0 until known */
	float *x;               /* [n*dim] as read */
	char **id;              /* [n] msgpack encodings of the ids */
	size_t *id_len;
	struct mtl_embset_task *task;
	int n_tasks;
	struct mtl_embset_ref *order; /* [n_order] ids sorted (mtl_embset_find) */
	long n_order;                 /* rows the index covers */
};

void mtl_embset_init(struct mtl_embset *s);
void mtl_embset_release(struct mtl_embset *s);

/*
 * Checks an embeddings header (from mtl_mp_read_header) against s: its
 * "dim", when given, must be the set's.  Errors name r's record.
 */
int mtl_embset_header(struct mtl_embset *s, const msgpack_object *hdr,
		      struct mtl_mp_reader *r, struct mtl_err *err);
/*
 * Adds an "embedding" record: a numeric "embedding" of the set's
 * dimension, finite; labels, when present, a map of strings.  Errors name
 * r's record.
 */
int mtl_embset_add(struct mtl_embset *s, const msgpack_object *rec,
		   struct mtl_mp_reader *r, struct mtl_err *err);
/*
 * Reads a whole embeddings stream from r into s (header, then every
 * "embedding" record; others are passed over).  Anything but an
 * embeddings stream is refused.
 */
int mtl_embset_read(struct mtl_embset *s, struct mtl_mp_reader *r,
		    struct mtl_err *err);

/*
 * mtl_embset_read() of the file at path (NULL or "-": standard input),
 * named in messages as "<stdin>" or path.  MTL_ERR_IO when it cannot be
 * opened.
 */
int mtl_embset_read_file(struct mtl_embset *s, const char *path,
			 struct mtl_err *err);

/* The index of task name among s's label tasks, or -1. */
int mtl_embset_task_find(const struct mtl_embset *s, const char *name);
/*
 * The row whose id has the msgpack encoding id[0..len), or -1 (the first
 * such row when ids repeat).  Builds an index on first use, and again
 * after rows were added; MTL_ERR_NOMEM as -2.
 */
long mtl_embset_find(struct mtl_embset *s, const char *id, size_t len);

/* The rows of s L2-normalised, in a new array [n*dim] (NULL: no memory). */
float *mtl_embset_normalized(const struct mtl_embset *s);

/* --- evaluations --- */

/* Figures of a label evaluation; NaN where not computed. */
struct mtl_embset_labels_eval {
	long labelled;       /* rows with a label */
	int n_labels;        /* labels seen */
	int k;               /* kNN's k */
	double knn_accuracy;
	double probe_accuracy; /* with a training set only */
	struct mtl_embeval_ir same; /* same-label retrieval (leave-one-out) */
	double vmeasure;
};

struct mtl_embset_labels_opts {
	int k;              /* kNN neighbours (10) */
	int restarts;       /* k-means restarts (5) */
	uint64_t seed;      /* k-means++ seed (0) */
	int threads;
	struct mtl_embeval_probe probe;
};

void mtl_embset_labels_defaults(struct mtl_embset_labels_opts *o);

/*
 * Evaluates the labels of task t of s.  Without train (NULL): kNN of each
 * labelled row against the others (leave-one-out), same-label retrieval,
 * and the V-measure of k-means with k = the labels seen.  With train (a
 * set with task tt labelled): kNN and the probe of s's labelled rows
 * against train's, by label name (a label train lacks counts as wrong);
 * retrieval and V-measure as before, on s.
 */
int mtl_embset_eval_labels(struct mtl_embset_labels_eval *out,
			   const struct mtl_embset *s, int t,
			   const struct mtl_embset *train, int tt,
			   const struct mtl_embset_labels_opts *o,
			   struct mtl_err *err);

/*
 * Retrieval with judgements: each query of q that the file f (JSON lines,
 * named name in messages) judges is searched in corpus c (top 100); every
 * "query" must be an id of q and every "doc" an id of c ("relevance", an
 * integer, defaults to 1; 0 or less is judged not relevant).  Queries of
 * q without a judgement are not scored.  Errors "NAME: line N: what".
 */
int mtl_embset_eval_qrels(struct mtl_embeval_ir *out, struct mtl_embset *q,
			  struct mtl_embset *c, FILE *f, const char *name,
			  int threads, struct mtl_err *err);

/* Figures of a similarity evaluation. */
struct mtl_embset_pairs_eval {
	long pairs;
	double pearson, spearman;
};

/*
 * Similarity: the pairs of f (JSON lines {"a","b","score"}; a and b ids
 * of s), Pearson and Spearman of their cosine with the score.
 */
int mtl_embset_eval_pairs(struct mtl_embset_pairs_eval *out,
			  struct mtl_embset *s, FILE *f, const char *name,
			  struct mtl_err *err);

/*
 * The similarity figures of n pairs of rows of x[*, dim]: rows a[i] and
 * b[i], gold score[i] (what mtl_embset_eval_pairs computes once it has
 * read its file; the evaluation during training, eval.h, calls it too).
 * 0, or MTL_ERR_NOMEM.
 */
int mtl_embset_similarity(struct mtl_embset_pairs_eval *out, const float *x,
			  int dim, const long *a, const long *b,
			  const double *score, long n, struct mtl_err *err);

/*
 * Retrieval over n pairs (eval.h's, of an embedding task's texts and
 * their positives): each row i of q[n, dim] is a query against the
 * corpus c[n, dim] (top 100, both L2-normalised here), and row i of c is
 * its one relevant document; the same figures as mtl_embset_eval_qrels
 * with the judgements {"query": i, "doc": i}.  Equal texts in c are
 * other documents.  0, or MTL_ERR_NOMEM.
 */
int mtl_embset_pair_retrieval(struct mtl_embeval_ir *out, const float *q,
			      const float *c, long n, int dim, int threads,
			      struct mtl_err *err);

/* --- search stream --- */

/* Writes a search stream's header (argv[1..argc) as its "args"). */
int mtl_embset_write_search_header(struct mtl_mp_writer *w,
				   const char *program, int argc, char **argv, int k, int dim, long queries,
				   long corpus, struct mtl_err *err);
/* Writes a hit: query row qi of q, corpus row ci of c, rank (from 1). */
int mtl_embset_write_hit(struct mtl_mp_writer *w, const struct mtl_embset *q,
			 long qi, const struct mtl_embset *c, long ci,
			 int rank, float score, struct mtl_err *err);

#endif
