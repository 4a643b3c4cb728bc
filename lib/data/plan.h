/*
 * plan.h - which examples go into which batch, epoch by epoch.
 *
 * mtl-batch loads examples (their lengths and which tasks label them) and
 * asks for each epoch's plan: a list of batches, each a run of example
 * indices in `order`.  Everything random comes from the caller's struct
 * mtl_rng, so a seed reproduces the plan exactly.
 *
 * Mixed batches (MTL_PLAN_MIXED, the default): every example once per
 * epoch, in input order or shuffled, optionally bucketed by length (sorted
 * within windows of 50 batches, then the batches shuffled), so that
 * padding stays small.
 *
 * Task-homogeneous batches (the other samplings): each task has a pool of
 * the examples labelled for it; batches are formed within a pool, and the
 * epoch draws as many batches as the pools hold in total, choosing the
 * task of each by the sampling: proportional to pool size, uniform,
 * temperature T (size^(1/T)), or round-robin.  A pool drawn empty is
 * re-formed (reshuffled), so small tasks are oversampled under uniform and
 * temperature sampling.  Unlabelled examples take no part.
 *
 * Embedding tasks (o.apart): in mixed mode the examples labelled for a
 * task of the mask form batches of their own, one set per task (an
 * example the first such task labels; its other labels kept), cut as the
 * rest are, so that in-batch negatives come from a full batch of them;
 * the sets of batches are then interleaved (in random order when
 * shuffling, else task by task, the rest last).
 *
 * Curriculum: a task whose start epoch is later than the current epoch is
 * left out (its pool is not drawn; in mixed mode the caller drops its
 * labels, see mtl_plan_active()).
 *
 * The batches stream's header says how its batches were planned: it is
 * written here (mtl_plan_write_header) and read by data.h's
 * mtl_data_header_tasks and session.h's mtl_session_open.
 */
#ifndef MTL_PLAN_H
#define MTL_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "err.h"
#include "mp.h"
#include "rng.h"

enum mtl_plan_sampling {
	MTL_PLAN_MIXED,
	MTL_PLAN_PROPORTIONAL,
	MTL_PLAN_UNIFORM,
	MTL_PLAN_TEMPERATURE,
	MTL_PLAN_ROUND_ROBIN,
};

struct mtl_plan_opts {
	int batch_size;      /* examples per batch (when max_tokens is 0) */
	long max_tokens;     /* padded tokens per batch (B x longest), 0: off */
	int shuffle;
	int bucket;          /* sort by length within windows */
	int drop_last;       /* drop a final short batch (per pool) */
	enum mtl_plan_sampling sampling;
	double temperature;  /* for MTL_PLAN_TEMPERATURE, > 0 */
	int n_tasks;
	const int *start_epoch; /* [n_tasks] first epoch of each task (1-based) or NULL */
	uint64_t apart;      /* mixed mode: tasks whose examples batch apart */
};

struct mtl_plan_batch {
	size_t start, n; /* order[start .. start+n) */
	int task;        /* the task of a homogeneous batch, -1 when mixed */
};

struct mtl_plan {
	int32_t *order;
	size_t n_order, cap_order;
	struct mtl_plan_batch *batch;
	size_t n_batch, cap_batch;
};

/* Parses "mixed", "proportional", "uniform", "temperature:T",
 * "round-robin" into o.  0, or MTL_ERR_ARG with the reason. */
int mtl_plan_parse_sampling(struct mtl_plan_opts *o, const char *s,
			    struct mtl_err *err);

/*
 * Fills p with the batches of epoch (1-based) over n examples, where
 * len[i] is example i's token count and labelled[i] its task bit set.
 * p is reused between calls (zero it before the first).  Returns 0, or
 * MTL_ERR_NOMEM, or MTL_ERR_ARG (an example longer than max_tokens).
 */
int mtl_plan_epoch(struct mtl_plan *p, const int32_t *len,
		   const uint64_t *labelled, size_t n, int epoch,
		   const struct mtl_plan_opts *o, struct mtl_rng *rng,
		   struct mtl_err *err);

/* Whether task t takes part in epoch (curriculum). */
int mtl_plan_active(const struct mtl_plan_opts *o, int t, int epoch);
/* The tasks that take part in epoch, one bit each (t < o->n_tasks). */
uint64_t mtl_plan_active_mask(const struct mtl_plan_opts *o, int epoch);

void mtl_plan_release(struct mtl_plan *p);

/* What a batches stream's header says beyond the plan's options. */
struct mtl_plan_header {
	const struct mtl_tasks *tasks;
	const char *vocab_hash;     /* the examples', or NULL */
	int64_t max_length, pad_id;
	int epochs;
	uint64_t seed;
	long examples, total;       /* examples read, batches; -1: unknown */
};

/*
 * Writes the header of the batches stream planned by o into w (argc,
 * argv: the program's command line).  0, or MTL_ERR_IO from the writer.
 */
int mtl_plan_write_header(struct mtl_mp_writer *w,
			  const struct mtl_plan_opts *o,
			  const struct mtl_plan_header *h, int argc,
			  char **argv, struct mtl_err *err);

#endif
