/*
 * data_emb.c - the embedding tasks' part of examples and batches (data.h):
 * an example's other texts (positive or scored pair text, hard negative)
 * and score, and the extra rows a batch carries for them.  data.c calls
 * these where a task's kind is MTL_TASK_EMBEDDING.
 */
#include "data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mp.h"

#define MAX_LEN (1 << 20)

/* An array of token ids into a new buffer; 0, 1 when v is not one, <0. */
static int ids_of(const msgpack_object *v, int32_t **out, int32_t *len)
{
	long n = mtl_mp_array_len(v);

	if (n < 1 || n > MAX_LEN)
		return 1;
	if (!(*out = malloc((size_t)n * sizeof(int32_t))))
		return MTL_ERR_NOMEM;
	*len = (int32_t)n;
	if (mtl_mp_as_i32s(v, *out, n))
		return 1;
	for (long i = 0; i < n; i++)
		if ((*out)[i] < 0)
			return 1;
	return 0;
}

int mtl_example_emb_parse(struct mtl_example *ex, int t, const msgpack_object *v,
			  const struct mtl_tasks *ts, struct mtl_err *err)
{
	const char *name = ts->task[t].name;
	const msgpack_object *o = mtl_mp_get(v, "other_ids");
	const msgpack_object *g = mtl_mp_get(v, "negative_ids");
	const msgpack_object *s = mtl_mp_get(v, "score");
	struct mtl_example_emb *e;
	double y;
	int rc;

	if (v->type != MSGPACK_OBJECT_MAP)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "task '%s': an embedding label is not a map", name);
	if (!v->via.map.size)
		return 0;
	if (!ex->emb && !(ex->emb = calloc((size_t)ts->n, sizeof(*ex->emb))))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	e = &ex->emb[t];
	e->score = NAN;
	if ((rc = ids_of(o, &e->other, &e->other_len)) ||
	    (g && (rc = ids_of(g, &e->neg, &e->neg_len)))) {
		if (rc < 0)
			return mtl_err_set(err, rc, "out of memory");
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "task '%s': \"other_ids\" and \"negative_ids\" must be non-empty arrays of token ids",
				   name);
	}
	if (s) {
		if (mtl_mp_as_num(s, &y) || !isfinite(y))
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "task '%s': \"score\" is not a finite number",
					   name);
		e->score = (float)y;
	}
	return 1;
}

void mtl_example_emb_pack(msgpack_packer *pk, const struct mtl_example *ex, int t)
{
	const struct mtl_example_emb *e = &ex->emb[t];

	msgpack_pack_map(pk, 1 + (e->neg != NULL) + !isnan(e->score));
	mtl_mp_pack_str(pk, "other_ids");
	mtl_mp_pack_i32s(pk, e->other, (size_t)e->other_len);
	if (e->neg) {
		mtl_mp_pack_str(pk, "negative_ids");
		mtl_mp_pack_i32s(pk, e->neg, (size_t)e->neg_len);
	}
	if (!isnan(e->score)) {
		mtl_mp_pack_str(pk, "score");
		msgpack_pack_float(pk, e->score);
	}
}

void mtl_example_emb_release(struct mtl_example *ex)
{
	for (int t = 0; ex->emb && t < ex->n_tasks; t++) {
		free(ex->emb[t].other);
		free(ex->emb[t].neg);
	}
	free(ex->emb);
	ex->emb = NULL;
}

/* Example i's texts for task t of the batch (source task map[t]), or NULL. */
static const struct mtl_example_emb *emb_of(const struct mtl_example *ex,
					    int t, const struct mtl_tasks *ts,
					    const int *map, uint64_t task_mask)
{
	int s = map ? map[t] : t;

	if (ts->task[t].kind != MTL_TASK_EMBEDDING || !((task_mask >> t) & 1) ||
	    s < 0 || !ex->emb || !ex->emb[s].other)
		return NULL;
	return &ex->emb[s];
}

int mtl_batch_emb_width(const struct mtl_example *const *ex, int n,
			const struct mtl_tasks *ts, const int *map,
			uint64_t task_mask)
{
	int T = 0;

	for (int t = 0; ts && t < ts->n; t++)
		for (int i = 0; i < n; i++) {
			const struct mtl_example_emb *e = emb_of(ex[i], t, ts, map,
								 task_mask);

			if (e && e->other_len > T)
				T = e->other_len;
			if (e && e->neg && e->neg_len > T)
				T = e->neg_len;
		}
	return T;
}

int mtl_batch_emb_make(struct mtl_batch *b, const struct mtl_example *const *ex,
		       int n, const struct mtl_tasks *ts, const int *map,
		       uint64_t task_mask, int32_t pad_id)
{
	int E = 0, T = b->T, row;
	int32_t *ids, *len;

	for (int t = 0; ts && t < ts->n; t++)
		for (int i = 0; i < n; i++) {
			const struct mtl_example_emb *e = emb_of(ex[i], t, ts, map,
								 task_mask);

			E += e ? 1 + (e->neg != NULL) : 0;
		}
	if (!E)
		return 0;
	if (!(b->neg = calloc((size_t)ts->n, sizeof(*b->neg))) ||
	    !(b->score = calloc((size_t)ts->n, sizeof(*b->score))))
		return MTL_ERR_NOMEM;
	ids = realloc(b->ids, sizeof(int32_t) * (size_t)(n + E) * T);
	if (ids)
		b->ids = ids;
	len = realloc(b->lengths, sizeof(int32_t) * (size_t)(n + E));
	if (len)
		b->lengths = len;
	if (!ids || !len)
		return MTL_ERR_NOMEM;
	b->E = E;
	row = n;
	for (int t = 0; t < ts->n; t++) {
		int any = 0, negs = 0, scores = 0;

		for (int i = 0; i < n; i++) {
			const struct mtl_example_emb *e = emb_of(ex[i], t, ts, map,
								 task_mask);

			any |= e != NULL;
			negs |= e && e->neg;
			scores |= e && !isnan(e->score);
		}
		if (!any)
			continue;
		if (!(b->labels[t] = malloc(sizeof(int32_t) * (size_t)n)) ||
		    (negs && !(b->neg[t] = malloc(sizeof(int32_t) * (size_t)n))) ||
		    (scores && !(b->score[t] = malloc(sizeof(float) * (size_t)n))))
			return MTL_ERR_NOMEM;
		for (int i = 0; i < n; i++) {
			const struct mtl_example_emb *e = emb_of(ex[i], t, ts, map,
								 task_mask);
			int32_t *r = b->ids + (size_t)row * T;

			b->labels[t][i] = e ? row : MTL_IGNORE;
			if (b->neg[t])
				b->neg[t][i] = -1;
			if (b->score[t])
				b->score[t][i] = e ? e->score : NAN;
			if (!e)
				continue;
			for (int k = 0; k < T; k++)
				r[k] = k < e->other_len ? e->other[k] : pad_id;
			b->lengths[row++] = e->other_len;
			if (!e->neg)
				continue;
			r = b->ids + (size_t)row * T;
			for (int k = 0; k < T; k++)
				r[k] = k < e->neg_len ? e->neg[k] : pad_id;
			b->neg[t][i] = row;
			b->lengths[row++] = e->neg_len;
		}
	}
	return 0;
}

int mtl_batch_emb_keys(const struct mtl_batch *b)
{
	int negs = 0, scores = 0;

	for (int t = 0; b->E && t < b->n_tasks; t++) {
		negs |= b->neg[t] != NULL;
		scores |= b->score[t] != NULL;
	}
	return (b->E > 0) + negs + scores;
}

/* Packs the map key of rows present in a[t] (int32 or float arrays). */
static void pack_per_task(msgpack_packer *pk, const char *key, void **a,
			  int is_float, const struct mtl_batch *b,
			  const struct mtl_tasks *ts)
{
	size_t n = 0;

	for (int t = 0; t < b->n_tasks; t++)
		n += a[t] != NULL;
	if (!n)
		return;
	mtl_mp_pack_str(pk, key);
	msgpack_pack_map(pk, n);
	for (int t = 0; t < b->n_tasks; t++) {
		if (!a[t])
			continue;
		mtl_mp_pack_str(pk, ts->task[t].name);
		if (is_float)
			mtl_mp_pack_f32s(pk, a[t], (size_t)b->B);
		else
			mtl_mp_pack_i32s(pk, a[t], (size_t)b->B);
	}
}

void mtl_batch_emb_pack(msgpack_packer *pk, const struct mtl_batch *b,
			const struct mtl_tasks *ts)
{
	if (!b->E)
		return;
	mtl_mp_pack_str(pk, "extra_rows");
	msgpack_pack_int(pk, b->E);
	pack_per_task(pk, "negatives", (void **)b->neg, 0, b, ts);
	pack_per_task(pk, "scores", (void **)b->score, 1, b, ts);
}

int mtl_batch_emb_rows(const msgpack_object *rec, int64_t *E,
		       struct mtl_err *err)
{
	const msgpack_object *o = mtl_mp_get(rec, "extra_rows");

	*E = 0;
	if (o && (mtl_mp_as_int(o, E) || *E < 1 || *E > MAX_LEN))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "\"extra_rows\" is not a positive integer");
	return 0;
}

/* Reads the map under key into a[t] [B] (int32 or float). */
static int parse_per_task(struct mtl_batch *b, const msgpack_object *rec,
			  const char *key, void **a, int is_float,
			  const struct mtl_tasks *ts, struct mtl_err *err)
{
	const msgpack_object *m = mtl_mp_get(rec, key);

	if (!m)
		return 0;
	if (m->type != MSGPACK_OBJECT_MAP)
		return mtl_err_set(err, MTL_ERR_FORMAT, "\"%s\" is not a map", key);
	for (uint32_t k = 0; k < m->via.map.size; k++) {
		const msgpack_object_kv *kv = &m->via.map.ptr[k];
		int t = -1;

		for (int i = 0; i < ts->n; i++)
			if (mtl_mp_is_str(&kv->key, ts->task[i].name))
				t = i;
		if (t < 0 || ts->task[t].kind != MTL_TASK_EMBEDDING || !b->labels[t] || a[t])
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "\"%s\" for a task that is not a labelled embedding task of the batch",
					   key);
		if (!(a[t] = malloc((size_t)b->B * 4)))
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		if (is_float ? mtl_mp_as_f32s(&kv->val, a[t], b->B)
			     : mtl_mp_as_i32s(&kv->val, a[t], b->B))
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "task '%s': \"%s\" is not %d numbers",
					   ts->task[t].name, key, b->B);
	}
	return 0;
}

int mtl_batch_emb_parse(struct mtl_batch *b, const msgpack_object *rec,
			const struct mtl_tasks *ts, struct mtl_err *err)
{
	int rc, R = b->B + b->E;

	if (!(b->neg = calloc((size_t)(ts->n ? ts->n : 1), sizeof(*b->neg))) ||
	    !(b->score = calloc((size_t)(ts->n ? ts->n : 1), sizeof(*b->score))))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	if ((rc = parse_per_task(b, rec, "negatives", (void **)b->neg, 0, ts, err)) ||
	    (rc = parse_per_task(b, rec, "scores", (void **)b->score, 1, ts, err)))
		return rc;
	/* every row named is an extra row */
	for (int t = 0; t < ts->n; t++) {
		if (ts->task[t].kind != MTL_TASK_EMBEDDING || !b->labels[t])
			continue;
		for (int i = 0; i < b->B; i++) {
			int32_t o = b->labels[t][i], g = b->neg[t] ? b->neg[t][i] : -1;

			if ((o != MTL_IGNORE && (o < b->B || o >= R)) ||
			    (g != -1 && (g < b->B || g >= R || o == MTL_IGNORE)))
				return mtl_err_set(err, MTL_ERR_FORMAT,
						   "task '%s': row %d names a text outside the batch's %d extra rows",
						   ts->task[t].name, i, b->E);
		}
	}
	return 0;
}

void mtl_batch_emb_release(struct mtl_batch *b)
{
	for (int t = 0; t < b->n_tasks; t++) {
		free(b->neg ? b->neg[t] : NULL);
		free(b->score ? b->score[t] : NULL);
	}
	free(b->neg);
	free(b->score);
	b->neg = NULL;
	b->score = NULL;
}

int mtl_batch_emb_remap(struct mtl_batch *b, const int *map, int n)
{
	int32_t **neg;
	float **score;

	if (!b->neg)
		return 0;
	neg = calloc((size_t)n + 1, sizeof(*neg));
	score = calloc((size_t)n + 1, sizeof(*score));
	if (!neg || !score) {
		free(neg);
		free(score);
		return MTL_ERR_NOMEM;
	}
	for (int t = 0; t < n; t++)
		if (map[t] >= 0) {
			neg[t] = b->neg[map[t]];
			score[t] = b->score[map[t]];
			b->neg[map[t]] = NULL;
			b->score[map[t]] = NULL;
		}
	mtl_batch_emb_release(b);
	b->neg = neg;
	b->score = score;
	return 0;
}
