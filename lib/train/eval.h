/*
 * eval.h - evaluating a model during training: an examples stream held in
 * memory (the evaluation set), the evaluation forward over it in chunks,
 * and each task's loss, accuracy and macro F1; and the embedding
 * evaluators of mtl-report (embset.h, docs/evaluators.md) over the
 * set's sentence vectors: an embedding task's similarity (scored pairs)
 * and retrieval (each example's text against the set's positives), a
 * label task's kNN accuracy and V-measure.
 *
 * Example:
 *
 *	struct mtl_eval_set set;
 *	struct mtl_eval_result res;
 *	if (mtl_eval_load(&set, reader, model, &err)) die(...);
 *	if (mtl_eval_run(&res, tr, &set, model, &err)) die(...);
 *	... res.loss, res.f1[t] ...
 *	mtl_eval_result_release(&res);
 *	mtl_eval_set_release(&set);
 *
 * The set's examples keep their labels in the stream's task order; map
 * takes each of the model's tasks to it, so a set may be labelled for some
 * of the model's tasks only.
 *
 * Ownership: the set and the result own their arrays (_release frees
 * them, and accepts a zeroed struct); the reader, the model and the
 * trainer are borrowed.  Failure: 0, or <0 (enum mtl_status) with the
 * message in err; on error the outputs hold nothing to free.
 */
#ifndef MTL_EVAL_H
#define MTL_EVAL_H

#include <stdint.h>

#include "data.h"
#include "embset.h"
#include "err.h"
#include "model.h"
#include "mp.h"
#include "train.h"

struct mtl_eval_set {
	struct mtl_example *ex;  /* [n] */
	int n;
	struct mtl_tasks *tasks; /* the stream's tasks (ex's label indices) */
	int *map;                /* [model tasks]: index in tasks, or -1 */
	uint64_t emb_labels;     /* bit t: the model's label task t is also
	                          * evaluated on the pooled sentence vectors
	                          * (kNN accuracy, V-measure); set by the
	                          * caller after mtl_eval_load, 0 there */
};

/*
 * One task's embedding evaluators over a set (NaN where not computed),
 * on the vectors pooled as the model pools (mtl-score --embed; an
 * embedding task's own pooling for it):
 *   an embedding task's examples with a scored pair: pairs, and the
 *     Pearson and Spearman of the pairs' cosine with the scores in the
 *     result's pearson[t] and spearman[t] (mtl_embset_similarity);
 *   its examples with a positive and no score: ir, each example's text a
 *     query against the positives of all of them as the corpus, its own
 *     positive the one relevant document (mtl_embset_pair_retrieval);
 *   a label (sequence) task in set->emb_labels: lab, leave-one-out kNN
 *     (k 10) and k-means V-measure over the examples labelled for it,
 *     as mtl-report computes them (mtl_embset_eval_labels, defaults).
 */
struct mtl_eval_emb {
	long pairs;                        /* scored pairs (0: none) */
	struct mtl_embeval_ir ir;          /* ir.queries 0: none */
	struct mtl_embset_labels_eval lab; /* lab.labelled 0: none */
};

/* Each task's figures over a whole set. */
struct mtl_eval_result {
	int n_tasks;
	int examples;
	double loss;         /* sum_t weight_t loss_t */
	double *task_loss;   /* [n_tasks] mean over the labelled items, */
	double *accuracy;    /* [n_tasks] argmax == label, */
	double *f1;          /* [n_tasks] macro F1 over the labels: 0 where */
	int64_t *labelled;   /* [n_tasks]                    nothing is labelled */
	double *entity_f1;   /* [n_tasks] entity micro F1 (conlleval); NaN when
	                      * the task is not a BIO token task */
	double *micro_f1;    /* [n_tasks] a multilabel task's micro F1 (its f1
	                      * is the macro F1, its accuracy per label); NaN
	                      * for other tasks */
	double *pearson, *spearman; /* [n_tasks] a regression task's (its
	                      * task_loss is the MSE; accuracy and f1 NaN),
	                      * an embedding task's scored pairs' (above);
	                      * NaN for other tasks or when undefined */
	struct mtl_eval_emb *emb; /* [n_tasks] */
};

/*
 * Reads the examples stream of r (header first) into set for model:
 * the header's tasks must match the model's (mtl_task_map) and its
 * vocabulary the model's.  Fails with MTL_ERR_FORMAT ("NAME: record N:
 * what") for a bad record or an example longer than the model's
 * positions, MTL_ERR_IO, MTL_ERR_NOMEM.
 */
int mtl_eval_load(struct mtl_eval_set *set, struct mtl_mp_reader *r,
		  const struct mtl_model *model, struct mtl_err *err);
void mtl_eval_set_release(struct mtl_eval_set *set);

/*
 * The evaluation forward (no dropout) of tr over set, 32 examples a
 * batch padded with model's pad id, into res (allocated here; the model's
 * tasks are res's), then the embedding evaluators (struct mtl_eval_emb)
 * over the vectors it kept.  0, or <0 (NOMEM, or the forward's error).
 */
int mtl_eval_run(struct mtl_eval_result *res, struct mtl_train *tr,
		 const struct mtl_eval_set *set,
		 const struct mtl_model *model, struct mtl_err *err);
void mtl_eval_result_release(struct mtl_eval_result *res);

/*
 * One line of res for a terminal into buf (size n, always terminated):
 * "loss L, TASK accuracy A f1 F ..." with a token task's f1 named token_f1
 * and its entity_f1 when it has one, a multilabel task's micro_f1; a
 * regression task's "TASK mse M pearson P spearman S"; then the embedding
 * evaluators computed: " spearman S", " mrr@10 M ndcg@10 N",
 * " knn_accuracy K v_measure V".
 */
void mtl_eval_format(char *buf, size_t n, const struct mtl_tasks *ts,
		     const struct mtl_eval_result *res);

/* A metric of an evaluation: "loss", or TASK:accuracy (not regression
 * tasks), TASK:f1 (sequence, token, multilabel), TASK:token_f1 (a token
 * task's f1), TASK:entity_f1 (BIO token tasks), TASK:micro_f1
 * (multilabel tasks), TASK:mse (regression tasks), TASK:pearson or
 * TASK:spearman (regression tasks, and an embedding task's scored pairs),
 * TASK:mrr@10, TASK:ndcg@10, TASK:recall@1, TASK:recall@10,
 * TASK:recall@100, TASK:map@100 (an embedding task's retrieval),
 * TASK:knn_accuracy, TASK:v_measure (sequence tasks, on embeddings).
 * Loss and mse: lower is better; every other: higher. */
enum mtl_eval_kind {
	MTL_EVAL_LOSS, MTL_EVAL_ACCURACY, MTL_EVAL_F1, MTL_EVAL_ENTITY_F1,
	MTL_EVAL_MICRO_F1, MTL_EVAL_MSE, MTL_EVAL_PEARSON, MTL_EVAL_SPEARMAN,
	MTL_EVAL_MRR10, MTL_EVAL_NDCG10, MTL_EVAL_RECALL1, MTL_EVAL_RECALL10,
	MTL_EVAL_RECALL100, MTL_EVAL_MAP100, MTL_EVAL_KNN_ACCURACY,
	MTL_EVAL_V_MEASURE
};

/* The best evaluation of a run so far, and when to stop. */
struct mtl_eval_best {
	const char *metric;     /* borrowed, as given */
	int task;               /* -1 for loss */
	enum mtl_eval_kind kind;
	int patience;           /* stop after this many evaluations without
	                         * improvement; 0: never */
	double value;           /* the best value (NaN: no evaluation yet) */
	long step;              /* its step (-1: none) */
	int stale;              /* evaluations since the best */
	int stop;               /* 1 when stale reached patience */
	float *weights;         /* the best encoder then heads parameters, or
	                         * NULL (none yet, or not kept) */
	size_t n_weights;
};

/*
 * Reads metric for the tasks ts into b (nothing to release until the
 * first mtl_eval_best_update).  MTL_ERR_ARG naming what is wrong for an
 * unknown form, task, or a figure the task does not have.
 */
int mtl_eval_best_init(struct mtl_eval_best *b, const char *metric,
		       const struct mtl_tasks *ts, int patience,
		       struct mtl_err *err);
/* The label tasks (bit t) whose evaluation b needs on embeddings
 * (TASK:knn_accuracy, TASK:v_measure), for mtl_eval_set.emb_labels. */
uint64_t mtl_eval_best_emb_labels(const struct mtl_eval_best *b);
/*
 * Every metric name of ts that mtl_eval_best_init takes ("loss", then
 * each task's figures in the order above), in one allocation the caller
 * frees, NULL-terminated, *n the count; NULL when out of memory.  For a
 * "did you mean".
 */
char **mtl_eval_metric_names(const struct mtl_tasks *ts, size_t *n);
/* The metric's value in res (NaN when the task had nothing labelled). */
double mtl_eval_best_value(const struct mtl_eval_best *b,
			   const struct mtl_eval_result *res);
/*
 * Counts the evaluation res of step: when it beats the best ("loss"
 * lower, the others higher; NaN never does), it becomes the best and, if
 * keep, model's weights are copied into b->weights; else stale grows and
 * stop is set when it reaches patience.  Returns 1 for a new best, 0 for
 * none, MTL_ERR_NOMEM (b unchanged).
 */
int mtl_eval_best_update(struct mtl_eval_best *b, long step,
			 const struct mtl_eval_result *res,
			 const struct mtl_model *model, int keep,
			 struct mtl_err *err);
/* Copies the best weights back into model; 0, or 1 when b holds none. */
int mtl_eval_best_restore(const struct mtl_eval_best *b,
			  struct mtl_model *model);
void mtl_eval_best_release(struct mtl_eval_best *b);

#endif
