/*
 * steps.h - the records of a steps stream (docs/streams.md), written by
 * mtl-step and read by mtl-report: each record kind's writer beside its
 * reader.
 *
 *   header  {"stream": "steps", "tasks", "model", "total_steps",
 *           "accumulate", "lr", "parameters", "trainable"}
 *   step    one optimiser step: its figures, one map {task: value} per
 *           per-task figure (accuracy nil for a regression task), the
 *           balancer's and the contrastive term's
 *           figures when the run has them, timings
 *   skip    a step skipped for a non-finite loss or gradient
 *   eval    an evaluation: the weighted loss, and per task {"loss",
 *           "accuracy", "f1", "labelled"} (nil where nothing is labelled)
 *           and "entity_f1" for a BIO token task, "micro_f1" for a
 *           labelled multilabel task ("f1" is then its macro F1,
 *           "accuracy" per label); a regression task has "loss" (its
 *           MSE), "pearson" and "spearman" in place of "accuracy" and
 *           "f1"; an embedding task has no "f1" (no labels; its
 *           "accuracy" is MNRL's in-batch top-1); the embedding evaluators (eval.h) add "pairs",
 *           "pearson", "spearman" (an embedding task's scored pairs),
 *           "queries", "mrr@10", "ndcg@10", "recall@1", "recall@10",
 *           "recall@100", "map@100" (its retrieval), "knn_accuracy" and
 *           "v_measure" (a label task's); with --best-metric,
 *           "best" {"metric", "value", "step", "stale", "patience",
 *           "stop": true when patience ran out}
 *
 * Writing: each mtl_steps_write_*() packs one whole record and ends it
 * (mtl_mp_end); a map's size is the count of the entries packed, never a
 * number written by hand.  They return 0 or MTL_ERR_IO.
 *
 * Reading: each mtl_steps_read_*() takes a record just read from r (its
 * "type" already checked by the caller), fills a plain struct and returns
 * 0, or MTL_ERR_FORMAT with "NAME: record N: what" in err for a figure of
 * the wrong type, or MTL_ERR_NOMEM.  Readers are lenient as a report must
 * be: an absent or nil figure reads as NaN, and the eval forms of older
 * streams are accepted.  What a read fills is owned by the struct and
 * freed by its _release (which accepts a zeroed struct), also after an
 * error.
 */
#ifndef MTL_STEPS_H
#define MTL_STEPS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "eval.h"
#include "mp.h"
#include "task.h"
#include "train.h"

/* --- writing --- */

struct mtl_steps_header {
	const struct mtl_tasks *tasks;
	const char *model;     /* the model directory */
	long total_steps;      /* of the schedule, 0 when unknown */
	int accumulate;
	float lr;
	uint64_t parameters;   /* encoder and heads */
	uint64_t trainable;    /* of them, not frozen at the start */
};

/* Writes the header, with argv[1..argc) as its "args". */
int mtl_steps_write_header(struct mtl_mp_writer *w, int argc, char **argv,
			   const struct mtl_steps_header *h,
			   struct mtl_err *err);

/* What a step record says; every array is [tasks->n]. */
struct mtl_steps_step {
	const struct mtl_tasks *tasks;
	const struct mtl_step_stats *st; /* the step's figures (train.h) */
	int64_t epoch;          /* of the step's last batch */
	const double *weights;  /* the step's loss weights; NULL: the tasks' */
	/* a balancer (balance.h): its time; on steps that took per-task
	 * gradients, coef[T] and cosine[T*T] (NaN: a pair not measured) */
	int has_balance;
	double balance_ms;
	const double *coef, *cosine; /* NULL: not on this step */
	int has_contrastive;
	double contrastive;     /* the contrastive term's loss */
	double ms;              /* wall time of the step */
	int has_comm;
	double comm_ms;         /* time blocked in reductions (mtl-step-mpi) */
};

/*
 * Writes a step record: "accuracy" is correct/labelled per task (nil
 * where nothing is labelled), "cosine" holds the measured pairs {A: {B:
 * cos}} of tasks A before B.
 */
int mtl_steps_write_step(struct mtl_mp_writer *w,
			 const struct mtl_steps_step *s, struct mtl_err *err);

/*
 * Writes a skip record for step `step` (the one that was not taken):
 * the reason is a non-finite loss when loss is not finite, else a
 * non-finite gradient.
 */
int mtl_steps_write_skip(struct mtl_mp_writer *w, long step, int64_t epoch,
			 double loss, double grad_norm, struct mtl_err *err);

/* Writes an eval record of res (eval.h) after optimiser step `step`,
 * with the best evaluation so far when best is not NULL. */
int mtl_steps_write_eval(struct mtl_mp_writer *w, long step,
			 const struct mtl_tasks *tasks,
			 const struct mtl_eval_result *res,
			 const struct mtl_eval_best *best,
			 struct mtl_err *err);

/* --- reading --- */

/* The scalar figures of a step record, in this order. */
enum mtl_steps_scalar {
	MTL_STEPS_STEP, MTL_STEPS_EPOCH, MTL_STEPS_LR, MTL_STEPS_LOSS,
	MTL_STEPS_GRAD_NORM, MTL_STEPS_TOKENS, MTL_STEPS_MS,
	MTL_STEPS_N_SCALARS
};

/* Its maps of figures, in this order. */
enum mtl_steps_map {
	MTL_STEPS_LOSSES, MTL_STEPS_ACCURACY, MTL_STEPS_WEIGHTS,
	MTL_STEPS_LABELLED, MTL_STEPS_COSINE, MTL_STEPS_N_MAPS
};

/* One entry of a map: "topic", "topic/ner" from a map of maps, or "all"
 * for a bare number in place of the map. */
struct mtl_steps_figure {
	char *key;
	double v; /* NaN for nil */
};

/* A step record read back. */
struct mtl_steps_figures {
	double v[MTL_STEPS_N_SCALARS];              /* NaN where absent */
	struct mtl_steps_figure *map[MTL_STEPS_N_MAPS]; /* [n[k]] */
	int n[MTL_STEPS_N_MAPS];
};

/* The keys of the scalars and of the maps, by the enums above. */
const char *mtl_steps_scalar_key(enum mtl_steps_scalar k);
const char *mtl_steps_map_key(enum mtl_steps_map k);

int mtl_steps_read_step(struct mtl_steps_figures *out,
			const msgpack_object *rec, struct mtl_mp_reader *r,
			struct mtl_err *err);
void mtl_steps_figures_release(struct mtl_steps_figures *f);

/* One task's row of an eval record; NaN where absent. */
struct mtl_steps_eval_row {
	char *task; /* "(all)" for an evaluation without tasks */
	double loss, accuracy, f1, entity_f1;
	/* the task's other figures, in the record's order (pearson,
	 * spearman, micro_f1, the embedding evaluators' mrr@10, ...); not
	 * the counts labelled, pairs and queries */
	struct mtl_steps_figure *more; /* [n_more] */
	int n_more;
};

/* An eval record read back. */
struct mtl_steps_evals {
	double step;
	struct mtl_steps_eval_row *row; /* [n] */
	int n;
};

/*
 * Reads an eval record: the "tasks" form above, the older form of maps
 * "losses", "accuracy" and "f1" {task: value} (a row per task named in
 * any), or one row "(all)" from the record's own "loss", "accuracy", "f1".
 */
int mtl_steps_read_eval(struct mtl_steps_evals *out,
			const msgpack_object *rec, struct mtl_mp_reader *r,
			struct mtl_err *err);
void mtl_steps_evals_release(struct mtl_steps_evals *e);

/* Reads a skip record: its step, and its reason (NULL when it has none;
 * the caller frees it). */
int mtl_steps_read_skip(double *step, char **reason,
			const msgpack_object *rec, struct mtl_mp_reader *r,
			struct mtl_err *err);

#endif
