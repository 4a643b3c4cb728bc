/*
 * mtl-step - fine-tunes a model on a batches stream: one optimiser step
 * per --accumulate batches, a steps stream out, the model saved with --out.
 * The maths is in lib/train.c; this file reads, writes and reports.
 */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "balance.h"
#include "ckpt.h"
#include "common.h"
#include "contrast.h"
#include "data.h"
#include "dist.h"
#include "feat.h"
#include "fs.h"
#include "model.h"
#include "mp.h"
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
	"      --best-metric M     loss, TASK:f1 or TASK:accuracy on --eval\n"
	"      --resume            continue from the newest checkpoint in DIR\n"
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
	"  -t, --threads N         threads (default: all cores)\n"
	"      --gemm-split        thread each product by slices of its output\n"
	"                          instead of inside BLIS (steadier when other\n"
	"                          jobs share the cores)\n"
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
	/* evaluation set */
	struct mtl_example *ev;
	int n_ev;
	int *ev_map;
	struct mtl_tasks *ev_tasks; /* the eval stream's tasks (ev's indices) */
	long last_eval;
	/* checkpoints */
	const char *out;
	int save_every, keep;
	long consumed;          /* batches of the completed steps */
	struct mtl_ckpt_state ck;
	int metric_task;        /* --best-metric: task index, -1 for loss */
	int metric_f1;          /* 1: f1, 0: accuracy */
	double metric_value;    /* of the last evaluation */
	/* --features */
	struct mtl_feat *feat;
	float **last;           /* [accumulate] [B,T,H] each */
	size_t *last_cap;
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

static void end_record(struct run *R)
{
	struct mtl_err err;

	if (mtl_mp_end(R->w, &err))
		cmd_die(EXIT_IO, "%s", err.msg);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

static void pack_key(msgpack_packer *pk, const char *k)
{
	mtl_mp_pack_str(pk, k);
}

/* {task: v[t]} over every task; NaN-free values, nil where !have[t]. */
static void pack_task_doubles(msgpack_packer *pk, const struct mtl_tasks *ts,
			      const double *v, const int64_t *have)
{
	msgpack_pack_map(pk, (size_t)ts->n);
	for (int t = 0; t < ts->n; t++) {
		mtl_mp_pack_str(pk, ts->task[t].name);
		if (have && !have[t])
			msgpack_pack_nil(pk);
		else
			msgpack_pack_double(pk, v[t]);
	}
}

static void pack_num_or_nil(msgpack_packer *pk, double v, int64_t have)
{
	if (have)
		msgpack_pack_double(pk, v);
	else
		msgpack_pack_nil(pk);
}

static void pack_task_counts(msgpack_packer *pk, const struct mtl_tasks *ts,
			     const int64_t *v)
{
	msgpack_pack_map(pk, (size_t)ts->n);
	for (int t = 0; t < ts->n; t++) {
		mtl_mp_pack_str(pk, ts->task[t].name);
		msgpack_pack_int64(pk, v[t]);
	}
}

/*
 * The balancer's part of a step record: "balance_ms" (per-task passes and
 * solve), and on steps that took per-task gradients "coef" {task: c} and
 * "cosine" {A: {B: cos}} over the pairs of tasks present.
 */
static void pack_balance(msgpack_packer *pk, const struct mtl_balance *bal,
			 const struct mtl_tasks *ts)
{
	int T = ts->n;

	pack_key(pk, "balance_ms");
	msgpack_pack_double(pk, bal->ms);
	if (!bal->have_cos)
		return;
	pack_key(pk, "coef");
	msgpack_pack_map(pk, (size_t)T);
	for (int t = 0; t < T; t++) {
		mtl_mp_pack_str(pk, ts->task[t].name);
		msgpack_pack_double(pk, bal->s.coef[t]);
	}
	pack_key(pk, "cosine");
	{
		int na = 0;

		for (int i = 0; i < T; i++) {
			int nb = 0;

			for (int j = i + 1; j < T; j++)
				nb += !isnan(bal->cos[i * T + j]);
			na += nb > 0;
		}
		msgpack_pack_map(pk, (size_t)na);
		for (int i = 0; i < T; i++) {
			int nb = 0;

			for (int j = i + 1; j < T; j++)
				nb += !isnan(bal->cos[i * T + j]);
			if (!nb)
				continue;
			mtl_mp_pack_str(pk, ts->task[i].name);
			msgpack_pack_map(pk, (size_t)nb);
			for (int j = i + 1; j < T; j++)
				if (!isnan(bal->cos[i * T + j])) {
					mtl_mp_pack_str(pk, ts->task[j].name);
					msgpack_pack_double(pk, bal->cos[i * T + j]);
				}
		}
	}
}

static void progress(struct run *R, int final)
{
	double s = seconds_since(&R->t0), eta;
	long step = R->tr->step;
	int width = 30, fill;

	if (cmd_quiet || !isatty(2))
		return;
	if (R->total > 0) {
		fill = (int)(width * (step < R->total ? step : R->total) / R->total);
		eta = step > 0 ? s / step * (double)(R->total - step) : 0;
		fprintf(stderr, "\r%s: [%.*s%*s] %ld/%ld loss %.4f ETA %ld:%02ld ",
			cmd_name, fill, "==============================",
			width - fill, "", step, R->total, R->st.loss,
			(long)eta / 60, (long)eta % 60);
	} else {
		fprintf(stderr, "\r%s: step %ld loss %.4f %.0fs ", cmd_name,
			step, R->st.loss, s);
	}
	if (final)
		fputc('\n', stderr);
}

/* Evaluates on R->ev and writes an eval record. */
static void evaluate(struct run *R)
{
	const struct mtl_tasks *ts = R->model->tasks;
	struct mtl_step_stats st;
	struct mtl_confusion *conf = calloc((size_t)ts->n, sizeof(*conf));
	double *loss, *acc, *f1, total = 0;
	const struct mtl_example **sel;
	struct mtl_err err;
	msgpack_packer *pk;
	const int chunk = 32;

	loss = calloc((size_t)ts->n, sizeof(double));
	acc = calloc((size_t)ts->n, sizeof(double));
	f1 = calloc((size_t)ts->n, sizeof(double));
	sel = calloc((size_t)chunk, sizeof(*sel));
	if (!conf || !loss || !acc || !f1 || !sel || mtl_step_stats_init(&st, ts->n))
		cmd_die(EXIT_DATA, "out of memory");
	for (int t = 0; t < ts->n; t++)
		if (mtl_confusion_init(&conf[t], ts->task[t].n_labels))
			cmd_die(EXIT_DATA, "out of memory");
	for (int i = 0; i < R->n_ev; i += chunk) {
		int n = R->n_ev - i < chunk ? R->n_ev - i : chunk;
		struct mtl_batch b;

		for (int k = 0; k < n; k++)
			sel[k] = &R->ev[i + k];
		if (mtl_train_make_batch(&b, sel, n, ts, R->ev_map,
					 R->model->bert->cfg.pad_id, &err) ||
		    mtl_train_eval(R->tr, &b, &st, conf, &err))
			cmd_die(EXIT_DATA, "evaluation: %s", err.msg);
		mtl_batch_release(&b);
	}
	for (int t = 0; t < ts->n; t++) {
		if (st.labelled[t]) {
			loss[t] = st.task_loss[t] / (double)st.labelled[t];
			acc[t] = (double)st.correct[t] / (double)st.labelled[t];
			f1[t] = mtl_confusion_macro_f1(&conf[t]);
		}
		total += ts->task[t].weight * loss[t];
	}
	/* the layout mtl-report reads: one map per task */
	pk = mtl_mp_pk(R->w);
	msgpack_pack_map(pk, 5);
	pack_key(pk, "type");
	mtl_mp_pack_str(pk, "eval");
	pack_key(pk, "step");
	msgpack_pack_long(pk, R->tr->step);
	pack_key(pk, "examples");
	msgpack_pack_int(pk, R->n_ev);
	pack_key(pk, "loss");
	msgpack_pack_double(pk, total);
	pack_key(pk, "tasks");
	msgpack_pack_map(pk, (size_t)ts->n);
	for (int t = 0; t < ts->n; t++) {
		mtl_mp_pack_str(pk, ts->task[t].name);
		msgpack_pack_map(pk, 4);
		/* macro F1 over the labels: per sentence for sequence
		 * tasks, per token for token tasks; nil without labels */
		pack_key(pk, "loss");
		pack_num_or_nil(pk, loss[t], st.labelled[t]);
		pack_key(pk, "accuracy");
		pack_num_or_nil(pk, acc[t], st.labelled[t]);
		pack_key(pk, "f1");
		pack_num_or_nil(pk, f1[t], st.labelled[t]);
		pack_key(pk, "labelled");
		msgpack_pack_int64(pk, st.labelled[t]);
	}
	end_record(R);
	R->last_eval = R->tr->step;
	if (R->ck.metric)
		R->metric_value = R->metric_task < 0 ? total
				: R->metric_f1 ? f1[R->metric_task]
				: acc[R->metric_task];
	for (int t = 0; t < ts->n; t++)
		mtl_confusion_release(&conf[t]);
	free(conf);
	free(loss);
	free(acc);
	free(f1);
	free(sel);
	mtl_step_stats_release(&st);
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

/* --resume: the newest complete checkpoint of --out, if any. */
static void resume(struct run *R)
{
	struct mtl_err err;
	char *path = NULL;
	int rc = mtl_ckpt_find(R->out, &path, &err);

	if (rc < 0)
		cmd_die(EXIT_IO, "%s", err.msg);
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

/* --best-metric M: loss, TASK:f1 or TASK:accuracy. */
static void parse_metric(struct run *R, const char *m)
{
	const char *colon = strrchr(m, ':');
	char task[256];

	R->ck.metric = m;
	R->metric_task = -1;
	if (!strcmp(m, "loss"))
		return;
	if (!colon || (strcmp(colon, ":f1") && strcmp(colon, ":accuracy")) ||
	    (size_t)(colon - m) >= sizeof(task))
		cmd_usage_error(usage, "--best-metric takes loss, TASK:f1 or TASK:accuracy, not '%s'", m);
	memcpy(task, m, (size_t)(colon - m));
	task[colon - m] = 0;
	R->metric_f1 = !strcmp(colon, ":f1");
	R->metric_task = mtl_task_find(R->model->tasks, task);
	if (R->metric_task < 0)
		cmd_usage_error(usage, "--best-metric '%s': the model has no task '%s'", m, task);
}

/* ---- end of checkpoints ---- */

/* --features: the cached encoder outputs of b[0..n) for the trainer. */
static void cached_features(struct run *R, const struct mtl_batch *b, int n)
{
	size_t H = (size_t)R->model->bert->cfg.hidden;
	struct mtl_err err;

	for (int i = 0; i < n; i++) {
		size_t need = (size_t)b[i].B * (size_t)b[i].T * H;

		if (need > R->last_cap[i]) {
			free(R->last[i]);
			if (!(R->last[i] = malloc(sizeof(float) * need)))
				cmd_die(EXIT_DATA, "out of memory");
			R->last_cap[i] = need;
		}
		if (mtl_feat_batch(R->feat, R->last[i], &b[i], &err))
			cmd_die(EXIT_DATA, "%s: record %ld: %s", R->name,
				mtl_mp_reader_record(R->r), err.msg);
	}
	R->tr->fz_last = (const float *const *)R->last;
}

static void load_features(struct run *R, const char *path)
{
	const char *name;
	FILE *f = cmd_open_in(path, &name);
	struct mtl_mp_reader *r = mtl_mp_reader_new(f, name);
	struct mtl_err err;

	R->last = calloc((size_t)R->accumulate, sizeof(*R->last));
	R->last_cap = calloc((size_t)R->accumulate, sizeof(*R->last_cap));
	if (!r || !R->last || !R->last_cap)
		cmd_die(EXIT_DATA, "out of memory");
	if (mtl_feat_load(&R->feat, r, R->model->bert, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	mtl_mp_reader_free(r);
	if (f != stdin)
		fclose(f);
}

/* One optimiser step over b[0..n) and its record. */
static void step(struct run *R, struct mtl_batch *b, int n)
{
	const struct mtl_tasks *ts = R->model->tasks;
	const struct mtl_batch *bp[256];
	struct timespec t0;
	struct mtl_err err;
	double acc[64] = { 0 }, ms;
	msgpack_packer *pk;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* dist hook: rank 0 hands every rank its rows of the step (under
	 * mpirun; --features is refused there) */
	if (R->size > 1 && R->rank == 0 &&
	    mtl_dist_share(R->dist, b, &n, R->accumulate, ts, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	for (int i = 0; i < n; i++)
		bp[i] = &b[i];
	if (R->feat)
		cached_features(R, b, n);
	rc = mtl_train_step(R->tr, bp, n, &R->st, &err);
	if (rc < 0 && !R->r)
		cmd_die(EXIT_DATA, "step %ld: %s", R->tr->step + 1, err.msg);
	if (rc < 0)
		cmd_die(EXIT_DATA, "%s: record %ld: %s", R->name,
			mtl_mp_reader_record(R->r), err.msg);
	ms = 1e3 * seconds_since(&t0);
	if (R->size > 1 && R->check_every && rc == 0 &&
	    R->tr->step % R->check_every == 0)
		dist_check(R, "after a step");
	pk = mtl_mp_pk(R->w);
	if (rc == 1 && R->rank) {
		if (++R->bad >= R->max_bad)
			cmd_die(EXIT_DATA, "%d steps in a row had a non-finite loss or gradient; stopping",
				R->bad);
		return;
	}
	if (rc == 1) {
		msgpack_pack_map(pk, 6);
		pack_key(pk, "type");
		mtl_mp_pack_str(pk, "skip");
		pack_key(pk, "step");
		msgpack_pack_long(pk, R->tr->step + 1);
		pack_key(pk, "epoch");
		msgpack_pack_int64(pk, b[n - 1].epoch);
		pack_key(pk, "loss");
		msgpack_pack_double(pk, R->st.loss);
		pack_key(pk, "grad_norm");
		msgpack_pack_double(pk, R->st.grad_norm);
		pack_key(pk, "reason");
		mtl_mp_pack_str(pk, isfinite(R->st.loss) ? "non-finite gradient"
							 : "non-finite loss");
		end_record(R);
		if (++R->bad >= R->max_bad)
			cmd_die(EXIT_DATA, "%s: record %ld: %d steps in a row had a non-finite loss or gradient; stopping",
				R->name, mtl_mp_reader_record(R->r), R->bad);
		return;
	}
	R->bad = 0;
	if (R->rank) /* rank 0 writes the records */
		return;
	for (int t = 0; t < ts->n && t < 64; t++)
		acc[t] = R->st.labelled[t]
			? (double)R->st.correct[t] / (double)R->st.labelled[t] : 0;
	msgpack_pack_map(pk, 15 + (R->size > 1) + (R->bal != NULL) +
			 (R->con != NULL) + (R->bal && R->bal->have_cos ? 2 : 0));
	pack_key(pk, "type");
	mtl_mp_pack_str(pk, "step");
	pack_key(pk, "step");
	msgpack_pack_long(pk, R->st.step);
	pack_key(pk, "epoch");
	msgpack_pack_int64(pk, b[n - 1].epoch);
	pack_key(pk, "lr");
	msgpack_pack_float(pk, R->st.lr);
	pack_key(pk, "head_lr");
	msgpack_pack_float(pk, R->st.head_lr);
	pack_key(pk, "loss");
	msgpack_pack_double(pk, R->st.loss);
	pack_key(pk, "losses");
	pack_task_doubles(pk, ts, R->st.task_loss, NULL);
	pack_key(pk, "accuracy");
	pack_task_doubles(pk, ts, acc, R->st.labelled);
	pack_key(pk, "labelled");
	pack_task_counts(pk, ts, R->st.labelled);
	pack_key(pk, "weights");
	msgpack_pack_map(pk, (size_t)ts->n);
	for (int t = 0; t < ts->n; t++) {
		mtl_mp_pack_str(pk, ts->task[t].name);
		msgpack_pack_double(pk, R->bal ? R->bal->hw[t] : ts->task[t].weight);
	}
	if (R->bal)
		pack_balance(pk, R->bal, ts);
	if (R->con) {
		pack_key(pk, "contrastive");
		msgpack_pack_double(pk, R->con->loss);
	}
	pack_key(pk, "grad_norm");
	msgpack_pack_double(pk, R->st.grad_norm);
	pack_key(pk, "tokens");
	msgpack_pack_int64(pk, R->st.tokens);
	pack_key(pk, "ms");
	msgpack_pack_double(pk, ms);
	pack_key(pk, "backward_ms");
	msgpack_pack_double(pk, R->st.bwd_ms);
	pack_key(pk, "backward_layers");
	msgpack_pack_int(pk, R->st.bwd_layers);
	if (R->size > 1) {
		/* rank 0's time blocked in the step's reductions */
		pack_key(pk, "comm_ms");
		msgpack_pack_double(pk, 1e3 * mtl_dist_comm_seconds(R->dist));
	}
	end_record(R);
	progress(R, 0);
	if (R->n_ev && R->eval_every && R->tr->step % R->eval_every == 0)
		evaluate(R);
	if (R->save_every && R->tr->step % R->save_every == 0)
		checkpoint(R);
}

/* Reads the evaluation examples of path into R->ev. */
static void load_eval(struct run *R, const char *path)
{
	const struct mtl_tasks *ts = R->model->tasks;
	struct mtl_tasks *ets = NULL;
	struct mtl_mp_reader *r;
	msgpack_object hdr, rec;
	struct mtl_err err;
	const char *name;
	FILE *f = cmd_open_in(path, &name);
	int cap = 0, rc;

	r = mtl_mp_reader_new(f, name);
	R->ev_map = calloc((size_t)ts->n + 1, sizeof(int));
	if (!r || !R->ev_map)
		cmd_die(EXIT_DATA, "out of memory");
	if (mtl_mp_read_header(r, "examples", &hdr, &err) ||
	    mtl_data_header_tasks(&ets, &hdr, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	if (mtl_model_check_header(R->model, &hdr, &err) ||
	    mtl_train_map_tasks(R->ev_map, ts, ets, &err))
		cmd_die(EXIT_DATA, "%s: %s", name, err.msg);
	while ((rc = mtl_mp_read(r, &rec, &err)) > 0) {
		if (!mtl_mp_is_str(mtl_mp_get(&rec, "type"), "example"))
			continue;
		if (R->n_ev == cap) {
			cap = cap ? 2 * cap : 256;
			R->ev = realloc(R->ev, (size_t)cap * sizeof(*R->ev));
			if (!R->ev)
				cmd_die(EXIT_DATA, "out of memory");
		}
		if (mtl_example_parse(&R->ev[R->n_ev], &rec, ets, &err))
			cmd_die(EXIT_DATA, "%s: record %ld: %s", name,
				mtl_mp_reader_record(r), err.msg);
		if (R->ev[R->n_ev].len > R->model->bert->cfg.max_pos)
			cmd_die(EXIT_DATA, "%s: record %ld: %d tokens, more than the model's %d positions",
				name, mtl_mp_reader_record(r),
				(int)R->ev[R->n_ev].len, R->model->bert->cfg.max_pos);
		R->n_ev++;
	}
	if (rc < 0)
		cmd_die(EXIT_DATA, "%s", err.msg);
	mtl_mp_reader_free(r);
	/* the examples keep their labels by the stream's task indices */
	R->ev_tasks = ets;
	if (f != stdin)
		fclose(f);
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
		cmd_usage_error(usage, "--task-weight: '%s' is not one of the model's tasks", name);
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

int main(int argc, char **argv)
{
	enum { O_LR = 256, O_HEAD_LR, O_LAYER_DECAY, O_WD, O_WARMUP,
	       O_WARMUP_RATIO, O_SCHEDULE, O_TOTAL, O_ACCUM, O_CLIP, O_LS,
	       O_DROPOUT, O_SEED, O_EVAL, O_EVAL_EVERY, O_MAX_BAD, O_SPLIT,
	       O_BALANCE, O_TASK_WEIGHT, O_BALANCE_EVERY, O_GRAD_AT, O_DWA_TEMP,
	       O_GN_ALPHA, O_GN_LR, O_CAGRAD_C, O_CON, O_CON_TEMP,
	       O_FREEZE, O_UNFREEZE, O_SAVE_EVERY, O_KEEP, O_BEST, O_RESUME,
	       O_FEATURES };
	static const struct option opts[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "out", required_argument, NULL, 'o' },
		{ "lr", required_argument, NULL, O_LR },
		{ "head-lr", required_argument, NULL, O_HEAD_LR },
		{ "layer-decay", required_argument, NULL, O_LAYER_DECAY },
		{ "weight-decay", required_argument, NULL, O_WD },
		{ "warmup", required_argument, NULL, O_WARMUP },
		{ "warmup-ratio", required_argument, NULL, O_WARMUP_RATIO },
		{ "schedule", required_argument, NULL, O_SCHEDULE },
		{ "total-steps", required_argument, NULL, O_TOTAL },
		{ "accumulate", required_argument, NULL, O_ACCUM },
		{ "clip", required_argument, NULL, O_CLIP },
		{ "label-smoothing", required_argument, NULL, O_LS },
		{ "dropout", required_argument, NULL, O_DROPOUT },
		{ "seed", required_argument, NULL, O_SEED },
		{ "threads", required_argument, NULL, 't' },
		{ "gemm-split", no_argument, NULL, O_SPLIT },
		{ "eval", required_argument, NULL, O_EVAL },
		{ "eval-every", required_argument, NULL, O_EVAL_EVERY },
		{ "max-bad-steps", required_argument, NULL, O_MAX_BAD },
		{ "balance", required_argument, NULL, O_BALANCE },
		{ "task-weight", required_argument, NULL, O_TASK_WEIGHT },
		{ "balance-every", required_argument, NULL, O_BALANCE_EVERY },
		{ "grad-at", required_argument, NULL, O_GRAD_AT },
		{ "dwa-temperature", required_argument, NULL, O_DWA_TEMP },
		{ "gradnorm-alpha", required_argument, NULL, O_GN_ALPHA },
		{ "gradnorm-lr", required_argument, NULL, O_GN_LR },
		{ "cagrad-c", required_argument, NULL, O_CAGRAD_C },
		{ "contrastive", required_argument, NULL, O_CON },
		{ "contrastive-temperature", required_argument, NULL, O_CON_TEMP },
		{ "save-every", required_argument, NULL, O_SAVE_EVERY },
		{ "keep", required_argument, NULL, O_KEEP },
		{ "best-metric", required_argument, NULL, O_BEST },
		{ "resume", no_argument, NULL, O_RESUME },
		{ "freeze", required_argument, NULL, O_FREEZE },
		{ "features", required_argument, NULL, O_FEATURES },
		{ "unfreeze-at", required_argument, NULL, O_UNFREEZE },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	struct run R = { .accumulate = 1, .max_bad = 5, .last_eval = -1,
			 .keep = 3 };
	const char *best_metric = NULL, *features = NULL;
	int do_resume = 0;
	long seen = 0;
	int64_t promised = -1; /* the header's total_batches */
	struct mtl_train_opts o;
	struct mtl_balance_opts bo;
	const char *tw[64];
	int n_tw = 0;
	double con_w = 0, con_temp = 0.05;
	const char *model_dir = NULL, *out_dir = NULL, *eval = NULL;
	struct mtl_tasks *hts = NULL;
	/* static: still reachable when cmd_die() exits (no leak reports) */
	static struct mtl_batch *group;
	static int *map;
	msgpack_object hdr, rec;
	struct mtl_err err;
	int threads = 0, split = 0, c, rc, n = 0;
	long total = -1, unfreeze_at = 0;
	const char **freeze = calloc((size_t)argc + 1, sizeof(char *));
	int n_freeze = 0;
	FILE *in = NULL;

	cmd_name = "mtl-step";
	mtl_train_opts_defaults(&o);
	mtl_balance_opts_defaults(&bo);
	while ((c = getopt_long(argc, argv, "m:o:t:qhV", opts, NULL)) != -1) {
		switch (c) {
		case 'm': model_dir = optarg; break;
		case 'o': out_dir = optarg; break;
		case O_LR: o.lr = (float)cmd_parse_double(usage, "--lr", optarg); break;
		case O_HEAD_LR: o.head_lr = (float)cmd_parse_double(usage, "--head-lr", optarg); break;
		case O_LAYER_DECAY: o.layer_decay = (float)cmd_parse_double(usage, "--layer-decay", optarg); break;
		case O_WD: o.weight_decay = (float)cmd_parse_double(usage, "--weight-decay", optarg); break;
		case O_WARMUP: o.warmup = cmd_parse_long(usage, "--warmup", optarg, 0, 1L << 40); break;
		case O_WARMUP_RATIO: o.warmup_ratio = (float)cmd_parse_double(usage, "--warmup-ratio", optarg); break;
		case O_SCHEDULE:
			if (!strcmp(optarg, "linear"))
				o.sched = MTL_SCHED_LINEAR;
			else if (!strcmp(optarg, "cosine"))
				o.sched = MTL_SCHED_COSINE;
			else if (!strcmp(optarg, "constant"))
				o.sched = MTL_SCHED_CONSTANT;
			else
				cmd_usage_error(usage, "--schedule takes linear, cosine or constant, not '%s'", optarg);
			break;
		case O_TOTAL: total = cmd_parse_long(usage, "--total-steps", optarg, 1, 1L << 40); break;
		case O_ACCUM: R.accumulate = (int)cmd_parse_long(usage, "--accumulate", optarg, 1, 256); break;
		case O_CLIP: o.clip = (float)cmd_parse_double(usage, "--clip", optarg); break;
		case O_LS: o.label_smoothing = (float)cmd_parse_double(usage, "--label-smoothing", optarg); break;
		case O_DROPOUT: o.dropout = (float)cmd_parse_double(usage, "--dropout", optarg); break;
		case O_SEED: o.seed = (uint64_t)cmd_parse_long(usage, "--seed", optarg, 0, 1L << 62); break;
		case 't': threads = (int)cmd_parse_long(usage, "--threads", optarg, 1, 1024); break;
		case O_SPLIT: split = 1; break;
		case O_EVAL: eval = optarg; break;
		case O_EVAL_EVERY: R.eval_every = (int)cmd_parse_long(usage, "--eval-every", optarg, 1, 1L << 30); break;
		case O_MAX_BAD: R.max_bad = (int)cmd_parse_long(usage, "--max-bad-steps", optarg, 1, 1L << 30); break;
		case O_BALANCE:
			if (mtl_balance_parse(&bo.kind, optarg))
				cmd_usage_error(usage, "--balance takes static, uncertainty, dwa, gradnorm, rlw, pcgrad, cagrad or nash, not '%s'", optarg);
			break;
		case O_TASK_WEIGHT:
			if (n_tw == 64)
				cmd_usage_error(usage, "--task-weight given more than 64 times");
			tw[n_tw++] = optarg;
			break;
		case O_BALANCE_EVERY: bo.every = (int)cmd_parse_long(usage, "--balance-every", optarg, 1, 1L << 30); break;
		case O_GRAD_AT:
			if (!strcmp(optarg, "encoder"))
				bo.at = MTL_BALANCE_AT_ENCODER;
			else if (!strcmp(optarg, "encoder-output"))
				bo.at = MTL_BALANCE_AT_OUTPUT;
			else
				cmd_usage_error(usage, "--grad-at takes encoder or encoder-output, not '%s'", optarg);
			break;
		case O_DWA_TEMP: bo.dwa_temperature = cmd_parse_double(usage, "--dwa-temperature", optarg); break;
		case O_GN_ALPHA: bo.gradnorm_alpha = cmd_parse_double(usage, "--gradnorm-alpha", optarg); break;
		case O_GN_LR: bo.gradnorm_lr = cmd_parse_double(usage, "--gradnorm-lr", optarg); break;
		case O_CAGRAD_C: bo.cagrad_c = cmd_parse_double(usage, "--cagrad-c", optarg); break;
		case O_CON: con_w = cmd_parse_double(usage, "--contrastive", optarg); break;
		case O_CON_TEMP: con_temp = cmd_parse_double(usage, "--contrastive-temperature", optarg); break;
		case O_SAVE_EVERY: R.save_every = (int)cmd_parse_long(usage, "--save-every", optarg, 1, 1L << 30); break;
		case O_KEEP: R.keep = (int)cmd_parse_long(usage, "--keep", optarg, 1, 1L << 30); break;
		case O_BEST: best_metric = optarg; break;
		case O_RESUME: do_resume = 1; break;
		case O_FREEZE: freeze[n_freeze++] = optarg; break;
		case O_FEATURES: features = optarg; break;
		case O_UNFREEZE: unfreeze_at = cmd_parse_long(usage, "--unfreeze-at", optarg, 1, 1L << 40); break;
		case 'q': cmd_quiet = 1; break;
		case 'h': cmd_help(usage);
		case 'V': cmd_version();
		default: cmd_usage_error(usage, NULL);
		}
	}
	if (!model_dir)
		cmd_usage_error(usage, "--model is required");
	if (argc - optind > 1)
		cmd_usage_error(usage, "one input at most");
	if (!(o.lr >= 0) || !(o.head_lr >= 0) || !(o.layer_decay > 0) ||
	    !(o.weight_decay >= 0) || !(o.clip >= 0) ||
	    !(o.warmup_ratio >= 0 && o.warmup_ratio <= 1))
		cmd_usage_error(usage, "learning rates, weight decay and --clip must be non-negative, --layer-decay positive, --warmup-ratio in [0, 1]");
	if (!(o.label_smoothing >= 0 && o.label_smoothing < 1))
		cmd_usage_error(usage, "--label-smoothing must lie in [0, 1)");
	if (o.dropout != -1 && !(o.dropout >= 0 && o.dropout < 1))
		cmd_usage_error(usage, "--dropout must lie in [0, 1)");
	if (R.eval_every && !eval)
		cmd_usage_error(usage, "--eval-every needs --eval FILE");
	if (!(bo.dwa_temperature > 0) || !(bo.gradnorm_alpha >= 0) ||
	    !(bo.gradnorm_lr >= 0) || !(bo.cagrad_c >= 0))
		cmd_usage_error(usage, "--dwa-temperature must be positive, --gradnorm-alpha, --gradnorm-lr and --cagrad-c non-negative");
	if (!(con_w >= 0) || !(con_temp > 0) || !isfinite(con_w))
		cmd_usage_error(usage, "--contrastive must be non-negative, --contrastive-temperature positive");
	if (con_w > 0 && mtl_balance_is_gradient(bo.kind))
		cmd_usage_error(usage, "--contrastive does not combine with --balance %s (per-task gradients leave it out)",
				mtl_balance_name(bo.kind));
	if (mtl_balance_is_gradient(bo.kind) && (n_freeze || features))
		cmd_usage_error(usage, "--balance %s does not combine with --freeze or --features (per-task gradients ignore freezing)",
				mtl_balance_name(bo.kind));
	if (con_w > 0 && features)
		cmd_usage_error(usage, "--contrastive needs the encoder: not with --features");
	if (features && unfreeze_at)
		cmd_usage_error(usage, "--features trains the heads only: no --unfreeze-at");
	if (features)
		freeze[n_freeze++] = "encoder";
	if (unfreeze_at && !n_freeze)
		cmd_usage_error(usage, "--unfreeze-at needs --freeze");
	if ((R.save_every || do_resume) && !out_dir)
		cmd_usage_error(usage, "--save-every and --resume need --out DIR");
	if (best_metric && (!eval || !R.save_every))
		cmd_usage_error(usage, "--best-metric needs --eval FILE and --save-every N");
	R.out = out_dir;

	/* dist hook: one process (mtl-step), or rank R of N (mtl-step-mpi) */
	if (mtl_dist_init(&R.dist, &argc, &argv, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	R.rank = mtl_dist_rank(R.dist);
	R.size = mtl_dist_size(R.dist);
	if (R.size > 1) {
		static char name[48];
		const char *e = getenv("MTL_DIST_CHECK");

		snprintf(name, sizeof(name), "mtl-step: rank %d", R.rank);
		cmd_name = name;
		dist_for_exit = R.dist;
		cmd_exit_hook = dist_exit;
		if (features)
			cmd_usage_error(usage, "--features: the cached outputs are not shared out across processes; run one process");
		R.check_every = e ? strtol(e, NULL, 10) : 100;
		/* by default the cores of a machine are shared by its ranks */
		if (!threads) {
			long cores = sysconf(_SC_NPROCESSORS_ONLN);

			threads = (int)(cores / mtl_dist_local_size(R.dist));
			threads = threads > 0 ? threads : 1;
		}
	}

	if (mtl_model_load(&R.model, model_dir, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	if (!R.model->tasks)
		cmd_die(EXIT_DATA, "'%s': no tasks.json: nothing to train (add the tasks first)",
			model_dir);
	for (int i = 0; i < n_tw; i++)
		set_task_weight(R.model->tasks, tw[i]);
	mtl_bert_set_threads(R.model->bert, threads);
	mtl_bert_set_gemm_split(R.model->bert, split);
	if (mtl_model_heads(R.model, o.seed, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	R.hd = R.model->heads;

	R.w = mtl_mp_writer_new(stdout, "standard output");
	map = calloc((size_t)R.model->tasks->n + 1, sizeof(int));
	group = calloc((size_t)R.accumulate, sizeof(*group));
	if (!R.w || !map || !group)
		cmd_die(EXIT_DATA, "out of memory");
	if (R.rank)
		goto train; /* the stream is rank 0's */
	in = cmd_open_in(optind < argc ? argv[optind] : NULL, &R.name);
	R.r = mtl_mp_reader_new(in, R.name);
	if (!R.r)
		cmd_die(EXIT_DATA, "out of memory");
	if (mtl_mp_read_header(R.r, "batches", &hdr, &err) ||
	    mtl_data_header_tasks(&hts, &hdr, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	if (mtl_model_check_header(R.model, &hdr, &err) ||
	    mtl_train_map_tasks(map, R.model->tasks, hts, &err))
		cmd_die(EXIT_DATA, "%s: %s", R.name, err.msg);
	if (mtl_mp_as_int(mtl_mp_get(&hdr, "total_batches"), &promised))
		promised = -1;
	if (total < 0) {
		int64_t tb;

		if (mtl_mp_as_int(mtl_mp_get(&hdr, "total_batches"), &tb) == 0 && tb > 0)
			total = (long)((tb + R.accumulate - 1) / R.accumulate);
		else if (o.sched != MTL_SCHED_CONSTANT)
			cmd_usage_error(usage, "%s: the stream does not say how many batches it holds: give --total-steps or --schedule constant",
					R.name);
	}
train:
	/* dist hook: the schedule's length is rank 0's to tell */
	if (mtl_dist_bcast(R.dist, &total, sizeof(total), &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	o.total = total > 0 ? total : 0;
	R.total = o.total;
	if (mtl_train_new(&R.tr, R.model->bert, R.hd, &o, &err) ||
	    mtl_step_stats_init(&R.st, R.model->tasks->n))
		cmd_die(EXIT_DATA, "%s", err.msg);
	bo.seed = o.seed;
	if (bo.kind != MTL_BALANCE_STATIC) {
		if (mtl_balance_new(&R.bal, R.tr, &bo, &err))
			cmd_die(EXIT_DATA, "%s", err.msg);
		R.tr->bal = R.bal;
	}
	if (con_w > 0) {
		if (mtl_contrast_new(&R.con, (float)con_w, (float)con_temp,
				     R.model->pool.mode, &err))
			cmd_die(EXIT_DATA, "'%s': %s", model_dir, err.msg);
		R.tr->con = R.con;
	}
	setup_freeze(&R, freeze, n_freeze, unfreeze_at);
	if (best_metric)
		parse_metric(&R, best_metric);
	if (do_resume)
		resume(&R);
	if (features)
		load_features(&R, features);
	/* dist hook: buckets and each rank's dropout stream, after a resume
	 * so that every rank continues from the same checkpoint */
	if (mtl_dist_train(R.dist, R.tr, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	dist_check(&R, "at the start");
	if (eval && R.rank == 0)
		load_eval(&R, eval);
	if (out_dir) {
		struct sigaction sa = { .sa_handler = on_signal };

		/* no SA_RESTART: a read blocked on a pipe returns at once */
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	if (R.rank) {
		int k;

		/* every step's share from rank 0, until it says the end; a
		 * signal is rank 0's to act on (it saves and ends the job) */
		for (;;) {
			k = 0;
			if (mtl_dist_share(R.dist, group, &k, R.accumulate,
					   R.model->tasks, &err))
				cmd_die(EXIT_DATA, "%s", err.msg);
			if (!k)
				break;
			step(&R, group, k);
			while (k)
				mtl_batch_release(&group[--k]);
		}
		goto done;
	}

	{
		msgpack_packer *pk = mtl_mp_pk(R.w);

		mtl_mp_pack_header(pk, "steps", "mtl-step", argc, argv, 7);
		pack_key(pk, "tasks");
		mtl_data_pack_tasks(pk, R.model->tasks);
		pack_key(pk, "model");
		mtl_mp_pack_str(pk, model_dir);
		pack_key(pk, "total_steps");
		msgpack_pack_long(pk, R.total);
		pack_key(pk, "accumulate");
		msgpack_pack_int(pk, R.accumulate);
		pack_key(pk, "lr");
		msgpack_pack_float(pk, o.lr);
		pack_key(pk, "parameters");
		msgpack_pack_uint64(pk, R.model->bert->n_params + R.hd->n_params);
		pack_key(pk, "trainable");
		msgpack_pack_uint64(pk, mtl_freeze_trainable(&R.tr->fz, R.model->bert, R.hd));
		end_record(&R);
	}
	clock_gettime(CLOCK_MONOTONIC, &R.t0);
	while ((rc = mtl_mp_read(R.r, &rec, &err)) > 0) {
		struct mtl_batch b;
		int32_t **lab;

		if (!mtl_mp_is_str(mtl_mp_get(&rec, "type"), "batch"))
			continue;
		/* --resume: the batches of the checkpoint's steps are done */
		if (seen++ < R.consumed)
			continue;
		if (mtl_batch_parse(&b, &rec, hts, &err))
			cmd_die(EXIT_DATA, "%s: record %ld: %s", R.name,
				mtl_mp_reader_record(R.r), err.msg);
		/* labels into the model's task order */
		lab = calloc((size_t)R.model->tasks->n + 1, sizeof(*lab));
		if (!lab)
			cmd_die(EXIT_DATA, "out of memory");
		for (int t = 0; t < R.model->tasks->n; t++)
			if (map[t] >= 0) {
				lab[t] = b.labels[map[t]];
				b.labels[map[t]] = NULL;
			}
		for (int t = 0; t < b.n_tasks; t++)
			free(b.labels[t]);
		free(b.labels);
		b.labels = lab;
		b.n_tasks = R.model->tasks->n;
		group[n++] = b;
		if (n == R.accumulate) {
			R.consumed += n;
			step(&R, group, n);
			while (n)
				mtl_batch_release(&group[--n]);
		}
		if (got_signal)
			break;
	}
	if (got_signal) {
		while (n)
			mtl_batch_release(&group[--n]);
		interrupted(&R);
	}
	if (rc < 0)
		cmd_die(EXIT_DATA, "%s", err.msg);
	if (seen < R.consumed)
		cmd_die(EXIT_DATA, "%s: %ld batches, fewer than the %ld the checkpoint consumed: not the stream of the run",
			R.name, seen, R.consumed);
	if (promised >= 0 && seen != promised)
		cmd_die(EXIT_DATA, "%s: %ld batches, but its header promised total_batches %lld",
			R.name, seen, (long long)promised);
	if (n) {
		R.consumed += n;
		step(&R, group, n);
		while (n)
			mtl_batch_release(&group[--n]);
	}
	/* dist hook: no more batches */
	if (R.size > 1 && mtl_dist_share(R.dist, group, &n, R.accumulate,
					 R.model->tasks, &err))
		cmd_die(EXIT_DATA, "%s", err.msg);
	progress(&R, 1);
	if (R.n_ev && R.last_eval != R.tr->step)
		evaluate(&R);
done:
	dist_check(&R, "at the end");
	if (out_dir && R.rank == 0 && mtl_model_save(R.model, out_dir, &err))
		cmd_die(EXIT_IO, "%s", err.msg);
	if (R.save_every && R.rank == 0)
		checkpoint(&R);
	if (R.rank == 0)
		cmd_end_stream(R.w);

	for (int i = 0; i < R.n_ev; i++)
		mtl_example_release(&R.ev[i]);
	free(R.ev);
	free(R.ev_map);
	mtl_task_free(R.ev_tasks);
	free(group);
	free(map);
	free(freeze);
	mtl_task_free(hts);
	mtl_step_stats_release(&R.st);
	mtl_balance_free(R.bal);
	mtl_contrast_free(R.con);
	mtl_ckpt_state_release(&R.ck);
	mtl_feat_free(R.feat);
	for (int i = 0; R.last && i < R.accumulate; i++)
		free(R.last[i]);
	free(R.last);
	free(R.last_cap);
	mtl_train_free(R.tr);
	mtl_mp_reader_free(R.r);
	mtl_mp_writer_free(R.w);
	mtl_model_free(R.model);
	if (in && in != stdin)
		fclose(in);
	cmd_exit_hook = NULL;
	mtl_dist_free(R.dist);
	return cmd_finish(0);
}
