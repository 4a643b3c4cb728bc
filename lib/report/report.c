/* report.c - collecting and scoring the streams mtl-report shows; see report.h. */
#include "report.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "steps.h"

/* --- small helpers --- */

static char *str_dup(const msgpack_object *o)
{
	return strndup(o->via.str.ptr, o->via.str.size);
}

static int str_eq(const msgpack_object *o, const char *s)
{
	return o->type == MSGPACK_OBJECT_STR && strlen(s) == o->via.str.size &&
	       !memcmp(o->via.str.ptr, s, o->via.str.size);
}

/* An id as text: a string as it is, an integer in decimal, else JSON. */
static char *id_text(const msgpack_object *o)
{
	char *s = NULL;
	size_t len = 0;
	FILE *m;
	int64_t v;

	if (!o)
		return strdup("-");
	if (o->type == MSGPACK_OBJECT_STR)
		return str_dup(o);
	if (mtl_mp_as_int(o, &v) == 0) {
		char num[24];
		snprintf(num, sizeof(num), "%lld", (long long)v);
		return strdup(num);
	}
	if (!(m = open_memstream(&s, &len)))
		return NULL;
	if (mtl_mp_to_json(m, o, NULL)) {
		fclose(m);
		free(s);
		return strdup("?");
	}
	fclose(m);
	return s;
}

/* --- steps --- */

static int family_key(struct mtl_report_family *f, const char *k, long cap)
{
	char **key;
	double **v;

	for (int i = 0; i < f->n; i++)
		if (!strcmp(k, f->key[i]))
			return i;
	key = realloc(f->key, (size_t)(f->n + 1) * sizeof(*key));
	if (!key)
		return -1;
	f->key = key;
	v = realloc(f->v, (size_t)(f->n + 1) * sizeof(*v));
	if (!v)
		return -1;
	f->v = v;
	f->key[f->n] = strdup(k);
	f->v[f->n] = malloc((size_t)cap * sizeof(double));
	if (!f->key[f->n] || !f->v[f->n]) {
		free(f->key[f->n]);
		free(f->v[f->n]);
		return -1;
	}
	for (long i = 0; i < cap; i++)
		f->v[f->n][i] = NAN;
	return f->n++;
}

static int family_grow(struct mtl_report_family *f, long old, long cap)
{
	for (int k = 0; k < f->n; k++) {
		double *v = realloc(f->v[k], (size_t)cap * sizeof(double));
		if (!v)
			return -1;
		for (long i = old; i < cap; i++)
			v[i] = NAN;
		f->v[k] = v;
	}
	return 0;
}

static void family_release(struct mtl_report_family *f)
{
	for (int k = 0; k < f->n; k++) {
		free(f->key[k]);
		free(f->v[k]);
	}
	free(f->key);
	free(f->v);
	memset(f, 0, sizeof(*f));
}

static struct mtl_report_family *families(struct mtl_report_steps *s, int i)
{
	struct mtl_report_family *f[] = { &s->losses, &s->accuracy, &s->weights,
					  &s->labelled, &s->cosine };
	return i < 5 ? f[i] : NULL;
}

static int steps_grow(struct mtl_report_steps *s)
{
	double **col[] = { &s->step, &s->epoch, &s->lr, &s->loss, &s->grad_norm,
			   &s->tokens, &s->ms };
	long cap = s->cap ? 2 * s->cap : 64;

	for (size_t c = 0; c < sizeof(col) / sizeof(col[0]); c++) {
		double *v = realloc(*col[c], (size_t)cap * sizeof(double));
		if (!v)
			return -1;
		*col[c] = v;
	}
	for (int i = 0; i < 5; i++)
		if (family_grow(families(s, i), s->cap, cap))
			return -1;
	s->cap = cap;
	return 0;
}

static int read_step(struct mtl_report *rep, struct mtl_mp_reader *r,
		     const msgpack_object *rec, struct mtl_err *err)
{
	struct mtl_report_steps *s = &rep->steps;
	struct mtl_steps_figures fig;
	double *col[MTL_STEPS_N_SCALARS];
	long i = s->n;
	int rc;

	if ((rc = mtl_steps_read_step(&fig, rec, r, err)))
		goto out;
	if (s->n == s->cap && steps_grow(s)) {
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		goto out;
	}
	col[MTL_STEPS_STEP] = s->step;
	col[MTL_STEPS_EPOCH] = s->epoch;
	col[MTL_STEPS_LR] = s->lr;
	col[MTL_STEPS_LOSS] = s->loss;
	col[MTL_STEPS_GRAD_NORM] = s->grad_norm;
	col[MTL_STEPS_TOKENS] = s->tokens;
	col[MTL_STEPS_MS] = s->ms;
	for (int c = 0; c < MTL_STEPS_N_SCALARS; c++)
		col[c][i] = fig.v[c];
	/* families() is in the order of enum mtl_steps_map */
	for (int f = 0; f < MTL_STEPS_N_MAPS; f++)
		for (int e = 0; e < fig.n[f]; e++) {
			struct mtl_report_family *fam = families(s, f);
			int k = family_key(fam, fig.map[f][e].key, s->cap);

			if (k < 0) {
				rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
				goto out;
			}
			fam->v[k][i] = fig.map[f][e].v;
		}
	s->n++;
out:
	mtl_steps_figures_release(&fig);
	return rc;
}

static int read_eval(struct mtl_report *rep, struct mtl_mp_reader *r,
		     const msgpack_object *rec, struct mtl_err *err)
{
	struct mtl_report_steps *s = &rep->steps;
	struct mtl_steps_evals ev;
	struct mtl_report_eval *e;
	int rc = mtl_steps_read_eval(&ev, rec, r, err);

	/* the rows read before a bad figure are kept, as the report says */
	e = realloc(s->eval, (size_t)(s->n_eval + ev.n + 1) * sizeof(*e));
	if (!e) {
		mtl_steps_evals_release(&ev);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	s->eval = e;
	for (int i = 0; i < ev.n; i++) {
		e = &s->eval[s->n_eval++];
		e->step = ev.step;
		e->task = ev.row[i].task;
		ev.row[i].task = NULL; /* the report's now */
		e->loss = ev.row[i].loss;
		e->accuracy = ev.row[i].accuracy;
		e->f1 = ev.row[i].f1;
		e->more = ev.row[i].more;
		e->n_more = ev.row[i].n_more;
		ev.row[i].more = NULL;
		ev.row[i].n_more = 0;
	}
	mtl_steps_evals_release(&ev);
	return rc;
}

static int read_skip(struct mtl_report *rep, struct mtl_mp_reader *r,
		     const msgpack_object *rec, struct mtl_err *err)
{
	struct mtl_report_steps *s = &rep->steps;
	struct mtl_report_skip *k;
	int rc;

	k = realloc(s->skip, (size_t)(s->n_skip + 1) * sizeof(*k));
	if (!k)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	s->skip = k;
	k += s->n_skip;
	if ((rc = mtl_steps_read_skip(&k->step, &k->reason, rec, r, err)))
		return rc;
	s->n_skip++;
	return 0;
}

/* --- predictions --- */

static int add_tasks(struct mtl_report *rep, const struct mtl_tasks *ts,
		     struct mtl_err *err)
{
	int old = rep->tasks->n, rc;
	struct mtl_report_task *t;

	if ((rc = mtl_data_merge_tasks(rep->tasks, ts, err)))
		return rc;
	t = realloc(rep->task, (size_t)(rep->tasks->n ? rep->tasks->n : 1) * sizeof(*t));
	if (!t)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	rep->task = t;
	memset(t + old, 0, (size_t)(rep->tasks->n - old) * sizeof(*t));
	rep->n_task = rep->tasks->n;
	for (int i = 0; i < old; i++)
		rep->task[i].spec = &rep->tasks->task[i]; /* the array may have moved */
	for (int i = old; i < rep->tasks->n; i++) {
		struct mtl_report_task *rt = &rep->task[i];
		const struct mtl_task *sp = rt->spec = &rep->tasks->task[i];

		if (mtl_confusion_init(&rt->conf, sp->n_labels) ||
		    !(rt->predicted = calloc((size_t)sp->n_labels, sizeof(long))) ||
		    (sp->kind == MTL_TASK_MULTILABEL &&
		     mtl_multilabel_init(&rt->ml, sp->n_labels)))
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		if (sp->kind != MTL_TASK_TOKEN)
			continue;
		if (mtl_bio_init(&rt->bio, (const char *const *)sp->labels, sp->n_labels,
				 rep->opts.strict, NULL) == 0) {
			rt->has_entities = 1;
			if (mtl_entity_init(&rt->ent, &rt->bio) ||
			    !(rt->lost_type = calloc((size_t)rt->bio.n_types + 1, sizeof(long))) ||
			    !(rt->predicted_entities = calloc((size_t)rt->bio.n_types + 1,
							      sizeof(long))))
				return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		}
	}
	return 0;
}

/* Label index of string o in task t: -1 for nil, -2 unknown, -3 not a string. */
static int label_of(const struct mtl_task *t, const msgpack_object *o)
{
	if (o->type == MSGPACK_OBJECT_NIL)
		return -1;
	if (o->type != MSGPACK_OBJECT_STR)
		return -3;
	for (int k = 0; k < t->n_labels; k++)
		if (str_eq(o, t->labels[k]))
			return k;
	return -2;
}

static int bad_label(struct mtl_mp_reader *r, struct mtl_err *err,
		     const struct mtl_task *t, const char *what,
		     const msgpack_object *o, int code)
{
	if (code == -2)
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "task '%s': unknown %s label '%.*s'", t->name, what,
					  (int)o->via.str.size, o->via.str.ptr);
	return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
				  "task '%s': \"%s\" must be %s", t->name, what,
				  t->kind == MTL_TASK_TOKEN ? "a label name per word" :
				  t->kind == MTL_TASK_MULTILABEL ? "an array of label names" :
				  "a label name");
}

static int keep_error(struct mtl_report_task *rt, const msgpack_object *rec,
		      const int *gold, const int *pred, int n)
{
	const msgpack_object *text = mtl_mp_get(rec, "text");
	const msgpack_object *words = mtl_mp_get(rec, "words");
	struct mtl_report_error *e = realloc(rt->err, (size_t)(rt->n_err + 1) * sizeof(*e));

	if (!e)
		return -1;
	rt->err = e;
	e += rt->n_err++;
	memset(e, 0, sizeof(*e));
	e->id = id_text(mtl_mp_get(rec, "id"));
	e->text = text && text->type == MSGPACK_OBJECT_STR ? str_dup(text) : NULL;
	e->n = n;
	e->gold = malloc((size_t)n * sizeof(int));
	e->pred = malloc((size_t)n * sizeof(int));
	if (!e->id || !e->gold || !e->pred || (text && text->type == MSGPACK_OBJECT_STR && !e->text))
		return -1;
	memcpy(e->gold, gold, (size_t)n * sizeof(int));
	memcpy(e->pred, pred, (size_t)n * sizeof(int));
	if (words && words->type == MSGPACK_OBJECT_ARRAY) {
		e->n_words = (int)words->via.array.size;
		if (!(e->words = calloc((size_t)e->n_words + 1, sizeof(char *))))
			return -1;
		for (int i = 0; i < e->n_words; i++) {
			const msgpack_object *w = &words->via.array.ptr[i];
			e->words[i] = w->type == MSGPACK_OBJECT_STR ? str_dup(w) : strdup("?");
			if (!e->words[i])
				return -1;
		}
	}
	return 0;
}

/* gold_lost: an integer, or a map {TYPE: integer}. */
static int read_lost(struct mtl_report_task *rt, struct mtl_mp_reader *r,
		     const msgpack_object *o, struct mtl_err *err)
{
	int64_t v;

	if (!o || o->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (mtl_mp_as_int(o, &v) == 0 && v >= 0) {
		rt->lost += v;
		return 0;
	}
	if (o->type != MSGPACK_OBJECT_MAP)
		goto bad;
	for (uint32_t j = 0; j < o->via.map.size; j++) {
		const msgpack_object *k = &o->via.map.ptr[j].key;
		int t;

		if (mtl_mp_as_int(&o->via.map.ptr[j].val, &v) || v < 0)
			goto bad;
		for (t = 0; t < rt->bio.n_types; t++)
			if (str_eq(k, rt->bio.types[t]))
				break;
		if (t == rt->bio.n_types)
			return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
						  "task '%s': \"gold_lost\": unknown entity type '%.*s'",
						  rt->spec->name, (int)k->via.str.size, k->via.str.ptr);
		rt->lost += v;
		rt->lost_type[t] += v;
	}
	return 0;
bad:
	return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
				  "task '%s': \"gold_lost\" must be a count or a map of counts per entity type",
				  rt->spec->name);
}

/* The label names of the array o into the indicators v[n_labels].  0, or
 * <0 with err set (an unknown or repeated label, not an array). */
static int label_set(const struct mtl_task *sp, struct mtl_mp_reader *r,
		     const char *what, const msgpack_object *o, int *v,
		     struct mtl_err *err)
{
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return bad_label(r, err, sp, what, o, -3);
	memset(v, 0, (size_t)sp->n_labels * sizeof(int));
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		const msgpack_object *l = &o->via.array.ptr[i];
		int k = label_of(sp, l);

		if (k < 0)
			return bad_label(r, err, sp, what, l, k == -1 ? -3 : k);
		if (v[k])
			return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
						  "task '%s': \"%s\" names '%s' twice",
						  sp->name, what, sp->labels[k]);
		v[k] = 1;
	}
	return 0;
}

/* A regression task's prediction: numbers. */
static int read_regression(struct mtl_report_task *rt, struct mtl_mp_reader *r,
			   const msgpack_object *pred, const msgpack_object *gold,
			   struct mtl_err *err)
{
	double p, g;

	if (mtl_mp_as_num(pred, &p) || !isfinite(p) ||
	    (gold && (mtl_mp_as_num(gold, &g) || !isfinite(g))))
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "task '%s': \"pred\" and \"gold\" must be finite numbers",
					  rt->spec->name);
	if (!gold) {
		rt->unlabelled++;
		return 0;
	}
	if (mtl_regression_add(&rt->rg, p, g))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	return 0;
}

/* A multilabel task's prediction: label sets. */
static int read_multilabel(struct mtl_report_task *rt, struct mtl_mp_reader *r,
			   const msgpack_object *pred, const msgpack_object *gold,
			   struct mtl_err *err)
{
	const struct mtl_task *sp = rt->spec;
	int n = sp->n_labels, rc = 0, same = 1;
	int *p = malloc(2 * (size_t)n * sizeof(int)), *g = p + n;

	if (!p)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	if ((rc = label_set(sp, r, "pred", pred, p, err)) ||
	    (gold && (rc = label_set(sp, r, "gold", gold, g, err))))
		goto out;
	for (int k = 0; k < n; k++) {
		rt->predicted[k] += p[k];
		same &= !gold || p[k] == g[k];
	}
	if (!gold) {
		rt->unlabelled++;
		goto out;
	}
	mtl_multilabel_add(&rt->ml, g, p);
	rt->n_wrong += !same;
out:
	free(p);
	return rc;
}

static int read_prediction(struct mtl_report *rep, struct mtl_mp_reader *r,
			   const struct mtl_tasks *hdr_tasks,
			   const msgpack_object *rec, struct mtl_err *err)
{
	const msgpack_object *tasks = mtl_mp_get(rec, "tasks");
	int *buf = NULL;
	struct mtl_span *spans = NULL; /* [n + 1] a record's predicted entities */
	int rc = 0;

	if (!tasks || tasks->type != MSGPACK_OBJECT_MAP)
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "a prediction needs a \"tasks\" map");
	rep->predictions++;
	for (uint32_t j = 0; j < tasks->via.map.size; j++) {
		const msgpack_object *k = &tasks->via.map.ptr[j].key;
		const msgpack_object *v = &tasks->via.map.ptr[j].val;
		const msgpack_object *pred, *gold;
		struct mtl_report_task *rt = NULL;
		const struct mtl_task *sp;
		int n, wrong = 0;
		int *g, *p;

		for (int t = 0; t < hdr_tasks->n; t++)
			if (str_eq(k, hdr_tasks->task[t].name))
				rt = &rep->task[mtl_task_find(rep->tasks, hdr_tasks->task[t].name)];
		if (!rt) {
			rc = mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
						"unknown task '%.*s' (not in the header)",
						(int)k->via.str.size, k->via.str.ptr);
			goto out;
		}
		sp = rt->spec;
		pred = mtl_mp_get(v, "pred");
		gold = mtl_mp_get(v, "gold");
		if (!pred) {
			rc = mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
						"task '%s': no \"pred\"", sp->name);
			goto out;
		}
		rt->examples++;
		if (gold && gold->type == MSGPACK_OBJECT_NIL)
			gold = NULL;
		if (sp->kind == MTL_TASK_MULTILABEL || sp->kind == MTL_TASK_REGRESSION) {
			if ((rc = sp->kind == MTL_TASK_MULTILABEL
				  ? read_multilabel(rt, r, pred, gold, err)
				  : read_regression(rt, r, pred, gold, err)))
				goto out;
			continue;
		}
		if (sp->kind == MTL_TASK_SEQUENCE || sp->kind == MTL_TASK_PAIR) {
			int lp = label_of(sp, pred), lg = gold ? label_of(sp, gold) : -1;

			if (lp < 0) {
				rc = bad_label(r, err, sp, "pred", pred, lp == -1 ? -3 : lp);
				goto out;
			}
			if (lg < -1) {
				rc = bad_label(r, err, sp, "gold", gold, lg);
				goto out;
			}
			rt->predicted[lp]++;
			if (lg < 0) {
				rt->unlabelled++;
				continue;
			}
			mtl_confusion_add(&rt->conf, lg, lp);
			if (lg != lp) {
				rt->n_wrong++;
				if (rt->n_err < rep->opts.errors && keep_error(rt, rec, &lg, &lp, 1)) {
					rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
					goto out;
				}
			}
			continue;
		}
		/* a token task: one label per scored word */
		if (pred->type != MSGPACK_OBJECT_ARRAY ||
		    (gold && (gold->type != MSGPACK_OBJECT_ARRAY ||
			      gold->via.array.size != pred->via.array.size))) {
			rc = mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
						"task '%s': \"pred\" and \"gold\" must be arrays of one label per word, of the same length",
						sp->name);
			goto out;
		}
		n = (int)pred->via.array.size;
		free(buf);
		free(spans);
		if (!(buf = malloc((size_t)(2 * n + 1) * sizeof(int))) ||
		    !(spans = malloc((size_t)(n + 1) * sizeof(*spans)))) {
			rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
			goto out;
		}
		g = buf;
		p = buf + n;
		for (int i = 0; i < n; i++) {
			p[i] = label_of(sp, &pred->via.array.ptr[i]);
			g[i] = gold ? label_of(sp, &gold->via.array.ptr[i]) : -1;
			if (p[i] < 0) {
				rc = bad_label(r, err, sp, "pred", &pred->via.array.ptr[i],
					       p[i] == -1 ? -3 : p[i]);
				goto out;
			}
			if (g[i] < -1) {
				rc = bad_label(r, err, sp, "gold", &gold->via.array.ptr[i], g[i]);
				goto out;
			}
			rt->predicted[p[i]]++;
		}
		for (int k = rt->has_entities ? mtl_bio_spans(&rt->bio, p, n, spans) : 0; k > 0; k--)
			rt->predicted_entities[spans[k - 1].type]++;
		if (!gold) {
			rt->unlabelled++;
			continue;
		}
		if (rt->has_entities && (rc = read_lost(rt, r, mtl_mp_get(v, "gold_lost"), err)))
			goto out;
		for (int i = 0; i < n; i++)
			if (g[i] >= 0) {
				mtl_confusion_add(&rt->conf, g[i], p[i]);
				wrong |= g[i] != p[i];
			}
		if (rt->has_entities && mtl_entity_add(&rt->ent, &rt->bio, g, p, n)) {
			rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
			goto out;
		}
		if (wrong) {
			rt->n_wrong++;
			if (rt->n_err < rep->opts.errors && keep_error(rt, rec, g, p, n)) {
				rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
				goto out;
			}
		}
	}
out:
	free(buf);
	free(spans);
	return rc;
}

/* --- embeddings --- */

static int read_embedding(struct mtl_report *rep, struct mtl_mp_reader *r,
			  const msgpack_object *rec, struct mtl_err *err)
{
	struct mtl_report_embeddings *e = &rep->emb;
	const msgpack_object *v = mtl_mp_get(rec, "embedding");
	const msgpack_object *text = mtl_mp_get(rec, "text");
	long len = mtl_mp_array_len(v);
	char **label;
	float *vec;
	int rc;

	if (rep->opts.emb_keep && (rc = mtl_embset_add(&e->set, rec, r, err)))
		return rc;
	if (len <= 0 || len > (1 << 24))
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "\"embedding\" is not a non-empty array of numbers");
	if (e->dim && len != e->dim)
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "embedding has %ld values, expected %d", len, e->dim);
	e->dim = (int)len;
	e->total++;
	if (e->n >= rep->opts.max_embeddings)
		return 0;
	label = realloc(e->label, (size_t)(e->n + 1) * sizeof(*label));
	if (!label)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	e->label = label;
	vec = realloc(e->vec, (size_t)(e->n + 1) * (size_t)len * sizeof(float));
	if (!vec)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	e->vec = vec;
	if (mtl_mp_as_f32s(v, vec + (size_t)e->n * (size_t)len, len))
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "\"embedding\" is not an array of numbers");
	for (long i = 0; i < len; i++)
		if (!isfinite(vec[(size_t)e->n * (size_t)len + (size_t)i]))
			return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
						  "embedding value %ld is not finite", i);
	label[e->n] = text && text->type == MSGPACK_OBJECT_STR ? str_dup(text)
							       : id_text(mtl_mp_get(rec, "id"));
	if (!label[e->n])
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	e->n++;
	return 0;
}

static int embeddings_header(struct mtl_report *rep, struct mtl_mp_reader *r,
			     const msgpack_object *hdr, struct mtl_err *err)
{
	struct mtl_report_embeddings *e = &rep->emb;
	const msgpack_object *dim = mtl_mp_get(hdr, "dim");
	const msgpack_object *pool = mtl_mp_get(hdr, "pooling");
	const msgpack_object *norm = mtl_mp_get(hdr, "normalized");
	int64_t d;

	if (dim) {
		if (mtl_mp_as_int(dim, &d) || d <= 0 || d > (1 << 24))
			return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
						  "header \"dim\" is not a positive integer");
		if (e->dim && d != e->dim)
			return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
						  "embeddings of dimension %lld cannot join those of dimension %d",
						  (long long)d, e->dim);
		e->dim = (int)d;
	}
	if (pool && pool->type == MSGPACK_OBJECT_STR && !e->pooling &&
	    !(e->pooling = str_dup(pool)))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	if (norm && norm->type == MSGPACK_OBJECT_BOOLEAN) {
		int b = norm->via.boolean;
		e->normalized = rep->n_emb_streams == 0 || e->normalized == b ? b : -1;
	}
	return 0;
}

/* --- the report --- */

struct mtl_report *mtl_report_new(const struct mtl_report_opts *opts)
{
	struct mtl_report *rep = calloc(1, sizeof(*rep));

	if (!rep)
		return NULL;
	rep->opts = *opts;
	rep->emb.normalized = -1;
	rep->tasks = calloc(1, sizeof(*rep->tasks));
	if (!rep->tasks) {
		free(rep);
		return NULL;
	}
	return rep;
}

int mtl_report_read(struct mtl_report *rep, struct mtl_mp_reader *r,
		    struct mtl_err *err)
{
	struct mtl_tasks *hdr_tasks = NULL;
	msgpack_object hdr, rec;
	enum { STEPS, PREDICTIONS, EMBEDDINGS } kind;
	const msgpack_object *k;
	int rc;

	if ((rc = mtl_mp_read_header(r, NULL, &hdr, err)))
		return rc;
	k = mtl_mp_get(&hdr, "stream");
	if (str_eq(k, "steps"))
		kind = STEPS;
	else if (str_eq(k, "predictions"))
		kind = PREDICTIONS;
	else if (str_eq(k, "embeddings"))
		kind = EMBEDDINGS;
	else
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "cannot report a '%.*s' stream (expected steps, predictions or embeddings)",
					  (int)k->via.str.size, k->via.str.ptr);
	if (kind == PREDICTIONS) {
		if ((rc = mtl_data_header_tasks(&hdr_tasks, &hdr, err)) ||
		    (rc = add_tasks(rep, hdr_tasks, err))) {
			char why[sizeof(err->msg)];

			snprintf(why, sizeof(why), "%s", err ? err->msg : "");
			mtl_task_free(hdr_tasks);
			return mtl_mp_reader_fail(r, err, rc, "%s", why);
		}
		rep->n_pred_streams++;
	} else if (kind == EMBEDDINGS) {
		if ((rc = embeddings_header(rep, r, &hdr, err)))
			return rc;
		rep->n_emb_streams++;
	} else {
		rep->n_steps_streams++;
	}
	while ((rc = mtl_mp_read(r, &rec, err)) > 0) {
		const msgpack_object *type = mtl_mp_get(&rec, "type");

		if (kind == STEPS && str_eq(type, "step"))
			rc = read_step(rep, r, &rec, err);
		else if (kind == STEPS && str_eq(type, "eval"))
			rc = read_eval(rep, r, &rec, err);
		else if (kind == STEPS && str_eq(type, "skip"))
			rc = read_skip(rep, r, &rec, err);
		else if (kind == PREDICTIONS && str_eq(type, "prediction"))
			rc = read_prediction(rep, r, hdr_tasks, &rec, err);
		else if (kind == EMBEDDINGS && str_eq(type, "embedding"))
			rc = read_embedding(rep, r, &rec, err);
		if (rc < 0) /* other types pass by: read on to the end record */
			break;
	}
	mtl_task_free(hdr_tasks);
	return rc < 0 ? rc : 0;
}

double mtl_report_cosine(const float *a, const float *b, int n)
{
	double c;

	mtl_embeval_cosine_pairs(&c, a, b, 1, n);
	return c;
}

int mtl_report_finish(struct mtl_report *rep, struct mtl_err *err)
{
	struct mtl_report_embeddings *e = &rep->emb;

	for (int i = 0; i < rep->tasks->n; i++) {
		struct mtl_report_task *rt = &rep->task[i];
		long typed = 0;

		if (rt->spec->kind == MTL_TASK_MULTILABEL)
			mtl_multilabel_finish(&rt->ml);
		if (rt->spec->kind == MTL_TASK_REGRESSION &&
		    mtl_regression_finish(&rt->rg))
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		if (!rt->has_entities)
			continue;
		/* lost gold entities are missed ones: false negatives */
		for (int t = 0; t < rt->bio.n_types; t++) {
			rt->ent.per_type[t].fn += rt->lost_type[t];
			typed += rt->lost_type[t];
		}
		rt->entity_macro_f1 = mtl_entity_finish(&rt->ent);
		rt->ent.micro.fn += rt->lost - typed;
		mtl_prf_finish(&rt->ent.micro);
	}
	if (e->n) {
		free(e->sim);
		if (!(e->sim = malloc((size_t)e->n * (size_t)e->n * sizeof(double))))
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		for (int i = 0; i < e->n; i++)
			for (int j = 0; j < e->n; j++)
				e->sim[(size_t)i * (size_t)e->n + (size_t)j] =
					mtl_report_cosine(e->vec + (size_t)i * (size_t)e->dim,
							  e->vec + (size_t)j * (size_t)e->dim, e->dim);
	}
	return 0;
}

void mtl_report_stat(const double *v, long n, struct mtl_report_stat *out)
{
	out->first = out->last = out->min = out->max = NAN;
	out->n = 0;
	out->i_min = out->i_max = -1;
	for (long i = 0; i < n; i++) {
		if (!isfinite(v[i]))
			continue;
		if (!out->n++)
			out->first = v[i];
		out->last = v[i];
		if (out->i_min < 0 || v[i] < out->min) {
			out->min = v[i];
			out->i_min = i;
		}
		if (out->i_max < 0 || v[i] > out->max) {
			out->max = v[i];
			out->i_max = i;
		}
	}
}

void mtl_report_free(struct mtl_report *rep)
{
	struct mtl_report_steps *s;

	if (!rep)
		return;
	s = &rep->steps;
	free(s->step); free(s->epoch); free(s->lr); free(s->loss);
	free(s->grad_norm); free(s->tokens); free(s->ms);
	for (int i = 0; i < 5; i++)
		family_release(families(s, i));
	for (long i = 0; i < s->n_eval; i++) {
		free(s->eval[i].task);
		for (int j = 0; j < s->eval[i].n_more; j++)
			free(s->eval[i].more[j].key);
		free(s->eval[i].more);
	}
	free(s->eval);
	for (long i = 0; i < s->n_skip; i++)
		free(s->skip[i].reason);
	free(s->skip);
	for (int i = 0; i < rep->n_task; i++) {
		struct mtl_report_task *rt = &rep->task[i];

		mtl_confusion_release(&rt->conf);
		mtl_multilabel_release(&rt->ml);
		mtl_regression_release(&rt->rg);
		mtl_bio_release(&rt->bio);
		mtl_entity_release(&rt->ent);
		free(rt->lost_type);
		free(rt->predicted);
		free(rt->predicted_entities);
		for (int k = 0; k < rt->n_err; k++) {
			struct mtl_report_error *e = &rt->err[k];
			free(e->id);
			free(e->text);
			for (int w = 0; e->words && w < e->n_words; w++)
				free(e->words[w]);
			free(e->words);
			free(e->gold);
			free(e->pred);
		}
		free(rt->err);
	}
	free(rep->task);
	mtl_task_free(rep->tasks);
	for (int i = 0; i < rep->emb.n; i++)
		free(rep->emb.label[i]);
	free(rep->emb.label);
	free(rep->emb.vec);
	free(rep->emb.sim);
	free(rep->emb.pooling);
	mtl_embset_release(&rep->emb.set);
	mtl_report_embeval_free(rep->emb.eval);
	free(rep);
}
