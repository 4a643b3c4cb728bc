/*
 * embset.c - embeddings streams in memory, the evaluations over them and
 * the search stream's records; see embset.h.
 */
#include "embset.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "data.h"
#include "metrics.h"
#include "ops.h"

/* Results retrieved per query for the retrieval metrics (Recall@100,
 * MAP@100 look no further). */
#define IR_DEPTH 100

struct mtl_embset_ref {
	const char *id;
	size_t len;
	long row;
};

void mtl_embset_init(struct mtl_embset *s)
{
	memset(s, 0, sizeof(*s));
}

void mtl_embset_release(struct mtl_embset *s)
{
	for (long i = 0; i < s->n; i++)
		free(s->id[i]);
	for (int t = 0; t < s->n_tasks; t++) {
		for (int k = 0; k < s->task[t].n_labels; k++)
			free(s->task[t].label[k]);
		free(s->task[t].label);
		free(s->task[t].name);
		free(s->task[t].y);
	}
	free(s->task);
	free(s->x);
	free(s->id);
	free(s->id_len);
	free(s->order);
	mtl_embset_init(s);
}

int mtl_embset_header(struct mtl_embset *s, const msgpack_object *hdr,
		      struct mtl_mp_reader *r, struct mtl_err *err)
{
	const msgpack_object *dim = mtl_mp_get(hdr, "dim");
	int64_t d;

	if (!dim)
		return 0;
	if (mtl_mp_as_int(dim, &d) || d <= 0 || d > (1 << 24))
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "header \"dim\" is not a positive integer");
	if (s->dim && d != s->dim)
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "embeddings of dimension %lld, expected %d",
					  (long long)d, s->dim);
	s->dim = (int)d;
	return 0;
}

/* Grows every per-row array of s to hold one more row.  0 or -1. */
static int grow_rows(struct mtl_embset *s)
{
	long cap = s->cap ? 2 * s->cap : 256;
	void *p;

	if (s->n < s->cap)
		return 0;
	if (!(p = realloc(s->x, (size_t)cap * (size_t)s->dim * sizeof(float))))
		return -1;
	s->x = p;
	if (!(p = realloc(s->id, (size_t)cap * sizeof(char *))))
		return -1;
	s->id = p;
	if (!(p = realloc(s->id_len, (size_t)cap * sizeof(size_t))))
		return -1;
	s->id_len = p;
	for (int t = 0; t < s->n_tasks; t++) {
		if (!(p = realloc(s->task[t].y, (size_t)cap * sizeof(int))))
			return -1;
		s->task[t].y = p;
		for (long i = s->cap; i < cap; i++)
			s->task[t].y[i] = -1;
	}
	s->cap = cap;
	return 0;
}

static int str_is(const msgpack_object *o, const char *s, size_t n)
{
	return o->via.str.size == n && !memcmp(o->via.str.ptr, s, n);
}

/* The task named by key, added when new.  NULL: out of memory. */
static struct mtl_embset_task *task_of(struct mtl_embset *s,
				       const msgpack_object *key)
{
	struct mtl_embset_task *t;

	for (int i = 0; i < s->n_tasks; i++)
		if (str_is(key, s->task[i].name, strlen(s->task[i].name)))
			return &s->task[i];
	if (!(t = realloc(s->task, (size_t)(s->n_tasks + 1) * sizeof(*t))))
		return NULL;
	s->task = t;
	t = &s->task[s->n_tasks];
	memset(t, 0, sizeof(*t));
	if (!(t->name = strndup(key->via.str.ptr, key->via.str.size)) ||
	    !(t->y = malloc((size_t)(s->cap ? s->cap : 1) * sizeof(int)))) {
		free(t->name);
		return NULL;
	}
	for (long i = 0; i < s->cap; i++)
		t->y[i] = -1;
	s->n_tasks++;
	return t;
}

/* The index of label v in t, added when new; -1: out of memory. */
static int label_of(struct mtl_embset_task *t, const msgpack_object *v)
{
	char **l;

	for (int k = 0; k < t->n_labels; k++)
		if (str_is(v, t->label[k], strlen(t->label[k])))
			return k;
	if (!(l = realloc(t->label, (size_t)(t->n_labels + 1) * sizeof(*l))))
		return -1;
	t->label = l;
	if (!(l[t->n_labels] = strndup(v->via.str.ptr, v->via.str.size)))
		return -1;
	return t->n_labels++;
}

int mtl_embset_add(struct mtl_embset *s, const msgpack_object *rec,
		   struct mtl_mp_reader *r, struct mtl_err *err)
{
	const msgpack_object *v = mtl_mp_get(rec, "embedding");
	const msgpack_object *labels = mtl_mp_get(rec, "labels");
	const msgpack_object *id = mtl_mp_get(rec, "id");
	msgpack_object nil = { .type = MSGPACK_OBJECT_NIL };
	long len = mtl_mp_array_len(v);
	float *row;

	if (len <= 0 || len > (1 << 24))
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "\"embedding\" is not a non-empty array of numbers");
	if (s->dim && len != s->dim)
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "embedding has %ld values, expected %d", len, s->dim);
	if (labels && labels->type != MSGPACK_OBJECT_MAP)
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT, "\"labels\" is not a map");
	s->dim = (int)len;
	if (grow_rows(s))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	row = s->x + (size_t)s->n * (size_t)s->dim;
	if (mtl_mp_as_f32s(v, row, len))
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "\"embedding\" is not an array of numbers");
	for (long j = 0; j < len; j++)
		if (!isfinite(row[j]))
			return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
						  "embedding value %ld is not finite", j);
	for (uint32_t i = 0; labels && i < labels->via.map.size; i++) {
		const msgpack_object *k = &labels->via.map.ptr[i].key;
		const msgpack_object *l = &labels->via.map.ptr[i].val;
		struct mtl_embset_task *t;
		int y;

		if (k->type != MSGPACK_OBJECT_STR || l->type != MSGPACK_OBJECT_STR)
			return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
						  "\"labels\" is not a map of task names to label names");
		if (!(t = task_of(s, k)) || (y = label_of(t, l)) < 0)
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		t->y[s->n] = y;
	}
	if (mtl_mp_copy(id ? id : &nil, &s->id[s->n], &s->id_len[s->n]))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	s->n++;
	return 0;
}

int mtl_embset_read(struct mtl_embset *s, struct mtl_mp_reader *r,
		    struct mtl_err *err)
{
	msgpack_object rec;
	int rc;

	if ((rc = mtl_mp_read_header(r, "embeddings", &rec, err)) ||
	    (rc = mtl_embset_header(s, &rec, r, err)))
		return rc;
	while ((rc = mtl_mp_read(r, &rec, err)) > 0)
		if (mtl_mp_is_str(mtl_mp_get(&rec, "type"), "embedding") &&
		    (rc = mtl_embset_add(s, &rec, r, err)))
			return rc;
	return rc;
}

int mtl_embset_read_file(struct mtl_embset *s, const char *path,
			 struct mtl_err *err)
{
	int std = !path || !strcmp(path, "-");
	FILE *f = std ? stdin : fopen(path, "rb");
	struct mtl_mp_reader *r;
	int rc;

	if (!f)
		return mtl_err_set(err, MTL_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
	if (!(r = mtl_mp_reader_new(f, std ? "<stdin>" : path)))
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	else
		rc = mtl_embset_read(s, r, err);
	mtl_mp_reader_free(r);
	if (!std)
		fclose(f);
	return rc;
}

int mtl_embset_task_find(const struct mtl_embset *s, const char *name)
{
	for (int t = 0; t < s->n_tasks; t++)
		if (!strcmp(s->task[t].name, name))
			return t;
	return -1;
}

static int cmp_ref(const void *a, const void *b)
{
	const struct mtl_embset_ref *x = a, *y = b;
	int c;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	if ((c = memcmp(x->id, y->id, x->len)))
		return c;
	return (x->row > y->row) - (x->row < y->row);
}

long mtl_embset_find(struct mtl_embset *s, const char *id, size_t len)
{
	long lo = 0, hi;

	if (s->n_order != s->n || !s->order) {
		struct mtl_embset_ref *o = realloc(s->order, sizeof(*o) * (size_t)(s->n ? s->n : 1));

		if (!o)
			return -2;
		s->order = o;
		for (long i = 0; i < s->n; i++)
			o[i] = (struct mtl_embset_ref){ s->id[i], s->id_len[i], i };
		qsort(o, (size_t)s->n, sizeof(*o), cmp_ref);
		s->n_order = s->n;
	}
	/* the first entry not below (id, len, row -1) */
	hi = s->n;
	while (lo < hi) {
		long mid = lo + (hi - lo) / 2;
		struct mtl_embset_ref key = { id, len, -1 };

		if (cmp_ref(&s->order[mid], &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < s->n && s->order[lo].len == len && !memcmp(s->order[lo].id, id, len))
		return s->order[lo].row;
	return -1;
}

float *mtl_embset_normalized(const struct mtl_embset *s)
{
	float *x = malloc(sizeof(float) * (size_t)(s->n ? s->n : 1) * (size_t)(s->dim ? s->dim : 1));

	if (x && s->n)
		mtl_l2norm_forward(x, NULL, s->x, (int)s->n, s->dim);
	return x;
}

/* --- evaluations --- */

void mtl_embset_labels_defaults(struct mtl_embset_labels_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->k = 10;
	o->restarts = 5;
	o->threads = 1;
	mtl_embeval_probe_init(&o->probe);
}

/* The labelled rows of task t of s, normalised, into *x [m*dim] and
 * their labels into *y [m]; *m their count.  0 or -1 (memory). */
static int labelled_rows(float **x, int **y, long *m,
			 const struct mtl_embset *s, int t)
{
	const int *lab = s->task[t].y;
	long n = 0;

	for (long i = 0; i < s->n; i++)
		n += lab[i] >= 0;
	*x = malloc(sizeof(float) * (size_t)(n ? n : 1) * (size_t)s->dim);
	*y = malloc(sizeof(int) * (size_t)(n ? n : 1));
	if (!*x || !*y)
		return -1;
	n = 0;
	for (long i = 0; i < s->n; i++)
		if (lab[i] >= 0) {
			memcpy(*x + (size_t)n * (size_t)s->dim, s->x + (size_t)i * (size_t)s->dim,
			       sizeof(float) * (size_t)s->dim);
			(*y)[n++] = lab[i];
		}
	if (n)
		mtl_l2norm_forward(*x, NULL, *x, (int)n, s->dim);
	*m = n;
	return 0;
}

/* Retrieval of same-label rows from a leave-one-out search (idx [m*kk]). */
static void same_label_ir(struct mtl_embeval_ir *ir, const int32_t *idx, int kk,
			  const int *y, long m, const long *count)
{
	int rel[IR_DEPTH];

	for (long i = 0; i < m; i++) {
		int n = kk < IR_DEPTH ? kk : IR_DEPTH;

		for (int r = 0; r < n; r++) {
			int32_t j = idx[(size_t)i * (size_t)kk + (size_t)r];
			rel[r] = j >= 0 && y[j] == y[i];
		}
		mtl_embeval_ir_add(ir, rel, n, count[y[i]] - 1, NULL, 0);
	}
	mtl_embeval_ir_finish(ir);
}

int mtl_embset_eval_labels(struct mtl_embset_labels_eval *out,
			   const struct mtl_embset *s, int t,
			   const struct mtl_embset *train, int tt,
			   const struct mtl_embset_labels_opts *o,
			   struct mtl_err *err)
{
	int nl = s->task[t].n_labels, k = o->k, kk = k > IR_DEPTH ? k : IR_DEPTH;
	float *x = NULL, *tx = NULL, *sc = NULL;
	int *y = NULL, *ty = NULL, *pred = NULL, *as = NULL, *map = NULL;
	int32_t *idx = NULL, *top = NULL;
	long m = 0, tm = 0, *count = NULL, right = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->k = k;
	out->n_labels = nl;
	out->knn_accuracy = out->probe_accuracy = out->vmeasure = NAN;
	if (labelled_rows(&x, &y, &m, s, t) ||
	    !(count = calloc((size_t)(nl ? nl : 1), sizeof(long))))
		goto nomem;
	out->labelled = m;
	if (m == 0) {
		mtl_embeval_ir_finish(&out->same);
		goto out;
	}
	for (long i = 0; i < m; i++)
		count[y[i]]++;
	/* each row against the others: kNN's k and retrieval's 100 at once */
	if (!(idx = malloc(sizeof(int32_t) * (size_t)m * (size_t)kk)) ||
	    !(sc = malloc(sizeof(float) * (size_t)m * (size_t)kk)) ||
	    !(pred = malloc(sizeof(int) * (size_t)m)) ||
	    !(top = malloc(sizeof(int32_t) * (size_t)m * (size_t)k)) ||
	    !(as = malloc(sizeof(int) * (size_t)m)))
		goto nomem;
	if ((rc = mtl_embeval_search(idx, sc, x, m, x, m, s->dim, kk, 0, o->threads, err)))
		goto out;
	same_label_ir(&out->same, idx, kk, y, m, count);
	if (!train) {
		/* the first k of each row; the scores move down in place
		 * (k <= kk: every write lands at or before its read) */
		for (long i = 0; i < m; i++)
			for (int r = 0; r < k; r++) {
				top[(size_t)i * (size_t)k + (size_t)r] = idx[(size_t)i * (size_t)kk + (size_t)r];
				sc[(size_t)i * (size_t)k + (size_t)r] = sc[(size_t)i * (size_t)kk + (size_t)r];
			}
		if ((rc = mtl_embeval_knn(pred, top, sc, m, k, y, nl, err)))
			goto out;
		for (long i = 0; i < m; i++)
			right += pred[i] == y[i];
		out->knn_accuracy = (double)right / (double)m;
	} else {
		const struct mtl_embset_task *T = &train->task[tt];

		/* train's labels by name in s's label indices (-1: s lacks it) */
		if (labelled_rows(&tx, &ty, &tm, train, tt) ||
		    !(map = malloc(sizeof(int) * (size_t)(T->n_labels ? T->n_labels : 1))))
			goto nomem;
		for (int a = 0; a < T->n_labels; a++) {
			map[a] = -1;
			for (int b = 0; b < nl; b++)
				if (!strcmp(T->label[a], s->task[t].label[b]))
					map[a] = b;
		}
		if (tm > 0) {
			if ((rc = mtl_embeval_search(top, sc, x, m, tx, tm, s->dim, k, -1,
						     o->threads, err)) ||
			    (rc = mtl_embeval_knn(pred, top, sc, m, k, ty, T->n_labels, err)))
				goto out;
			for (long i = 0; i < m; i++)
				right += pred[i] >= 0 && map[pred[i]] == y[i];
			out->knn_accuracy = (double)right / (double)m;
			if ((rc = mtl_embeval_probe_run(pred, x, m, tx, ty, tm, s->dim,
							T->n_labels, &o->probe, err)))
				goto out;
			right = 0;
			for (long i = 0; i < m; i++)
				right += map[pred[i]] == y[i];
			out->probe_accuracy = (double)right / (double)m;
		}
	}
	{
		int used = 0;

		for (int a = 0; a < nl; a++)
			used += count[a] > 0;
		if ((rc = mtl_embeval_kmeans(as, x, m, s->dim, used, o->restarts, o->seed, err)) ||
		    (rc = mtl_embeval_vmeasure(&out->vmeasure, NULL, NULL, y, nl, as, used, m, err)))
			goto out;
	}
	goto out;
nomem:
	rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
out:
	free(x);
	free(y);
	free(tx);
	free(ty);
	free(map);
	free(count);
	free(idx);
	free(sc);
	free(pred);
	free(top);
	free(as);
	return rc;
}

/* One line of a JSON lines file, parsed: an object, or an error naming
 * name and line. */
static int json_line(json_t **out, const char *buf, const char *name,
		     long line, struct mtl_err *err)
{
	json_error_t je;

	*out = json_loads(buf, JSON_REJECT_DUPLICATES, &je);
	if (!*out)
		return mtl_err_set(err, MTL_ERR_FORMAT, "%s: line %ld: %s", name, line, je.text);
	if (!json_is_object(*out)) {
		json_decref(*out);
		return mtl_err_set(err, MTL_ERR_FORMAT, "%s: line %ld: not a JSON object", name, line);
	}
	return 0;
}

/* The row of s whose id is the JSON value key of o; <0 with err set (an
 * absent key or an unknown id, naming what). */
static long json_row(struct mtl_embset *s, const json_t *o, const char *key,
		     const char *what, const char *name, long line,
		     struct mtl_err *err)
{
	const json_t *v = json_object_get(o, key);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	long row;
	char *txt;

	if (!v || !(json_is_string(v) || json_is_integer(v)))
		return mtl_err_set(err, MTL_ERR_FORMAT, "%s: line %ld: no \"%s\" id (a string or an integer)",
				   name, line, key);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mtl_mp_from_json(&pk, v);
	row = sb.data ? mtl_embset_find(s, sb.data, sb.size) : -2;
	msgpack_sbuffer_destroy(&sb);
	if (row == -2)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	if (row >= 0)
		return row;
	txt = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	mtl_err_set(err, MTL_ERR_FORMAT, "%s: line %ld: unknown %s id %s", name, line, what,
		    txt ? txt : "?");
	free(txt);
	return MTL_ERR_FORMAT;
}

/* Reads the lines of f, calling fn(ctx, object, line) on each non-blank
 * one. */
static int each_json_line(FILE *f, const char *name,
			  int (*fn)(void *ctx, const json_t *o, long line,
				    struct mtl_err *err),
			  void *ctx, struct mtl_err *err)
{
	char *buf = NULL;
	size_t cap = 0;
	long line = 0;
	int rc = 0;

	while (!rc && getline(&buf, &cap, f) >= 0) {
		json_t *o;

		line++;
		if (strspn(buf, " \t\r\n") == strlen(buf))
			continue;
		if ((rc = json_line(&o, buf, name, line, err)))
			break;
		rc = fn(ctx, o, line, err);
		json_decref(o);
	}
	if (!rc && ferror(f))
		rc = mtl_err_set(err, MTL_ERR_IO, "%s: read error", name);
	free(buf);
	return rc;
}

struct judgement {
	long q, d;
	int rel;
};

struct qrels_ctx {
	struct mtl_embset *q, *c;
	const char *name;
	struct judgement *j;
	long n, cap;
};

static int qrels_line(void *ctx, const json_t *o, long line, struct mtl_err *err)
{
	struct qrels_ctx *x = ctx;
	const json_t *rel = json_object_get(o, "relevance");
	struct judgement j = { .rel = 1 };

	if ((j.q = json_row(x->q, o, "query", "query", x->name, line, err)) < 0)
		return (int)j.q;
	if ((j.d = json_row(x->c, o, "doc", "corpus", x->name, line, err)) < 0)
		return (int)j.d;
	if (rel) {
		if (!json_is_integer(rel) || json_integer_value(rel) < -1000000 ||
		    json_integer_value(rel) > 1000000)
			return mtl_err_set(err, MTL_ERR_FORMAT, "%s: line %ld: \"relevance\" is not an integer",
					   x->name, line);
		j.rel = (int)json_integer_value(rel);
	}
	if (x->n == x->cap) {
		long cap = x->cap ? 2 * x->cap : 256;
		struct judgement *p = realloc(x->j, sizeof(*p) * (size_t)cap);

		if (!p)
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		x->j = p;
		x->cap = cap;
	}
	x->j[x->n++] = j;
	return 0;
}

/* Judgements by query row, then by grade descending, then by doc row. */
static int cmp_judgement(const void *a, const void *b)
{
	const struct judgement *x = a, *y = b;

	if (x->q != y->q)
		return x->q < y->q ? -1 : 1;
	if (x->rel != y->rel)
		return x->rel > y->rel ? -1 : 1;
	return (x->d > y->d) - (x->d < y->d);
}

int mtl_embset_eval_qrels(struct mtl_embeval_ir *out, struct mtl_embset *q,
			  struct mtl_embset *c, FILE *f, const char *name,
			  int threads, struct mtl_err *err)
{
	struct qrels_ctx x = { .q = q, .c = c, .name = name };
	float *qx = NULL, *cx = NULL, *sc = NULL;
	int32_t *idx = NULL;
	long *qrow = NULL, nq = 0;
	int k = IR_DEPTH, rc;

	memset(out, 0, sizeof(*out));
	if (q->dim != c->dim && q->n && c->n)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "queries of dimension %d, corpus of dimension %d", q->dim, c->dim);
	if ((rc = each_json_line(f, name, qrels_line, &x, err)))
		goto out;
	qsort(x.j, (size_t)x.n, sizeof(*x.j), cmp_judgement);
	/* the judged queries, in row order */
	if (!(qrow = malloc(sizeof(long) * (size_t)(x.n ? x.n : 1))))
		goto nomem;
	for (long i = 0; i < x.n; i++)
		if (i == 0 || x.j[i].q != x.j[i - 1].q)
			qrow[nq++] = x.j[i].q;
	if (!(qx = malloc(sizeof(float) * (size_t)(nq ? nq : 1) * (size_t)(q->dim ? q->dim : 1))) ||
	    !(cx = mtl_embset_normalized(c)) ||
	    !(idx = malloc(sizeof(int32_t) * (size_t)(nq ? nq : 1) * (size_t)k)) ||
	    !(sc = malloc(sizeof(float) * (size_t)(nq ? nq : 1) * (size_t)k)))
		goto nomem;
	for (long i = 0; i < nq; i++)
		memcpy(qx + (size_t)i * (size_t)q->dim, q->x + (size_t)qrow[i] * (size_t)q->dim,
		       sizeof(float) * (size_t)q->dim);
	if (nq)
		mtl_l2norm_forward(qx, NULL, qx, (int)nq, q->dim);
	if (nq && c->n &&
	    (rc = mtl_embeval_search(idx, sc, qx, nq, cx, c->n, c->dim, k, -1, threads, err)))
		goto out;
	for (long i = 0, a = 0; i < nq; i++) {
		long b = a, n_rel = 0;
		int rel[IR_DEPTH], ideal[10], ni = 0;

		while (b < x.n && x.j[b].q == qrow[i])
			b++;
		for (long j = a; j < b; j++)
			if (x.j[j].rel > 0) {
				n_rel++;
				if (ni < 10)
					ideal[ni++] = x.j[j].rel;
			}
		for (int r = 0; r < k; r++) {
			int32_t d = c->n ? idx[(size_t)i * (size_t)k + (size_t)r] : -1;

			rel[r] = 0;
			for (long j = a; d >= 0 && j < b; j++)
				if (x.j[j].d == d) {
					rel[r] = x.j[j].rel > 0 ? x.j[j].rel : 0;
					break;
				}
		}
		mtl_embeval_ir_add(out, rel, k, n_rel, ideal, ni);
		a = b;
	}
	mtl_embeval_ir_finish(out);
	goto out;
nomem:
	rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
out:
	free(x.j);
	free(qrow);
	free(qx);
	free(cx);
	free(idx);
	free(sc);
	return rc;
}

int mtl_embset_similarity(struct mtl_embset_pairs_eval *out, const float *x,
			  int dim, const long *a, const long *b,
			  const double *score, long n, struct mtl_err *err)
{
	double *cos = malloc(sizeof(double) * (size_t)(n ? n : 1));
	int nomem;

	out->pairs = 0;
	out->pearson = out->spearman = NAN;
	if (!cos)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	for (long i = 0; i < n; i++)
		mtl_embeval_cosine_pairs(&cos[i], x + (size_t)a[i] * (size_t)dim,
					 x + (size_t)b[i] * (size_t)dim, 1, dim);
	out->pairs = n;
	out->pearson = mtl_pearson(cos, score, n);
	out->spearman = mtl_spearman(cos, score, n, &nomem);
	free(cos);
	return nomem ? mtl_err_set(err, MTL_ERR_NOMEM, "out of memory") : 0;
}

int mtl_embset_pair_retrieval(struct mtl_embeval_ir *out, const float *q,
			      const float *c, long n, int dim, int threads,
			      struct mtl_err *err)
{
	size_t nd = (size_t)(n ? n : 1) * (size_t)dim;
	float *qx = malloc(sizeof(float) * nd), *cx = malloc(sizeof(float) * nd);
	float *sc = malloc(sizeof(float) * (size_t)(n ? n : 1) * IR_DEPTH);
	int32_t *idx = malloc(sizeof(int32_t) * (size_t)(n ? n : 1) * IR_DEPTH);
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!qx || !cx || !sc || !idx) {
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (n) {
		mtl_l2norm_forward(qx, NULL, q, (int)n, dim);
		mtl_l2norm_forward(cx, NULL, c, (int)n, dim);
		if ((rc = mtl_embeval_search(idx, sc, qx, n, cx, n, dim, IR_DEPTH, -1,
					     threads, err)))
			goto out;
	}
	for (long i = 0; i < n; i++) {
		int rel[IR_DEPTH];

		for (int r = 0; r < IR_DEPTH; r++)
			rel[r] = idx[(size_t)i * IR_DEPTH + (size_t)r] == i;
		mtl_embeval_ir_add(out, rel, IR_DEPTH, 1, NULL, 0);
	}
	mtl_embeval_ir_finish(out);
out:
	free(qx);
	free(cx);
	free(sc);
	free(idx);
	return rc;
}

struct pairs_ctx {
	struct mtl_embset *s;
	const char *name;
	long *a, *b;
	double *score;
	long n, cap;
};

static int pairs_line(void *ctx, const json_t *o, long line, struct mtl_err *err)
{
	struct pairs_ctx *x = ctx;
	const json_t *sc = json_object_get(o, "score");
	long a, b;

	if ((a = json_row(x->s, o, "a", "", x->name, line, err)) < 0)
		return (int)a;
	if ((b = json_row(x->s, o, "b", "", x->name, line, err)) < 0)
		return (int)b;
	if (!json_is_number(sc) || !isfinite(json_number_value(sc)))
		return mtl_err_set(err, MTL_ERR_FORMAT, "%s: line %ld: \"score\" is not a finite number",
				   x->name, line);
	if (x->n == x->cap) {
		long cap = x->cap ? 2 * x->cap : 256;
		void *p;

		if (!(p = realloc(x->a, sizeof(long) * (size_t)cap)))
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		x->a = p;
		if (!(p = realloc(x->b, sizeof(long) * (size_t)cap)))
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		x->b = p;
		if (!(p = realloc(x->score, sizeof(double) * (size_t)cap)))
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		x->score = p;
		x->cap = cap;
	}
	x->a[x->n] = a;
	x->b[x->n] = b;
	x->score[x->n++] = json_number_value(sc);
	return 0;
}

int mtl_embset_eval_pairs(struct mtl_embset_pairs_eval *out,
			  struct mtl_embset *s, FILE *f, const char *name,
			  struct mtl_err *err)
{
	struct pairs_ctx x = { .s = s, .name = name };
	int rc;

	out->pairs = 0;
	out->pearson = out->spearman = NAN;
	if ((rc = each_json_line(f, name, pairs_line, &x, err)))
		goto out;
	rc = mtl_embset_similarity(out, s->x, s->dim, x.a, x.b, x.score, x.n, err);
out:
	free(x.a);
	free(x.b);
	free(x.score);
	return rc;
}

/* --- search stream --- */

int mtl_embset_write_search_header(struct mtl_mp_writer *w,
				   const char *program, int argc, char **argv, int k, int dim, long queries,
				   long corpus, struct mtl_err *err)
{
	struct mtl_mp_map h;

	mtl_mp_map_begin(&h);
	msgpack_pack_int(mtl_mp_map_key(&h, "k"), k);
	msgpack_pack_int(mtl_mp_map_key(&h, "dim"), dim);
	msgpack_pack_long(mtl_mp_map_key(&h, "queries"), queries);
	msgpack_pack_long(mtl_mp_map_key(&h, "corpus"), corpus);
	mtl_mp_map_end_header(&h, mtl_mp_pk(w), "search", program, argc, argv);
	return mtl_mp_end(w, err);
}

int mtl_embset_write_hit(struct mtl_mp_writer *w, const struct mtl_embset *q,
			 long qi, const struct mtl_embset *c, long ci,
			 int rank, float score, struct mtl_err *err)
{
	msgpack_packer *pk = mtl_mp_pk(w);

	msgpack_pack_map(pk, 5);
	mtl_mp_pack_str(pk, "type");
	mtl_mp_pack_str(pk, "hit");
	mtl_mp_pack_str(pk, "query");
	mtl_data_pack_raw(pk, q->id[qi], q->id_len[qi]);
	mtl_mp_pack_str(pk, "id");
	mtl_data_pack_raw(pk, c->id[ci], c->id_len[ci]);
	mtl_mp_pack_str(pk, "rank");
	msgpack_pack_int(pk, rank);
	mtl_mp_pack_str(pk, "score");
	msgpack_pack_float(pk, score);
	return mtl_mp_end(w, err);
}
