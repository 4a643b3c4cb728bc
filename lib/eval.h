/*
 * eval.h - evaluating a model during training: an examples stream held in
 * memory (the evaluation set), the evaluation forward over it in chunks,
 * and each task's loss, accuracy and macro F1.
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
#include "err.h"
#include "model.h"
#include "mp.h"
#include "train.h"

struct mtl_eval_set {
	struct mtl_example *ex;  /* [n] */
	int n;
	struct mtl_tasks *tasks; /* the stream's tasks (ex's label indices) */
	int *map;                /* [model tasks]: index in tasks, or -1 */
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
 * tasks are res's).  0, or <0 (NOMEM, or the forward's error).
 */
int mtl_eval_run(struct mtl_eval_result *res, struct mtl_train *tr,
		 const struct mtl_eval_set *set,
		 const struct mtl_model *model, struct mtl_err *err);
void mtl_eval_result_release(struct mtl_eval_result *res);

#endif
