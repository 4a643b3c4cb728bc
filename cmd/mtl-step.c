/*
 * mtl-step - fine-tunes a model on a batches stream: one optimiser step
 * per --accumulate batches, a steps stream out, the model saved with --out.
 * The session (the step loop, its records, evaluation, checkpoints) is
 * lib/train/session.c; this file parses the options, wires them and prints.
 */
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "progress.h"
#include "session.h"

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
	"                          TASK:micro_f1, TASK:mse, TASK:pearson,\n"
	"                          TASK:spearman, TASK:mrr@10, TASK:ndcg@10,\n"
	"                          TASK:recall@1|10|100, TASK:map@100,\n"
	"                          TASK:knn_accuracy or TASK:v_measure\n"
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
	"      --recompute         keep only each layer's input and run its forward\n"
	"                          again in backward: a third more time, far less\n"
	"                          memory for long sentences, the same results\n"
	"      --low-memory        keep one layer's gradient at a time: each step\n"
	"                          runs its backward twice (the first for the\n"
	"                          gradient norm, the second updating each layer\n"
	"                          as it completes), 1.6-1.8 times the time for a\n"
	"                          fifth less memory with --recompute, the same\n"
	"                          results (one process, --accumulate 1, no\n"
	"                          --features, --balance or --contrastive)\n"
	"      --eval FILE         examples stream to evaluate on\n"
	"      --eval-every N      evaluate every N steps (and at the end)\n"
	"      --eval-embeddings   also evaluate each sequence task on the\n"
	"                          sentence embeddings (kNN accuracy, V-measure)\n"
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

/* The session (lib/train/session.h) and what the program adds: progress lines
 * and the input file. */
struct run {
	struct mtl_session s;
	FILE *in;
	struct timespec t0;
	int progress_every;     /* seconds */
	double last_line;       /* when the last progress line was written */
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

/* A session's failure: exit 3 when writing failed, else 1 (session.h). */
static void die_session(int rc, const struct mtl_err *err)
{
	cmd_die(rc == MTL_ERR_IO ? EXIT_IO : EXIT_DATA, "%s", err->msg);
}

/* A line redrawn on a terminal; elsewhere a line every --progress-every
 * seconds, so that a job under nohup is not silent; final: the summary. */
static void progress(struct run *R, int final)
{
	const struct mtl_session *S = &R->s;
	double s = mtl_progress_since(&R->t0);
	int tty = isatty(2);
	const char *eval;
	char line[256];

	if (cmd_quiet || (!tty && !final && s - R->last_line < R->progress_every))
		return;
	R->last_line = s;
	/* the closing line: the time taken rather than an ETA */
	mtl_progress_format(line, sizeof(line), "step", S->tr->step,
			    final ? 0 : S->total, s);
	eval = S->eval_line[0] && (final || !tty) ? S->eval_line : NULL;
	fprintf(stderr, "%s%s: %s%s, loss %.4f%s%s%s", tty ? final ? "\n" : "\r" : "",
		cmd_name, final ? "done: " : "", line, S->st.loss,
		eval ? ", last eval: " : "", eval ? eval : "",
		tty && !final ? "   " : "\n");
}

/* The session's hooks: a progress line after a step, a note after an
 * evaluation. */
static void on_step(void *ctx, const struct mtl_session *S)
{
	progress(ctx, 0);
}

static void on_eval(void *ctx, const struct mtl_session *S, int better)
{
	if (!cmd_quiet && isatty(2))
		fputc('\n', stderr); /* past the bar */
	cmd_note("eval at step %ld: %s%s", S->tr->step, S->eval_line,
		 better ? " (best)" : "");
	if (S->best.stop) /* said even with --quiet: the run ends early */
		fprintf(stderr, "%s: stopping early at step %ld: %s did not improve in %d evaluations (best %.4f at step %ld)\n",
			cmd_name, S->tr->step, S->best.metric, S->best.patience,
			S->best.value, S->best.step);
}

/* SIGINT or SIGTERM: a checkpoint, then exit 128 + the signal. */
static void interrupted(struct mtl_session *S)
{
	struct mtl_err err;
	int rc;

	if ((rc = mtl_session_checkpoint(S, &err)))
		die_session(rc, &err);
	/* said even with --quiet: the run did not finish */
	fprintf(stderr, "%s: stopped by signal %d after step %ld: checkpoint saved in '%s'\n",
		cmd_name, (int)got_signal, S->tr->step, S->out);
	/* dist hook: the other ranks wait for rank 0's next batches */
	if (S->size > 1)
		mtl_dist_abort(S->dist, 128 + got_signal);
	exit(cmd_finish(128 + got_signal));
}

/* --resume: the newest complete checkpoint of --out that verifies, if any. */
static void resume(struct mtl_session *S)
{
	struct mtl_err err;
	char *path = NULL, *skipped = NULL;
	int rc = mtl_session_resume(S, &path, &skipped, &err);

	/* said even with --quiet: the run does not continue where it stopped */
	if (skipped)
		fprintf(stderr, "%s: skipping checkpoints that fail verification:\n%s",
			cmd_name, skipped);
	free(skipped);
	if (rc < 0)
		die_session(rc, &err);
	if (rc == 0) {
		cmd_note("no complete checkpoint in '%s': starting afresh", S->out);
		return;
	}
	cmd_note("resuming from '%s': step %ld, %ld batches consumed", path,
		 S->ck.step, S->ck.batches);
	free(path);
}

/* --eval FILE into S->ev, or --features FILE (the cached encoder
 * outputs) into S->feat. */
static void load_stream(struct mtl_session *S, const char *path, int features)
{
	const char *name;
	FILE *f = cmd_open_in(path, &name);
	struct mtl_mp_reader *r = mtl_mp_reader_new(f, name);
	struct mtl_err err;

	if (!r)
		cmd_die(EXIT_DATA, "out of memory");
	if (features ? mtl_feat_load(&S->feat, r, S->model->bert, &err)
		     : mtl_eval_load(&S->ev, r, S->model, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	mtl_mp_reader_free(r);
	if (f != stdin)
		fclose(f);
}

/* ---- the command line ---- */

/* What the command line asks for beyond the fields of struct run. */
struct args {
	struct mtl_session_opts s;
	int split, force;
	const char *tw[64]; /* --task-weight: s.weights */
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

	if (A->s.n_weights == 64)
		cmd_usage_error(usage, "--task-weight given more than 64 times");
	A->tw[A->s.n_weights++] = arg;
}

static void opt_freeze(void *v, const char *arg)
{
	struct mtl_session_opts *o = v;

	o->freeze[o->n_freeze++] = arg;
}

/* Parses the options into A and R; returns the index of the input. */
static int parse_args(struct args *A, struct run *R, int argc, char **argv)
{
	const long big = 1L << 30;
	const struct cmd_opt opts[] = {
		CMD_OPT_STRING('m', "model", &A->s.model_dir),
		CMD_OPT_STRING('o', "out", &A->s.out_dir),
		CMD_OPT_FLOAT(0, "lr", &A->s.o.lr),
		CMD_OPT_FLOAT(0, "head-lr", &A->s.o.head_lr),
		CMD_OPT_FLOAT(0, "layer-decay", &A->s.o.layer_decay),
		CMD_OPT_FLOAT(0, "weight-decay", &A->s.o.weight_decay),
		CMD_OPT_LONG(0, "warmup", &A->s.o.warmup, 0, 1L << 40),
		CMD_OPT_DOUBLE(0, "warmup-ratio", &A->s.o.warmup_ratio),
		CMD_OPT_CALL(0, "schedule", &A->s.o.sched, opt_schedule),
		CMD_OPT_LONG(0, "total-steps", &A->s.total, 1, 1L << 40),
		CMD_OPT_INT(0, "accumulate", &R->s.accumulate, 1, 256),
		CMD_OPT_FLOAT(0, "clip", &A->s.o.clip),
		CMD_OPT_FLOAT(0, "label-smoothing", &A->s.o.label_smoothing),
		CMD_OPT_FLOAT(0, "dropout", &A->s.o.dropout),
		CMD_OPT_U64(0, "seed", &A->s.o.seed, 0, 1L << 62),
		CMD_OPT_INT('j', "threads", &A->s.threads, 1, 1024),
		CMD_OPT_MOVED('t', "-j (--threads)"),
		CMD_OPT_FLAG(0, "force", &A->force),
		CMD_OPT_FLAG(0, "gemm-split", &A->split), /* the default */
		CMD_OPT_FLAG(0, "no-gemm-split", &A->s.no_split),
		CMD_OPT_FLAG(0, "recompute", &A->s.recompute),
		CMD_OPT_FLAG(0, "low-memory", &A->s.o.low_memory),
		CMD_OPT_STRING(0, "eval", &A->s.eval),
		CMD_OPT_INT(0, "eval-every", &R->s.eval_every, 1, big),
		CMD_OPT_FLAG(0, "eval-embeddings", &A->s.eval_emb),
		CMD_OPT_INT(0, "max-bad-steps", &R->s.max_bad, 1, big),
		CMD_OPT_CALL(0, "balance", &A->s.bo.kind, opt_balance),
		CMD_OPT_CALL(0, "task-weight", A, opt_task_weight),
		CMD_OPT_INT(0, "balance-every", &A->s.bo.every, 1, big),
		CMD_OPT_CALL(0, "grad-at", &A->s.bo, opt_grad_at),
		CMD_OPT_DOUBLE(0, "dwa-temperature", &A->s.bo.dwa_temperature),
		CMD_OPT_DOUBLE(0, "gradnorm-alpha", &A->s.bo.gradnorm_alpha),
		CMD_OPT_DOUBLE(0, "gradnorm-lr", &A->s.bo.gradnorm_lr),
		CMD_OPT_DOUBLE(0, "cagrad-c", &A->s.bo.cagrad_c),
		CMD_OPT_DOUBLE(0, "contrastive", &A->s.con_w),
		CMD_OPT_DOUBLE(0, "contrastive-temperature", &A->s.con_temp),
		CMD_OPT_INT(0, "save-every", &R->s.save_every, 1, big),
		CMD_OPT_INT(0, "keep", &R->s.keep, 1, big),
		CMD_OPT_STRING(0, "best-metric", &A->s.best_metric),
		CMD_OPT_INT(0, "patience", &A->s.patience, 1, big),
		CMD_OPT_STRING(0, "final", &A->s.final),
		CMD_OPT_INT(0, "progress-every", &R->progress_every, 0, big),
		CMD_OPT_FLAG(0, "resume", &A->s.resume),
		CMD_OPT_FLAG(0, "overwrite", &A->s.overwrite),
		CMD_OPT_CALL(0, "freeze", &A->s, opt_freeze),
		CMD_OPT_STRING(0, "features", &A->s.features),
		CMD_OPT_LONG(0, "unfreeze-at", &A->s.unfreeze_at, 1, 1L << 40),
		CMD_OPT_END
	};
	struct mtl_err err;
	int first;

	mtl_session_opts_defaults(&A->s);
	A->s.weights = A->tw;
	if (!(A->s.freeze = calloc((size_t)argc + 1, sizeof(char *))))
		cmd_die(EXIT_DATA, "out of memory");
	first = cmd_parse_options(usage, opts, argc, argv);
	if (!A->s.model_dir)
		cmd_usage_error(usage, "--model is required");
	if (argc - first > 1)
		cmd_usage_error(usage, "one input at most");
	if (mtl_session_opts_check(&R->s, &A->s, &err))
		cmd_usage_error(usage, "%s", err.msg);
	/* mtl-step-mpi's ranks write to mpirun's pseudo-terminals, whatever
	 * mpirun's own output is: only mtl-step can tell */
	if (!mtl_dist_has_mpi())
		cmd_refuse_tty(A->force);
	return first;
}

/* ---- wiring ---- */

/* dist hook: one process (mtl-step), or rank R of N (mtl-step-mpi). */
static void setup_dist(struct mtl_session *S, struct args *A, int *argc, char ***argv)
{
	struct mtl_err err;

	if (mtl_session_dist(S, &A->s, argc, argv, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	if (S->size > 1) {
		static char name[48];
		const char *e = getenv("MTL_DIST_CHECK");

		snprintf(name, sizeof(name), "mtl-step: rank %d", S->rank);
		cmd_name = name;
		dist_for_exit = S->dist;
		cmd_exit_hook = dist_exit;
		if (A->s.features)
			cmd_usage_error(usage, "--features: the cached outputs are not shared out across processes; run one process");
		S->check_every = e ? strtol(e, NULL, 10) : 100;
	}
}

/* The model and its heads, the output and the step's buffers. */
static void load_model(struct mtl_session *S, const struct args *A)
{
	struct mtl_err err;
	int rc;

	if ((rc = mtl_session_load(S, &A->s, &err)) == MTL_ERR_ARG)
		cmd_usage_error(usage, "%s", err.msg);
	else if (rc)
		cmd_die(cmd_status(rc), "%s", err.msg);
	if (!(S->w = mtl_mp_writer_new(stdout, "standard output")))
		cmd_die(EXIT_DATA, "out of memory");
}

/* Rank 0: the batches stream's header; the schedule's length from it
 * when --total-steps is not given. */
static void open_batches(struct run *R, struct args *A, const char *path)
{
	struct mtl_session *S = &R->s;
	struct mtl_mp_reader *r;
	const char *name;
	struct mtl_err err;
	int64_t tb = 0;

	R->in = cmd_open_in(path, &name);
	if (!(r = mtl_mp_reader_new(R->in, name)))
		cmd_die(EXIT_DATA, "out of memory");
	if (mtl_session_open(S, r, name, A->s.total >= 0 ? NULL : &tb, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	if (mtl_session_schedule(S, &A->s, tb, &err))
		cmd_usage_error(usage, "%s", err.msg);
}

/* The trainer with what the options add to it, and the state a run
 * resumes from. */
static void setup_training(struct mtl_session *S, struct args *A)
{
	struct mtl_session_opts *o = &A->s;
	struct mtl_err err;
	int rc;

	if ((rc = mtl_session_start(S, o, &err)) == MTL_ERR_ARG)
		cmd_usage_error(usage, "%s", err.msg);
	else if (rc)
		cmd_die(EXIT_DATA, "%s", err.msg);
	cmd_note("training %zu of %zu parameters%s",
		 mtl_freeze_trainable(&S->tr->fz, S->model->bert, S->hd),
		 S->model->bert->n_params + S->hd->n_params,
		 o->unfreeze_at ? " until the unfreezing step" : "");
	if (mtl_session_best(S, o, &err))
		cmd_usage_error(usage, "%s", err.msg);
	if (o->resume)
		resume(S);
	if (o->features)
		load_stream(S, o->features, 1);
	/* dist hook: buckets and each rank's dropout stream, after a resume
	 * so that every rank continues from the same checkpoint, with the
	 * stream it saved when the checkpoint has one per rank */
	if (S->size > 1 && o->resume && S->ck.step && S->ck.n_ranks != S->size)
		cmd_note("the checkpoint has the dropout streams of %d ranks, not %d: drawing new ones (the run is not bit-identical to an uninterrupted one)",
			 S->ck.n_ranks ? S->ck.n_ranks : 1, S->size);
	if ((rc = mtl_session_share(S, &err)))
		die_session(rc, &err);
	if (o->eval && S->rank == 0) {
		load_stream(S, o->eval, 0);
		S->ev.emb_labels = (o->eval_emb ? ~0ull : 0) | mtl_eval_best_emb_labels(&S->best);
	}
	if (o->out_dir) {
		struct sigaction sa = { .sa_handler = on_signal };

		/* no SA_RESTART: a read blocked on a pipe returns at once */
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
}

/* OUT: the best evaluation's weights unless --final last (after the last
 * checkpoint, which keeps the last state). */
static void save_final(struct mtl_session *S)
{
	struct mtl_err err;

	if (!S->final_last && mtl_eval_best_restore(&S->best, S->model) == 0)
		cmd_note("saving the best model in '%s': step %ld, %s %.4f",
			 S->out, S->best.step, S->best.metric, S->best.value);
	if (mtl_model_save(S->model, S->out, &err))
		cmd_die(EXIT_IO, "%s", err.msg);
}

int main(int argc, char **argv)
{
	/* static: still reachable when cmd_die() exits (no leak reports) */
	static struct run R = { .progress_every = 30 };
	static struct args A;
	struct mtl_session *S = &R.s;
	struct mtl_err err;
	int first, rc;

	cmd_name = "mtl-step";
	mtl_session_init(S);
	S->hooks = (struct mtl_session_hooks){ on_step, on_eval, &R };
	first = parse_args(&A, &R, argc, argv);
	setup_dist(S, &A, &argc, &argv);
	/* before the work: a typo in --out must not cost the run */
	if ((rc = mtl_session_lock(S, &A.s, &err)))
		die_session(rc, &err);
	load_model(S, &A);
	if (S->rank == 0) /* the stream is rank 0's */
		open_batches(&R, &A, first < argc ? argv[first] : NULL);
	setup_training(S, &A);
	if (S->rank == 0 && !A.s.out_dir) /* after the input's checks */
		cmd_note("no --out: the trained model will not be saved");
	clock_gettime(CLOCK_MONOTONIC, &R.t0);
	rc = S->rank ? mtl_session_follow(S, &err)
		     : mtl_session_lead(S, argc, argv, A.s.model_dir, A.s.o.lr, &got_signal, &err);
	if (rc < 0)
		die_session(rc, &err);
	if (rc == 1)
		interrupted(S);
	if ((rc = mtl_session_check(S, "at the end", &err)) ||
	    (S->save_every && S->rank == 0 && (rc = mtl_session_checkpoint(S, &err))))
		die_session(rc, &err);
	if (A.s.out_dir && S->rank == 0)
		save_final(S);
	if (S->rank == 0) {
		progress(&R, 1);
		cmd_end_stream(S->w);
	}
	free(A.s.freeze);
	cmd_exit_hook = NULL;
	mtl_session_release(S);
	if (R.in && R.in != stdin)
		fclose(R.in);
	return cmd_finish(0);
}
