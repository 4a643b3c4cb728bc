/*
 * predict.h - a multi-task model's predictions for examples, written as
 * the records of a predictions stream (docs/report.md), and their scores.
 *
 * For each example and each selected task: the predicted label (sequence
 * task) or one label per word the model saw (token task: the argmax at the
 * word's first token, mapped back through word_ids; a word that gives no
 * token at all is predicted "O", or the task's first label), the gold labels where
 * the example has them, optionally the probabilities and the sentence
 * embedding.  Gold entities that truncation cut off (wholly or partly,
 * from the example's lost_labels) are reported as "gold_lost" per entity
 * type, and the seen words of a partly cut entity carry no gold, so that
 * nothing is counted twice.
 *
 * The predictor also accumulates per-task scores (accuracy, macro F1,
 * entity P/R/F1 with conlleval semantics when the labels are BIO tags) and
 * writes them as "metrics" records at the end.
 *
 * Ownership: the predictor borrows the model (with heads) and the
 * stream's task list; mtl_predictor_free() accepts NULL.
 */
#ifndef MTL_PREDICT_H
#define MTL_PREDICT_H

#include <stdint.h>

#include "data.h"
#include "model.h"
#include "mp.h"

enum {
	MTL_PREDICT_PROBS = 1,     /* "probs" with every prediction */
	MTL_PREDICT_EMBEDDING = 2, /* the sentence embedding in each record */
	MTL_PREDICT_EMBED_ONLY = 4, /* "embedding" records only (an embeddings
				     * stream): no tasks or heads needed */
};

struct mtl_predictor;

/*
 * A predictor for model m (heads loaded) on examples labelled by the
 * stream's tasks st; task_mask selects the model's tasks (bit t; all when
 * 0).  With MTL_PREDICT_EMBED_ONLY, st and task_mask are not used.  A stream task that the model lacks, or that differs in kind or
 * labels, fails with MTL_ERR_FORMAT naming it.
 */
int mtl_predictor_new(struct mtl_predictor **out, struct mtl_model *m,
		      const struct mtl_tasks *st, uint64_t task_mask, int flags,
		      struct mtl_err *err);
void mtl_predictor_free(struct mtl_predictor *p);

/*
 * Runs ex[0..n) as one padded batch (mtl_batch_make) and writes one
 * prediction (or embedding) record per example to w.  <0 on error (a
 * token id out of range: MTL_ERR_ARG; a write error: MTL_ERR_IO).
 */
int mtl_predict(struct mtl_predictor *p, const struct mtl_example *const *ex,
		int n, struct mtl_mp_writer *w, struct mtl_err *err);

/* Writes one "metrics" record per selected task.  0 or MTL_ERR_IO. */
int mtl_predict_metrics(struct mtl_predictor *p, struct mtl_mp_writer *w,
			struct mtl_err *err);

#endif
