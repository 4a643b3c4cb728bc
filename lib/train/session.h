/*
 * session.h - a training session: what mtl-step runs over its options.
 * One optimiser step per `accumulate` batches and its step (or skip)
 * record, an evaluation every `eval_every` steps with its eval record, the
 * best metric and --patience, checkpoints every `save_every` steps and a
 * resume from the newest, and the data-parallel hooks (dist.h): rank 0
 * reads the batches stream and writes the steps stream, every rank trains.
 *
 * Example (one process; mtl-step.c adds the options, dist and signals):
 *
 *	struct mtl_session s;
 *	struct mtl_session_opts opts;
 *	mtl_session_init(&s);
 *	mtl_session_opts_defaults(&opts);
 *	opts.model_dir = dir; ...       (the options; then checked)
 *	s.w = writer;
 *	if (mtl_session_opts_check(&s, &opts, &err) ||
 *	    mtl_session_load(&s, &opts, &err) ||
 *	    mtl_session_open(&s, reader, name, &total_batches, &err) ||
 *	    mtl_session_schedule(&s, &opts, total_batches, &err) ||
 *	    mtl_session_start(&s, &opts, &err) ||
 *	    mtl_session_share(&s, &err) ||
 *	    mtl_session_lead(&s, argc, argv, dir, lr, &stop, &err) < 0)
 *		die(...);
 *	mtl_session_release(&s);
 *
 * The fields are the program's to read.  The program sets the options
 * (the first group) before mtl_session_start, and w, feat and ev as it
 * wires the run (mtl_session_load and _dist set model, hd, map,
 * group, dist, rank and size); the session owns every
 * pointer in it from then on and mtl_session_release frees them all (the
 * reader's FILE aside: the program opened it and closes it after).
 *
 * The library prints nothing: a program that shows progress or notes sets
 * hooks, which the session calls on rank 0 after each completed step's
 * record and after each evaluation's record.
 *
 * Failure: the functions return 0 (or the count they document), or <0
 * with the message in err, ready to print after the program's name.  The
 * code is MTL_ERR_IO when writing failed (the steps stream, a checkpoint)
 * or when the checkpoints of --out cannot be listed; any other negative
 * code means bad input or a numeric failure.
 */
#ifndef MTL_SESSION_H
#define MTL_SESSION_H

#include <signal.h>

#include "balance.h"
#include "ckpt.h"
#include "contrast.h"
#include "data.h"
#include "dist.h"
#include "eval.h"
#include "feat.h"
#include "model.h"
#include "mp.h"
#include "train.h"

struct mtl_session;

/* Called on rank 0 (ctx: hooks.ctx); better: the evaluation is the best so far. */
struct mtl_session_hooks {
	void (*stepped)(void *ctx, const struct mtl_session *s);
	void (*evaluated)(void *ctx, const struct mtl_session *s, int better);
	void *ctx;
};

struct mtl_session {
	/* options (mtl_session_init sets the defaults) */
	int accumulate;          /* batches per step (1) */
	int max_bad;             /* stop after this many bad steps in a row (5) */
	int eval_every;          /* steps, 0: only at the end */
	int save_every, keep;    /* checkpoints: every N steps (0: none), keep (3) */
	const char *out;         /* --out, or NULL; borrowed */
	int final_last;          /* OUT gets the last weights, not the best */
	long check_every;        /* dist: compare the ranks' weights this often */
	struct mtl_session_hooks hooks;

	/* the model, the steps stream and the step's buffers */
	struct mtl_model *model;
	struct mtl_heads *hd;     /* model->heads */
	struct mtl_mp_writer *w;  /* rank 0 */
	int *map;                 /* [model tasks] the input's task t of each */
	struct mtl_batch *group;  /* [accumulate] the batches of a step */

	/* the trainer and what the options add to it */
	struct mtl_train *tr;
	struct mtl_balance *bal;  /* NULL: static weights */
	struct mtl_contrast *con; /* NULL: no contrastive term */
	struct mtl_feat *feat;    /* --features, or NULL */
	struct mtl_step_stats st; /* the last step's figures */
	long total;               /* steps of the schedule, 0: unknown */
	int bad;                  /* non-finite steps in a row */

	/* evaluation (rank 0) */
	struct mtl_eval_set ev;   /* ev.n 0: no --eval */
	struct mtl_eval_best best; /* best.metric NULL: no --best-metric */
	long last_eval;           /* step of the last evaluation, -1: none */
	double metric_value;      /* the best metric's value at the last one */
	char eval_line[512];      /* the last evaluation in one line */

	/* checkpoints */
	long consumed;            /* batches of the completed steps */
	struct mtl_ckpt_state ck;
	int lock;                 /* OUT's lock (mtl_ckpt_open), -1: none */

	/* the batches stream (rank 0): reader borrowed, its tasks owned */
	struct mtl_mp_reader *r;
	const char *name;
	struct mtl_tasks *hts;
	int64_t promised;         /* its header's total_batches, or -1 */

	/* data parallel (docs/distributed.md) */
	struct mtl_dist *dist;
	int rank, size;
};

/* Zeroes s and sets the options' defaults. */
void mtl_session_init(struct mtl_session *s);

/*
 * What a run asks for beyond the session's own options: the model, the
 * files, the trainer's and balancer's options, the contrastive term and
 * freezing.  The strings are borrowed (argv's); mtl-step fills it from
 * its command line.
 */
struct mtl_session_opts {
	const char *model_dir, *out_dir, *eval, *best_metric, *features, *final;
	int resume, overwrite, threads, no_split, patience;
	int recompute;            /* --recompute: mtl_bert_set_recompute */
	int eval_emb;             /* --eval-embeddings: every label task's kNN and V-measure */
	long total;               /* steps of the schedule, -1: the stream's */
	long unfreeze_at;         /* 0: never */
	struct mtl_train_opts o;
	struct mtl_balance_opts bo;
	double con_w, con_temp;   /* contrastive weight (0: off), temperature */
	const char **freeze;      /* [n_freeze] --freeze specifications */
	int n_freeze;
	const char **weights;     /* [n_weights] --task-weight NAME=W */
	int n_weights;
};

/* Zeroes o and sets the defaults (train.h's, balance.h's, total -1). */
void mtl_session_opts_defaults(struct mtl_session_opts *o);

/*
 * Checks the values and combinations of o and of s's options (set by then)
 * and derives s->out and s->final_last.  MTL_ERR_ARG with the reason, in
 * the options' words, when they do not go together: a usage error.
 */
int mtl_session_opts_check(struct mtl_session *s,
			   const struct mtl_session_opts *o,
			   struct mtl_err *err);

/*
 * dist hook: joins the group (dist.h, argc and argv as mtl_dist_init
 * takes them) and sets rank and size; with several ranks and no
 * o->threads, o->threads gets the machine's cores shared by its ranks.
 */
int mtl_session_dist(struct mtl_session *s, struct mtl_session_opts *o,
		     int *argc, char ***argv, struct mtl_err *err);

/*
 * Loads the model of o->model_dir into s->model (an error, MTL_ERR_IO when
 * its files cannot be read, unless it opens and has tasks), sets its
 * tasks' weights (o->weights, MTL_ERR_ARG: a usage error), threads and
 * gemm split, and its heads (new ones seeded by o->o.seed); then the
 * step's buffers (map, group: `accumulate` must be set by then).
 */
int mtl_session_load(struct mtl_session *s, const struct mtl_session_opts *o,
		     struct mtl_err *err);

/*
 * Rank 0, after mtl_session_open: o->total from the stream's count of
 * batches (total_batches, 0: none) when it is not given, in steps of
 * `accumulate` batches.  MTL_ERR_ARG when neither says it and the
 * schedule needs it.
 */
int mtl_session_schedule(struct mtl_session *s, struct mtl_session_opts *o,
			 int64_t total_batches, struct mtl_err *err);

/*
 * Rank 0 with o->out_dir: checks that OUT can be a directory, then makes
 * it this run's (ckpt.h's mtl_ckpt_open: locked, leftovers gone, another
 * run's checkpoints refused unless o->resume or o->overwrite) before
 * anything is written there.  MTL_ERR_IO when OUT cannot be made or locked.
 */
int mtl_session_lock(struct mtl_session *s, const struct mtl_session_opts *o,
		     struct mtl_err *err);

/*
 * Rank 0: reads the batches stream's header from r (name: for messages),
 * checks it against the model and maps its tasks.  *total_batches gets the
 * header's count, or 0 when it has none; a count that is there but not
 * an integer in [0, INT32_MAX] is an error (NULL: not asked, not checked).  r is borrowed (released by
 * mtl_session_release).
 */
int mtl_session_open(struct mtl_session *s, struct mtl_mp_reader *r,
		     const char *name, int64_t *total_batches,
		     struct mtl_err *err);

/*
 * The trainer over s->model with o->o, its schedule o->total steps long
 * (rank 0's, sent to every rank: dist hook), and what the options add to
 * it: the balancer (o->bo.kind not static), the contrastive term (o->con_w
 * > 0) and freezing (o->freeze, and the encoder with o->features, until
 * o->unfreeze_at).  MTL_ERR_ARG for a --freeze specification that names
 * nothing of the model (a usage error); any other code: the model or the
 * run is at fault.
 */
int mtl_session_start(struct mtl_session *s, struct mtl_session_opts *o,
		      struct mtl_err *err);

/*
 * --best-metric o->best_metric (NULL: none) with o->patience into s->best
 * and the checkpoints' state.  MTL_ERR_ARG (a usage error) for a metric
 * the tasks do not have, with the closest name that they do.
 */
int mtl_session_best(struct mtl_session *s, const struct mtl_session_opts *o,
		     struct mtl_err *err);

/*
 * Resumes from the newest checkpoint of s->out that verifies: 1 (*path:
 * its directory, the caller frees), 0 when there is none, <0 on error.
 * *skipped gets the checkpoints that failed verification, one per line,
 * or NULL (the caller frees it, error or not).
 */
int mtl_session_resume(struct mtl_session *s, char **path, char **skipped,
		       struct mtl_err *err);

/* dist hook: each rank's buckets and dropout stream (the checkpoint's,
 * when it has one per rank), then the ranks' weights compared. */
int mtl_session_share(struct mtl_session *s, struct mtl_err *err);

/* dist: an error unless every rank holds the same weights (when: for the
 * message, e.g. "at the end"). */
int mtl_session_check(struct mtl_session *s, const char *when,
		      struct mtl_err *err);

/*
 * One optimiser step over b[0..n) and (rank 0) its record, then the
 * evaluation and the checkpoint that are due.  A step with a non-finite
 * loss or gradient is skipped (a skip record) and fails after max_bad in
 * a row.
 */
int mtl_session_step(struct mtl_session *s, struct mtl_batch *b, int n,
		     struct mtl_err *err);

/* Evaluates on s->ev and writes an eval record (rank 0). */
int mtl_session_evaluate(struct mtl_session *s, struct mtl_err *err);

/* Saves a checkpoint of the state after the last completed step in s->out
 * (evaluating first when the best metric needs it). */
int mtl_session_checkpoint(struct mtl_session *s, struct mtl_err *err);

/*
 * Rank 0: the steps stream's header, then a step per `accumulate` batches
 * of s->r until its end, *stop (a signal) or an early stop (--patience),
 * and the last evaluation.  model_dir and lr go into the header, argv
 * into its args and the model card.  1: stopped by *stop (the batches of
 * the unfinished step dropped), 0: done.
 */
int mtl_session_lead(struct mtl_session *s, int argc, char **argv,
		     const char *model_dir, float lr,
		     const volatile sig_atomic_t *stop, struct mtl_err *err);

/* Ranks other than 0: every step's share from rank 0 until it says the end. */
int mtl_session_follow(struct mtl_session *s, struct mtl_err *err);

/* Frees everything s holds (and closes the lock); accepts an initialised s. */
void mtl_session_release(struct mtl_session *s);

#endif
