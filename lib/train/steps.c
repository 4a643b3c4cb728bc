/* steps.c - the records of a steps stream, written and read; see steps.h. */
#include "steps.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* {task: v[t]}, nil where have[t] is 0. */
static void pack_doubles(msgpack_packer *pk, const struct mtl_tasks *ts,
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

static void pack_counts(msgpack_packer *pk, const struct mtl_tasks *ts,
			const int64_t *v)
{
	msgpack_pack_map(pk, (size_t)ts->n);
	for (int t = 0; t < ts->n; t++) {
		mtl_mp_pack_str(pk, ts->task[t].name);
		msgpack_pack_int64(pk, v[t]);
	}
}

/* {task: w[t]}, the tasks' own weights when w is NULL. */
static void pack_weights(msgpack_packer *pk, const struct mtl_tasks *ts,
			 const double *w)
{
	msgpack_pack_map(pk, (size_t)ts->n);
	for (int t = 0; t < ts->n; t++) {
		mtl_mp_pack_str(pk, ts->task[t].name);
		msgpack_pack_double(pk, w ? w[t] : ts->task[t].weight);
	}
}

/* {A: {B: cos}} over the pairs A before B whose cosine is not NaN. */
static void pack_cosine(msgpack_packer *pk, const struct mtl_tasks *ts,
			const double *cos)
{
	int T = ts->n;
	struct mtl_mp_map outer;

	mtl_mp_map_begin(&outer);
	for (int i = 0; i < T; i++) {
		struct mtl_mp_map inner;

		mtl_mp_map_begin(&inner);
		for (int j = i + 1; j < T; j++)
			if (!isnan(cos[i * T + j]))
				msgpack_pack_double(mtl_mp_map_key(&inner, ts->task[j].name),
						    cos[i * T + j]);
		if (inner.n)
			mtl_mp_map_end(&inner, mtl_mp_map_key(&outer, ts->task[i].name));
		else
			mtl_mp_map_drop(&inner); /* no pair of A */
	}
	mtl_mp_map_end(&outer, pk);
}

static void pack_nullable(msgpack_packer *pk, double v, int64_t have)
{
	if (have)
		msgpack_pack_double(pk, v);
	else
		msgpack_pack_nil(pk);
}

int mtl_steps_write_header(struct mtl_mp_writer *w, int argc, char **argv,
			   const struct mtl_steps_header *h,
			   struct mtl_err *err)
{
	msgpack_packer *pk = mtl_mp_pk(w);
	struct mtl_mp_map m;

	mtl_mp_map_begin(&m);
	mtl_data_pack_tasks(mtl_mp_map_key(&m, "tasks"), h->tasks);
	mtl_mp_pack_str(mtl_mp_map_key(&m, "model"), h->model);
	msgpack_pack_long(mtl_mp_map_key(&m, "total_steps"), h->total_steps);
	msgpack_pack_int(mtl_mp_map_key(&m, "accumulate"), h->accumulate);
	msgpack_pack_float(mtl_mp_map_key(&m, "lr"), h->lr);
	msgpack_pack_uint64(mtl_mp_map_key(&m, "parameters"), h->parameters);
	msgpack_pack_uint64(mtl_mp_map_key(&m, "trainable"), h->trainable);
	mtl_mp_map_end_header(&m, pk, "steps", "mtl-step", argc, argv);
	return mtl_mp_end(w, err);
}

int mtl_steps_write_step(struct mtl_mp_writer *w,
			 const struct mtl_steps_step *s, struct mtl_err *err)
{
	const struct mtl_tasks *ts = s->tasks;
	const struct mtl_step_stats *st = s->st;
	double *acc = calloc((size_t)ts->n + 1, sizeof(double));
	struct mtl_mp_map m;

	if (!acc)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	/* a regression task has no accuracy: NaN, which shows as null */
	for (int t = 0; t < ts->n; t++)
		acc[t] = ts->task[t].kind == MTL_TASK_REGRESSION ? NAN
			 : st->labelled[t]
			 ? (double)st->correct[t] / (double)st->labelled[t] : 0;
	mtl_mp_map_begin(&m);
	mtl_mp_pack_str(mtl_mp_map_key(&m, "type"), "step");
	msgpack_pack_long(mtl_mp_map_key(&m, "step"), st->step);
	msgpack_pack_int64(mtl_mp_map_key(&m, "epoch"), s->epoch);
	msgpack_pack_float(mtl_mp_map_key(&m, "lr"), st->lr);
	msgpack_pack_float(mtl_mp_map_key(&m, "head_lr"), st->head_lr);
	msgpack_pack_double(mtl_mp_map_key(&m, "loss"), st->loss);
	pack_doubles(mtl_mp_map_key(&m, "losses"), ts, st->task_loss, NULL);
	pack_doubles(mtl_mp_map_key(&m, "accuracy"), ts, acc, st->labelled);
	pack_counts(mtl_mp_map_key(&m, "labelled"), ts, st->labelled);
	pack_weights(mtl_mp_map_key(&m, "weights"), ts, s->weights);
	if (s->has_balance) {
		msgpack_pack_double(mtl_mp_map_key(&m, "balance_ms"), s->balance_ms);
		if (s->coef) {
			pack_doubles(mtl_mp_map_key(&m, "coef"), ts, s->coef, NULL);
			pack_cosine(mtl_mp_map_key(&m, "cosine"), ts, s->cosine);
		}
	}
	if (s->has_contrastive)
		msgpack_pack_double(mtl_mp_map_key(&m, "contrastive"), s->contrastive);
	msgpack_pack_double(mtl_mp_map_key(&m, "grad_norm"), st->grad_norm);
	msgpack_pack_int64(mtl_mp_map_key(&m, "tokens"), st->tokens);
	msgpack_pack_double(mtl_mp_map_key(&m, "ms"), s->ms);
	msgpack_pack_double(mtl_mp_map_key(&m, "backward_ms"), st->bwd_ms);
	msgpack_pack_int(mtl_mp_map_key(&m, "backward_layers"), st->bwd_layers);
	if (s->has_comm)
		msgpack_pack_double(mtl_mp_map_key(&m, "comm_ms"), s->comm_ms);
	mtl_mp_map_end(&m, mtl_mp_pk(w));
	free(acc);
	return mtl_mp_end(w, err);
}

int mtl_steps_write_skip(struct mtl_mp_writer *w, long step, int64_t epoch,
			 double loss, double grad_norm, struct mtl_err *err)
{
	struct mtl_mp_map m;

	mtl_mp_map_begin(&m);
	mtl_mp_pack_str(mtl_mp_map_key(&m, "type"), "skip");
	msgpack_pack_long(mtl_mp_map_key(&m, "step"), step);
	msgpack_pack_int64(mtl_mp_map_key(&m, "epoch"), epoch);
	msgpack_pack_double(mtl_mp_map_key(&m, "loss"), loss);
	msgpack_pack_double(mtl_mp_map_key(&m, "grad_norm"), grad_norm);
	mtl_mp_pack_str(mtl_mp_map_key(&m, "reason"), isfinite(loss) ? "non-finite gradient"
							  : "non-finite loss");
	mtl_mp_map_end(&m, mtl_mp_pk(w));
	return mtl_mp_end(w, err);
}

/* Task t's embedding evaluators (eval.h) into its map f: "pairs",
 * "pearson", "spearman" for an embedding task's scored pairs, "queries"
 * and the retrieval figures for its positives, "knn_accuracy" and
 * "v_measure" for a label task; each named as its --best-metric figure.
 * NaN figures (undefined: constant scores, say) are nil. */
static void pack_emb(struct mtl_mp_map *f, const struct mtl_eval_result *res,
		     int t)
{
	const struct mtl_eval_emb *e = &res->emb[t];
	const struct mtl_embeval_ir *ir = &e->ir;

	if (e->pairs) {
		msgpack_pack_long(mtl_mp_map_key(f, "pairs"), e->pairs);
		pack_nullable(mtl_mp_map_key(f, "pearson"), res->pearson[t],
			      !isnan(res->pearson[t]));
		pack_nullable(mtl_mp_map_key(f, "spearman"), res->spearman[t],
			      !isnan(res->spearman[t]));
	}
	if (ir->queries) {
		msgpack_pack_long(mtl_mp_map_key(f, "queries"), ir->queries);
		msgpack_pack_double(mtl_mp_map_key(f, "mrr@10"), ir->mrr10);
		msgpack_pack_double(mtl_mp_map_key(f, "ndcg@10"), ir->ndcg10);
		msgpack_pack_double(mtl_mp_map_key(f, "recall@1"), ir->recall1);
		msgpack_pack_double(mtl_mp_map_key(f, "recall@10"), ir->recall10);
		msgpack_pack_double(mtl_mp_map_key(f, "recall@100"), ir->recall100);
		msgpack_pack_double(mtl_mp_map_key(f, "map@100"), ir->map100);
	}
	if (e->lab.labelled) {
		pack_nullable(mtl_mp_map_key(f, "knn_accuracy"), e->lab.knn_accuracy,
			      !isnan(e->lab.knn_accuracy));
		pack_nullable(mtl_mp_map_key(f, "v_measure"), e->lab.vmeasure,
			      !isnan(e->lab.vmeasure));
	}
}

int mtl_steps_write_eval(struct mtl_mp_writer *w, long step,
			 const struct mtl_tasks *tasks,
			 const struct mtl_eval_result *res,
			 const struct mtl_eval_best *best,
			 struct mtl_err *err)
{
	struct mtl_mp_map m, per_task;

	mtl_mp_map_begin(&m);
	mtl_mp_pack_str(mtl_mp_map_key(&m, "type"), "eval");
	msgpack_pack_long(mtl_mp_map_key(&m, "step"), step);
	msgpack_pack_int(mtl_mp_map_key(&m, "examples"), res->examples);
	msgpack_pack_double(mtl_mp_map_key(&m, "loss"), res->loss);
	mtl_mp_map_begin(&per_task);
	for (int t = 0; t < tasks->n; t++) {
		int64_t have = res->labelled[t];
		struct mtl_mp_map f;

		mtl_mp_map_begin(&f);
		pack_nullable(mtl_mp_map_key(&f, "loss"), res->task_loss[t], have);
		if (tasks->task[t].kind == MTL_TASK_REGRESSION) {
			pack_nullable(mtl_mp_map_key(&f, "pearson"), res->pearson[t],
				      have && !isnan(res->pearson[t]));
			pack_nullable(mtl_mp_map_key(&f, "spearman"), res->spearman[t],
				      have && !isnan(res->spearman[t]));
		} else {
			pack_nullable(mtl_mp_map_key(&f, "accuracy"), res->accuracy[t], have);
			if (tasks->task[t].kind != MTL_TASK_EMBEDDING) /* no labels */
				pack_nullable(mtl_mp_map_key(&f, "f1"), res->f1[t], have);
		}
		if (!isnan(res->entity_f1[t]))
			msgpack_pack_double(mtl_mp_map_key(&f, "entity_f1"), res->entity_f1[t]);
		if (!isnan(res->micro_f1[t]) && have)
			msgpack_pack_double(mtl_mp_map_key(&f, "micro_f1"), res->micro_f1[t]);
		if (res->emb)
			pack_emb(&f, res, t);
		msgpack_pack_int64(mtl_mp_map_key(&f, "labelled"), have);
		mtl_mp_map_end(&f, mtl_mp_map_key(&per_task, tasks->task[t].name));
	}
	mtl_mp_map_end(&per_task, mtl_mp_map_key(&m, "tasks"));
	if (best) {
		struct mtl_mp_map b;

		mtl_mp_map_begin(&b);
		mtl_mp_pack_str(mtl_mp_map_key(&b, "metric"), best->metric);
		pack_nullable(mtl_mp_map_key(&b, "value"), best->value, best->step >= 0);
		msgpack_pack_long(mtl_mp_map_key(&b, "step"), best->step);
		msgpack_pack_int(mtl_mp_map_key(&b, "stale"), best->stale);
		if (best->patience)
			msgpack_pack_int(mtl_mp_map_key(&b, "patience"), best->patience);
		if (best->stop)
			msgpack_pack_true(mtl_mp_map_key(&b, "stop"));
		mtl_mp_map_end(&b, mtl_mp_map_key(&m, "best"));
	}
	mtl_mp_map_end(&m, mtl_mp_pk(w));
	return mtl_mp_end(w, err);
}

/* --- reading --- */

static const char *const scalar_key[MTL_STEPS_N_SCALARS] = {
	"step", "epoch", "lr", "loss", "grad_norm", "tokens", "ms"
};
static const char *const map_key[MTL_STEPS_N_MAPS] = {
	"losses", "accuracy", "weights", "labelled", "cosine"
};

const char *mtl_steps_scalar_key(enum mtl_steps_scalar k)
{
	return scalar_key[k];
}

const char *mtl_steps_map_key(enum mtl_steps_map k)
{
	return map_key[k];
}

/* A number, or NaN for an absent or nil value; -1 for another type. */
static int num_or_nan(const msgpack_object *o, double *v)
{
	if (!o || o->type == MSGPACK_OBJECT_NIL) {
		*v = NAN;
		return 0;
	}
	return mtl_mp_as_num(o, v);
}

/* Appends key (a, or "a/b" when b is not NULL) = v to f's map k. */
static int add_figure(struct mtl_steps_figures *f, int k,
		      const msgpack_object *a, const msgpack_object *b,
		      double v)
{
	struct mtl_steps_figure *e = realloc(f->map[k], (size_t)(f->n[k] + 1) * sizeof(*e));
	size_t len = a->via.str.size + (b ? 1 + (size_t)b->via.str.size : 0);
	char *s;

	if (!e)
		return -1;
	f->map[k] = e;
	if (!(s = malloc(len + 1)))
		return -1;
	if (b)
		snprintf(s, len + 1, "%.*s/%.*s", (int)a->via.str.size, a->via.str.ptr,
			 (int)b->via.str.size, b->via.str.ptr);
	else
		snprintf(s, len + 1, "%.*s", (int)a->via.str.size, a->via.str.ptr);
	e[f->n[k]].key = s;
	e[f->n[k]].v = v;
	f->n[k]++;
	return 0;
}

/*
 * Map k of f from m: a map of numbers ({"topic": 0.5}), or a map of maps
 * of numbers ({"a": {"b": 0.1}}, keys "a/b"), or a number (key "all").
 */
static int read_map(struct mtl_steps_figures *f, int k,
		    const msgpack_object *m, struct mtl_mp_reader *r,
		    struct mtl_err *err)
{
	static const msgpack_object all = { .type = MSGPACK_OBJECT_STR,
					    .via.str = { 3, "all" } };
	const char *what = map_key[k];
	double x;

	if (!m || m->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (mtl_mp_as_num(m, &x) == 0)
		return add_figure(f, k, &all, NULL, x)
			? mtl_err_set(err, MTL_ERR_NOMEM, "out of memory") : 0;
	if (m->type != MSGPACK_OBJECT_MAP)
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "\"%s\" is not a map of numbers", what);
	for (uint32_t j = 0; j < m->via.map.size; j++) {
		const msgpack_object *a = &m->via.map.ptr[j].key;
		const msgpack_object *val = &m->via.map.ptr[j].val;

		if (a->type != MSGPACK_OBJECT_STR)
			return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
						  "\"%s\" is not a map of numbers", what);
		if (val->type != MSGPACK_OBJECT_MAP) {
			if (num_or_nan(val, &x))
				return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
							  "\"%s\": \"%.*s\" is not a number", what,
							  (int)a->via.str.size, a->via.str.ptr);
			if (add_figure(f, k, a, NULL, x))
				return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
			continue;
		}
		for (uint32_t l = 0; l < val->via.map.size; l++) {
			const msgpack_object *b = &val->via.map.ptr[l].key;

			if (b->type != MSGPACK_OBJECT_STR ||
			    num_or_nan(&val->via.map.ptr[l].val, &x))
				return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
							  "\"%s\": \"%.*s\" is not a map of numbers",
							  what, (int)a->via.str.size, a->via.str.ptr);
			if (add_figure(f, k, a, b, x))
				return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		}
	}
	return 0;
}

int mtl_steps_read_step(struct mtl_steps_figures *out,
			const msgpack_object *rec, struct mtl_mp_reader *r,
			struct mtl_err *err)
{
	int rc;

	memset(out, 0, sizeof(*out));
	for (int c = 0; c < MTL_STEPS_N_SCALARS; c++)
		if (num_or_nan(mtl_mp_get(rec, scalar_key[c]), &out->v[c]))
			return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
						  "\"%s\" is not a number", scalar_key[c]);
	for (int k = 0; k < MTL_STEPS_N_MAPS; k++)
		if ((rc = read_map(out, k, mtl_mp_get(rec, map_key[k]), r, err)))
			return rc;
	return 0;
}

void mtl_steps_figures_release(struct mtl_steps_figures *f)
{
	for (int k = 0; k < MTL_STEPS_N_MAPS; k++) {
		for (int i = 0; i < f->n[k]; i++)
			free(f->map[k][i].key);
		free(f->map[k]);
	}
	memset(f, 0, sizeof(*f));
}

/* A new row for task name[0..len); its figures NaN.  NULL: out of memory. */
static struct mtl_steps_eval_row *add_row(struct mtl_steps_evals *e,
					  const char *name, size_t len)
{
	struct mtl_steps_eval_row *row = realloc(e->row, (size_t)(e->n + 1) * sizeof(*row));

	if (!row)
		return NULL;
	e->row = row;
	row += e->n;
	row->loss = row->accuracy = row->f1 = row->entity_f1 = NAN;
	row->more = NULL;
	row->n_more = 0;
	if (!(row->task = strndup(name, len)))
		return NULL;
	e->n++;
	return row;
}

/* Row's figures from m's "loss", "accuracy", "f1", "entity_f1", and
 * its other numbers or nils into row->more: 0, 1 for a figure that is
 * not a number, -1 out of memory. */
static int row_figures(struct mtl_steps_eval_row *row, const msgpack_object *m)
{
	static const char *const fixed[] = { "loss", "accuracy", "f1", "entity_f1",
					     "labelled", "pairs", "queries", "step",
					     "examples" };
	double *slot[] = { &row->loss, &row->accuracy, &row->f1, &row->entity_f1 };

	for (int i = 0; i < 4; i++)
		if (num_or_nan(mtl_mp_get(m, fixed[i]), slot[i]))
			return 1;
	if (m->type != MSGPACK_OBJECT_MAP)
		return 0;
	for (uint32_t j = 0; j < m->via.map.size; j++) {
		const msgpack_object *k = &m->via.map.ptr[j].key;
		const msgpack_object *v = &m->via.map.ptr[j].val;
		struct mtl_steps_figure *f;
		size_t i = 0;
		double x;

		if (k->type != MSGPACK_OBJECT_STR || num_or_nan(v, &x))
			continue; /* not a figure: left out */
		while (i < sizeof(fixed) / sizeof(*fixed) &&
		       !(strlen(fixed[i]) == k->via.str.size &&
			 !memcmp(fixed[i], k->via.str.ptr, k->via.str.size)))
			i++;
		if (i < sizeof(fixed) / sizeof(*fixed))
			continue;
		if (!(f = realloc(row->more, sizeof(*f) * (size_t)(row->n_more + 1))))
			return -1;
		row->more = f;
		f += row->n_more;
		if (!(f->key = strndup(k->via.str.ptr, k->via.str.size)))
			return -1;
		f->v = x;
		row->n_more++;
	}
	return 0;
}

/* The older form: maps "losses", "accuracy", "f1" {task: value}.  0, 1
 * for a value that is not a number, -1 out of memory. */
static int read_eval_maps(struct mtl_steps_evals *e, const msgpack_object *rec)
{
	static const char *const keys[] = { "losses", "accuracy", "f1" };

	for (int k = 0; k < 3; k++) {
		const msgpack_object *m = mtl_mp_get(rec, keys[k]);

		for (uint32_t j = 0; m && m->type == MSGPACK_OBJECT_MAP && j < m->via.map.size; j++) {
			const msgpack_object *name = &m->via.map.ptr[j].key;
			struct mtl_steps_eval_row *row;
			int seen = 0;

			if (name->type != MSGPACK_OBJECT_STR)
				return 1;
			for (int i = 0; i < e->n && !seen; i++)
				seen = strlen(e->row[i].task) == name->via.str.size &&
				       !memcmp(e->row[i].task, name->via.str.ptr, name->via.str.size);
			if (seen)
				continue;
			if (!(row = add_row(e, name->via.str.ptr, name->via.str.size)))
				return -1;
			for (int q = 0; q < 3; q++) {
				const msgpack_object *v = mtl_mp_get(mtl_mp_get(rec, keys[q]), row->task);
				double *slot = q == 0 ? &row->loss : q == 1 ? &row->accuracy : &row->f1;

				if (v && num_or_nan(v, slot))
					return 1;
			}
		}
	}
	return 0;
}

int mtl_steps_read_eval(struct mtl_steps_evals *out,
			const msgpack_object *rec, struct mtl_mp_reader *r,
			struct mtl_err *err)
{
	const msgpack_object *tasks = mtl_mp_get(rec, "tasks");
	const msgpack_object *acc = mtl_mp_get(rec, "accuracy");
	struct mtl_steps_eval_row *row;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (num_or_nan(mtl_mp_get(rec, "step"), &out->step))
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT, "\"step\" is not a number");
	if (!tasks && acc && acc->type == MSGPACK_OBJECT_MAP) {
		rc = read_eval_maps(out, rec);
	} else if (!tasks) {
		/* an evaluation without a per-task breakdown */
		rc = (row = add_row(out, "(all)", 5)) ? row_figures(row, rec) : -1;
	} else if (tasks->type != MSGPACK_OBJECT_MAP) {
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT, "\"tasks\" is not a map");
	} else {
		for (uint32_t j = 0; j < tasks->via.map.size && !rc; j++) {
			const msgpack_object *k = &tasks->via.map.ptr[j].key;
			const msgpack_object *v = &tasks->via.map.ptr[j].val;

			if (k->type != MSGPACK_OBJECT_STR)
				return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
							  "\"tasks\" is not a map");
			if (v->type != MSGPACK_OBJECT_MAP)
				return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
							  "\"tasks\": \"%.*s\" is not a map",
							  (int)k->via.str.size, k->via.str.ptr);
			rc = (row = add_row(out, k->via.str.ptr, k->via.str.size))
				? row_figures(row, v) : -1;
		}
	}
	if (rc < 0)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	if (rc > 0)
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "eval \"loss\", \"accuracy\" and \"f1\" must be numbers");
	return 0;
}

void mtl_steps_evals_release(struct mtl_steps_evals *e)
{
	for (int i = 0; i < e->n; i++) {
		free(e->row[i].task);
		for (int j = 0; j < e->row[i].n_more; j++)
			free(e->row[i].more[j].key);
		free(e->row[i].more);
	}
	free(e->row);
	memset(e, 0, sizeof(*e));
}

int mtl_steps_read_skip(double *step, char **reason,
			const msgpack_object *rec, struct mtl_mp_reader *r,
			struct mtl_err *err)
{
	const msgpack_object *why = mtl_mp_get(rec, "reason");

	*reason = NULL;
	if (num_or_nan(mtl_mp_get(rec, "step"), step))
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT, "\"step\" is not a number");
	if (why && why->type == MSGPACK_OBJECT_STR &&
	    !(*reason = strndup(why->via.str.ptr, why->via.str.size)))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	return 0;
}
