/* data.c - examples and batches records; see data.h. */
#include "data_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mp.h"

void mtl_data_pack_raw(msgpack_packer *pk, const char *b, size_t n)
{
	pk->callback(pk->data, b, n);
}

void mtl_data_pack_id(msgpack_packer *pk, const struct mtl_example *ex)
{
	if (ex->id)
		mtl_data_pack_raw(pk, ex->id, ex->id_len);
	else
		msgpack_pack_nil(pk);
}

void mtl_data_pack_texts(msgpack_packer *pk, const struct mtl_example *ex)
{
	if (ex->text) {
		mtl_mp_pack_str(pk, "text");
		msgpack_pack_str(pk, ex->text_len);
		msgpack_pack_str_body(pk, ex->text, ex->text_len);
	}
	if (ex->text_b) {
		mtl_mp_pack_str(pk, "text_b");
		msgpack_pack_str(pk, ex->text_b_len);
		msgpack_pack_str_body(pk, ex->text_b, ex->text_b_len);
	}
}

/* Starts the "labels" map of the tasks in mask (bit t for task t < n). */
static void pack_labels_map(msgpack_packer *pk, uint64_t mask, int n)
{
	size_t n_lab = 0;

	for (int t = 0; t < n; t++)
		n_lab += (mask >> t) & 1;
	mtl_mp_pack_str(pk, "labels");
	msgpack_pack_map(pk, n_lab);
}

static int task_index(const struct mtl_tasks *ts, const msgpack_object *key)
{
	for (int i = 0; i < ts->n; i++)
		if (mtl_mp_is_str(key, ts->task[i].name))
			return i;
	return -1;
}

/* Checks labels v[0..n) against task t: each in [0, n_labels) or ignore;
 * for a multilabel task each 0, 1 or ignore, for a regression task a
 * finite target or ignore. */
static int check_labels(const struct mtl_task *t, const int32_t *v, long n,
			struct mtl_err *err)
{
	if (t->kind == MTL_TASK_REGRESSION) {
		for (long i = 0; i < n; i++)
			if (v[i] != MTL_IGNORE && !isfinite(mtl_label_value(v[i])))
				return mtl_err_set(err, MTL_ERR_FORMAT,
						   "task '%s': target is not a finite number",
						   t->name);
		return 0;
	}
	if (t->kind == MTL_TASK_MULTILABEL) {
		for (long i = 0; i < n; i++)
			if (v[i] != MTL_IGNORE && v[i] != 0 && v[i] != 1)
				return mtl_err_set(err, MTL_ERR_FORMAT,
						   "task '%s': indicator %d is not 0 or 1",
						   t->name, (int)v[i]);
		return 0;
	}
	for (long i = 0; i < n; i++)
		if (v[i] != MTL_IGNORE && (v[i] < 0 || v[i] >= t->n_labels))
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "task '%s': label %d out of range (%d labels)",
					   t->name, (int)v[i], t->n_labels);
	return 0;
}

/* Whether byte i of s[0..n) starts a character (or is the end). */
static int char_boundary(const char *s, size_t n, int32_t i)
{
	return i >= 0 && (size_t)i <= n && ((size_t)i == n || ((unsigned char)s[i] & 0xC0) != 0x80);
}

/*
 * "word_starts" and "word_ends": kept when both have one entry per word id
 * and each is a non-empty span of the text on character boundaries.  0 or
 * MTL_ERR_NOMEM.
 */
static int parse_spans(struct mtl_example *ex, const msgpack_object *rec)
{
	const msgpack_object *ws = mtl_mp_get(rec, "word_starts");
	const msgpack_object *we = mtl_mp_get(rec, "word_ends");
	long n = mtl_mp_array_len(ws);
	int32_t words = 0;

	for (int32_t i = 0; ex->word_ids && i < ex->len; i++)
		if (ex->word_ids[i] + 1 > words)
			words = ex->word_ids[i] + 1;
	if (!ex->text || n < 1 || n != words || mtl_mp_array_len(we) != n)
		return 0;
	ex->word_starts = malloc((size_t)n * sizeof(int32_t));
	ex->word_ends = malloc((size_t)n * sizeof(int32_t));
	if (!ex->word_starts || !ex->word_ends)
		return MTL_ERR_NOMEM;
	ex->n_spans = (int32_t)n;
	if (mtl_mp_as_i32s(ws, ex->word_starts, n) || mtl_mp_as_i32s(we, ex->word_ends, n))
		ex->n_spans = 0;
	for (long i = 0; i < ex->n_spans; i++)
		if (!char_boundary(ex->text, ex->text_len, ex->word_starts[i]) ||
		    !char_boundary(ex->text, ex->text_len, ex->word_ends[i]) ||
		    ex->word_starts[i] >= ex->word_ends[i])
			ex->n_spans = 0;
	if (!ex->n_spans) {
		free(ex->word_starts);
		free(ex->word_ends);
		ex->word_starts = ex->word_ends = NULL;
	}
	return 0;
}

/*
 * The optional keys of an example record that mtl-tokenize writes:
 * word_ids, words, word_starts/word_ends, truncated, words_lost; a key
 * of another type is left
 * out.  0 or MTL_ERR_NOMEM.
 */
static int parse_extras(struct mtl_example *ex, const msgpack_object *rec,
			const struct mtl_tasks *ts)
{
	const msgpack_object *lost_map = mtl_mp_get(rec, "lost_labels");
	const msgpack_object *wids = mtl_mp_get(rec, "word_ids");
	const msgpack_object *words = mtl_mp_get(rec, "words");
	const msgpack_object *trunc = mtl_mp_get(rec, "truncated");
	const msgpack_object *pair = mtl_mp_get(rec, "pair_ids");
	long np = mtl_mp_array_len(pair);
	int64_t lost;

	if (np >= 1 && np <= (1 << 20)) {
		if (!(ex->pair_ids = malloc((size_t)np * sizeof(int32_t))))
			return MTL_ERR_NOMEM;
		ex->pair_len = (int32_t)np;
		if (mtl_mp_as_i32s(pair, ex->pair_ids, np)) {
			free(ex->pair_ids);
			ex->pair_ids = NULL;
			ex->pair_len = 0;
		}
		for (long i = 0; ex->pair_ids && i < np; i++)
			if (ex->pair_ids[i] < 0) {
				free(ex->pair_ids);
				ex->pair_ids = NULL;
				ex->pair_len = 0;
			}
	}

	if (mtl_mp_array_len(wids) == ex->len) {
		if (!(ex->word_ids = malloc((size_t)ex->len * sizeof(int32_t))))
			return MTL_ERR_NOMEM;
		if (mtl_mp_as_i32s(wids, ex->word_ids, ex->len)) {
			free(ex->word_ids);
			ex->word_ids = NULL;
		}
	}
	if (words && words->type == MSGPACK_OBJECT_ARRAY) {
		uint32_t n = words->via.array.size;
		for (uint32_t i = 0; i < n; i++)
			if (words->via.array.ptr[i].type != MSGPACK_OBJECT_STR)
				n = 0;
		if (n && !(ex->words = calloc(n, sizeof(char *))))
			return MTL_ERR_NOMEM;
		for (uint32_t i = 0; i < n; i++, ex->n_words++)
			if (!(ex->words[i] = data_dup_str(&words->via.array.ptr[i])))
				return MTL_ERR_NOMEM;
	}
	if (parse_spans(ex, rec))
		return MTL_ERR_NOMEM;
	ex->truncated = trunc && trunc->type == MSGPACK_OBJECT_BOOLEAN &&
			trunc->via.boolean;
	if (!mtl_mp_as_int(mtl_mp_get(rec, "words_lost"), &lost) &&
	    lost >= 0 && lost <= INT32_MAX)
		ex->words_lost = (int32_t)lost;
	for (uint32_t k = 0; lost_map && lost_map->type == MSGPACK_OBJECT_MAP &&
			     k < lost_map->via.map.size; k++) {
		const msgpack_object_kv *kv = &lost_map->via.map.ptr[k];
		int t = task_index(ts, &kv->key);
		long n = mtl_mp_array_len(&kv->val);

		if (t < 0 || ts->task[t].kind != MTL_TASK_TOKEN || ex->lost[t] ||
		    n < 1 || n > (1 << 20) || (ex->lost_words && n != ex->lost_words))
			continue;
		if (!(ex->lost[t] = malloc((size_t)n * sizeof(int32_t))))
			return MTL_ERR_NOMEM;
		ex->lost_words = (int32_t)n;
		if (mtl_mp_as_i32s(&kv->val, ex->lost[t], n) ||
		    check_labels(&ts->task[t], ex->lost[t], n, NULL)) {
			free(ex->lost[t]);
			ex->lost[t] = NULL;
		}
	}
	return 0;
}

/*
 * A record's "type_ids" (o, NULL when absent) into a new *out of n token
 * type ids, each 0 or 1; *out stays NULL when o is NULL.  0, or
 * MTL_ERR_FORMAT / MTL_ERR_NOMEM (*out may be set: the caller frees).
 */
static int parse_types(int32_t **out, const msgpack_object *o, long n,
		       struct mtl_err *err)
{
	if (!o)
		return 0;
	if (!(*out = malloc((size_t)n * sizeof(int32_t))))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	if (mtl_mp_as_i32s(o, *out, n))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "\"type_ids\" is not %ld integers (one per token)", n);
	for (long i = 0; i < n; i++)
		if ((*out)[i] != 0 && (*out)[i] != 1)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "token type id %d at %ld: not 0 or 1",
					   (int)(*out)[i], i);
	return 0;
}

int mtl_example_parse(struct mtl_example *ex, const msgpack_object *rec,
		      const struct mtl_tasks *ts, struct mtl_err *err)
{
	const msgpack_object *ids = mtl_mp_get(rec, "ids");
	const msgpack_object *id = mtl_mp_get(rec, "id");
	const msgpack_object *labels = mtl_mp_get(rec, "labels");
	const msgpack_object *text = mtl_mp_get(rec, "text");
	const msgpack_object *text_b = mtl_mp_get(rec, "text_b");
	long n = mtl_mp_array_len(ids);
	int rc = MTL_ERR_NOMEM;

	memset(ex, 0, sizeof(*ex));
	if (!mtl_mp_is_str(mtl_mp_get(rec, "type"), "example"))
		return mtl_err_set(err, MTL_ERR_FORMAT, "not an example record");
	if (n < 1 || n > (1 << 20))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "\"ids\" is not a non-empty array of token ids");
	ex->len = (int32_t)n;
	ex->n_tasks = ts->n;
	ex->ids = malloc((size_t)n * sizeof(int32_t));
	ex->seq = malloc((size_t)(ts->n ? ts->n : 1) * sizeof(int32_t));
	ex->tok = calloc((size_t)(ts->n ? ts->n : 1), sizeof(int32_t *));
	ex->lost = calloc((size_t)(ts->n ? ts->n : 1), sizeof(int32_t *));
	ex->multi = calloc((size_t)(ts->n ? ts->n : 1), sizeof(int32_t *));
	if (!ex->ids || !ex->seq || !ex->tok || !ex->lost || !ex->multi)
		goto fail;
	for (int i = 0; i < ts->n; i++)
		ex->seq[i] = MTL_IGNORE;
	if (mtl_mp_as_i32s(ids, ex->ids, n)) {
		rc = mtl_err_set(err, MTL_ERR_FORMAT, "\"ids\" holds a value that is not an int32");
		goto fail;
	}
	for (long i = 0; i < n; i++)
		if (ex->ids[i] < 0) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT, "negative token id %d", (int)ex->ids[i]);
			goto fail;
		}
	if (id && mtl_mp_copy(id, &ex->id, &ex->id_len))
		goto fail;
	if (text && text->type == MSGPACK_OBJECT_STR) {
		if (!(ex->text = data_dup_str(text)))
			goto fail;
		ex->text_len = text->via.str.size;
	}
	if (text_b && text_b->type == MSGPACK_OBJECT_STR) {
		if (!(ex->text_b = data_dup_str(text_b)))
			goto fail;
		ex->text_b_len = text_b->via.str.size;
	}
	if ((rc = parse_types(&ex->type_ids, mtl_mp_get(rec, "type_ids"), n, err)))
		goto fail;
	if ((rc = parse_extras(ex, rec, ts)))
		goto fail;
	rc = MTL_ERR_NOMEM;
	if (labels && labels->type != MSGPACK_OBJECT_MAP && labels->type != MSGPACK_OBJECT_NIL) {
		rc = mtl_err_set(err, MTL_ERR_FORMAT, "\"labels\" is not a map");
		goto fail;
	}
	for (uint32_t k = 0; labels && labels->type == MSGPACK_OBJECT_MAP &&
			     k < labels->via.map.size; k++) {
		const msgpack_object_kv *kv = &labels->via.map.ptr[k];
		int t = task_index(ts, &kv->key);
		const struct mtl_task *task;

		if (t < 0) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "labels for a task the header does not list ('%.*s')",
					 kv->key.type == MSGPACK_OBJECT_STR ? (int)(kv->key.via.str.size > 40 ? 40 : kv->key.via.str.size) : 1,
					 kv->key.type == MSGPACK_OBJECT_STR ? kv->key.via.str.ptr : "?");
			goto fail;
		}
		if (kv->val.type == MSGPACK_OBJECT_NIL)
			continue;
		task = &ts->task[t];
		if (task->kind == MTL_TASK_EMBEDDING) {
			if ((rc = mtl_example_emb_parse(ex, t, &kv->val, ts, err)) < 0)
				goto fail;
			if (rc)
				ex->labelled |= 1ull << t;
			rc = MTL_ERR_NOMEM;
		} else if (task->kind == MTL_TASK_REGRESSION) {
			double v;

			if (mtl_mp_as_num(&kv->val, &v) || !isfinite((float)v)) {
				rc = mtl_err_set(err, MTL_ERR_FORMAT,
						 "task '%s': target is not a finite number",
						 task->name);
				goto fail;
			}
			ex->seq[t] = mtl_label_of_value((float)v);
			ex->labelled |= 1ull << t;
		} else if (task->kind == MTL_TASK_SEQUENCE || task->kind == MTL_TASK_PAIR) {
			int64_t v;
			if (mtl_mp_as_int(&kv->val, &v) || v < MTL_IGNORE || v > INT32_MAX) {
				rc = mtl_err_set(err, MTL_ERR_FORMAT,
						 "task '%s': label is not an integer", task->name);
				goto fail;
			}
			ex->seq[t] = (int32_t)v;
			if ((rc = check_labels(task, &ex->seq[t], 1, err)))
				goto fail;
			if (v != MTL_IGNORE)
				ex->labelled |= 1ull << t;
		} else {
			/* a token task's label per token, a multilabel task's
			 * 0/1 per label */
			int multi = task->kind == MTL_TASK_MULTILABEL;
			long m = multi ? task->n_labels : n;
			int32_t **v = multi ? &ex->multi[t] : &ex->tok[t];

			if (!(*v = malloc((size_t)m * sizeof(int32_t))))
				goto fail;
			if (mtl_mp_as_i32s(&kv->val, *v, m)) {
				rc = mtl_err_set(err, MTL_ERR_FORMAT,
						 "task '%s': labels are not %ld integers (one %s)",
						 task->name, m, multi ? "0/1 per label" : "per token");
				goto fail;
			}
			if ((rc = check_labels(task, *v, m, err)))
				goto fail;
			for (long i = 0; i < m; i++)
				if ((*v)[i] != MTL_IGNORE)
					ex->labelled |= 1ull << t;
		}
	}
	return 0;
fail:
	if (rc == MTL_ERR_NOMEM)
		mtl_err_set(err, rc, "out of memory");
	mtl_example_release(ex);
	return rc;
}

uint64_t mtl_example_tasks(const struct mtl_example *ex)
{
	uint64_t m = 0;

	for (int t = 0; t < ex->n_tasks; t++)
		if (ex->tok[t] || ex->seq[t] != MTL_IGNORE ||
		    (ex->emb && ex->emb[t].other) ||
		    (ex->multi && ex->multi[t]))
			m |= 1ull << t;
	return m;
}

void mtl_example_pack(msgpack_packer *pk, const struct mtl_example *ex,
		      const struct mtl_tasks *ts)
{
	uint64_t tasks = mtl_example_tasks(ex), lost = 0;
	int n_lost = 0;

	for (int t = 0; ex->lost && ex->lost_words > 0 && t < ex->n_tasks; t++)
		if (ex->lost[t]) {
			lost |= 1ull << t;
			n_lost++;
		}
	msgpack_pack_map(pk, 5 + (ex->text != NULL) + (ex->text_b != NULL) +
			 (ex->type_ids != NULL) + (ex->word_ids != NULL) +
			 (ex->words != NULL) + (ex->truncated != 0) + (n_lost > 0) +
			 (ex->pair_ids != NULL) + 2 * (ex->word_starts != NULL));
	mtl_mp_pack_str(pk, "type");
	mtl_mp_pack_str(pk, "example");
	mtl_mp_pack_str(pk, "id");
	mtl_data_pack_id(pk, ex);
	mtl_data_pack_texts(pk, ex);
	mtl_mp_pack_str(pk, "ids");
	mtl_mp_pack_i32s(pk, ex->ids, (size_t)ex->len);
	if (ex->type_ids) {
		mtl_mp_pack_str(pk, "type_ids");
		mtl_mp_pack_i32s(pk, ex->type_ids, (size_t)ex->len);
	}
	if (ex->word_ids) {
		mtl_mp_pack_str(pk, "word_ids");
		mtl_mp_pack_i32s(pk, ex->word_ids, (size_t)ex->len);
	}
	if (ex->pair_ids) {
		mtl_mp_pack_str(pk, "pair_ids");
		mtl_mp_pack_i32s(pk, ex->pair_ids, (size_t)ex->pair_len);
	}
	if (ex->words) {
		mtl_mp_pack_str(pk, "words");
		msgpack_pack_array(pk, ex->n_words);
		for (size_t i = 0; i < ex->n_words; i++)
			mtl_mp_pack_str(pk, ex->words[i]);
	}
	if (ex->word_starts) {
		mtl_mp_pack_str(pk, "word_starts");
		mtl_mp_pack_i32s(pk, ex->word_starts, (size_t)ex->n_spans);
		mtl_mp_pack_str(pk, "word_ends");
		mtl_mp_pack_i32s(pk, ex->word_ends, (size_t)ex->n_spans);
	}
	pack_labels_map(pk, tasks, ex->n_tasks);
	for (int t = 0; t < ex->n_tasks; t++) {
		if (!((tasks >> t) & 1))
			continue;
		mtl_mp_pack_str(pk, ts->task[t].name);
		if (ex->emb && ex->emb[t].other)
			mtl_example_emb_pack(pk, ex, t);
		else if (ex->tok[t])
			mtl_mp_pack_i32s(pk, ex->tok[t], (size_t)ex->len);
		else if (ex->multi && ex->multi[t])
			mtl_mp_pack_i32s(pk, ex->multi[t],
					 (size_t)ts->task[t].n_labels);
		else if (ts->task[t].kind == MTL_TASK_REGRESSION)
			msgpack_pack_float(pk, mtl_label_value(ex->seq[t]));
		else
			msgpack_pack_int32(pk, ex->seq[t]);
	}
	mtl_mp_pack_str(pk, "truncated");
	if (ex->truncated) {
		msgpack_pack_true(pk);
		mtl_mp_pack_str(pk, "words_lost");
		msgpack_pack_int32(pk, ex->words_lost);
	} else {
		msgpack_pack_false(pk);
	}
	if (!n_lost)
		return;
	mtl_mp_pack_str(pk, "lost_labels");
	msgpack_pack_map(pk, (size_t)n_lost);
	for (int t = 0; t < ex->n_tasks; t++)
		if ((lost >> t) & 1) {
			mtl_mp_pack_str(pk, ts->task[t].name);
			mtl_mp_pack_i32s(pk, ex->lost[t], (size_t)ex->lost_words);
		}
}

void mtl_example_release(struct mtl_example *ex)
{
	if (!ex)
		return;
	mtl_example_emb_release(ex);
	for (int i = 0; ex->tok && i < ex->n_tasks; i++)
		free(ex->tok[i]);
	for (int i = 0; ex->lost && i < ex->n_tasks; i++)
		free(ex->lost[i]);
	free(ex->lost);
	for (int i = 0; ex->multi && i < ex->n_tasks; i++)
		free(ex->multi[i]);
	free(ex->multi);
	for (size_t i = 0; ex->words && i < ex->n_words; i++)
		free(ex->words[i]);
	free(ex->words);
	free(ex->tok);
	free(ex->seq);
	free(ex->ids);
	free(ex->word_ids);
	free(ex->word_starts);
	free(ex->word_ends);
	free(ex->pair_ids);
	free(ex->type_ids);
	free(ex->id);
	free(ex->text);
	free(ex->text_b);
	memset(ex, 0, sizeof(*ex));
}

void mtl_example_strip(struct mtl_example *ex)
{
	for (int i = 0; ex->lost && i < ex->n_tasks; i++) {
		free(ex->lost[i]);
		ex->lost[i] = NULL;
	}
	ex->lost_words = 0;
	for (size_t i = 0; ex->words && i < ex->n_words; i++)
		free(ex->words[i]);
	free(ex->words);
	ex->words = NULL;
	ex->n_words = 0;
	free(ex->word_ids);
	free(ex->word_starts);
	free(ex->word_ends);
	ex->word_ids = ex->word_starts = ex->word_ends = NULL;
	ex->n_spans = 0;
	free(ex->text);
	ex->text = NULL;
	ex->text_len = 0;
	free(ex->text_b);
	ex->text_b = NULL;
	ex->text_b_len = 0;
}

/* Pads row i of ids[n,T] from x[len] with pad_id. */
static void pad_row(int32_t *ids, int T, const int32_t *x, int32_t len,
		    int32_t pad_id)
{
	for (int t = 0; t < T; t++)
		ids[t] = t < len ? x[t] : pad_id;
}

int mtl_batch_make(struct mtl_batch *b, const struct mtl_example *const *ex,
		   int n, const struct mtl_tasks *ts, const int *map,
		   uint64_t task_mask, int32_t pad_id, struct mtl_err *err)
{
	int T = 1, Tp = 0, pairs = n > 0, nt = ts ? ts->n : 0, typed = 0;

	memset(b, 0, sizeof(*b));
	for (int i = 0; i < n; i++) {
		T = ex[i]->len > T ? ex[i]->len : T;
		Tp = ex[i]->pair_len > Tp ? ex[i]->pair_len : Tp;
		pairs &= ex[i]->pair_ids != NULL;
		typed |= ex[i]->type_ids != NULL;
	}
	/* an embedding task's texts share the batch width */
	if (mtl_batch_emb_width(ex, n, ts, map, task_mask) > T)
		T = mtl_batch_emb_width(ex, n, ts, map, task_mask);
	b->B = n;
	b->T = T;
	b->n_tasks = nt;
	b->ids = malloc(sizeof(int32_t) * (size_t)n * T);
	b->lengths = malloc(sizeof(int32_t) * (size_t)n);
	b->labels = calloc((size_t)nt + 1, sizeof(*b->labels));
	b->example_ids = calloc((size_t)n + 1, sizeof(char *));
	b->example_id_len = calloc((size_t)n + 1, sizeof(size_t));
	if (!b->ids || !b->lengths || !b->labels || !b->example_ids ||
	    !b->example_id_len)
		goto nomem;
	for (int i = 0; i < n; i++) {
		b->lengths[i] = ex[i]->len;
		pad_row(b->ids + (size_t)i * T, T, ex[i]->ids, ex[i]->len, pad_id);
		if (ex[i]->id) {
			if (!(b->example_ids[i] = malloc(ex[i]->id_len)))
				goto nomem;
			memcpy(b->example_ids[i], ex[i]->id, ex[i]->id_len);
			b->example_id_len[i] = ex[i]->id_len;
		}
	}
	/* pair texts only when every example of the batch has one */
	if (pairs) {
		b->Tp = Tp;
		b->pair_ids = malloc(sizeof(int32_t) * (size_t)n * Tp);
		b->pair_lengths = malloc(sizeof(int32_t) * (size_t)n);
		if (!b->pair_ids || !b->pair_lengths)
			goto nomem;
		for (int i = 0; i < n; i++) {
			b->pair_lengths[i] = ex[i]->pair_len;
			pad_row(b->pair_ids + (size_t)i * Tp, Tp, ex[i]->pair_ids,
				ex[i]->pair_len, pad_id);
		}
	}
	for (int t = 0; t < nt; t++) {
		int s = map ? map[t] : t, token = ts->task[t].kind == MTL_TASK_TOKEN;
		int w = mtl_task_width(&ts->task[t], T), any = 0;
		int32_t *l;

		if (ts->task[t].kind == MTL_TASK_EMBEDDING)
			continue; /* mtl_batch_emb_make */
		for (int i = 0; s >= 0 && ((task_mask >> t) & 1) && i < n; i++)
			any |= (int)((ex[i]->labelled >> s) & 1);
		if (!any)
			continue;
		l = malloc(sizeof(int32_t) * (size_t)n * w);
		if (!l)
			goto nomem;
		b->labels[t] = l;
		for (int i = 0; i < n; i++) {
			if (ts->task[t].kind == MTL_TASK_MULTILABEL)
				pad_row(l + (size_t)i * w, w,
					ex[i]->multi ? ex[i]->multi[s] : NULL,
					ex[i]->multi && ex[i]->multi[s] ? w : 0,
					MTL_IGNORE);
			else if (!token)
				l[i] = ex[i]->seq[s];
			else if (ex[i]->tok[s])
				pad_row(l + (size_t)i * T, T, ex[i]->tok[s],
					ex[i]->len, MTL_IGNORE);
			else
				pad_row(l + (size_t)i * T, T, NULL, 0, MTL_IGNORE);
		}
	}
	if (mtl_batch_emb_make(b, ex, n, ts, map, task_mask, pad_id))
		goto nomem;
	/* token type ids when a row is a pair: 0 on padding and extra rows,
	 * as Hugging Face pads them */
	if (typed) {
		if (!(b->type_ids = calloc((size_t)(n + b->E) * T, sizeof(int32_t))))
			goto nomem;
		for (int i = 0; i < n; i++)
			if (ex[i]->type_ids)
				memcpy(b->type_ids + (size_t)i * T, ex[i]->type_ids,
				       (size_t)ex[i]->len * sizeof(int32_t));
	}
	return 0;
nomem:
	mtl_batch_release(b);
	return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
}

void mtl_batch_mask(int32_t *mask, const int32_t *lengths, int B, int T)
{
	for (int i = 0; i < B; i++)
		for (int t = 0; t < T; t++)
			mask[(size_t)i * T + t] = t < lengths[i];
}

/* Packs n regression targets (label slots) as floats, nil for none. */
static void pack_targets(msgpack_packer *pk, const int32_t *x, size_t n)
{
	msgpack_pack_array(pk, n);
	for (size_t i = 0; i < n; i++)
		if (x[i] == MTL_IGNORE)
			msgpack_pack_nil(pk);
		else
			msgpack_pack_float(pk, mtl_label_value(x[i]));
}

/* Reads n regression targets (numbers or nil) from o into label slots.
 * 0, or -1 when o is not such an array. */
static int parse_targets(const msgpack_object *o, int32_t *x, int64_t n)
{
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != (uint32_t)n)
		return -1;
	for (int64_t i = 0; i < n; i++) {
		const msgpack_object *v = &o->via.array.ptr[i];
		double d;

		if (v->type == MSGPACK_OBJECT_NIL)
			x[i] = MTL_IGNORE;
		else if (mtl_mp_as_num(v, &d) || !isfinite((float)d))
			return -1;
		else
			x[i] = mtl_label_of_value((float)d);
	}
	return 0;
}

void mtl_batch_pack(msgpack_packer *pk, const struct mtl_batch *b,
		    const struct mtl_tasks *ts)
{
	size_t BT = (size_t)b->B * b->T;
	uint64_t present = 0;

	for (int t = 0; t < b->n_tasks; t++)
		present |= (uint64_t)(b->labels[t] != NULL) << t;
	msgpack_pack_map(pk, 9 + (b->type_ids != NULL) + 2 * (b->pair_ids != NULL) +
			 mtl_batch_emb_keys(b));
	mtl_mp_pack_str(pk, "type");
	mtl_mp_pack_str(pk, "batch");
	mtl_mp_pack_str(pk, "epoch");
	msgpack_pack_int64(pk, b->epoch);
	mtl_mp_pack_str(pk, "index");
	msgpack_pack_int64(pk, b->index);
	mtl_mp_pack_str(pk, "size");
	msgpack_pack_int(pk, b->B);
	mtl_mp_pack_str(pk, "seq_len");
	msgpack_pack_int(pk, b->T);
	mtl_mp_pack_str(pk, "ids");
	mtl_mp_pack_i32s(pk, b->ids, BT + (size_t)b->E * b->T);
	if (b->type_ids) {
		mtl_mp_pack_str(pk, "type_ids");
		mtl_mp_pack_i32s(pk, b->type_ids, BT + (size_t)b->E * b->T);
	}
	mtl_mp_pack_str(pk, "lengths");
	mtl_mp_pack_i32s(pk, b->lengths, (size_t)(b->B + b->E));
	mtl_mp_pack_str(pk, "example_ids");
	msgpack_pack_array(pk, (size_t)b->B);
	for (int i = 0; i < b->B; i++)
		if (b->example_ids && b->example_ids[i])
			mtl_data_pack_raw(pk, b->example_ids[i],
					  b->example_id_len[i]);
		else
			msgpack_pack_nil(pk);
	if (b->pair_ids) {
		mtl_mp_pack_str(pk, "pair_ids");
		mtl_mp_pack_i32s(pk, b->pair_ids, (size_t)b->B * b->Tp);
		mtl_mp_pack_str(pk, "pair_lengths");
		mtl_mp_pack_i32s(pk, b->pair_lengths, (size_t)b->B);
	}
	pack_labels_map(pk, present, b->n_tasks);
	for (int t = 0; t < b->n_tasks; t++)
		if (b->labels[t] && ts->task[t].kind == MTL_TASK_REGRESSION) {
			mtl_mp_pack_str(pk, ts->task[t].name);
			pack_targets(pk, b->labels[t], (size_t)b->B);
		} else if (b->labels[t]) {
			mtl_mp_pack_str(pk, ts->task[t].name);
			mtl_mp_pack_i32s(pk, b->labels[t], (size_t)b->B *
				  mtl_task_width(&ts->task[t], b->T));
		}
	mtl_batch_emb_pack(pk, b, ts);
}

/* "pair_lengths" [B] and "pair_ids" [B, max length] into b.  0 or <0. */
static int parse_pairs(struct mtl_batch *b, const msgpack_object *rec,
		       struct mtl_err *err)
{
	int Tp = 0;

	if (!(b->pair_lengths = malloc((size_t)b->B * sizeof(int32_t))))
		return MTL_ERR_NOMEM;
	if (mtl_mp_as_i32s(mtl_mp_get(rec, "pair_lengths"), b->pair_lengths, b->B))
		return mtl_err_set(err, MTL_ERR_FORMAT, "\"pair_lengths\" is not %d integers",
				   b->B);
	for (int i = 0; i < b->B; i++) {
		if (b->pair_lengths[i] < 1 || b->pair_lengths[i] > (1 << 20))
			return mtl_err_set(err, MTL_ERR_FORMAT, "row %d: pair length %d outside 1..2^20",
					   i, (int)b->pair_lengths[i]);
		Tp = b->pair_lengths[i] > Tp ? b->pair_lengths[i] : Tp;
	}
	if ((int64_t)b->B * Tp > (1 << 26))
		return mtl_err_set(err, MTL_ERR_FORMAT, "pair texts of more than 2^26 tokens");
	b->Tp = Tp;
	if (!(b->pair_ids = malloc((size_t)b->B * Tp * sizeof(int32_t))))
		return MTL_ERR_NOMEM;
	if (mtl_mp_as_i32s(mtl_mp_get(rec, "pair_ids"), b->pair_ids, (long)b->B * Tp))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "\"pair_ids\" is not %lld integers (size x longest pair length)",
				   (long long)b->B * Tp);
	for (int64_t i = 0; i < (int64_t)b->B * Tp; i++)
		if (b->pair_ids[i] < 0)
			return mtl_err_set(err, MTL_ERR_FORMAT, "negative pair token id %d",
					   (int)b->pair_ids[i]);
	return 0;
}

int mtl_batch_parse(struct mtl_batch *b, const msgpack_object *rec,
		    const struct mtl_tasks *ts, struct mtl_err *err)
{
	const msgpack_object *labels = mtl_mp_get(rec, "labels");
	const msgpack_object *exids = mtl_mp_get(rec, "example_ids");
	int64_t B, T, E;
	int rc = MTL_ERR_NOMEM;

	memset(b, 0, sizeof(*b));
	if (!mtl_mp_is_str(mtl_mp_get(rec, "type"), "batch"))
		return mtl_err_set(err, MTL_ERR_FORMAT, "not a batch record");
	if ((rc = mtl_batch_emb_rows(rec, &E, err)))
		return rc;
	if (mtl_mp_as_int(mtl_mp_get(rec, "size"), &B) ||
	    mtl_mp_as_int(mtl_mp_get(rec, "seq_len"), &T) || B < 1 || T < 1 ||
	    B > (1 << 20) || T > (1 << 20) || (B + E) * T > (1 << 26))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "\"size\" and \"seq_len\" must be positive integers (at most 2^26 tokens)");
	if (mtl_mp_as_int(mtl_mp_get(rec, "epoch"), &b->epoch))
		b->epoch = 0;
	if (mtl_mp_as_int(mtl_mp_get(rec, "index"), &b->index))
		b->index = 0;
	/* the declared size is only believed once the record backs it */
	if (mtl_mp_array_len(mtl_mp_get(rec, "ids")) != (B + E) * T)
		return mtl_err_set(err, MTL_ERR_FORMAT, "\"ids\" is not %lld integers ((size + extra_rows) x seq_len)",
				   (long long)((B + E) * T));
	b->B = (int)B;
	b->T = (int)T;
	b->E = (int)E;
	b->n_tasks = ts->n;
	b->ids = malloc((size_t)((B + E) * T) * sizeof(int32_t));
	b->lengths = malloc((size_t)(B + E) * sizeof(int32_t));
	b->labels = calloc((size_t)(ts->n ? ts->n : 1), sizeof(int32_t *));
	b->example_ids = calloc((size_t)B, sizeof(char *));
	b->example_id_len = calloc((size_t)B, sizeof(size_t));
	if (!b->ids || !b->lengths || !b->labels || !b->example_ids || !b->example_id_len)
		goto fail;
	if (mtl_mp_as_i32s(mtl_mp_get(rec, "ids"), b->ids, (B + E) * T)) {
		rc = mtl_err_set(err, MTL_ERR_FORMAT, "\"ids\" is not %lld integers ((size + extra_rows) x seq_len)",
				 (long long)((B + E) * T));
		goto fail;
	}
	if (mtl_mp_as_i32s(mtl_mp_get(rec, "lengths"), b->lengths, B + E)) {
		rc = mtl_err_set(err, MTL_ERR_FORMAT, "\"lengths\" is not %lld integers", (long long)(B + E));
		goto fail;
	}
	for (int64_t i = 0; i < B + E; i++)
		if (b->lengths[i] < 1 || b->lengths[i] > T) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT, "row %lld: length %d outside 1..%lld",
					 (long long)i, (int)b->lengths[i], (long long)T);
			goto fail;
		}
	for (int64_t i = 0; i < (B + E) * T; i++)
		if (b->ids[i] < 0) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT, "negative token id %d", (int)b->ids[i]);
			goto fail;
		}
	if ((rc = parse_types(&b->type_ids, mtl_mp_get(rec, "type_ids"), (long)((B + E) * T),
			      err)))
		goto fail;
	rc = MTL_ERR_NOMEM;
	if (exids && exids->type == MSGPACK_OBJECT_ARRAY && exids->via.array.size == (uint32_t)B)
		for (int64_t i = 0; i < B; i++)
			if (mtl_mp_copy(&exids->via.array.ptr[i], &b->example_ids[i],
					&b->example_id_len[i]))
				goto fail;
	if (mtl_mp_get(rec, "pair_lengths") &&
	    (rc = parse_pairs(b, rec, err)))
		goto fail;
	if (labels && labels->type != MSGPACK_OBJECT_MAP) {
		rc = mtl_err_set(err, MTL_ERR_FORMAT, "\"labels\" is not a map");
		goto fail;
	}
	for (uint32_t k = 0; labels && k < labels->via.map.size; k++) {
		const msgpack_object_kv *kv = &labels->via.map.ptr[k];
		int t = task_index(ts, &kv->key);
		int64_t n;

		if (t < 0) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT, "labels for a task the header does not list");
			goto fail;
		}
		n = B * mtl_task_width(&ts->task[t], (int)T);
		if (b->labels[t]) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT, "task '%s' labelled twice", ts->task[t].name);
			goto fail;
		}
		if (!(b->labels[t] = malloc((size_t)n * sizeof(int32_t))))
			goto fail;
		if (ts->task[t].kind == MTL_TASK_REGRESSION) {
			if (parse_targets(&kv->val, b->labels[t], n)) {
				rc = mtl_err_set(err, MTL_ERR_FORMAT, "task '%s': targets are not %lld finite numbers or nil",
						 ts->task[t].name, (long long)n);
				goto fail;
			}
			continue;
		}
		if (mtl_mp_as_i32s(&kv->val, b->labels[t], n)) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT, "task '%s': labels are not %lld integers",
					 ts->task[t].name, (long long)n);
			goto fail;
		}
		/* an embedding task's rows: mtl_batch_emb_parse checks them */
		if (ts->task[t].kind != MTL_TASK_EMBEDDING &&
		    (rc = check_labels(&ts->task[t], b->labels[t], (long)n, err)))
			goto fail;
	}
	if ((rc = mtl_batch_emb_parse(b, rec, ts, err)))
		goto fail;
	return 0;
fail:
	if (rc == MTL_ERR_NOMEM)
		mtl_err_set(err, rc, "out of memory");
	mtl_batch_release(b);
	return rc;
}

void mtl_batch_release(struct mtl_batch *b)
{
	if (!b)
		return;
	mtl_batch_emb_release(b);
	for (int i = 0; b->labels && i < b->n_tasks; i++)
		free(b->labels[i]);
	for (int i = 0; b->example_ids && i < b->B; i++)
		free(b->example_ids[i]);
	free(b->example_ids);
	free(b->example_id_len);
	free(b->labels);
	free(b->lengths);
	free(b->ids);
	free(b->pair_ids);
	free(b->type_ids);
	free(b->pair_lengths);
	memset(b, 0, sizeof(*b));
}

int mtl_batch_remap(struct mtl_batch *b, const int *map, int n,
		    struct mtl_err *err)
{
	int32_t **lab = calloc((size_t)n + 1, sizeof(*lab));

	if (!lab || mtl_batch_emb_remap(b, map, n)) {
		free(lab);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	for (int t = 0; t < n; t++)
		if (map[t] >= 0) {
			lab[t] = b->labels[map[t]];
			b->labels[map[t]] = NULL;
		}
	for (int t = 0; t < b->n_tasks; t++)
		free(b->labels[t]);
	free(b->labels);
	b->labels = lab;
	b->n_tasks = n;
	return 0;
}

