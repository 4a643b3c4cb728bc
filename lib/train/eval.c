/* eval.c - the evaluation set and its figures; see eval.h. */
#include "eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "metrics.h"

int mtl_eval_load(struct mtl_eval_set *set, struct mtl_mp_reader *r,
		  const struct mtl_model *model, struct mtl_err *err)
{
	const struct mtl_tasks *ts = model->tasks;
	msgpack_object hdr, rec;
	int cap = 0, rc;

	memset(set, 0, sizeof(*set));
	if (!(set->map = calloc((size_t)ts->n + 1, sizeof(int))))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	if ((rc = mtl_mp_read_header(r, "examples", &hdr, err)) ||
	    (rc = mtl_data_header_tasks(&set->tasks, &hdr, err)))
		goto fail;
	if ((rc = mtl_model_check_header(model, &hdr, err)) ||
	    (rc = mtl_task_map(set->map, ts, set->tasks, err))) {
		char why[sizeof(err->msg)];

		snprintf(why, sizeof(why), "%s", err ? err->msg : "");
		mtl_err_set(err, rc, "%s: %s", mtl_mp_reader_name(r), why);
		goto fail;
	}
	while ((rc = mtl_mp_read(r, &rec, err)) > 0) {
		struct mtl_example *ex;

		if (!mtl_mp_is_str(mtl_mp_get(&rec, "type"), "example"))
			continue;
		if (set->n == cap) {
			cap = cap ? 2 * cap : 256;
			ex = realloc(set->ex, (size_t)cap * sizeof(*ex));
			if (!ex) {
				rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
				goto fail;
			}
			set->ex = ex;
		}
		ex = &set->ex[set->n];
		if ((rc = mtl_example_parse(ex, &rec, set->tasks, err))) {
			char why[sizeof(err->msg)];

			snprintf(why, sizeof(why), "%s", err ? err->msg : "");
			rc = mtl_mp_reader_fail(r, err, rc, "%s", why);
			goto fail;
		}
		set->n++;
		if (ex->len > model->bert->cfg.max_pos) {
			rc = mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
						"%d tokens, more than the model's %d positions",
						(int)ex->len, model->bert->cfg.max_pos);
			goto fail;
		}
	}
	if (rc == 0)
		return 0;
fail:
	mtl_eval_set_release(set);
	return rc;
}

void mtl_eval_set_release(struct mtl_eval_set *set)
{
	for (int i = 0; i < set->n; i++)
		mtl_example_release(&set->ex[i]);
	free(set->ex);
	free(set->map);
	mtl_task_free(set->tasks);
	memset(set, 0, sizeof(*set));
}

void mtl_eval_result_release(struct mtl_eval_result *res)
{
	free(res->task_loss);
	free(res->accuracy);
	free(res->f1);
	free(res->labelled);
	free(res->entity_f1);
	free(res->micro_f1);
	free(res->pearson);
	free(res->spearman);
	memset(res, 0, sizeof(*res));
}

/* The entities of each sentence ex[i] of b for the BIO token tasks (bio[t]
 * with labels) into ent[t], over the words as mtl-score's predictions
 * give them to mtl-report (predict.c): a word's tag is its first token's,
 * a word without a token is outside every entity, an unlabelled word
 * counts as O in gold; an example without word_ids has its tokens as
 * words; an example without the task's labels is left out.  Gold
 * entities lost to truncation are not counted. */
static int add_entities(const struct mtl_train *tr, const struct mtl_batch *b,
			const struct mtl_example *const *ex, const int *map,
			const struct mtl_bio *bio, struct mtl_entity_score *ent,
			int *gold, int *pred)
{
	for (int t = 0; t < tr->hd->ts->n && t < b->n_tasks; t++) {
		const struct mtl_head *h = &tr->hd->h[t];
		const int32_t *lab = b->labels[t];

		if (!bio[t].n_labels || !lab)
			continue;
		for (int i = 0; i < b->B; i++) {
			const int32_t *wid = ex[i]->word_ids;
			int n = 0, len = (int)ex[i]->len;

			if (map[t] < 0 || !ex[i]->tok[map[t]])
				continue; /* not labelled for the task */
			for (int p = 0; p < len; p++)
				n = wid ? (wid[p] + 1 > n ? wid[p] + 1 : n) : len;
			for (int w = 0; w < n; w++)
				gold[w] = pred[w] = -1;
			for (int p = len - 1; p >= 0; p--) { /* first token wins */
				const float *z = h->logits + ((size_t)i * b->T + p) * h->C;
				int w = wid ? wid[p] : p, arg = 0;

				if (w < 0)
					continue;
				for (int c = 1; c < h->C; c++)
					if (z[c] > z[arg])
						arg = c;
				pred[w] = arg;
				gold[w] = lab[i * b->T + p] == MTL_IGNORE ? -1 : lab[i * b->T + p];
			}
			if (n && mtl_entity_add(&ent[t], &bio[t], gold, pred, n))
				return MTL_ERR_NOMEM;
		}
	}
	return 0;
}

/* The labelled rows of b's multilabel tasks into ml[t]: a label is
 * predicted when mtl_loss_bce_yes says so. */
static void add_multilabel(const struct mtl_train *tr,
			   const struct mtl_batch *b,
			   struct mtl_multilabel_score *ml, int *gold, int *pred)
{
	for (int t = 0; t < tr->hd->ts->n && t < b->n_tasks; t++) {
		const struct mtl_task *task = &tr->hd->ts->task[t];
		const struct mtl_head *h = &tr->hd->h[t];
		const int32_t *lab = b->labels[t];

		if (task->kind != MTL_TASK_MULTILABEL || !lab)
			continue;
		for (int i = 0; i < b->B; i++) {
			const int32_t *y = lab + (size_t)i * h->C;
			const float *z = h->logits + (size_t)i * h->C;

			if (y[0] == MTL_IGNORE)
				continue; /* not labelled for the task */
			for (int c = 0; c < h->C; c++) {
				gold[c] = y[c] == 1;
				pred[c] = mtl_loss_bce_yes(z[c], task->threshold);
			}
			mtl_multilabel_add(&ml[t], gold, pred);
		}
	}
}

/* The (prediction, target) pairs of b's regression tasks into rg[t]. */
static int add_regression(const struct mtl_train *tr,
			  const struct mtl_batch *b,
			  struct mtl_regression_score *rg)
{
	for (int t = 0; t < tr->hd->ts->n && t < b->n_tasks; t++) {
		const int32_t *lab = b->labels[t];

		if (tr->hd->ts->task[t].kind != MTL_TASK_REGRESSION || !lab)
			continue;
		for (int i = 0; i < b->B; i++)
			if (lab[i] != MTL_IGNORE &&
			    mtl_regression_add(&rg[t], tr->hd->h[t].logits[i],
					       mtl_label_value(lab[i])))
				return MTL_ERR_NOMEM;
	}
	return 0;
}

/* The forward over set in chunks, into st, conf[t], ent[t], ml[t] and
 * rg[t]. */
static int forward_all(struct mtl_train *tr, const struct mtl_eval_set *set,
		       const struct mtl_model *model, struct mtl_step_stats *st,
		       struct mtl_confusion *conf, const struct mtl_bio *bio,
		       struct mtl_entity_score *ent,
		       struct mtl_multilabel_score *ml,
		       struct mtl_regression_score *rg, struct mtl_err *err)
{
	enum { CHUNK = 32 };
	const struct mtl_example *sel[CHUNK];
	size_t room = (size_t)model->bert->cfg.max_pos;
	int *tags, rc = 0;

	for (int t = 0; t < model->tasks->n; t++)
		if ((size_t)model->tasks->task[t].n_labels > room)
			room = (size_t)model->tasks->task[t].n_labels;
	tags = malloc(2 * room * sizeof(int));

	if (!tags)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");

	for (int i = 0; i < set->n; i += CHUNK) {
		int n = set->n - i < CHUNK ? set->n - i : CHUNK;
		struct mtl_batch b;

		for (int k = 0; k < n; k++)
			sel[k] = &set->ex[i + k];
		if ((rc = mtl_batch_make(&b, sel, n, model->tasks, set->map, ~0ull,
					 model->bert->cfg.pad_id, err)))
			break;
		rc = mtl_train_eval(tr, &b, st, conf, err);
		if (!rc)
			add_multilabel(tr, &b, ml, tags, tags + room);
		if (!rc && ((rc = add_regression(tr, &b, rg)) ||
			    (rc = add_entities(tr, &b, sel, set->map, bio, ent,
					       tags, tags + room))))
			mtl_err_set(err, rc, "out of memory");
		mtl_batch_release(&b);
		if (rc)
			break;
	}
	free(tags);
	return rc;
}

/* bio[t] and ent[t] for each token task whose labels are BIO tags;
 * bio[t].n_labels stays 0 for the others. */
static int init_entities(const struct mtl_tasks *ts, struct mtl_bio *bio,
			 struct mtl_entity_score *ent)
{
	for (int t = 0; t < ts->n; t++) {
		const struct mtl_task *task = &ts->task[t];

		if (task->kind != MTL_TASK_TOKEN ||
		    mtl_bio_init(&bio[t], (const char *const *)task->labels,
				 task->n_labels, 0, NULL))
			continue; /* not an entity tag set */
		if (mtl_entity_init(&ent[t], &bio[t]))
			return MTL_ERR_NOMEM;
	}
	return 0;
}

int mtl_eval_run(struct mtl_eval_result *res, struct mtl_train *tr,
		 const struct mtl_eval_set *set,
		 const struct mtl_model *model, struct mtl_err *err)
{
	const struct mtl_tasks *ts = model->tasks;
	size_t T = (size_t)ts->n;
	struct mtl_confusion *conf = calloc(T + 1, sizeof(*conf));
	struct mtl_bio *bio = calloc(T + 1, sizeof(*bio));
	struct mtl_entity_score *ent = calloc(T + 1, sizeof(*ent));
	struct mtl_multilabel_score *ml = calloc(T + 1, sizeof(*ml));
	struct mtl_regression_score *rg = calloc(T + 1, sizeof(*rg));
	struct mtl_step_stats st;
	int rc = MTL_ERR_NOMEM;

	memset(res, 0, sizeof(*res));
	res->n_tasks = ts->n;
	res->examples = set->n;
	res->task_loss = calloc(T + 1, sizeof(double));
	res->accuracy = calloc(T + 1, sizeof(double));
	res->f1 = calloc(T + 1, sizeof(double));
	res->labelled = calloc(T + 1, sizeof(int64_t));
	res->entity_f1 = calloc(T + 1, sizeof(double));
	res->micro_f1 = calloc(T + 1, sizeof(double));
	res->pearson = calloc(T + 1, sizeof(double));
	res->spearman = calloc(T + 1, sizeof(double));
	if (mtl_step_stats_init(&st, ts->n)) {
		free(conf);
		free(bio);
		free(ent);
		free(ml);
		free(rg);
		mtl_eval_result_release(res);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	if (!conf || !bio || !ent || !ml || !rg || !res->task_loss ||
	    !res->accuracy || !res->f1 || !res->labelled || !res->entity_f1 ||
	    !res->micro_f1 || !res->pearson || !res->spearman)
		goto out;
	for (int t = 0; t < ts->n; t++)
		if (ts->task[t].kind == MTL_TASK_MULTILABEL
		    ? mtl_multilabel_init(&ml[t], ts->task[t].n_labels)
		    : mtl_confusion_init(&conf[t], ts->task[t].n_labels))
			goto out;
	if (init_entities(ts, bio, ent) ||
	    (rc = forward_all(tr, set, model, &st, conf, bio, ent, ml, rg, err)))
		goto out;
	for (int t = 0; t < ts->n; t++) {
		res->labelled[t] = st.labelled[t];
		if (st.labelled[t]) {
			res->task_loss[t] = st.task_loss[t] / (double)st.labelled[t];
			res->accuracy[t] = (double)st.correct[t] / (double)st.labelled[t];
			res->f1[t] = mtl_confusion_macro_f1(&conf[t]);
		}
		res->micro_f1[t] = res->pearson[t] = res->spearman[t] = NAN;
		if (ts->task[t].kind == MTL_TASK_REGRESSION) {
			if ((rc = mtl_regression_finish(&rg[t])))
				goto out;
			res->accuracy[t] = res->f1[t] = NAN;
			res->pearson[t] = rg[t].pearson;
			res->spearman[t] = rg[t].spearman;
		}
		if (ts->task[t].kind == MTL_TASK_MULTILABEL) {
			mtl_multilabel_finish(&ml[t]);
			res->f1[t] = ml[t].macro_f1;
			res->micro_f1[t] = ml[t].micro.f1;
		}
		res->entity_f1[t] = NAN;
		if (bio[t].n_labels && st.labelled[t]) {
			mtl_entity_finish(&ent[t]);
			res->entity_f1[t] = ent[t].micro.f1;
		}
		res->loss += ts->task[t].weight * res->task_loss[t];
	}
out:
	if (rc == MTL_ERR_NOMEM)
		mtl_err_set(err, rc, "out of memory");
	for (int t = 0; conf && bio && ent && ml && rg && t < ts->n; t++) {
		mtl_regression_release(&rg[t]);
		mtl_multilabel_release(&ml[t]);
		mtl_confusion_release(&conf[t]);
		mtl_entity_release(&ent[t]);
		mtl_bio_release(&bio[t]);
	}
	free(conf);
	free(bio);
	free(ent);
	free(ml);
	free(rg);
	mtl_step_stats_release(&st);
	if (rc)
		mtl_eval_result_release(res);
	return rc;
}

void mtl_eval_format(char *buf, size_t n, const struct mtl_tasks *ts,
		     const struct mtl_eval_result *res)
{
	size_t k = (size_t)snprintf(buf, n, "loss %.4f", res->loss);

	for (int t = 0; t < ts->n && k < n; t++) {
		int tok = ts->task[t].kind == MTL_TASK_TOKEN;

		if (!res->labelled[t])
			continue;
		if (ts->task[t].kind == MTL_TASK_REGRESSION) {
			k += (size_t)snprintf(buf + k, n - k, ", %s mse %.4f pearson %.4f spearman %.4f",
					      ts->task[t].name, res->task_loss[t],
					      res->pearson[t], res->spearman[t]);
			continue;
		}
		k += (size_t)snprintf(buf + k, n - k, ", %s accuracy %.4f %s %.4f",
				      ts->task[t].name, res->accuracy[t],
				      tok ? "token_f1" : "f1", res->f1[t]);
		if (k < n && !isnan(res->entity_f1[t]))
			k += (size_t)snprintf(buf + k, n - k, " entity_f1 %.4f",
					      res->entity_f1[t]);
		if (k < n && !isnan(res->micro_f1[t]))
			k += (size_t)snprintf(buf + k, n - k, " micro_f1 %.4f",
					      res->micro_f1[t]);
	}
}

int mtl_eval_best_init(struct mtl_eval_best *b, const char *metric,
		       const struct mtl_tasks *ts, int patience,
		       struct mtl_err *err)
{
	static const struct {
		const char *name;
		enum mtl_eval_kind kind;
	} figure[] = {
		{ "accuracy", MTL_EVAL_ACCURACY }, { "f1", MTL_EVAL_F1 },
		{ "token_f1", MTL_EVAL_F1 }, { "entity_f1", MTL_EVAL_ENTITY_F1 },
		{ "micro_f1", MTL_EVAL_MICRO_F1 }, { "mse", MTL_EVAL_MSE },
		{ "pearson", MTL_EVAL_PEARSON }, { "spearman", MTL_EVAL_SPEARMAN },
	};
	const char *colon = strrchr(metric, ':');
	const struct mtl_task *task;
	char name[256];
	size_t i;

	memset(b, 0, sizeof(*b));
	b->metric = metric;
	b->task = -1;
	b->patience = patience;
	b->value = NAN;
	b->step = -1;
	if (!strcmp(metric, "loss"))
		return 0;
	if (!colon || (size_t)(colon - metric) >= sizeof(name))
		return mtl_err_set(err, MTL_ERR_ARG, "unknown metric '%s': loss or TASK:FIGURE expected",
				   metric);
	memcpy(name, metric, (size_t)(colon - metric));
	name[colon - metric] = 0;
	if ((b->task = mtl_task_find(ts, name)) < 0)
		return mtl_err_set(err, MTL_ERR_ARG, "metric '%s': the model has no task '%s'",
				   metric, name);
	task = &ts->task[b->task];
	for (i = 0; i < sizeof(figure) / sizeof(*figure); i++)
		if (!strcmp(colon + 1, figure[i].name))
			break;
	if (i == sizeof(figure) / sizeof(*figure))
		return mtl_err_set(err, MTL_ERR_ARG, "metric '%s': unknown figure '%s': accuracy, f1, token_f1, entity_f1, micro_f1, mse, pearson or spearman",
				   metric, colon + 1);
	b->kind = figure[i].kind;
	if ((task->kind == MTL_TASK_REGRESSION) != (i >= 5))
		return mtl_err_set(err, MTL_ERR_ARG, task->kind == MTL_TASK_REGRESSION
				   ? "metric '%s': '%s' is a regression task: it has mse, pearson and spearman"
				   : "metric '%s': '%s' is not a regression task: mse, pearson and spearman are for regression tasks",
				   metric, name);
	if (task->kind == MTL_TASK_SEQUENCE && i >= 2)
		return mtl_err_set(err, MTL_ERR_ARG, "metric '%s': '%s' is a sequence task: it has accuracy and f1",
				   metric, name);
	if (task->kind == MTL_TASK_MULTILABEL && (i == 2 || i == 3))
		return mtl_err_set(err, MTL_ERR_ARG, "metric '%s': '%s' is a multilabel task: it has accuracy, f1 and micro_f1",
				   metric, name);
	if (task->kind == MTL_TASK_TOKEN && b->kind == MTL_EVAL_MICRO_F1)
		return mtl_err_set(err, MTL_ERR_ARG, "metric '%s': '%s' is a token task: micro_f1 is for multilabel tasks",
				   metric, name);
	if (b->kind == MTL_EVAL_ENTITY_F1) {
		struct mtl_bio bio;

		if (mtl_bio_init(&bio, (const char *const *)task->labels,
				 task->n_labels, 0, NULL))
			return mtl_err_set(err, MTL_ERR_ARG, "metric '%s': the labels of '%s' are not BIO tags: no entities",
					   metric, name);
		mtl_bio_release(&bio);
	}
	return 0;
}

char **mtl_eval_metric_names(const struct mtl_tasks *ts, size_t *n)
{
	static const char *const fig[] = { "accuracy", "f1", "token_f1",
					   "entity_f1", "micro_f1", "mse",
					   "pearson", "spearman" };
	enum { NF = sizeof(fig) / sizeof(*fig) };
	size_t room = 8, k = 1;
	char **names, *p;
	struct mtl_eval_best b;

	for (int t = 0; t < ts->n; t++)
		room += NF * (strlen(ts->task[t].name) + 12 + sizeof(char *));
	if (!(names = malloc(room + 5 * sizeof(char *))))
		return NULL;
	p = (char *)(names + NF * ts->n + 2);
	names[0] = strcpy(p, "loss");
	p += 5;
	for (int t = 0; t < ts->n; t++)
		for (int f = 0; f < NF; f++) {
			sprintf(p, "%s:%s", ts->task[t].name, fig[f]);
			if (mtl_eval_best_init(&b, p, ts, 0, NULL))
				continue;
			names[k++] = p;
			p += strlen(p) + 1;
		}
	names[k] = NULL;
	*n = k;
	return names;
}

double mtl_eval_best_value(const struct mtl_eval_best *b,
			   const struct mtl_eval_result *res)
{
	if (b->task < 0)
		return res->loss;
	if (!res->labelled[b->task])
		return NAN;
	switch (b->kind) {
	case MTL_EVAL_ACCURACY:
		return res->accuracy[b->task];
	case MTL_EVAL_F1:
		return res->f1[b->task];
	case MTL_EVAL_ENTITY_F1:
		return res->entity_f1[b->task];
	case MTL_EVAL_MICRO_F1:
		return res->micro_f1[b->task];
	case MTL_EVAL_MSE:
		return res->task_loss[b->task];
	case MTL_EVAL_PEARSON:
		return res->pearson[b->task];
	case MTL_EVAL_SPEARMAN:
		return res->spearman[b->task];
	default:
		return res->loss;
	}
}

int mtl_eval_best_update(struct mtl_eval_best *b, long step,
			 const struct mtl_eval_result *res,
			 const struct mtl_model *model, int keep,
			 struct mtl_err *err)
{
	double v = mtl_eval_best_value(b, res);
	int lower = b->task < 0 || b->kind == MTL_EVAL_MSE;
	size_t ne = model->bert->n_params, nh = model->heads->n_params;

	if (isnan(v) || !(isnan(b->value) || (lower ? v < b->value : v > b->value))) {
		if (b->patience && ++b->stale >= b->patience)
			b->stop = 1;
		return 0;
	}
	if (keep) {
		if (!b->weights && !(b->weights = malloc((ne + nh + 1) * sizeof(float))))
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		memcpy(b->weights, model->bert->params, ne * sizeof(float));
		memcpy(b->weights + ne, model->heads->params, nh * sizeof(float));
		b->n_weights = ne + nh;
	}
	b->value = v;
	b->step = step;
	b->stale = 0;
	return 1;
}

int mtl_eval_best_restore(const struct mtl_eval_best *b,
			  struct mtl_model *model)
{
	size_t ne = model->bert->n_params;

	if (!b->weights)
		return 1;
	MTL_ASSERT(b->n_weights == ne + model->heads->n_params);
	memcpy(model->bert->params, b->weights, ne * sizeof(float));
	memcpy(model->heads->params, b->weights + ne,
	       model->heads->n_params * sizeof(float));
	return 0;
}

void mtl_eval_best_release(struct mtl_eval_best *b)
{
	free(b->weights);
	b->weights = NULL;
	b->n_weights = 0;
}
