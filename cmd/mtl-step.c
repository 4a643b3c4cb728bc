/*
 * mtl-step - fine-tunes a model on a batches stream: one optimiser step
 * per --accumulate batches, a steps stream out, the model saved with --out.
 * The maths is in lib/train.c, the records in lib/steps.c, the
 * evaluation in lib/eval.c; this file parses the options and wires them.
 */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "balance.h"
#include "card.h"
#include "ckpt.h"
#include "common.h"
#include "contrast.h"
#include "data.h"
#include "dist.h"
#include "eval.h"
#include "feat.h"
#include "fs.h"
#include "model.h"
#include "mp.h"
#include "progress.h"
#include "steps.h"
#include "train.h"

static const char usage[] =
	"usage: mtl-step --model DIR [options] [BATCHES]\n"
	"\n"
	"Trains the encoder and the task heads of DIR on batches (from\n"
	"mtl-batch) and writes one record per optimiser step.\n"
	"\n"
	"  -m, --model DIR         model directory with tasks.json\n"
	"  -o, --out DIR           save the trained model there at the end\n"
	"      --save-every N      also save a checkpoint in DIR every N steps\n"
	"                          and at the end\n"
	"      --keep N            keep the newest N checkpoints (default 3)\n"
	"                          and the best one\n"
	"      --best-metric M     loss, TASK:accuracy, TASK:f1, TASK:entity_f1,\n"
	"                          TASK:micro_f1, TASK:mse, TASK:pearson or\n"
	"                          TASK:spearman\n"
	"                          on --eval: OUT gets the best model\n"
	"      --patience N        stop after N evaluations without improvement\n"
	"      --final WHICH       best (default with --best-metric) or last:\n"
	"                          the model saved in OUT at the end\n"
	"      --resume            continue from the newest checkpoint in DIR\n"
	"                          that passes verification\n"
	"      --overwrite         remove the checkpoints of another run in DIR\n"
	"                          (without it or --resume such a DIR is refused)\n"
	"      --lr F              peak learning rate (default 5e-5)\n"
	"      --head-lr F         peak learning rate of the heads (default: --lr)\n"
	"      --layer-decay F     layer-wise lr decay (default 1: none)\n"
	"      --weight-decay F    AdamW weight decay (default 0.01)\n"
	"      --warmup N          warm-up steps (default 0)\n"
	"      --warmup-ratio F    warm-up as a fraction of the total steps\n"
	"      --schedule S        linear (default), cosine or constant\n"
	"      --total-steps N     steps of the schedule (default: the stream's\n"
	"                          total_batches / --accumulate)\n"
	"      --accumulate N      batches per optimiser step (default 1)\n"
	"      --clip F            max global gradient norm, 0 for none (default 1)\n"
	"      --label-smoothing F label smoothing (default 0)\n"
	"      --dropout F         every dropout probability (default: config.json\n"
	"                          and tasks.json)\n"
	"      --seed N            seed for dropout and new heads (default 42)\n"
	"  -j, --threads N         threads (default: all cores)\n"
	"      --force             write the steps stream even to a terminal\n"
	"      --no-gemm-split     let BLIS thread each product instead of giving\n"
	"                          each thread a slice of its output (the default:\n"
	"                          steadier when other jobs share the cores)\n"
	"      --eval FILE         examples stream to evaluate on\n"
	"      --eval-every N      evaluate every N steps (and at the end)\n"
	"      --max-bad-steps N   stop after N non-finite steps in a row (default 5)\n"
	"      --balance S         task balancing: static (default), uncertainty,\n"
	"                          dwa, gradnorm, rlw, pcgrad, cagrad or nash\n"
	"                          (docs/balancing.md)\n"
	"      --task-weight T=W   task T's static weight (repeatable)\n"
	"      --balance-every K   recompute weights or projections every K steps\n"
	"      --grad-at WHERE     per-task gradients over the whole encoder\n"
	"                          (encoder, default) or at its output\n"
	"                          (encoder-output: one encoder backward)\n"
	"      --dwa-temperature F DWA's temperature (default 2)\n"
	"      --gradnorm-alpha F  GradNorm's alpha (default 1.5)\n"
	"      --gradnorm-lr F     GradNorm's step on the weights (default 0.025)\n"
	"      --cagrad-c F        CAGrad's c (default 0.5)\n"
	"      --contrastive W     add W times an in-batch InfoNCE loss on the\n"
	"                          sentence embeddings: batch pair texts, else\n"
	"                          two dropout views (not with gradient methods)\n"
	"      --contrastive-temperature F  its temperature (default 0.05)\n"
	"      --freeze PART       train without PART: encoder, embeddings,\n"
	"                          layers:A-B, pooler, heads or head:NAME\n"
	"                          (repeatable)\n"
	"      --unfreeze-at N     train everything from step N on\n"
	"      --features FILE     train the heads only, from the cached encoder\n"
	"                          outputs of FILE (mtl-score --features)\n"
	"      --progress-every S  off a terminal, a progress line every S seconds\n"
	"                          (default 30)\n"
	"  -q, --quiet             no progress on stderr\n"
	"  -h, --help              this text\n"
	"  -V, --version           the version\n"
	"\n"
	"Exit status: 0 success, 1 bad input or numeric failure, 2 usage error,\n"
	"3 I/O error, 130 or 143 stopped by SIGINT or SIGTERM (checkpoint saved).\n";

struct run {
	struct mtl_model *model;
	struct mtl_heads *hd;
	struct mtl_train *tr;
	struct mtl_balance *bal; /* NULL: static weights */
	struct mtl_contrast *con; /* NULL: no contrastive term */
	struct mtl_mp_reader *r;
	struct mtl_mp_writer *w;
	const char *name;
	int accumulate, max_bad, bad, eval_every;
	long total;
	struct mtl_step_stats st;
	struct timespec t0;
	struct mtl_eval_set ev; /* --eval */
	long last_eval;
	char eval_line[512];    /* the last evaluation, for progress lines */
	int progress_every;     /* seconds */
	double last_line;       /* when the last progress line was written */
	/* checkpoints */
	const char *out;
	int save_every, keep;
	long consumed;          /* batches of the completed steps */
	struct mtl_ckpt_state ck;
	struct mtl_eval_best best; /* --best-metric (best.metric NULL: none) */
	int final_last;         /* --final last */
	int lock;               /* OUT's lock (mtl_ckpt_open), -1: none */
	double metric_value;    /* of the last evaluation */
	struct mtl_feat *feat;  /* --features */
	/* the input: its tasks, the model's task t is its map[t] (or -1) */
	FILE *in;
	struct mtl_tasks *hts;
	int64_t promised;        /* its header's total_batches, or -1 */
	int *map;
	struct mtl_batch *group; /* [accumulate] the batches of a step */
	/* data parallel (mtl-step-mpi under mpirun; docs/distributed.md):
	 * rank 0 reads, writes and evaluates; every rank trains */
	struct mtl_dist *dist;
	int rank, size;
	long check_every; /* compare the weights of every rank this often */
};

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

/* The group that cmd_die must end with it (cmd_exit_hook). */
static struct mtl_dist *dist_for_exit;

static void dist_exit(int code)
{
	mtl_dist_abort(dist_for_exit, code);
}

/* Dies unless every rank holds the same weights (one hash compared). */
static void dist_check(struct run *R, const char *when)
{
	struct mtl_err err;
	int a, b;

	if (R->size == 1)
		return;
	if (mtl_dist_same(R->dist, R->model->bert->params,
			  R->model->bert->n_params, &a, &err) ||
	    mtl_dist_same(R->dist, R->hd->params, R->hd->n_params, &b, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	if (!a || !b)
		cmd_die(EXIT_DATA, "the ranks' weights differ %s (step %ld)",
			when, R->tr->step);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

/* A line redrawn on a terminal; elsewhere a line every --progress-every
 * seconds, so that a job under nohup is not silent; final: the summary. */
static void progress(struct run *R, int final)
{
	double s = seconds_since(&R->t0);
	int tty = isatty(2);
	const char *eval;
	char line[256];

	if (cmd_quiet || (!tty && !final && s - R->last_line < R->progress_every))
		return;
	R->last_line = s;
	/* the closing line: the time taken rather than an ETA */
	mtl_progress_format(line, sizeof(line), "step", R->tr->step,
			    final ? 0 : R->total, s);
	eval = R->eval_line[0] && (final || !tty) ? R->eval_line : NULL;
	fprintf(stderr, "%s%s: %s%s, loss %.4f%s%s%s", tty ? final ? "\n" : "\r" : "",
		cmd_name, final ? "done: " : "", line, R->st.loss,
		eval ? ", last eval: " : "", eval ? eval : "",
		tty && !final ? "   " : "\n");
}

/* Evaluates on R->ev and writes an eval record. */
static void evaluate(struct run *R)
{
	struct mtl_eval_result res;
	struct mtl_err err;

	int better = 0;

	if (mtl_eval_run(&res, R->tr, &R->ev, R->model, &err))
		cmd_die(EXIT_DATA, "evaluation: %s", err.msg);
	if (R->best.metric &&
	    (better = mtl_eval_best_update(&R->best, R->tr->step, &res, R->model,
					   !R->final_last && R->out, &err)) < 0)
		cmd_die(EXIT_DATA, "%s", err.msg);
	if (mtl_steps_write_eval(R->w, R->tr->step, R->model->tasks, &res,
				 R->best.metric ? &R->best : NULL, &err))
		cmd_die(EXIT_IO, "%s", err.msg);
	/* the card describes the weights OUT gets: the best ones, or the last */
	if (R->final_last || better)
		mtl_card_eval(R->model->card, R->tr->step, &res);
	R->last_eval = R->tr->step;
	R->metric_value = R->best.metric ? mtl_eval_best_value(&R->best, &res) : NAN;
	mtl_eval_format(R->eval_line, sizeof(R->eval_line), R->model->tasks, &res);
	if (!cmd_quiet && isatty(2))
		fputc('\n', stderr); /* past the bar */
	cmd_note("eval at step %ld: %s%s", R->tr->step, R->eval_line,
		 better ? " (best)" : "");
	if (R->best.stop) /* said even with --quiet: the run ends early */
		fprintf(stderr, "%s: stopping early at step %ld: %s did not improve in %d evaluations (best %.4f at step %ld)\n",
			cmd_name, R->tr->step, R->best.metric, R->best.patience,
			R->best.value, R->best.step);
	mtl_eval_result_release(&res);
}

/* ---- checkpoints ---- */

/* Saves a checkpoint of the state after the last completed step. */
static void checkpoint(struct run *R)
{
	struct mtl_err err;

	if (R->ck.metric && R->last_eval != R->tr->step)
		evaluate(R);
	R->ck.step = R->tr->step;
	R->ck.batches = R->consumed;
	R->ck.bad = R->bad;
	R->ck.rng = R->tr->rng;
	/* dist.h: every rank's dropout stream, for a bit-identical resume */
	if (R->size > 1 && mtl_ckpt_state_set_ranks(&R->ck, mtl_dist_rngs(R->dist),
						    R->size, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	R->ck.value = R->ck.metric ? R->metric_value : NAN;
	if (R->bal) {
		/* balance.h: the strategy's state, exactly */
		json_decref(R->ck.strategy);
		R->ck.strategy = mtl_balance_state_to_json(&R->bal->s,
				mtl_balance_name(R->bal->o.kind));
		if (!R->ck.strategy)
			cmd_die(EXIT_DATA, "out of memory");
	}
	if (mtl_ckpt_save(R->out, R->model, R->tr, &R->ck, R->keep, &err))
		cmd_die(EXIT_IO, "cannot save a checkpoint: %s", err.msg);
}

/* SIGINT or SIGTERM: a checkpoint, then exit 128 + the signal. */
static void interrupted(struct run *R)
{
	checkpoint(R);
	/* said even with --quiet: the run did not finish */
	fprintf(stderr, "%s: stopped by signal %d after step %ld: checkpoint saved in '%s'\n",
		cmd_name, (int)got_signal, R->tr->step, R->out);
	/* dist hook: the other ranks wait for rank 0's next batches */
	if (R->size > 1)
		mtl_dist_abort(R->dist, 128 + got_signal);
	exit(cmd_finish(128 + got_signal));
}

/* --resume: the newest complete checkpoint of --out that verifies, if any. */
static void resume(struct run *R)
{
	struct mtl_err err;
	char *path = NULL, *skipped = NULL;
	int rc = mtl_ckpt_find(R->out, &path, &skipped, &err);

	/* said even with --quiet: the run does not continue where it stopped */
	if (skipped)
		fprintf(stderr, "%s: skipping checkpoints that fail verification:\n%s",
			cmd_name, skipped);
	free(skipped);
	if (rc < 0)
		cmd_die(rc == MTL_ERR_IO ? EXIT_IO : EXIT_DATA, "cannot resume: %s", err.msg);
	if (rc == 0) {
		cmd_note("no complete checkpoint in '%s': starting afresh", R->out);
		return;
	}
	if (mtl_ckpt_load(path, R->model, R->tr, &R->ck, &err))
		cmd_die(EXIT_DATA, "cannot resume: %s", err.msg);
	R->consumed = R->ck.batches;
	R->bad = R->ck.bad;
	/* balance.h: a checkpoint of a static run has an empty strategy */
	if (R->bal && R->ck.strategy && json_object_size(R->ck.strategy) &&
	    mtl_balance_state_from_json(&R->bal->s, R->ck.strategy,
					mtl_balance_name(R->bal->o.kind), &err))
		cmd_die(EXIT_DATA, "cannot resume: '%s': %s", path, err.msg);
	cmd_note("resuming from '%s': step %ld, %ld batches consumed", path,
		 R->ck.step, R->ck.batches);
	free(path);
}

/* ---- end of checkpoints ---- */

/* --eval FILE into R->ev, or --features FILE (the cached encoder
 * outputs) into R->feat. */
static void load_stream(struct run *R, const char *path, int features)
{
	const char *name;
	FILE *f = cmd_open_in(path, &name);
	struct mtl_mp_reader *r = mtl_mp_reader_new(f, name);
	struct mtl_err err;

	if (!r)
		cmd_die(EXIT_DATA, "out of memory");
	if (features ? mtl_feat_load(&R->feat, r, R->model->bert, &err)
		     : mtl_eval_load(&R->ev, r, R->model, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	mtl_mp_reader_free(r);
	if (f != stdin)
		fclose(f);
}

/* The step's record: a skip record, or a step record with the balancer's
 * and the contrastive term's figures when the run has them. */
static void write_step(struct run *R, int rc, int64_t epoch, double ms)
{
	struct mtl_steps_step s = {
		.tasks = R->model->tasks, .st = &R->st, .epoch = epoch, .ms = ms,
		.weights = R->bal ? R->bal->hw : NULL,
		.has_balance = R->bal != NULL,
		.balance_ms = R->bal ? R->bal->ms : 0,
		.coef = R->bal && R->bal->have_cos ? R->bal->s.coef : NULL,
		.cosine = R->bal ? R->bal->cos : NULL,
		.has_contrastive = R->con != NULL,
		.contrastive = R->con ? R->con->loss : 0,
		.has_comm = R->size > 1,
		/* rank 0's time blocked in the step's reductions */
		.comm_ms = R->size > 1 ? 1e3 * mtl_dist_comm_seconds(R->dist) : 0,
	};
	struct mtl_err err;

	if (rc == 1 ? mtl_steps_write_skip(R->w, R->tr->step + 1, epoch, R->st.loss,
					   R->st.grad_norm, &err)
		    : mtl_steps_write_step(R->w, &s, &err))
		cmd_die(EXIT_IO, "%s", err.msg);
}

/* One optimiser step over b[0..n) and its record. */
static void step(struct run *R, struct mtl_batch *b, int n)
{
	const struct mtl_batch *bp[256];
	struct timespec t0;
	struct mtl_err err;
	double ms;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* dist hook: rank 0 hands every rank its rows of the step (under
	 * mpirun; --features is refused there) */
	if (R->size > 1 && R->rank == 0 &&
	    mtl_dist_share(R->dist, b, &n, R->accumulate, R->model->tasks, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	for (int i = 0; i < n; i++)
		bp[i] = &b[i];
	if (R->feat && mtl_feat_step(R->feat, &R->tr->fz_last, b, n, &err))
		cmd_die(EXIT_DATA, "%s: record %ld: %s", R->name,
			mtl_mp_reader_record(R->r), err.msg);
	/* the program picks the step: balanced (balance.h) or plain */
	rc = R->bal ? mtl_balance_step(R->bal, bp, n, &R->st, &err)
		    : mtl_train_step(R->tr, bp, n, &R->st, &err);
	if (rc < 0 && !R->r)
		cmd_die(EXIT_DATA, "step %ld: %s", R->tr->step + 1, err.msg);
	if (rc < 0)
		cmd_die(EXIT_DATA, "%s: record %ld: %s", R->name,
			mtl_mp_reader_record(R->r), err.msg);
	ms = 1e3 * seconds_since(&t0);
	if (R->size > 1 && R->check_every && rc == 0 &&
	    R->tr->step % R->check_every == 0)
		dist_check(R, "after a step");
	if (R->rank == 0) /* rank 0 writes the records */
		write_step(R, rc, b[n - 1].epoch, ms);
	if (rc == 1) {
		if (++R->bad < R->max_bad)
			return;
		if (R->rank)
			cmd_die(EXIT_DATA, "%d steps in a row had a non-finite loss or gradient; stopping",
				R->bad);
		cmd_die(EXIT_DATA, "%s: record %ld: %d steps in a row had a non-finite loss or gradient; stopping",
			R->name, mtl_mp_reader_record(R->r), R->bad);
	}
	R->bad = 0;
	if (R->rank)
		return;
	mtl_card_step(R->model->card, R->st.labelled);
	progress(R, 0);
	if (R->ev.n && R->eval_every && R->tr->step % R->eval_every == 0)
		evaluate(R);
	if (R->save_every && R->tr->step % R->save_every == 0)
		checkpoint(R);
}

/* --task-weight NAME=W: the static weight of task NAME. */
static void set_task_weight(struct mtl_tasks *ts, const char *arg)
{
	const char *eq = strrchr(arg, '=');
	char name[256];
	double w;
	int t;

	if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof(name))
		cmd_usage_error(usage, "--task-weight takes NAME=WEIGHT, not '%s'", arg);
	memcpy(name, arg, (size_t)(eq - arg));
	name[eq - arg] = 0;
	w = cmd_parse_double(usage, "--task-weight", eq + 1);
	if (!(w >= 0) || !isfinite(w))
		cmd_usage_error(usage, "--task-weight: '%s': the weight must be finite and non-negative", arg);
	if ((t = mtl_task_find(ts, name)) < 0)
		cmd_usage_error(usage, "--task-weight: '%s' is not one of the model's tasks%s", name,
				cmd_task_hint(ts, name));
	ts->task[t].weight = w;
}

/* --freeze and --unfreeze-at into the trainer; the trainable count on stderr. */
static void setup_freeze(struct run *R, const char **spec, int n, long at)
{
	struct mtl_freeze fz = { 0 };
	struct mtl_err err;
	size_t all = R->model->bert->n_params + R->hd->n_params;

	if (n && mtl_freeze_init(&fz, R->model->bert, R->hd, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	for (int i = 0; i < n; i++)
		if (mtl_freeze_add(&fz, spec[i], R->model->bert, R->hd, &err))
			cmd_usage_error(usage, "%s", err.msg);
	if (n && mtl_train_freeze(R->tr, &fz, at, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	cmd_note("training %zu of %zu parameters%s",
		 mtl_freeze_trainable(&R->tr->fz, R->model->bert, R->hd), all,
		 at ? " until the unfreezing step" : "");
}

/* ---- the command line ---- */

/* What the command line asks for beyond the fields of struct run. */
struct args {
	const char *model_dir, *out_dir, *eval, *best_metric, *features, *final;
	int resume, overwrite, threads, split, no_split, force, patience;
	long total, unfreeze_at;
	struct mtl_train_opts o;
	struct mtl_balance_opts bo;
	const char *tw[64]; /* --task-weight */
	int n_tw;
	double con_w, con_temp;
	const char **freeze;
	int n_freeze;
};

static void opt_schedule(void *v, const char *arg)
{
	if (mtl_adamw_sched_parse(v, arg))
		cmd_usage_error(usage, "--schedule takes linear, cosine or constant, not '%s'", arg);
}

static void opt_balance(void *v, const char *arg)
{
	if (mtl_balance_parse(v, arg))
		cmd_usage_error(usage, "--balance takes static, uncertainty, dwa, gradnorm, rlw, pcgrad, cagrad or nash, not '%s'", arg);
}

static void opt_grad_at(void *v, const char *arg)
{
	if (mtl_balance_parse_at(&((struct mtl_balance_opts *)v)->at, arg))
		cmd_usage_error(usage, "--grad-at takes encoder or encoder-output, not '%s'", arg);
}

static void opt_task_weight(void *v, const char *arg)
{
	struct args *A = v;

	if (A->n_tw == 64)
		cmd_usage_error(usage, "--task-weight given more than 64 times");
	A->tw[A->n_tw++] = arg;
}

static void opt_freeze(void *v, const char *arg)
{
	struct args *A = v;

	A->freeze[A->n_freeze++] = arg;
}

/* Parses the options into A and R; returns the index of the input. */
static int parse_args(struct args *A, struct run *R, int argc, char **argv)
{
	const long big = 1L << 30;
	const struct cmd_opt opts[] = {
		CMD_OPT_STRING('m', "model", &A->model_dir),
		CMD_OPT_STRING('o', "out", &A->out_dir),
		CMD_OPT_FLOAT(0, "lr", &A->o.lr),
		CMD_OPT_FLOAT(0, "head-lr", &A->o.head_lr),
		CMD_OPT_FLOAT(0, "layer-decay", &A->o.layer_decay),
		CMD_OPT_FLOAT(0, "weight-decay", &A->o.weight_decay),
		CMD_OPT_LONG(0, "warmup", &A->o.warmup, 0, 1L << 40),
		CMD_OPT_DOUBLE(0, "warmup-ratio", &A->o.warmup_ratio),
		CMD_OPT_CALL(0, "schedule", &A->o.sched, opt_schedule),
		CMD_OPT_LONG(0, "total-steps", &A->total, 1, 1L << 40),
		CMD_OPT_INT(0, "accumulate", &R->accumulate, 1, 256),
		CMD_OPT_FLOAT(0, "clip", &A->o.clip),
		CMD_OPT_FLOAT(0, "label-smoothing", &A->o.label_smoothing),
		CMD_OPT_FLOAT(0, "dropout", &A->o.dropout),
		CMD_OPT_U64(0, "seed", &A->o.seed, 0, 1L << 62),
		CMD_OPT_INT('j', "threads", &A->threads, 1, 1024),
		CMD_OPT_MOVED('t', "-j (--threads)"),
		CMD_OPT_FLAG(0, "force", &A->force),
		CMD_OPT_FLAG(0, "gemm-split", &A->split), /* the default */
		CMD_OPT_FLAG(0, "no-gemm-split", &A->no_split),
		CMD_OPT_STRING(0, "eval", &A->eval),
		CMD_OPT_INT(0, "eval-every", &R->eval_every, 1, big),
		CMD_OPT_INT(0, "max-bad-steps", &R->max_bad, 1, big),
		CMD_OPT_CALL(0, "balance", &A->bo.kind, opt_balance),
		CMD_OPT_CALL(0, "task-weight", A, opt_task_weight),
		CMD_OPT_INT(0, "balance-every", &A->bo.every, 1, big),
		CMD_OPT_CALL(0, "grad-at", &A->bo, opt_grad_at),
		CMD_OPT_DOUBLE(0, "dwa-temperature", &A->bo.dwa_temperature),
		CMD_OPT_DOUBLE(0, "gradnorm-alpha", &A->bo.gradnorm_alpha),
		CMD_OPT_DOUBLE(0, "gradnorm-lr", &A->bo.gradnorm_lr),
		CMD_OPT_DOUBLE(0, "cagrad-c", &A->bo.cagrad_c),
		CMD_OPT_DOUBLE(0, "contrastive", &A->con_w),
		CMD_OPT_DOUBLE(0, "contrastive-temperature", &A->con_temp),
		CMD_OPT_INT(0, "save-every", &R->save_every, 1, big),
		CMD_OPT_INT(0, "keep", &R->keep, 1, big),
		CMD_OPT_STRING(0, "best-metric", &A->best_metric),
		CMD_OPT_INT(0, "patience", &A->patience, 1, big),
		CMD_OPT_STRING(0, "final", &A->final),
		CMD_OPT_INT(0, "progress-every", &R->progress_every, 0, big),
		CMD_OPT_FLAG(0, "resume", &A->resume),
		CMD_OPT_FLAG(0, "overwrite", &A->overwrite),
		CMD_OPT_CALL(0, "freeze", A, opt_freeze),
		CMD_OPT_STRING(0, "features", &A->features),
		CMD_OPT_LONG(0, "unfreeze-at", &A->unfreeze_at, 1, 1L << 40),
		CMD_OPT_END
	};
	const struct mtl_train_opts *o = &A->o;
	const struct mtl_balance_opts *bo = &A->bo;
	int first;

	mtl_train_opts_defaults(&A->o);
	mtl_balance_opts_defaults(&A->bo);
	A->total = -1;
	A->con_temp = 0.05;
	if (!(A->freeze = calloc((size_t)argc + 1, sizeof(char *))))
		cmd_die(EXIT_DATA, "out of memory");
	first = cmd_parse_options(usage, opts, argc, argv);
	if (!A->model_dir)
		cmd_usage_error(usage, "--model is required");
	if (argc - first > 1)
		cmd_usage_error(usage, "one input at most");
	if (!(o->lr >= 0) || !(o->head_lr >= 0) || !(o->layer_decay > 0) ||
	    !(o->weight_decay >= 0) || !(o->clip >= 0) ||
	    !(o->warmup_ratio >= 0 && o->warmup_ratio <= 1))
		cmd_usage_error(usage, "learning rates, weight decay and --clip must be non-negative, --layer-decay positive, --warmup-ratio in [0, 1]");
	if (!(o->label_smoothing >= 0 && o->label_smoothing < 1))
		cmd_usage_error(usage, "--label-smoothing must lie in [0, 1)");
	if (o->dropout != -1 && !(o->dropout >= 0 && o->dropout < 1))
		cmd_usage_error(usage, "--dropout must lie in [0, 1)");
	if (R->eval_every && !A->eval)
		cmd_usage_error(usage, "--eval-every needs --eval FILE");
	if (!(bo->dwa_temperature > 0) || !(bo->gradnorm_alpha >= 0) ||
	    !(bo->gradnorm_lr >= 0) || !(bo->cagrad_c >= 0))
		cmd_usage_error(usage, "--dwa-temperature must be positive, --gradnorm-alpha, --gradnorm-lr and --cagrad-c non-negative");
	if (!(A->con_w >= 0) || !(A->con_temp > 0) || !isfinite(A->con_w))
		cmd_usage_error(usage, "--contrastive must be non-negative, --contrastive-temperature positive");
	if (A->con_w > 0 && mtl_balance_is_gradient(bo->kind))
		cmd_usage_error(usage, "--contrastive does not combine with --balance %s (per-task gradients leave it out)",
				mtl_balance_name(bo->kind));
	if (mtl_balance_is_gradient(bo->kind) && (A->n_freeze || A->features))
		cmd_usage_error(usage, "--balance %s does not combine with --freeze or --features (per-task gradients ignore freezing)",
				mtl_balance_name(bo->kind));
	if (A->con_w > 0 && A->features)
		cmd_usage_error(usage, "--contrastive needs the encoder: not with --features");
	if (A->features && A->unfreeze_at)
		cmd_usage_error(usage, "--features trains the heads only: no --unfreeze-at");
	if (A->features)
		A->freeze[A->n_freeze++] = "encoder";
	if (A->unfreeze_at && !A->n_freeze)
		cmd_usage_error(usage, "--unfreeze-at needs --freeze");
	if ((R->save_every || A->resume || A->overwrite) && !A->out_dir)
		cmd_usage_error(usage, "--save-every, --resume and --overwrite need --out DIR");
	if (A->resume && A->overwrite)
		cmd_usage_error(usage, "--resume continues the checkpoints that --overwrite removes: give one");
	if ((A->best_metric && !A->eval) || (A->patience && !A->best_metric))
		cmd_usage_error(usage, "--best-metric needs --eval FILE, --patience needs --best-metric");
	if (A->final && strcmp(A->final, "best") && strcmp(A->final, "last"))
		cmd_usage_error(usage, "--final takes best or last, not '%s'", A->final);
	R->final_last = !A->best_metric || (A->final && !strcmp(A->final, "last"));
	/* mtl-step-mpi's ranks write to mpirun's pseudo-terminals, whatever
	 * mpirun's own output is: only mtl-step can tell */
	if (!mtl_dist_has_mpi())
		cmd_refuse_tty(A->force);
	R->out = A->out_dir;
	return first;
}

/* ---- wiring ---- */

/* dist hook: one process (mtl-step), or rank R of N (mtl-step-mpi). */
static void setup_dist(struct run *R, struct args *A, int *argc, char ***argv)
{
	struct mtl_err err;

	if (mtl_dist_init(&R->dist, argc, argv, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	R->rank = mtl_dist_rank(R->dist);
	R->size = mtl_dist_size(R->dist);
	if (R->size > 1) {
		static char name[48];
		const char *e = getenv("MTL_DIST_CHECK");

		snprintf(name, sizeof(name), "mtl-step: rank %d", R->rank);
		cmd_name = name;
		dist_for_exit = R->dist;
		cmd_exit_hook = dist_exit;
		if (A->features)
			cmd_usage_error(usage, "--features: the cached outputs are not shared out across processes; run one process");
		R->check_every = e ? strtol(e, NULL, 10) : 100;
		/* by default the cores of a machine are shared by its ranks */
		if (!A->threads) {
			long cores = sysconf(_SC_NPROCESSORS_ONLN);

			A->threads = (int)(cores / mtl_dist_local_size(R->dist));
			A->threads = A->threads > 0 ? A->threads : 1;
		}
	}
}

/* The model and its heads, the output and the step's buffers. */
static void load_model(struct run *R, const struct args *A)
{
	struct mtl_err err;
	int rc;

	if ((rc = mtl_model_load(&R->model, A->model_dir, &err)))
		cmd_die(cmd_status(rc), "%s", err.msg);
	if (!R->model->tasks)
		cmd_die(EXIT_DATA, "'%s': no tasks.json: nothing to train (add the tasks first)",
			A->model_dir);
	for (int i = 0; i < A->n_tw; i++)
		set_task_weight(R->model->tasks, A->tw[i]);
	mtl_bert_set_threads(R->model->bert, A->threads);
	mtl_bert_set_gemm_split(R->model->bert, !A->no_split);
	if (mtl_model_heads(R->model, A->o.seed, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	R->hd = R->model->heads;
	R->w = mtl_mp_writer_new(stdout, "standard output");
	R->map = calloc((size_t)R->model->tasks->n + 1, sizeof(int));
	R->group = calloc((size_t)R->accumulate, sizeof(*R->group));
	if (!R->w || !R->map || !R->group)
		cmd_die(EXIT_DATA, "out of memory");
}

/* Rank 0: the batches stream's header; the schedule's length from it
 * when --total-steps is not given. */
static void open_batches(struct run *R, struct args *A, const char *path)
{
	msgpack_object hdr;
	struct mtl_err err;
	int64_t tb;

	R->in = cmd_open_in(path, &R->name);
	R->r = mtl_mp_reader_new(R->in, R->name);
	if (!R->r)
		cmd_die(EXIT_DATA, "out of memory");
	if (mtl_mp_read_header(R->r, "batches", &hdr, &err) ||
	    mtl_data_header_tasks(&R->hts, &hdr, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	if (mtl_model_check_header(R->model, &hdr, &err) ||
	    mtl_task_map(R->map, R->model->tasks, R->hts, &err))
		cmd_die(EXIT_DATA, "%s: %s", R->name, err.msg);
	if (mtl_mp_as_int(mtl_mp_get(&hdr, "total_batches"), &R->promised))
		R->promised = -1;
	if (A->total >= 0)
		return;
	{
		const msgpack_object *tbo = mtl_mp_get(&hdr, "total_batches");

		/* a header that has the count but garbles it is bad input */
		tb = 0;
		if (tbo && (mtl_mp_as_int(tbo, &tb) || tb < 0 || tb > INT32_MAX))
			cmd_die(EXIT_DATA, "%s: record 1: \"total_batches\" is not an integer in [0, %d]",
				R->name, INT32_MAX);
	}
	if (tb > 0)
		A->total = (long)((tb + R->accumulate - 1) / R->accumulate);
	else if (A->o.sched != MTL_SCHED_CONSTANT)
		cmd_usage_error(usage, "%s: the stream does not say how many batches it holds: give --total-steps or --schedule constant",
				R->name);
}

/* The trainer with what the options add to it, and the state a run
 * resumes from. */
static void setup_training(struct run *R, struct args *A)
{
	struct mtl_err err;

	/* dist hook: the schedule's length is rank 0's to tell */
	if (mtl_dist_bcast(R->dist, &A->total, sizeof(A->total), &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	A->o.total = A->total > 0 ? A->total : 0;
	R->total = A->o.total;
	if (mtl_train_new(&R->tr, R->model->bert, R->hd, &A->o, &err) ||
	    mtl_step_stats_init(&R->st, R->model->tasks->n))
		cmd_die(EXIT_DATA, "%s", err.msg);
	A->bo.seed = A->o.seed;
	if (A->bo.kind != MTL_BALANCE_STATIC) {
		if (mtl_balance_new(&R->bal, R->tr, &A->bo, &err))
			cmd_die(EXIT_DATA, "%s", err.msg);
	}
	if (A->con_w > 0) {
		if (mtl_contrast_new(&R->con, (float)A->con_w, (float)A->con_temp,
				     R->model->pool.mode, &err))
			cmd_die(EXIT_DATA, "'%s': %s", A->model_dir, err.msg);
		R->tr->con = R->con;
	}
	setup_freeze(R, A->freeze, A->n_freeze, A->unfreeze_at);
	if (A->best_metric &&
	    mtl_eval_best_init(&R->best, A->best_metric, R->model->tasks, A->patience, &err)) {
		size_t n = 0;
		char **names = mtl_eval_metric_names(R->model->tasks, &n);
		char hint[256];

		/* the hint is copied: names is freed before the usage exit */
		snprintf(hint, sizeof(hint), "%s",
			 cmd_hint(A->best_metric, (const char *const *)names, n));
		free(names);
		cmd_usage_error(usage, "--best-metric: %s%s", err.msg, hint);
	}
	R->ck.metric = A->best_metric;
	if (A->resume)
		resume(R);
	if (A->features)
		load_stream(R, A->features, 1);
	/* dist hook: buckets and each rank's dropout stream, after a resume
	 * so that every rank continues from the same checkpoint, with the
	 * stream it saved when the checkpoint has one per rank */
	if (R->size > 1 && A->resume && R->ck.step && R->ck.n_ranks != R->size)
		cmd_note("the checkpoint has the dropout streams of %d ranks, not %d: drawing new ones (the run is not bit-identical to an uninterrupted one)",
			 R->ck.n_ranks ? R->ck.n_ranks : 1, R->size);
	if (mtl_train_set_dist(R->tr, R->dist,
			       R->ck.n_ranks == R->size ? R->ck.ranks : NULL, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	dist_check(R, "at the start");
	if (A->eval && R->rank == 0)
		load_stream(R, A->eval, 0);
	if (A->out_dir) {
		struct sigaction sa = { .sa_handler = on_signal };

		/* no SA_RESTART: a read blocked on a pipe returns at once */
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
}

/* ---- the run ---- */

/* A step over the n batches of R->group, which it empties. */
static void step_group(struct run *R, int *n)
{
	step(R, R->group, *n);
	while (*n)
		mtl_batch_release(&R->group[--*n]);
}

/* Ranks other than 0: every step's share from rank 0, until it says the
 * end; a signal is rank 0's to act on (it saves and ends the job). */
static void follow(struct run *R)
{
	struct mtl_err err;
	int k;

	for (;;) {
		k = 0;
		if (mtl_dist_share(R->dist, R->group, &k, R->accumulate,
				   R->model->tasks, &err))
			cmd_die(EXIT_DATA, "%s", err.msg);
		if (!k)
			break;
		step_group(R, &k);
	}
}

/* Rank 0: the steps stream, one step per --accumulate batches read. */
static void lead(struct run *R, const struct args *A, int argc, char **argv)
{
	struct mtl_steps_header h = {
		.tasks = R->model->tasks, .model = A->model_dir,
		.total_steps = R->total, .accumulate = R->accumulate,
		.lr = A->o.lr,
		.parameters = R->model->bert->n_params + R->hd->n_params,
		.trainable = mtl_freeze_trainable(&R->tr->fz, R->model->bert, R->hd),
	};
	msgpack_object rec;
	struct mtl_err err;
	long seen = 0;
	int rc, n = 0;

	if (mtl_steps_write_header(R->w, argc, argv, &h, &err))
		cmd_die(EXIT_IO, "%s", err.msg);
	if (mtl_card_new(&R->model->card, R->model->tasks->n, argc, argv, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	clock_gettime(CLOCK_MONOTONIC, &R->t0);
	while ((rc = mtl_mp_read(R->r, &rec, &err)) > 0) {
		struct mtl_batch *b = &R->group[n];

		if (!mtl_mp_is_str(mtl_mp_get(&rec, "type"), "batch"))
			continue;
		/* --resume: the batches of the checkpoint's steps are done */
		if (seen++ < R->consumed)
			continue;
		if (mtl_batch_parse(b, &rec, R->hts, &err))
			cmd_die(EXIT_DATA, "%s: record %ld: %s", R->name,
				mtl_mp_reader_record(R->r), err.msg);
		/* labels into the model's task order */
		if (mtl_batch_remap(b, R->map, R->model->tasks->n, &err))
			cmd_die(EXIT_DATA, "%s", err.msg);
		if (++n == R->accumulate) {
			R->consumed += n;
			step_group(R, &n);
		}
		if (got_signal || R->best.stop) /* both after a step: n is 0 */
			break;
	}
	if (got_signal) {
		while (n)
			mtl_batch_release(&R->group[--n]);
		interrupted(R);
	}
	if (rc < 0)
		cmd_die(EXIT_DATA, "%s", err.msg);
	if (seen < R->consumed)
		cmd_die(EXIT_DATA, "%s: %ld batches, fewer than the %ld the checkpoint consumed: not the stream of the run",
			R->name, seen, R->consumed);
	/* an early stop (--patience) leaves the rest of the stream unread */
	if (R->promised >= 0 && seen != R->promised && !R->best.stop)
		cmd_die(EXIT_DATA, "%s: %ld batches, but its header promised total_batches %lld",
			R->name, seen, (long long)R->promised);
	if (n) {
		R->consumed += n;
		step_group(R, &n);
	}
	/* dist hook: no more batches */
	if (R->size > 1 && mtl_dist_share(R->dist, R->group, &n, R->accumulate,
					 R->model->tasks, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	if (R->ev.n && R->last_eval != R->tr->step)
		evaluate(R);
}

/* OUT: the best evaluation's weights unless --final last (after the last
 * checkpoint, which keeps the last state). */
static void save_final(struct run *R)
{
	struct mtl_err err;

	if (!R->final_last && mtl_eval_best_restore(&R->best, R->model) == 0)
		cmd_note("saving the best model in '%s': step %ld, %s %.4f",
			 R->out, R->best.step, R->best.metric, R->best.value);
	if (mtl_model_save(R->model, R->out, &err))
		cmd_die(EXIT_IO, "%s", err.msg);
}

int main(int argc, char **argv)
{
	/* static: still reachable when cmd_die() exits (no leak reports) */
	static struct run R = { .accumulate = 1, .max_bad = 5, .last_eval = -1,
				.keep = 3, .progress_every = 30, .lock = -1 };
	static struct args A;
	struct mtl_err err;
	int first, rc;

	cmd_name = "mtl-step";
	first = parse_args(&A, &R, argc, argv);
	setup_dist(&R, &A, &argc, &argv);
	/* before the work: a typo in --out must not cost the run */
	if (R.rank == 0 && A.out_dir && mtl_fs_check_dir(A.out_dir, &err))
		cmd_die(EXIT_IO, "--out: %s", err.msg);
	/* ckpt.h: OUT is this run's (locked, leftovers gone, no other run's
	 * checkpoints unless resuming) before anything is written there */
	if (A.out_dir && R.rank == 0 &&
	    (rc = mtl_ckpt_open(A.out_dir, A.resume ? MTL_CKPT_RESUME
				: A.overwrite ? MTL_CKPT_OVERWRITE
				: MTL_CKPT_FRESH, &R.lock, &err)))
		cmd_die(rc == MTL_ERR_IO ? EXIT_IO : EXIT_DATA, "%s", err.msg);
	load_model(&R, &A);
	if (R.rank == 0) /* the stream is rank 0's */
		open_batches(&R, &A, first < argc ? argv[first] : NULL);
	setup_training(&R, &A);
	if (R.rank == 0 && !A.out_dir) /* after the input's checks */
		cmd_note("no --out: the trained model will not be saved");
	if (R.rank)
		follow(&R);
	else
		lead(&R, &A, argc, argv);
	dist_check(&R, "at the end");
	if (R.save_every && R.rank == 0)
		checkpoint(&R);
	if (A.out_dir && R.rank == 0)
		save_final(&R);
	if (R.rank == 0) {
		progress(&R, 1);
		cmd_end_stream(R.w);
	}
	if (R.lock >= 0)
		close(R.lock); /* the end of the run: OUT is free */

	mtl_eval_set_release(&R.ev);
	mtl_eval_best_release(&R.best);
	free(R.group);
	free(R.map);
	free(A.freeze);
	mtl_task_free(R.hts);
	mtl_step_stats_release(&R.st);
	mtl_balance_free(R.bal);
	mtl_contrast_free(R.con);
	mtl_ckpt_state_release(&R.ck);
	mtl_feat_free(R.feat);
	mtl_train_free(R.tr);
	mtl_mp_reader_free(R.r);
	mtl_mp_writer_free(R.w);
	mtl_model_free(R.model);
	if (R.in && R.in != stdin)
		fclose(R.in);
	cmd_exit_hook = NULL;
	mtl_dist_free(R.dist);
	return cmd_finish(0);
}
