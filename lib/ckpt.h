/*
 * ckpt.h - training checkpoints that survive a crash, a kill or a full
 * disk, and resuming from them bit-identically.
 *
 * A checkpoint is a directory OUT/checkpoint-NNNNNN (N = optimiser steps
 * done, six digits or more) holding a complete model directory (what
 * mtl-step --out writes: config.json, model.safetensors, pooling files,
 * tokenizer files, tasks.json, heads.safetensors) plus
 *
 *	optimizer.safetensors  AdamW moments: encoder.exp_avg,
 *	                       encoder.exp_avg_sq [n_params], heads.exp_avg,
 *	                       heads.exp_avg_sq [heads' n_params]
 *	trainer.json           step, batches consumed, RNG state, bad-step
 *	                       run, schedule, best metric, vocabulary hash and
 *	                       a free "strategy" object for task balancing
 *	COMPLETE               the marker, written last
 *
 * Saving writes everything into OUT/.checkpoint-NNNNNN.tmp (each file
 * through fs.h: fsync, rename, directory fsync), the marker last, renames
 * the directory into place and fsyncs OUT; then OUT/latest (one line: the
 * directory name) and, when the metric improved, OUT/best (name and value)
 * are rewritten atomically, and old checkpoints are rotated away: the
 * newest keep are kept, and the best one always.  A failure at any point
 * leaves every earlier checkpoint, latest and best as they were.  Readers
 * trust only directories with the marker; the temporary directories a
 * crash left behind are removed by the next save.
 *
 * Ownership: struct mtl_ckpt_state is caller storage; its strategy object
 * is borrowed by mtl_ckpt_save and owned after mtl_ckpt_load (released by
 * mtl_ckpt_state_release, which accepts a zeroed struct).
 *
 * Failure: 0 or a negative enum mtl_status with err naming the file;
 * MTL_ERR_FORMAT when a checkpoint does not fit the run (model shape, task
 * spec, vocabulary) or is malformed.
 */
#ifndef MTL_CKPT_H
#define MTL_CKPT_H

#include <jansson.h>

#include "err.h"
#include "model.h"
#include "rng.h"
#include "train.h"

/* The trainer's state beyond the tensors. */
struct mtl_ckpt_state {
	long step;            /* optimiser steps done */
	long batches;         /* batch records consumed from the input stream */
	int bad;              /* non-finite steps in a row */
	struct mtl_rng rng;   /* the trainer's dropout generator */
	const char *metric;   /* --best-metric ("topic:f1", "loss"), or NULL */
	double value;         /* its value at this checkpoint (NAN: unknown) */
	char best[64];        /* the best checkpoint so far ("" for none) */
	double best_value;
	json_t *strategy;     /* task-balancing state, any JSON object, or NULL */
};

void mtl_ckpt_state_release(struct mtl_ckpt_state *st);

/* Whether metric a is better than b ("loss" lower, anything else higher). */
int mtl_ckpt_better(const char *metric, double a, double b);

/*
 * Saves a checkpoint of the model (the encoder and pooling of mdl, whose
 * tokenizer files are copied from mdl->dir), the heads and optimiser state
 * of tr and the trainer state st (st->best and best_value are updated when
 * st->value beats them) into out, as described above, keeping the newest
 * keep checkpoints and the best one.  When the checkpoint of this step
 * exists already, only latest is rewritten.
 */
int mtl_ckpt_save(const char *out, const struct mtl_model *mdl,
		  const struct mtl_train *tr, struct mtl_ckpt_state *st,
		  int keep, struct mtl_err *err);

/*
 * The newest complete checkpoint of out into *path (malloc'ed, caller
 * frees): 1 when found, 0 when out holds none (or does not exist), <0 on
 * error.
 */
int mtl_ckpt_find(const char *out, char **path, struct mtl_err *err);

/*
 * Loads the checkpoint directory dir into a run: refuses it (MTL_ERR_FORMAT,
 * saying what differs) when its config, tasks.json or vocabulary hash
 * differ from mdl's; else overwrites the encoder parameters of mdl, the
 * heads and the moments and step of tr (the trainer's RNG too) and fills
 * st.  On error the run may be half-loaded: the caller stops.
 */
int mtl_ckpt_load(const char *dir, struct mtl_model *mdl,
		  struct mtl_train *tr, struct mtl_ckpt_state *st,
		  struct mtl_err *err);

#endif
