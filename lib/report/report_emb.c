/*
 * report_emb.c - the embedding evaluators of mtl-report (report.h,
 * mtl_report_evaluate): lib/heads/embset.h over the embeddings a report read.
 */
#include "report.h"

#include <stdlib.h>
#include <string.h>

void mtl_report_embeval_free(struct mtl_report_embeval *e)
{
	if (!e)
		return;
	for (int i = 0; i < e->n_lab; i++)
		free(e->lab[i].task);
	free(e->lab);
	free(e->qrels);
	free(e->pairs);
	free(e);
}

/* Evaluates task t of the report's embeddings into a new entry of ev. */
static int eval_task(struct mtl_report_embeval *ev, const struct mtl_embset *s,
		     int t, const struct mtl_report_eval_opts *o,
		     struct mtl_err *err)
{
	struct mtl_report_label_eval *l;
	int tt = -1, rc;

	if (o->train && (tt = mtl_embset_task_find(o->train, s->task[t].name)) < 0)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "no training embedding is labelled for task '%s'", s->task[t].name);
	if (o->train && o->train->dim != s->dim)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "training embeddings of dimension %d, expected %d",
				   o->train->dim, s->dim);
	if (!(l = realloc(ev->lab, sizeof(*l) * (size_t)(ev->n_lab + 1))))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	ev->lab = l;
	l = &ev->lab[ev->n_lab];
	memset(l, 0, sizeof(*l));
	if (!(l->task = strdup(s->task[t].name)))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	ev->n_lab++;
	l->with_train = o->train != NULL;
	rc = mtl_embset_eval_labels(&l->e, s, t, o->train, tt, &o->lab, err);
	return rc;
}

int mtl_report_evaluate(struct mtl_report *rep,
			const struct mtl_report_eval_opts *o,
			struct mtl_err *err)
{
	struct mtl_embset *s = &rep->emb.set;
	struct mtl_report_embeval *ev;
	int rc = 0;

	if (!(o->labels && s->n_tasks) && !o->task && !o->qrels && !o->pairs)
		return 0; /* nothing to show */
	if (!(ev = calloc(1, sizeof(*ev))))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	rep->emb.eval = ev;
	if (o->task && mtl_embset_task_find(s, o->task) < 0)
		return mtl_err_set(err, MTL_ERR_FORMAT, "no embedding is labelled for task '%s'",
				   o->task);
	for (int t = 0; o->labels && t < s->n_tasks; t++)
		if ((!o->task || !strcmp(o->task, s->task[t].name)) &&
		    (rc = eval_task(ev, s, t, o, err)))
			return rc;
	if (o->qrels) {
		ev->queries = o->queries->n;
		if (!(ev->qrels = strdup(o->qrels_name)))
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		if ((rc = mtl_embset_eval_qrels(&ev->ir, o->queries, s, o->qrels, o->qrels_name,
						o->lab.threads, err)))
			return rc;
	}
	if (o->pairs) {
		if (!(ev->pairs = strdup(o->pairs_name)))
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		rc = mtl_embset_eval_pairs(&ev->sim, s, o->pairs, o->pairs_name, err);
	}
	return rc;
}
