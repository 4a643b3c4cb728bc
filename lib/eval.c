/* eval.c - the evaluation set and its figures; see eval.h. */
#include "eval.h"

#include <stdlib.h>
#include <string.h>

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
	memset(res, 0, sizeof(*res));
}

/* The forward over set in chunks, into st and conf[t]. */
static int forward_all(struct mtl_train *tr, const struct mtl_eval_set *set,
		       const struct mtl_model *model, struct mtl_step_stats *st,
		       struct mtl_confusion *conf, struct mtl_err *err)
{
	enum { CHUNK = 32 };
	const struct mtl_example *sel[CHUNK];
	int rc;

	for (int i = 0; i < set->n; i += CHUNK) {
		int n = set->n - i < CHUNK ? set->n - i : CHUNK;
		struct mtl_batch b;

		for (int k = 0; k < n; k++)
			sel[k] = &set->ex[i + k];
		if ((rc = mtl_batch_make(&b, sel, n, model->tasks, set->map, ~0ull,
					 model->bert->cfg.pad_id, err)))
			return rc;
		rc = mtl_train_eval(tr, &b, st, conf, err);
		mtl_batch_release(&b);
		if (rc)
			return rc;
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
	struct mtl_step_stats st;
	int rc = MTL_ERR_NOMEM;

	memset(res, 0, sizeof(*res));
	res->n_tasks = ts->n;
	res->examples = set->n;
	res->task_loss = calloc(T + 1, sizeof(double));
	res->accuracy = calloc(T + 1, sizeof(double));
	res->f1 = calloc(T + 1, sizeof(double));
	res->labelled = calloc(T + 1, sizeof(int64_t));
	if (mtl_step_stats_init(&st, ts->n)) {
		free(conf);
		mtl_eval_result_release(res);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	if (!conf || !res->task_loss || !res->accuracy || !res->f1 || !res->labelled)
		goto out;
	for (int t = 0; t < ts->n; t++)
		if (mtl_confusion_init(&conf[t], ts->task[t].n_labels))
			goto out;
	if ((rc = forward_all(tr, set, model, &st, conf, err)))
		goto out;
	for (int t = 0; t < ts->n; t++) {
		res->labelled[t] = st.labelled[t];
		if (st.labelled[t]) {
			res->task_loss[t] = st.task_loss[t] / (double)st.labelled[t];
			res->accuracy[t] = (double)st.correct[t] / (double)st.labelled[t];
			res->f1[t] = mtl_confusion_macro_f1(&conf[t]);
		}
		res->loss += ts->task[t].weight * res->task_loss[t];
	}
out:
	if (rc == MTL_ERR_NOMEM)
		mtl_err_set(err, rc, "out of memory");
	for (int t = 0; conf && t < ts->n; t++)
		mtl_confusion_release(&conf[t]);
	free(conf);
	mtl_step_stats_release(&st);
	if (rc)
		mtl_eval_result_release(res);
	return rc;
}
