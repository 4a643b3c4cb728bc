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
	free(res->emb);
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

/* The sentence vectors the embedding evaluators read, kept per task over
 * the chunks: an embedding task's labelled examples as row pairs (text,
 * other text) [2n, H] with their scores (NaN: a positive); a label
 * task's labelled examples as rows [n, H] with their labels, numbered in
 * order of first appearance as mtl-report numbers an embeddings
 * stream's (so that kNN's ties go the same way). */
struct emb_keep {
	float *x;
	double *score; /* [n] embedding tasks */
	int *y;        /* [n] label tasks */
	int *first;    /* [task labels] label -> its number, -1: not seen */
	int seen;      /* labels numbered */
	long n, cap;
};

static void emb_keep_release(struct emb_keep *k)
{
	free(k->x);
	free(k->score);
	free(k->y);
	free(k->first);
}

/* Room in k for one more item of rows x H floats; 0 or -1. */
static int emb_keep_grow(struct emb_keep *k, int rows, int H)
{
	long cap = k->cap ? 2 * k->cap : 64;
	void *p;

	if (k->n < k->cap)
		return 0;
	if (!(p = realloc(k->x, sizeof(float) * (size_t)cap * (size_t)rows * (size_t)H)))
		return -1;
	k->x = p;
	if (!(p = realloc(k->score, sizeof(double) * (size_t)cap)))
		return -1;
	k->score = p;
	if (!(p = realloc(k->y, sizeof(int) * (size_t)cap)))
		return -1;
	k->y = p;
	k->cap = cap;
	return 0;
}

/* Whether task t's vectors are kept: an embedding task, or a sequence
 * task in emb_labels. */
static int keeps(const struct mtl_task *task, int t, uint64_t emb_labels)
{
	return task->kind == MTL_TASK_EMBEDDING ||
	       (task->kind == MTL_TASK_SEQUENCE && t < 64 && (emb_labels >> t & 1));
}

/* The vectors of b's labelled examples (after its evaluation forward)
 * into keep[t], pooled into P [(B + E), H] as each task needs. */
static int add_vectors(struct mtl_train *tr, const struct mtl_batch *b,
		       const struct mtl_model *model, uint64_t emb_labels,
		       struct emb_keep *keep, float *P)
{
	const struct mtl_tasks *ts = model->tasks;
	size_t H = (size_t)model->bert->cfg.hidden;
	int pooled = -1;

	for (int t = 0; t < ts->n && t < b->n_tasks; t++) {
		const int32_t *lab = b->labels[t];
		int emb = ts->task[t].kind == MTL_TASK_EMBEDDING, w = emb ? 2 : 1;
		enum mtl_pool mode = emb ? tr->hd->h[t].pool : model->pool.mode;
		struct emb_keep *k = &keep[t];

		if (!lab || !keeps(&ts->task[t], t, emb_labels))
			continue;
		if ((int)mode != pooled)
			mtl_train_pool(tr, b, mode, P);
		pooled = (int)mode;
		for (int i = 0; i < b->B; i++) {
			float *x;

			if (lab[i] == MTL_IGNORE)
				continue;
			if (emb_keep_grow(k, w, (int)H))
				return MTL_ERR_NOMEM;
			x = k->x + (size_t)k->n * (size_t)w * H;
			memcpy(x, P + (size_t)i * H, sizeof(float) * H);
			if (emb) {
				memcpy(x + H, P + (size_t)lab[i] * H, sizeof(float) * H);
				k->score[k->n] = b->score && b->score[t] ? b->score[t][i] : NAN;
			} else {
				if (k->first[lab[i]] < 0)
					k->first[lab[i]] = k->seen++;
				k->y[k->n] = k->first[lab[i]];
			}
			k->n++;
		}
	}
	return 0;
}

/* Embedding task t's figures from its kept pairs k into res. */
static int eval_pairs(struct mtl_eval_result *res, int t,
		      const struct emb_keep *k, int H, struct mtl_err *err)
{
	struct mtl_eval_emb *e = &res->emb[t];
	size_t rh = (size_t)H;
	long ns = 0, nu = 0, n = k->n ? k->n : 1;
	long *a = malloc(sizeof(long) * (size_t)n), *b = malloc(sizeof(long) * (size_t)n);
	double *sc = malloc(sizeof(double) * (size_t)n);
	float *q = malloc(sizeof(float) * (size_t)n * rh);
	float *c = malloc(sizeof(float) * (size_t)n * rh);
	struct mtl_embset_pairs_eval sim;
	int rc = MTL_ERR_NOMEM;

	if (!a || !b || !sc || !q || !c)
		goto out;
	for (long i = 0; i < k->n; i++) {
		const float *x = k->x + (size_t)i * 2 * rh;

		if (!isnan(k->score[i])) {
			a[ns] = 2 * i;
			b[ns] = 2 * i + 1;
			sc[ns++] = k->score[i];
			continue;
		}
		memcpy(q + (size_t)nu * rh, x, sizeof(float) * rh);
		memcpy(c + (size_t)nu++ * rh, x + rh, sizeof(float) * rh);
	}
	if (ns) {
		if ((rc = mtl_embset_similarity(&sim, k->x, H, a, b, sc, ns, err)))
			goto out;
		e->pairs = sim.pairs;
		res->pearson[t] = sim.pearson;
		res->spearman[t] = sim.spearman;
	}
	rc = nu ? mtl_embset_pair_retrieval(&e->ir, q, c, nu, H, 1, err) : 0;
out:
	free(a);
	free(b);
	free(sc);
	free(q);
	free(c);
	return rc == MTL_ERR_NOMEM ? mtl_err_set(err, rc, "out of memory") : rc;
}

/* The embedding evaluators over the kept vectors into res->emb. */
static int eval_embeddings(struct mtl_eval_result *res,
			   const struct mtl_tasks *ts, const struct emb_keep *keep,
			   int H, struct mtl_err *err)
{
	struct mtl_embset_labels_opts o;
	int rc;

	mtl_embset_labels_defaults(&o);
	for (int t = 0; t < ts->n; t++) {
		struct mtl_eval_emb *e = &res->emb[t];
		const struct emb_keep *k = &keep[t];

		mtl_embeval_ir_finish(&e->ir);
		e->lab.knn_accuracy = e->lab.probe_accuracy = e->lab.vmeasure = NAN;
		mtl_embeval_ir_finish(&e->lab.same);
		if (!k->n)
			continue;
		if (ts->task[t].kind == MTL_TASK_EMBEDDING) {
			if ((rc = eval_pairs(res, t, k, H, err)))
				return rc;
		} else {
			/* a view of the kept rows as the set mtl-report reads */
			struct mtl_embset_task view_task = { .n_labels = k->seen, .y = k->y };
			struct mtl_embset view = { .n = k->n, .cap = k->n, .dim = H,
						   .x = k->x, .task = &view_task,
						   .n_tasks = 1 };

			if ((rc = mtl_embset_eval_labels(&e->lab, &view, 0, NULL, -1, &o, err)))
				return rc;
		}
	}
	return 0;
}

/* The forward over set in chunks, into st, conf[t], ent[t], ml[t],
 * rg[t] and keep[t]. */
static int forward_all(struct mtl_train *tr, const struct mtl_eval_set *set,
		       const struct mtl_model *model, struct mtl_step_stats *st,
		       struct mtl_confusion *conf, const struct mtl_bio *bio,
		       struct mtl_entity_score *ent,
		       struct mtl_multilabel_score *ml,
		       struct mtl_regression_score *rg, struct emb_keep *keep,
		       struct mtl_err *err)
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
		if (!rc) {
			float *P = malloc(sizeof(float) * (size_t)(b.B + b.E) *
					  (size_t)model->bert->cfg.hidden);

			if (!P || (rc = add_vectors(tr, &b, model, set->emb_labels, keep, P)))
				rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
			free(P);
		}
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
	struct emb_keep *keep = calloc(T + 1, sizeof(*keep));
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
	res->emb = calloc(T + 1, sizeof(*res->emb));
	if (mtl_step_stats_init(&st, ts->n)) {
		free(conf);
		free(bio);
		free(ent);
		free(ml);
		free(rg);
		free(keep);
		mtl_eval_result_release(res);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	if (!conf || !bio || !ent || !ml || !rg || !keep || !res->task_loss ||
	    !res->accuracy || !res->f1 || !res->labelled || !res->entity_f1 ||
	    !res->micro_f1 || !res->pearson || !res->spearman || !res->emb)
		goto out;
	for (int t = 0; t < ts->n; t++) {
		int nl = ts->task[t].n_labels;

		if (ts->task[t].kind == MTL_TASK_MULTILABEL
		    ? mtl_multilabel_init(&ml[t], nl)
		    : mtl_confusion_init(&conf[t], nl))
			goto out;
		if (keeps(&ts->task[t], t, set->emb_labels) &&
		    ts->task[t].kind == MTL_TASK_SEQUENCE) {
			if (!(keep[t].first = malloc(sizeof(int) * (size_t)(nl ? nl : 1))))
				goto out;
			for (int l = 0; l < nl; l++)
				keep[t].first[l] = -1;
		}
	}
	if (init_entities(ts, bio, ent) ||
	    (rc = forward_all(tr, set, model, &st, conf, bio, ent, ml, rg, keep, err)))
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
	rc = eval_embeddings(res, ts, keep, model->bert->cfg.hidden, err);
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
	for (int t = 0; keep && t < ts->n; t++)
		emb_keep_release(&keep[t]);
	free(keep);
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
		const struct mtl_eval_emb *e = res->emb ? &res->emb[t] : NULL;

		if (!res->labelled[t])
			continue;
		if (ts->task[t].kind == MTL_TASK_REGRESSION) {
			k += (size_t)snprintf(buf + k, n - k, ", %s mse %.4f pearson %.4f spearman %.4f",
					      ts->task[t].name, res->task_loss[t],
					      res->pearson[t], res->spearman[t]);
			continue;
		}
		k += (size_t)snprintf(buf + k, n - k, ", %s accuracy %.4f",
				      ts->task[t].name, res->accuracy[t]);
		if (k < n && ts->task[t].kind != MTL_TASK_EMBEDDING)
			k += (size_t)snprintf(buf + k, n - k, " %s %.4f",
					      tok ? "token_f1" : "f1", res->f1[t]);
		if (k < n && !isnan(res->entity_f1[t]))
			k += (size_t)snprintf(buf + k, n - k, " entity_f1 %.4f",
					      res->entity_f1[t]);
		if (k < n && !isnan(res->micro_f1[t]))
			k += (size_t)snprintf(buf + k, n - k, " micro_f1 %.4f",
					      res->micro_f1[t]);
		if (k < n && e && e->pairs)
			k += (size_t)snprintf(buf + k, n - k, " spearman %.4f",
					      res->spearman[t]);
		if (k < n && e && e->ir.queries)
			k += (size_t)snprintf(buf + k, n - k, " mrr@10 %.4f ndcg@10 %.4f",
					      e->ir.mrr10, e->ir.ndcg10);
		if (k < n && e && e->lab.labelled)
			k += (size_t)snprintf(buf + k, n - k, " knn_accuracy %.4f v_measure %.4f",
					      e->lab.knn_accuracy, e->lab.vmeasure);
	}
}

/* The figures a metric names, and the task kinds (bit per enum
 * mtl_task_kind) that have each; the order of the usage and the lists. */
#define KIND(k) (1u << MTL_TASK_##k)
static const struct figure {
	const char *name;
	enum mtl_eval_kind kind;
	unsigned kinds;
} figures[] = {
	{ "accuracy", MTL_EVAL_ACCURACY,
	  KIND(SEQUENCE) | KIND(PAIR) | KIND(TOKEN) | KIND(MULTILABEL) | KIND(EMBEDDING) },
	{ "f1", MTL_EVAL_F1, KIND(SEQUENCE) | KIND(PAIR) | KIND(TOKEN) | KIND(MULTILABEL) },
	{ "token_f1", MTL_EVAL_F1, KIND(TOKEN) },
	{ "entity_f1", MTL_EVAL_ENTITY_F1, KIND(TOKEN) },
	{ "micro_f1", MTL_EVAL_MICRO_F1, KIND(MULTILABEL) },
	{ "mse", MTL_EVAL_MSE, KIND(REGRESSION) },
	{ "pearson", MTL_EVAL_PEARSON, KIND(REGRESSION) | KIND(EMBEDDING) },
	{ "spearman", MTL_EVAL_SPEARMAN, KIND(REGRESSION) | KIND(EMBEDDING) },
	{ "mrr@10", MTL_EVAL_MRR10, KIND(EMBEDDING) },
	{ "ndcg@10", MTL_EVAL_NDCG10, KIND(EMBEDDING) },
	{ "recall@1", MTL_EVAL_RECALL1, KIND(EMBEDDING) },
	{ "recall@10", MTL_EVAL_RECALL10, KIND(EMBEDDING) },
	{ "recall@100", MTL_EVAL_RECALL100, KIND(EMBEDDING) },
	{ "map@100", MTL_EVAL_MAP100, KIND(EMBEDDING) },
	{ "knn_accuracy", MTL_EVAL_KNN_ACCURACY, KIND(SEQUENCE) },
	{ "v_measure", MTL_EVAL_V_MEASURE, KIND(SEQUENCE) },
};
enum { N_FIGURES = sizeof(figures) / sizeof(*figures) };

/* "a, b and c": the figures of kind k (or every figure, k < 0) into buf,
 * joined by "and" or "or". */
static void list_figures(char *buf, size_t n, int k, const char *last)
{
	int m = 0, seen = 0;
	size_t len = 0;

	buf[0] = 0;
	for (int i = 0; i < N_FIGURES; i++)
		m += k < 0 || (figures[i].kinds >> k & 1);
	for (int i = 0; i < N_FIGURES && len < n; i++) {
		if (k >= 0 && !(figures[i].kinds >> k & 1))
			continue;
		seen++;
		len += (size_t)snprintf(buf + len, n - len, "%s%s",
					seen == 1 ? "" : seen == m ? last : ", ",
					figures[i].name);
	}
}

int mtl_eval_best_init(struct mtl_eval_best *b, const char *metric,
		       const struct mtl_tasks *ts, int patience,
		       struct mtl_err *err)
{
	const char *colon = strrchr(metric, ':');
	const struct figure *f = NULL;
	const struct mtl_task *task;
	char name[256], list[256], kinds[128];
	size_t kl = 0;

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
	for (int i = 0; i < N_FIGURES && !f; i++)
		if (!strcmp(colon + 1, figures[i].name))
			f = &figures[i];
	if (!f) {
		list_figures(list, sizeof(list), -1, " or ");
		return mtl_err_set(err, MTL_ERR_ARG, "metric '%s': unknown figure '%s': %s",
				   metric, colon + 1, list);
	}
	b->kind = f->kind;
	if (!(f->kinds >> task->kind & 1)) {
		list_figures(list, sizeof(list), (int)task->kind, " and ");
		kinds[0] = 0;
		for (unsigned k = 0, left = f->kinds; left && kl < sizeof(kinds); k++, left >>= 1)
			if (left & 1)
				kl += (size_t)snprintf(kinds + kl, sizeof(kinds) - kl, "%s%s",
						       !kl ? "" : left > 1 ? ", " : " and ",
						       mtl_task_kind_name((enum mtl_task_kind)k));
		return mtl_err_set(err, MTL_ERR_ARG, "metric '%s': '%s' is %s %s task: it has %s (%s is for %s tasks)",
				   metric, name, task->kind == MTL_TASK_EMBEDDING ? "an" : "a",
				   mtl_task_kind_name(task->kind), list, f->name, kinds);
	}
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

uint64_t mtl_eval_best_emb_labels(const struct mtl_eval_best *b)
{
	return b->metric && b->task >= 0 &&
	       (b->kind == MTL_EVAL_KNN_ACCURACY || b->kind == MTL_EVAL_V_MEASURE)
	       ? 1ull << b->task : 0;
}

char **mtl_eval_metric_names(const struct mtl_tasks *ts, size_t *n)
{
	size_t room = 8, k = 1;
	char **names, *p;
	struct mtl_eval_best b;

	for (int t = 0; t < ts->n; t++)
		room += N_FIGURES * (strlen(ts->task[t].name) + 16 + sizeof(char *));
	if (!(names = malloc(room + 5 * sizeof(char *))))
		return NULL;
	p = (char *)(names + N_FIGURES * ts->n + 2);
	names[0] = strcpy(p, "loss");
	p += 5;
	for (int t = 0; t < ts->n; t++)
		for (int f = 0; f < N_FIGURES; f++) {
			sprintf(p, "%s:%s", ts->task[t].name, figures[f].name);
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
	const struct mtl_eval_emb *e = res->emb ? &res->emb[b->task > 0 ? b->task : 0] : NULL;

	if (b->task < 0)
		return res->loss;
	if (!e && b->kind >= MTL_EVAL_MRR10)
		return NAN;
	switch (b->kind) {
	case MTL_EVAL_MRR10:
		return e->ir.mrr10;
	case MTL_EVAL_NDCG10:
		return e->ir.ndcg10;
	case MTL_EVAL_RECALL1:
		return e->ir.recall1;
	case MTL_EVAL_RECALL10:
		return e->ir.recall10;
	case MTL_EVAL_RECALL100:
		return e->ir.recall100;
	case MTL_EVAL_MAP100:
		return e->ir.map100;
	case MTL_EVAL_KNN_ACCURACY:
		return e->lab.knn_accuracy;
	case MTL_EVAL_V_MEASURE:
		return e->lab.vmeasure;
	default:
		break;
	}
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
