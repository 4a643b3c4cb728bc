/*
 * export.h - one task of an mtl model as a Hugging Face classifier
 * directory that transformers loads as it is: BertForSequenceClassification
 * for a sequence or multilabel task (problem_type
 * multi_label_classification), BertForTokenClassification for a token task.
 *
 * The directory holds config.json (the encoder's, plus architectures,
 * id2label, label2id, num_labels, problem_type and classifier_dropout),
 * model.safetensors (the encoder under "bert." names, the pooler for a
 * sequence task, classifier.weight and classifier.bias) and the tokenizer
 * files of the model's directory.
 *
 * The mapping gives the same function (docs/export.md):
 *
 *   token task, linear head:   classifier = out; no pooler (transformers'
 *                              token classifier has none).
 *   sequence task, CLS pooling:
 *     hidden H, tanh:          pooler.dense = the head's dense, classifier
 *                              = out: tanh(dense(h_cls)) is the pooler.
 *     linear (hidden 0):       transformers always runs the pooler before
 *                              its classifier, so the pooler is made an
 *                              identity: weight 2^-24 I, bias 0, and
 *                              classifier = 2^24 out.weight, out.bias.
 *                              Powers of two scale exactly and tanh(y)
 *                              rounds to y for |y| < 2^-13 (|h| < 2^11),
 *                              so the logits are the linear head's up to
 *                              the rounding of the tanh the loader runs
 *                              (PyTorch's float32 tanh: within 1 ulp).
 *                              Float32 or bfloat16 only: float16 cannot
 *                              hold 2^-24 h.
 *
 * Any other head has no counterpart and fails with MTL_ERR_FORMAT saying
 * why and what to train instead: a hidden layer of another size or
 * activation, a hidden layer on a token task, mean pooling.
 *
 * Ownership: nothing is kept; the model is only read.
 */
#ifndef MTL_EXPORT_H
#define MTL_EXPORT_H

#include "err.h"
#include "model.h"

/* How a sequence task's head fills transformers' pooler. */
enum mtl_export_pooler {
	MTL_EXPORT_POOLER_NONE,     /* token task: no pooler */
	MTL_EXPORT_POOLER_HEAD,     /* the head's tanh layer is the pooler */
	MTL_EXPORT_POOLER_IDENTITY, /* a scaled identity (linear head) */
};

/*
 * Whether task t of m (heads made, mtl_model_heads()) maps onto a
 * transformers classifier: 0 and *how, or MTL_ERR_FORMAT with the reason.
 * Writes nothing.
 */
int mtl_export_check(const struct mtl_model *m, int t,
		     enum mtl_export_pooler *how, struct mtl_err *err);

/*
 * Writes task t of m into dir (created if needed; each file atomically)
 * after mtl_export_check().  0, or <0 with err set (the check's
 * MTL_ERR_FORMAT before anything is written, MTL_ERR_IO on a file).
 * The architecture's name goes to *arch (a static string) when arch is
 * not NULL.
 */
int mtl_export_task(const struct mtl_model *m, int t, const char *dir,
		    const char **arch, struct mtl_err *err);

#endif
