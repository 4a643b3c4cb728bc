/*
 * task.h - the task spec: which heads a multi-task model has, read from
 * and written to tasks.json in the model directory.
 *
 *	{"tasks": [
 *	  {"name": "topic", "kind": "sequence",
 *	   "labels": ["business", "sports", "tech"], "weight": 1.0,
 *	   "head": {"hidden": 16, "activation": "tanh", "dropout": 0.1}},
 *	  {"name": "ner", "kind": "token",
 *	   "labels": ["O", "B-PER", "I-PER"], "weight": 0.5,
 *	   "head": {"dropout": 0.1}}
 *	]}
 *
 * Fields: name [A-Za-z0-9_-]+, unique; kind "sequence" (one label per
 * text), "token" (one label per word), "multilabel" (a set of labels
 * per text, each label a yes/no decision), "regression" (a number per
 * text or per pair of texts: no "labels" in tasks.json; in memory and in
 * stream headers the one output is labels ["value"]) or "pair" (one label
 * per pair of texts encoded together, [CLS] a [SEP] b [SEP]: a sequence
 * task whose examples must have a second text; input.h); labels a non-empty list of
 * unique non-empty strings (index = position); weight >= 0 in the summed
 * loss (default 1); head.hidden >= 0 units of a hidden layer (0, the
 * default: a plain linear head); head.activation gelu (default), tanh or
 * relu; head.dropout in [0, 1), default 0.1; head.pooling cls or mean,
 * not for token tasks (default: the model's own pooling);
 * threshold in (0, 1), multilabel tasks only (default 0.5): a label is
 * predicted when its sigmoid probability reaches it.  Parsing is
 * strict: an unknown key, a wrong type or an out-of-range value is an
 * error naming the task and the field; JSON syntax errors give
 * FILE:LINE:COLUMN.
 *
 * Ownership: mtl_task_load/_parse return a struct mtl_tasks the caller
 * frees with mtl_task_free (which accepts NULL); every string in it is
 * owned by it.  It is plain data: callers may read all fields.
 */
#ifndef MTL_TASK_H
#define MTL_TASK_H

#include <stddef.h>

#include "err.h"
#include "ops.h"

enum mtl_task_kind {
	MTL_TASK_SEQUENCE, MTL_TASK_TOKEN, MTL_TASK_EMBEDDING, MTL_TASK_MULTILABEL,
	MTL_TASK_REGRESSION, MTL_TASK_PAIR
};
enum mtl_task_act { MTL_TASK_ACT_GELU, MTL_TASK_ACT_TANH, MTL_TASK_ACT_RELU };

/*
 * An embedding task's objective (kind "embedding", emb.h): tasks.json
 * "loss" ("mnrl" default, "cosent", "cosine_mse"), "scale" (> 0, default
 * 20; unused by cosine_mse), "symmetric" (mnrl only, default false),
 * "matryoshka_dims" (strictly decreasing, each in [1, hidden], at most
 * MTL_EMB_MAX_DIMS; default none: the whole width) and
 * "matryoshka_weights" (as many, each >= 0; default 1 each).  An
 * embedding task has no labels and no head.
 */
#define MTL_EMB_MAX_DIMS 16
enum mtl_emb_loss { MTL_EMB_MNRL, MTL_EMB_COSENT, MTL_EMB_COSINE_MSE };
struct mtl_task_emb {
	enum mtl_emb_loss loss;
	float scale;
	int symmetric;
	int n_dims;                         /* 0: the whole width */
	int dims[MTL_EMB_MAX_DIMS];
	float weights[MTL_EMB_MAX_DIMS];
};

struct mtl_task {
	char *name;
	enum mtl_task_kind kind;
	char **labels;
	int n_labels;
	double weight;
	int hidden;
	enum mtl_task_act activation;
	double dropout;
	enum mtl_pool pooling; /* cls, mean or MTL_POOL_DEFAULT: the model's */
	struct mtl_task_emb emb; /* kind embedding only */
	double threshold;      /* multilabel: predicted when p >= threshold */
};

struct mtl_tasks {
	struct mtl_task *task;
	int n;
};

/*
 * Parses len bytes of JSON; name is used in messages (a file name).
 * Returns 0 and a new spec in *out, or <0 (MTL_ERR_FORMAT, MTL_ERR_NOMEM)
 * with *out untouched and the reason in err ("tasks.json: task 'ner':
 * unknown key 'lables'").
 */
int mtl_task_parse(struct mtl_tasks **out, const char *json, size_t len,
		   const char *name, struct mtl_err *err);

/* Reads and parses the file at path; MTL_ERR_IO when it cannot be read. */
int mtl_task_load(struct mtl_tasks **out, const char *path,
		  struct mtl_err *err);

/*
 * Writes ts to path as indented JSON with every field explicit (pooling
 * only when set), through a temporary file renamed into place.  Returns
 * 0, MTL_ERR_ARG when ts would not parse back (a bad name or label), or
 * MTL_ERR_IO.
 */
int mtl_task_save(const struct mtl_tasks *ts, const char *path,
		  struct mtl_err *err);

void mtl_task_free(struct mtl_tasks *ts);

/* Index of the task called name, or -1. */
int mtl_task_find(const struct mtl_tasks *ts, const char *name);
/* Index of label in t->labels, or -1. */
int mtl_task_label(const struct mtl_task *t, const char *label);

/*
 * map[t] for each task t of model: the index of the task of the same name
 * in stream (a stream header's tasks), or -1 when the stream lacks it.
 * A stream task the model does not have, or one whose kind or labels
 * differ, fails with MTL_ERR_FORMAT naming it.
 */
int mtl_task_map(int *map, const struct mtl_tasks *model,
		 const struct mtl_tasks *stream, struct mtl_err *err);

/*
 * Finds the first of s[0..n) that repeats an earlier string: returns 1
 * and its position in *at, 0 when all differ, or MTL_ERR_NOMEM.  Sorts,
 * O(n log n): for labels and column names that come from files.
 */
int mtl_task_first_dup(const char *const *s, size_t n, size_t *at);

/*
 * Labels an example carries for t in a batch of sequence length T: 1 for
 * a sequence task, T for a token task, n_labels for a multilabel task
 * (its 0/1 indicators).  A batch's labels for t are [B * width].
 */
int mtl_task_width(const struct mtl_task *t, int T);

/* "sequence"/"token"/"multilabel"/"regression"/"pair", "gelu"/"tanh"/"relu", "default"/"cls"/"mean"/"max". */
const char *mtl_task_kind_name(enum mtl_task_kind k);
const char *mtl_task_act_name(enum mtl_task_act a);
const char *mtl_task_pool_name(enum mtl_pool p);
/* "mnrl", "cosent", "cosine_mse". */
const char *mtl_task_emb_loss_name(enum mtl_emb_loss l);

#endif
