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
 *	                       run, each head's AdamW steps, schedule, best
 *	                       metric, vocabulary hash and
 *	                       a free "strategy" object for task balancing
 *	COMPLETE               the marker, written last: a manifest
 *	                       (manifest.h) listing every file above with
 *	                       its size and CRC32C
 *
 * Saving writes everything into OUT/.checkpoint-NNNNNN.tmp (each file
 * through fs.h: fsync, rename, directory fsync), the marker last, renames
 * the directory into place and fsyncs OUT; then OUT/latest (one line: the
 * directory name) and, when the metric improved, OUT/best (name and value)
 * are rewritten atomically, and old checkpoints are rotated away: the
 * newest keep are kept, and the best one always.  A failure at any point
 * leaves every earlier checkpoint, latest and best as they were.  Readers
 * trust only real directories (not symlinks) with the marker, and resume
 * only from one whose files match it; rotation never follows a symlink.
 *
 * A run owns OUT through mtl_ckpt_open(): an exclusive flock on OUT/.lock
 * (which holds the owner's pid) for the whole run, and the leftovers of
 * killed runs removed before anything is written.
 *
 * Ownership: struct mtl_ckpt_state is caller storage; its strategy object
 * is borrowed by mtl_ckpt_save and owned after mtl_ckpt_load, its ranks
 * array owned (both released by mtl_ckpt_state_release, which accepts a
 * zeroed struct).
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
	struct mtl_rng *ranks; /* [n_ranks] every rank's, under mpirun (rank 0's
	                        * is rng), or NULL; malloc'ed, owned */
	int n_ranks;
	const char *metric;   /* --best-metric ("topic:f1", "loss"), or NULL */
	double value;         /* its value at this checkpoint (NAN: unknown) */
	char best[64];        /* the best checkpoint so far ("" for none) */
	double best_value;
	json_t *strategy;     /* task-balancing state, any JSON object, or NULL */
};

void mtl_ckpt_state_release(struct mtl_ckpt_state *st);

/* Copies the n generators r (every rank's) into st->ranks.  0 or NOMEM. */
int mtl_ckpt_state_set_ranks(struct mtl_ckpt_state *st,
			     const struct mtl_rng *r, int n, struct mtl_err *err);

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

enum mtl_ckpt_mode {
	MTL_CKPT_FRESH,     /* refuse an out that holds checkpoints */
	MTL_CKPT_RESUME,    /* keep them (--resume) */
	MTL_CKPT_OVERWRITE, /* remove them, latest and best (--overwrite) */
};

/*
 * Opens out (created if needed) for one run: takes its lock (*fd, which
 * the caller keeps open until the run ends; -1 on error), removes what
 * killed runs left (temporary directories and files, checkpoint
 * directories without their marker), then applies mode.  MTL_ERR_ARG
 * when another process holds the lock (the message gives its pid) or a
 * fresh run meets another run's checkpoints; MTL_ERR_IO when out cannot
 * be created, locked or cleaned.
 */
int mtl_ckpt_open(const char *out, enum mtl_ckpt_mode mode, int *fd,
		  struct mtl_err *err);

/*
 * Checks the checkpoint directory dir against its marker: 0 when every
 * file listed has its size and checksum (or the marker predates
 * checksums), MTL_ERR_FORMAT naming the first file that does not (or the
 * missing marker), MTL_ERR_IO when one cannot be read.
 */
int mtl_ckpt_verify(const char *dir, struct mtl_err *err);

/*
 * The newest complete checkpoint of out that passes mtl_ckpt_verify into
 * *path (malloc'ed, caller frees): 1 when found, 0 when out holds none
 * (or does not exist), <0 on error: MTL_ERR_FORMAT when none of them
 * passes.  *skipped (malloc'ed or NULL, caller frees): for each newer
 * checkpoint that failed, a line saying why.
 */
int mtl_ckpt_find(const char *out, char **path, char **skipped,
		  struct mtl_err *err);

/*
 * Loads the checkpoint directory dir (found by mtl_ckpt_find, which
 * verified it) into a run: refuses it (MTL_ERR_FORMAT,
 * saying what differs) when its config, tasks.json or vocabulary hash
 * differ from mdl's; else overwrites the encoder parameters of mdl, the
 * heads and the moments and step of tr (the trainer's RNG too) and fills
 * st.  On error the run may be half-loaded: the caller stops.
 */
int mtl_ckpt_load(const char *dir, struct mtl_model *mdl,
		  struct mtl_train *tr, struct mtl_ckpt_state *st,
		  struct mtl_err *err);

#endif
