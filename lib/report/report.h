/*
 * report.h - what mtl-report shows, computed from steps, predictions and
 * embeddings streams (docs/report.md).
 *
 * A struct mtl_report collects any number of streams, each recognised by
 * its header's "stream" kind:
 *
 *   steps        training curves: one column per figure of a "step"
 *                record (NaN where a record lacks it), the "eval" records
 *                as rows, and the "skip" records;
 *   predictions  per task a confusion matrix (of examples for a sequence
 *                task, of words for a token task; per-label scores for a
 *                multilabel task; MSE, Pearson and Spearman for a
 *                regression task), entity scores for token
 *                tasks whose labels are BIO tags (lib/heads/metrics.h), gold
 *                entities lost to truncation, and the first misclassified
 *                examples;
 *   embeddings   the first max_embeddings vectors and their cosine
 *                similarities.
 *
 * Several streams of one kind add up: steps streams append (a resumed
 * run), predictions streams pool their examples (tasks of the same name
 * must have the same kind and labels), embeddings streams append.
 *
 * Use: mtl_report_new(), mtl_report_read() once per input, then
 * mtl_report_finish(), then read the plain fields below (lib/report/render.h
 * formats them).  The report owns everything it points to; nothing
 * borrows from the msgpack records read.
 *
 * Failure: mtl_report_read() returns <0 with "INPUT: record N: what" in
 * err for input that is not a stream, a stream of another kind, records of
 * the wrong shape, unknown tasks or labels; the report then holds what was
 * read before the bad record and may only be freed.
 */
#ifndef MTL_REPORT_H
#define MTL_REPORT_H

#include <stdio.h>

#include "embset.h"
#include "err.h"
#include "metrics.h"
#include "mp.h"
#include "steps.h"
#include "task.h"

struct mtl_report_opts {
	int strict;         /* entities in strict IOB2 mode (else conlleval) */
	int errors;         /* misclassified examples kept per task */
	int max_embeddings; /* embeddings kept for the similarity matrix */
	int emb_keep;       /* keep every embedding (emb.set) for the
			     * evaluators: mtl_report_evaluate */
};

/* Named columns over the steps: v[k][i] is key k at step record i. */
struct mtl_report_family {
	int n;
	char **key;
	double **v; /* [n][steps.n], NaN where absent */
};

struct mtl_report_eval {
	double step;
	char *task;
	double loss, accuracy, f1; /* NaN where absent */
	struct mtl_steps_figure *more; /* [n_more] the row's other figures
					* (steps.h: mtl_steps_eval_row) */
	int n_more;
};

struct mtl_report_skip {
	double step;
	char *reason; /* or NULL */
};

struct mtl_report_steps {
	long n, cap; /* step records */
	/* [n] each, NaN where a record lacks the figure */
	double *step, *epoch, *lr, *loss, *grad_norm, *tokens, *ms;
	struct mtl_report_family losses, accuracy, weights, labelled, cosine;
	struct mtl_report_eval *eval;
	long n_eval;
	struct mtl_report_skip *skip;
	long n_skip;
};

/* One misclassified example, as shown by --errors. */
struct mtl_report_error {
	char *id;    /* the id as text */
	char *text;  /* or NULL */
	int n_words; /* token tasks: words shown (>= n) */
	char **words; /* [n_words] or NULL */
	int n;       /* labels: 1 for a sequence task, scored words otherwise */
	int *gold;   /* [n] label indices, -1 where unlabelled */
	int *pred;   /* [n] */
};

struct mtl_report_task {
	const struct mtl_task *spec; /* in mtl_report.tasks */
	struct mtl_confusion conf;   /* examples or words with gold */
	long examples;  /* prediction records for the task */
	long unlabelled; /* of them without gold */
	long *predicted; /* [n_labels] predictions of each label, with gold or
			  * without (examples, or words of a token task) */
	long *predicted_entities; /* [bio.n_types] predicted entities, with
				   * gold or without */
	/* token tasks */
	int has_entities; /* labels are BIO tags */
	struct mtl_bio bio;
	struct mtl_entity_score ent; /* gold_lost already counted as missed */
	double entity_macro_f1;
	long lost;       /* gold entities lost to truncation, all types */
	long *lost_type; /* [bio.n_types] the part given by type */
	/* multilabel tasks: per-label scores over the examples with gold */
	struct mtl_multilabel_score ml;
	/* regression tasks: (prediction, target) pairs and their scores */
	struct mtl_regression_score rg;
	struct mtl_report_error *err;
	int n_err;
	long n_wrong; /* misclassified examples, all of them */
};

/* The embedding evaluators' figures (mtl_report_evaluate); the names are
 * owned. */
struct mtl_report_label_eval {
	char *task;
	int with_train; /* kNN and probe against a training set */
	struct mtl_embset_labels_eval e;
};

struct mtl_report_embeval {
	struct mtl_report_label_eval *lab; /* [n_lab], one per labelled task */
	int n_lab;
	char *qrels;                  /* the judgements' file, or NULL */
	long queries;                 /* embeddings of the queries stream */
	struct mtl_embeval_ir ir;
	char *pairs;                  /* the pairs' file, or NULL */
	struct mtl_embset_pairs_eval sim;
};

struct mtl_report_embeddings {
	long total;   /* embedding records read */
	int n, dim;   /* kept, and their dimension */
	char **label; /* [n] text or id */
	float *vec;   /* [n*dim] */
	double *sim;  /* [n*n] cosine similarities, after finish */
	char *pooling;
	int normalized; /* -1 unknown */
	struct mtl_embset set; /* every embedding, with opts.emb_keep */
	struct mtl_report_embeval *eval; /* after mtl_report_evaluate, or NULL */
};

struct mtl_report {
	struct mtl_report_opts opts;
	int n_steps_streams, n_pred_streams, n_emb_streams;
	struct mtl_report_steps steps;
	struct mtl_tasks *tasks; /* predicted tasks, merged over streams */
	struct mtl_report_task *task; /* [tasks->n] */
	int n_task; /* entries of task allocated (== tasks->n) */
	long predictions; /* prediction records */
	struct mtl_report_embeddings emb;
};

/* A new empty report, or NULL when out of memory. */
struct mtl_report *mtl_report_new(const struct mtl_report_opts *opts);
void mtl_report_free(struct mtl_report *rep);

/*
 * Reads one whole stream from r (header first) into rep.  Returns 0, or <0
 * with "NAME: record N: what" in err (MTL_ERR_FORMAT for bad input,
 * MTL_ERR_IO for a read error, MTL_ERR_NOMEM).
 */
int mtl_report_read(struct mtl_report *rep, struct mtl_mp_reader *r,
		    struct mtl_err *err);

/*
 * Computes the derived figures (entity scores with the lost entities
 * counted as missed, similarities), once, after the last read.  0, or
 * MTL_ERR_NOMEM.
 */
int mtl_report_finish(struct mtl_report *rep, struct mtl_err *err);

/* What mtl_report_evaluate runs (every member may be left zero/NULL). */
struct mtl_report_eval_opts {
	int labels;             /* evaluate the embeddings' labels */
	const char *task;       /* only this task's (NULL: every labelled task) */
	struct mtl_embset_labels_opts lab;
	const struct mtl_embset *train; /* kNN and probe against it, or NULL */
	struct mtl_embset *queries; /* retrieval: the queries, */
	FILE *qrels;            /* and the judgements (JSON lines) */
	const char *qrels_name;
	FILE *pairs;            /* similarity pairs (JSON lines), or NULL */
	const char *pairs_name;
};

/*
 * Runs the embedding evaluators (lib/heads/embset.h) over the embeddings read
 * with opts.emb_keep, after mtl_report_finish, into rep->emb.eval: per
 * labelled task (or only o->task) kNN accuracy, same-label retrieval and
 * k-means V-measure (with o->train: kNN and probe against it); with
 * o->qrels, retrieval of o->queries in the embeddings; with o->pairs,
 * Pearson and Spearman.  0, or <0 with err set: MTL_ERR_FORMAT for a task
 * no embedding is labelled with (also in o->train), a dimension mismatch,
 * or a bad line ("NAME: line N: what"); MTL_ERR_NOMEM.
 */
int mtl_report_evaluate(struct mtl_report *rep,
			const struct mtl_report_eval_opts *o,
			struct mtl_err *err);

/* Frees what mtl_report_evaluate made; accepts NULL. */
void mtl_report_embeval_free(struct mtl_report_embeval *e);

/* Training summary of one column: NaN when it holds no finite value. */
struct mtl_report_stat {
	double first, last, min, max;
	long n;                /* finite values */
	long i_min, i_max;     /* step-record indices of min and max */
};

void mtl_report_stat(const double *v, long n, struct mtl_report_stat *out);

/* Cosine similarity of a and b (n floats); 0 when either is all zeros. */
double mtl_report_cosine(const float *a, const float *b, int n);

#endif
