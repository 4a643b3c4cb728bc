/*
 * session.c - a training session: the step loop, its records, evaluation,
 * checkpoints and the data-parallel hooks; see session.h.  The maths is
 * in train.c and balance.c, the records in steps.c, the evaluation in
 * eval.c, the checkpoints in ckpt.c.
 */
#include "session.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "card.h"
#include "fs.h"
#include "progress.h"
#include "steps.h"
#include "suggest.h"

/* A failure of the data or the run, never MTL_ERR_IO (session.h). */
static int data(int rc)
{
	return rc == MTL_ERR_IO ? MTL_ERR_FORMAT : rc;
}

/* The same, and never MTL_ERR_ARG (a usage error, session.h) either. */
static int data_arg(int rc)
{
	return rc == MTL_ERR_ARG ? MTL_ERR_FORMAT : data(rc);
}

void mtl_session_init(struct mtl_session *s)
{
	memset(s, 0, sizeof(*s));
	s->accumulate = 1;
	s->max_bad = 5;
	s->last_eval = -1;
	s->keep = 3;
	s->lock = -1;
}

int mtl_session_check(struct mtl_session *s, const char *when,
		      struct mtl_err *err)
{
	int a, b, rc;

	if (s->size == 1)
		return 0;
	if ((rc = mtl_dist_same(s->dist, s->model->bert->params,
				s->model->bert->n_params, &a, err)) ||
	    (rc = mtl_dist_same(s->dist, s->hd->params, s->hd->n_params, &b, err)))
		return data(rc);
	if (!a || !b)
		return mtl_err_set(err, MTL_ERR_FORMAT, "the ranks' weights differ %s (step %ld)",
				   when, s->tr->step);
	return 0;
}

int mtl_session_evaluate(struct mtl_session *s, struct mtl_err *err)
{
	struct mtl_eval_result res;
	struct mtl_err e;
	int better = 0, rc;

	if ((rc = mtl_eval_run(&res, s->tr, &s->ev, s->model, &e)))
		return mtl_err_set(err, data(rc), "evaluation: %s", e.msg);
	if (s->best.metric &&
	    (better = mtl_eval_best_update(&s->best, s->tr->step, &res, s->model,
					   !s->final_last && s->out, err)) < 0) {
		mtl_eval_result_release(&res);
		return data(better);
	}
	if ((rc = mtl_steps_write_eval(s->w, s->tr->step, s->model->tasks, &res,
				       s->best.metric ? &s->best : NULL, err))) {
		mtl_eval_result_release(&res);
		return MTL_ERR_IO;
	}
	/* the card describes the weights OUT gets: the best ones, or the last */
	if (s->final_last || better)
		mtl_card_eval(s->model->card, s->tr->step, res.examples, res.n_tasks,
			      res.accuracy, res.f1, res.labelled);
	s->last_eval = s->tr->step;
	s->metric_value = s->best.metric ? mtl_eval_best_value(&s->best, &res) : NAN;
	mtl_eval_format(s->eval_line, sizeof(s->eval_line), s->model->tasks, &res);
	if (s->hooks.evaluated)
		s->hooks.evaluated(s->hooks.ctx, s, better);
	mtl_eval_result_release(&res);
	return 0;
}

/* ---- checkpoints ---- */

int mtl_session_checkpoint(struct mtl_session *s, struct mtl_err *err)
{
	struct mtl_err e;
	int rc;

	if (s->ck.metric && s->last_eval != s->tr->step &&
	    (rc = mtl_session_evaluate(s, err)))
		return rc;
	s->ck.step = s->tr->step;
	s->ck.batches = s->consumed;
	s->ck.bad = s->bad;
	s->ck.rng = s->tr->rng;
	/* dist.h: every rank's dropout stream, for a bit-identical resume */
	if (s->size > 1 && (rc = mtl_ckpt_state_set_ranks(&s->ck, mtl_dist_rngs(s->dist),
							   s->size, err)))
		return data(rc);
	s->ck.value = s->ck.metric ? s->metric_value : NAN;
	if (s->bal) {
		/* balance.h: the strategy's state, exactly */
		json_decref(s->ck.strategy);
		s->ck.strategy = mtl_balance_state_to_json(&s->bal->s,
				mtl_balance_name(s->bal->o.kind));
		if (!s->ck.strategy)
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	if (mtl_ckpt_save(s->out, s->model, s->tr, &s->ck, s->keep, &e))
		return mtl_err_set(err, MTL_ERR_IO, "cannot save a checkpoint: %s", e.msg);
	return 0;
}

int mtl_session_resume(struct mtl_session *s, char **path, char **skipped,
		       struct mtl_err *err)
{
	struct mtl_err e;
	int rc;

	*path = NULL;
	if ((rc = mtl_ckpt_find(s->out, path, skipped, &e)) < 0)
		return mtl_err_set(err, rc == MTL_ERR_IO ? MTL_ERR_IO : data(rc),
				   "cannot resume: %s", e.msg);
	if (rc == 0)
		return 0;
	if ((rc = mtl_ckpt_load(*path, s->model, s->tr, &s->ck, &e)))
		return mtl_err_set(err, data(rc), "cannot resume: %s", e.msg);
	s->consumed = s->ck.batches;
	s->bad = s->ck.bad;
	/* balance.h: a checkpoint of a static run has an empty strategy */
	if (s->bal && s->ck.strategy && json_object_size(s->ck.strategy) &&
	    (rc = mtl_balance_state_from_json(&s->bal->s, s->ck.strategy,
					      mtl_balance_name(s->bal->o.kind), &e)))
		return mtl_err_set(err, data(rc), "cannot resume: '%s': %s", *path, e.msg);
	return 1;
}

/* ---- the steps ---- */

/* The step's record: a skip record, or a step record with the balancer's
 * and the contrastive term's figures when the run has them. */
static int write_step(struct mtl_session *s, int rc, int64_t epoch, double ms,
		      struct mtl_err *err)
{
	struct mtl_steps_step st = {
		.tasks = s->model->tasks, .st = &s->st, .epoch = epoch, .ms = ms,
		.weights = s->bal ? s->bal->hw : NULL,
		.has_balance = s->bal != NULL,
		.balance_ms = s->bal ? s->bal->ms : 0,
		.coef = s->bal && s->bal->have_cos ? s->bal->s.coef : NULL,
		.cosine = s->bal ? s->bal->cos : NULL,
		.has_contrastive = s->con != NULL,
		.contrastive = s->con ? s->con->loss : 0,
		.has_comm = s->size > 1,
		/* rank 0's time blocked in the step's reductions */
		.comm_ms = s->size > 1 ? 1e3 * mtl_dist_comm_seconds(s->dist) : 0,
	};

	if (rc == 1 ? mtl_steps_write_skip(s->w, s->tr->step + 1, epoch, s->st.loss,
					   s->st.grad_norm, err)
		    : mtl_steps_write_step(s->w, &st, err))
		return MTL_ERR_IO;
	return 0;
}

int mtl_session_step(struct mtl_session *s, struct mtl_batch *b, int n,
		     struct mtl_err *err)
{
	const struct mtl_batch *bp[256];
	struct timespec t0;
	struct mtl_err e;
	double ms;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* dist hook: rank 0 hands every rank its rows of the step (under
	 * mpirun; --features is refused there) */
	if (s->size > 1 && s->rank == 0 &&
	    (rc = mtl_dist_share(s->dist, b, &n, s->accumulate, s->model->tasks, err)))
		return data(rc);
	for (int i = 0; i < n; i++)
		bp[i] = &b[i];
	if (s->feat && (rc = mtl_feat_step(s->feat, &s->tr->fz_last, b, n, &e)))
		return mtl_err_set(err, data(rc), "%s: record %ld: %s", s->name,
				   mtl_mp_reader_record(s->r), e.msg);
	/* the program picks the step: balanced (balance.h) or plain */
	rc = s->bal ? mtl_balance_step(s->bal, bp, n, &s->st, &e)
		    : mtl_train_step(s->tr, bp, n, &s->st, &e);
	if (rc < 0 && !s->r)
		return mtl_err_set(err, data(rc), "step %ld: %s", s->tr->step + 1, e.msg);
	if (rc < 0)
		return mtl_err_set(err, data(rc), "%s: record %ld: %s", s->name,
				   mtl_mp_reader_record(s->r), e.msg);
	ms = 1e3 * mtl_progress_since(&t0);
	if (s->size > 1 && s->check_every && rc == 0 &&
	    s->tr->step % s->check_every == 0 &&
	    (rc = mtl_session_check(s, "after a step", err)))
		return rc;
	if (s->rank == 0 && write_step(s, rc, b[n - 1].epoch, ms, err)) /* rank 0 writes the records */
		return MTL_ERR_IO;
	if (rc == 1) {
		if (++s->bad < s->max_bad)
			return 0;
		if (s->rank)
			return mtl_err_set(err, MTL_ERR_NUMERIC, "%d steps in a row had a non-finite loss or gradient; stopping",
					   s->bad);
		return mtl_err_set(err, MTL_ERR_NUMERIC, "%s: record %ld: %d steps in a row had a non-finite loss or gradient; stopping",
				   s->name, mtl_mp_reader_record(s->r), s->bad);
	}
	s->bad = 0;
	if (s->rank)
		return 0;
	mtl_card_step(s->model->card, s->st.labelled);
	if (s->hooks.stepped)
		s->hooks.stepped(s->hooks.ctx, s);
	if (s->ev.n && s->eval_every && s->tr->step % s->eval_every == 0 &&
	    (rc = mtl_session_evaluate(s, err)))
		return rc;
	if (s->save_every && s->tr->step % s->save_every == 0)
		return mtl_session_checkpoint(s, err);
	return 0;
}

/* A step over the n batches of s->group, which it empties. */
static int step_group(struct mtl_session *s, int *n, struct mtl_err *err)
{
	int rc = mtl_session_step(s, s->group, *n, err);

	while (*n)
		mtl_batch_release(&s->group[--*n]);
	return rc;
}

int mtl_session_follow(struct mtl_session *s, struct mtl_err *err)
{
	int k, rc;

	for (;;) {
		k = 0;
		if ((rc = mtl_dist_share(s->dist, s->group, &k, s->accumulate,
					 s->model->tasks, err)))
			return data(rc);
		if (!k)
			return 0;
		if ((rc = step_group(s, &k, err)))
			return rc;
	}
}

/* ---- the options ---- */

void mtl_session_opts_defaults(struct mtl_session_opts *o)
{
	memset(o, 0, sizeof(*o));
	mtl_train_opts_defaults(&o->o);
	mtl_balance_opts_defaults(&o->bo);
	o->total = -1;
	o->con_temp = 0.05;
}

int mtl_session_opts_check(struct mtl_session *s,
			   const struct mtl_session_opts *A,
			   struct mtl_err *err)
{
	const struct mtl_train_opts *o = &A->o;
	const struct mtl_balance_opts *bo = &A->bo;
	const char *why = NULL;

	if (!(o->lr >= 0) || !(o->head_lr >= 0) || !(o->layer_decay > 0) ||
	    !(o->weight_decay >= 0) || !(o->clip >= 0) ||
	    !(o->warmup_ratio >= 0 && o->warmup_ratio <= 1))
		why = "learning rates, weight decay and --clip must be non-negative, --layer-decay positive, --warmup-ratio in [0, 1]";
	else if (!(o->label_smoothing >= 0 && o->label_smoothing < 1))
		why = "--label-smoothing must lie in [0, 1)";
	else if (o->dropout != -1 && !(o->dropout >= 0 && o->dropout < 1))
		why = "--dropout must lie in [0, 1)";
	else if ((s->eval_every || A->eval_emb) && !A->eval)
		why = s->eval_every ? "--eval-every needs --eval FILE" : "--eval-embeddings needs --eval FILE";
	else if (!(bo->dwa_temperature > 0) || !(bo->gradnorm_alpha >= 0) ||
		 !(bo->gradnorm_lr >= 0) || !(bo->cagrad_c >= 0))
		why = "--dwa-temperature must be positive, --gradnorm-alpha, --gradnorm-lr and --cagrad-c non-negative";
	else if (!(A->con_w >= 0) || !(A->con_temp > 0) || !isfinite(A->con_w))
		why = "--contrastive must be non-negative, --contrastive-temperature positive";
	else if (A->con_w > 0 && mtl_balance_is_gradient(bo->kind))
		return mtl_err_set(err, MTL_ERR_ARG, "--contrastive does not combine with --balance %s (per-task gradients leave it out)",
				   mtl_balance_name(bo->kind));
	else if (mtl_balance_is_gradient(bo->kind) && (A->n_freeze || A->features))
		return mtl_err_set(err, MTL_ERR_ARG, "--balance %s does not combine with --freeze or --features (per-task gradients ignore freezing)",
				   mtl_balance_name(bo->kind));
	else if (A->con_w > 0 && A->features)
		why = "--contrastive needs the encoder: not with --features";
	else if (A->features && A->unfreeze_at)
		why = "--features trains the heads only: no --unfreeze-at";
	else if (A->unfreeze_at && !A->n_freeze)
		why = "--unfreeze-at needs --freeze";
	else if (o->low_memory && (s->accumulate > 1 || A->features || A->con_w > 0 ||
				   bo->kind != MTL_BALANCE_STATIC))
		why = "--low-memory updates each layer during its backward: not with --accumulate, --features, --contrastive or --balance";
	else if ((s->save_every || A->resume || A->overwrite) && !A->out_dir)
		why = "--save-every, --resume and --overwrite need --out DIR";
	else if (A->resume && A->overwrite)
		why = "--resume continues the checkpoints that --overwrite removes: give one";
	else if ((A->best_metric && !A->eval) || (A->patience && !A->best_metric))
		why = "--best-metric needs --eval FILE, --patience needs --best-metric";
	else if (A->final && strcmp(A->final, "best") && strcmp(A->final, "last"))
		return mtl_err_set(err, MTL_ERR_ARG, "--final takes best or last, not '%s'", A->final);
	if (why)
		return mtl_err_set(err, MTL_ERR_ARG, "%s", why);
	s->final_last = !A->best_metric || (A->final && !strcmp(A->final, "last"));
	s->out = A->out_dir;
	return 0;
}

/* ---- wiring ---- */

int mtl_session_dist(struct mtl_session *s, struct mtl_session_opts *o,
		     int *argc, char ***argv, struct mtl_err *err)
{
	int rc;

	if ((rc = mtl_dist_init(&s->dist, argc, argv, err)))
		return data(rc);
	s->rank = mtl_dist_rank(s->dist);
	s->size = mtl_dist_size(s->dist);
	/* by default the cores of a machine are shared by its ranks */
	if (s->size > 1 && !o->threads) {
		long cores = sysconf(_SC_NPROCESSORS_ONLN);

		o->threads = (int)(cores / mtl_dist_local_size(s->dist));
		o->threads = o->threads > 0 ? o->threads : 1;
	}
	return 0;
}

/* --task-weight NAME=W: the static weight of task NAME (MTL_ERR_ARG). */
static int task_weight(struct mtl_tasks *ts, const char *arg, struct mtl_err *err)
{
	const char *eq = strrchr(arg, '='), *names[64];
	char name[256], hint[128], *end;
	double w;
	int t, n = 0;

	if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof(name))
		return mtl_err_set(err, MTL_ERR_ARG, "--task-weight takes NAME=WEIGHT, not '%s'", arg);
	memcpy(name, arg, (size_t)(eq - arg));
	name[eq - arg] = 0;
	errno = 0;
	w = strtod(eq + 1, &end);
	if (errno || end == eq + 1 || *end || !isfinite(w))
		return mtl_err_set(err, MTL_ERR_ARG, "option '--task-weight' needs a number, not '%s'", eq + 1);
	if (!(w >= 0))
		return mtl_err_set(err, MTL_ERR_ARG, "--task-weight: '%s': the weight must be finite and non-negative", arg);
	if ((t = mtl_task_find(ts, name)) >= 0) {
		ts->task[t].weight = w;
		return 0;
	}
	for (; n < ts->n && n < 64; n++)
		names[n] = ts->task[n].name;
	return mtl_err_set(err, MTL_ERR_ARG, "--task-weight: '%s' is not one of the model's tasks%s", name,
			   mtl_suggest_hint(hint, sizeof(hint), name, names, (size_t)n));
}

int mtl_session_load(struct mtl_session *s, const struct mtl_session_opts *o,
		     struct mtl_err *err)
{
	int rc;

	if ((rc = mtl_model_load(&s->model, o->model_dir, err)))
		return rc == MTL_ERR_IO ? rc : data_arg(rc);
	if (!s->model->tasks)
		return mtl_err_set(err, MTL_ERR_FORMAT, "'%s': no tasks.json: nothing to train (add the tasks first)",
				   o->model_dir);
	for (int i = 0; i < o->n_weights; i++)
		if ((rc = task_weight(s->model->tasks, o->weights[i], err)))
			return rc;
	mtl_bert_set_threads(s->model->bert, o->threads);
	mtl_bert_set_gemm_split(s->model->bert, !o->no_split);
	mtl_bert_set_recompute(s->model->bert, o->recompute);
	if ((rc = mtl_model_heads(s->model, o->o.seed, err)))
		return data_arg(rc);
	s->hd = s->model->heads;
	s->map = calloc((size_t)s->model->tasks->n + 1, sizeof(int));
	s->group = calloc((size_t)s->accumulate, sizeof(*s->group));
	if (!s->map || !s->group)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	return 0;
}

int mtl_session_schedule(struct mtl_session *s, struct mtl_session_opts *o,
			 int64_t total_batches, struct mtl_err *err)
{
	if (o->total >= 0)
		return 0;
	if (total_batches > 0)
		o->total = (long)((total_batches + s->accumulate - 1) / s->accumulate);
	else if (o->o.sched != MTL_SCHED_CONSTANT)
		return mtl_err_set(err, MTL_ERR_ARG, "%s: the stream does not say how many batches it holds: give --total-steps or --schedule constant",
				   s->name);
	return 0;
}

int mtl_session_lock(struct mtl_session *s, const struct mtl_session_opts *o,
		     struct mtl_err *err)
{
	struct mtl_err e;
	int rc;

	if (s->rank || !o->out_dir)
		return 0;
	if (mtl_fs_check_dir(o->out_dir, &e))
		return mtl_err_set(err, MTL_ERR_IO, "--out: %s", e.msg);
	rc = mtl_ckpt_open(o->out_dir, o->resume ? MTL_CKPT_RESUME
			   : o->overwrite ? MTL_CKPT_OVERWRITE
			   : MTL_CKPT_FRESH, &s->lock, err);
	return rc == MTL_ERR_IO ? rc : data_arg(rc);
}

int mtl_session_open(struct mtl_session *s, struct mtl_mp_reader *r,
		     const char *name, int64_t *total_batches,
		     struct mtl_err *err)
{
	const msgpack_object *tbo;
	msgpack_object hdr;
	struct mtl_err e;
	int rc;

	s->r = r;
	s->name = name;
	if ((rc = mtl_mp_read_header(r, "batches", &hdr, err)) ||
	    (rc = mtl_data_header_tasks(&s->hts, &hdr, err)))
		return data(rc);
	if ((rc = mtl_model_check_header(s->model, &hdr, &e)) ||
	    (rc = mtl_task_map(s->map, s->model->tasks, s->hts, &e)))
		return mtl_err_set(err, data(rc), "%s: %s", name, e.msg);
	if (mtl_mp_as_int(mtl_mp_get(&hdr, "total_batches"), &s->promised))
		s->promised = -1;
	if (!total_batches)
		return 0;
	/* a header that has the count but garbles it is bad input */
	*total_batches = 0;
	tbo = mtl_mp_get(&hdr, "total_batches");
	if (tbo && (mtl_mp_as_int(tbo, total_batches) || *total_batches < 0 ||
		    *total_batches > INT32_MAX))
		return mtl_err_set(err, MTL_ERR_FORMAT, "%s: record 1: \"total_batches\" is not an integer in [0, %d]",
				   name, INT32_MAX);
	return 0;
}

/* Freezes what o->freeze names, and the encoder with o->features. */
static int freeze(struct mtl_session *s, const struct mtl_session_opts *o,
		  struct mtl_err *err)
{
	struct mtl_freeze fz = { 0 };
	int n = o->n_freeze + (o->features != NULL), rc;

	if (!n)
		return 0;
	if ((rc = mtl_freeze_init(&fz, s->model->bert, s->hd, err)))
		return data_arg(rc);
	for (int i = 0; i < n; i++)
		if (mtl_freeze_add(&fz, i < o->n_freeze ? o->freeze[i] : "encoder",
				   s->model->bert, s->hd, err)) {
			mtl_freeze_release(&fz);
			return MTL_ERR_ARG;
		}
	/* the trainer takes fz's arrays */
	return data_arg(mtl_train_freeze(s->tr, &fz, o->unfreeze_at, err));
}

int mtl_session_start(struct mtl_session *s, struct mtl_session_opts *A,
		      struct mtl_err *err)
{
	struct mtl_train_opts *o = &A->o;
	struct mtl_err e;
	int rc;

	/* dist hook: the schedule's length is rank 0's to tell */
	if ((rc = mtl_dist_bcast(s->dist, &A->total, sizeof(A->total), err)))
		return data_arg(rc);
	o->total = A->total > 0 ? A->total : 0;
	s->total = o->total;
	if ((rc = mtl_train_new(&s->tr, s->model->bert, s->hd, o, err)))
		return data_arg(rc);
	if (mtl_step_stats_init(&s->st, s->model->tasks->n))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	A->bo.seed = o->seed;
	if (A->bo.kind != MTL_BALANCE_STATIC &&
	    (rc = mtl_balance_new(&s->bal, s->tr, &A->bo, err)))
		return data_arg(rc);
	if (A->con_w > 0) {
		if ((rc = mtl_contrast_new(&s->con, (float)A->con_w, (float)A->con_temp,
					   s->model->pool.mode, &e)))
			return mtl_err_set(err, data_arg(rc), "'%s': %s", A->model_dir, e.msg);
		s->tr->con = s->con;
	}
	return freeze(s, A, err);
}

int mtl_session_best(struct mtl_session *s, const struct mtl_session_opts *o,
		     struct mtl_err *err)
{
	struct mtl_err e;
	size_t n = 0;
	char **names, hint[128];

	s->ck.metric = o->best_metric;
	if (!o->best_metric ||
	    !mtl_eval_best_init(&s->best, o->best_metric, s->model->tasks, o->patience, &e))
		return 0;
	names = mtl_eval_metric_names(s->model->tasks, &n);
	mtl_suggest_hint(hint, sizeof(hint), o->best_metric, (const char *const *)names, n);
	free(names);
	return mtl_err_set(err, MTL_ERR_ARG, "--best-metric: %s%s", e.msg, hint);
}

int mtl_session_share(struct mtl_session *s, struct mtl_err *err)
{
	int rc;

	if ((rc = mtl_train_set_dist(s->tr, s->dist,
				     s->ck.n_ranks == s->size ? s->ck.ranks : NULL, err)))
		return data(rc);
	return mtl_session_check(s, "at the start", err);
}

int mtl_session_lead(struct mtl_session *s, int argc, char **argv,
		     const char *model_dir, float lr,
		     const volatile sig_atomic_t *stop, struct mtl_err *err)
{
	struct mtl_steps_header h = {
		.tasks = s->model->tasks, .model = model_dir,
		.total_steps = s->total, .accumulate = s->accumulate,
		.lr = lr,
		.parameters = s->model->bert->n_params + s->hd->n_params,
		.trainable = mtl_freeze_trainable(&s->tr->fz, s->model->bert, s->hd),
	};
	msgpack_object rec;
	struct mtl_err e;
	long seen = 0;
	int rc, n = 0;

	if (mtl_steps_write_header(s->w, argc, argv, &h, err))
		return MTL_ERR_IO;
	if ((rc = mtl_card_new(&s->model->card, s->model->tasks->n, argc, argv, err)))
		return data(rc);
	while ((rc = mtl_mp_read(s->r, &rec, err)) > 0) {
		struct mtl_batch *b = &s->group[n];

		if (!mtl_mp_is_str(mtl_mp_get(&rec, "type"), "batch"))
			continue;
		/* --resume: the batches of the checkpoint's steps are done */
		if (seen++ < s->consumed)
			continue;
		if ((rc = mtl_batch_parse(b, &rec, s->hts, &e)))
			return mtl_err_set(err, data(rc), "%s: record %ld: %s", s->name,
					   mtl_mp_reader_record(s->r), e.msg);
		/* labels into the model's task order */
		if ((rc = mtl_batch_remap(b, s->map, s->model->tasks->n, err)))
			return data(rc);
		if (++n == s->accumulate) {
			s->consumed += n;
			if ((rc = step_group(s, &n, err)))
				return rc;
		}
		if (*stop || s->best.stop) /* both after a step: n is 0 */
			break;
	}
	if (*stop) {
		while (n)
			mtl_batch_release(&s->group[--n]);
		return 1;
	}
	if (rc < 0)
		return data(rc);
	if (seen < s->consumed)
		return mtl_err_set(err, MTL_ERR_FORMAT, "%s: %ld batches, fewer than the %ld the checkpoint consumed: not the stream of the run",
				   s->name, seen, s->consumed);
	/* an early stop (--patience) leaves the rest of the stream unread */
	if (s->promised >= 0 && seen != s->promised && !s->best.stop)
		return mtl_err_set(err, MTL_ERR_FORMAT, "%s: %ld batches, but its header promised total_batches %lld",
				   s->name, seen, (long long)s->promised);
	if (n) {
		s->consumed += n;
		if ((rc = step_group(s, &n, err)))
			return rc;
	}
	/* dist hook: no more batches */
	if (s->size > 1 && (rc = mtl_dist_share(s->dist, s->group, &n, s->accumulate,
						 s->model->tasks, err)))
		return data(rc);
	if (s->ev.n && s->last_eval != s->tr->step)
		return mtl_session_evaluate(s, err);
	return 0;
}

void mtl_session_release(struct mtl_session *s)
{
	if (s->lock >= 0)
		close(s->lock); /* the end of the run: OUT is free */
	s->lock = -1;
	mtl_eval_set_release(&s->ev);
	mtl_eval_best_release(&s->best);
	free(s->group);
	free(s->map);
	mtl_task_free(s->hts);
	mtl_step_stats_release(&s->st);
	mtl_balance_free(s->bal);
	mtl_contrast_free(s->con);
	mtl_ckpt_state_release(&s->ck);
	mtl_feat_free(s->feat);
	mtl_train_free(s->tr);
	mtl_mp_reader_free(s->r);
	mtl_mp_writer_free(s->w);
	mtl_model_free(s->model);
	mtl_dist_free(s->dist);
	memset(s, 0, sizeof(*s));
	s->lock = -1;
}
