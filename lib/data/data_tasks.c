/*
 * data_tasks.c - the task lists of stream headers: reading, packing and
 * merging them; see data.h.
 */
#include "data_int.h"

#include <stdlib.h>
#include <string.h>

#include "mp.h"

char *data_dup_str(const msgpack_object *o)
{
	char *s = malloc(o->via.str.size + 1);

	if (s) {
		memcpy(s, o->via.str.ptr, o->via.str.size);
		s[o->via.str.size] = 0;
	}
	return s;
}

/* The kind a header task's "kind" names, or -1. */
static int header_kind(const msgpack_object *kind)
{
	for (int k = 0; strcmp(mtl_task_kind_name((enum mtl_task_kind)k), "?"); k++)
		if (mtl_mp_is_str(kind, mtl_task_kind_name((enum mtl_task_kind)k)))
			return k;
	return -1;
}

int mtl_data_header_tasks(struct mtl_tasks **out, const msgpack_object *hdr,
			  struct mtl_err *err)
{
	const msgpack_object *arr = mtl_mp_get(hdr, "tasks");
	struct mtl_tasks *ts = calloc(1, sizeof(*ts));
	uint32_t n;

	if (!ts)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	if (!arr) {
		*out = ts;
		return 0;
	}
	if (arr->type != MSGPACK_OBJECT_ARRAY || arr->via.array.size > 64) {
		free(ts);
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "header \"tasks\" is not an array of at most 64 tasks");
	}
	n = arr->via.array.size;
	ts->task = calloc(n ? n : 1, sizeof(*ts->task));
	if (!ts->task) {
		free(ts);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *o = &arr->via.array.ptr[i];
		const msgpack_object *name = mtl_mp_get(o, "name");
		const msgpack_object *kind = mtl_mp_get(o, "kind");
		const msgpack_object *labels = mtl_mp_get(o, "labels");
		struct mtl_task *t = &ts->task[i];
		int k = header_kind(kind);

		ts->n = (int)i + 1;
		t->weight = 1.0;
		/* an embedding task has no labels */
		int emb = mtl_mp_is_str(kind, "embedding");

		if (!name || name->type != MSGPACK_OBJECT_STR || !name->via.str.size ||
		    k < 0 ||
		    !labels || labels->type != MSGPACK_OBJECT_ARRAY ||
		    (labels->via.array.size == 0) != emb) {
			mtl_task_free(ts);
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "header task %u needs a \"name\", a \"kind\" (sequence, token, embedding, multilabel or regression) and \"labels\" (none for embedding)",
					   i);
		}
		t->kind = (enum mtl_task_kind)k;
		t->threshold = 0.5;
		if (t->kind == MTL_TASK_MULTILABEL && mtl_mp_get(o, "threshold")) {
			if (mtl_mp_as_num(mtl_mp_get(o, "threshold"), &t->threshold) ||
			    !(t->threshold > 0 && t->threshold < 1)) {
				mtl_task_free(ts);
				return mtl_err_set(err, MTL_ERR_FORMAT,
						   "header task %u: \"threshold\" is not a number in (0, 1)",
						   i);
			}
		}
		t->name = data_dup_str(name);
		t->labels = calloc(labels->via.array.size, sizeof(char *));
		if (!t->name || !t->labels) {
			mtl_task_free(ts);
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		}
		for (uint32_t k = 0; k < labels->via.array.size; k++) {
			const msgpack_object *l = &labels->via.array.ptr[k];
			if (l->type != MSGPACK_OBJECT_STR || !l->via.str.size ||
			    memchr(l->via.str.ptr, 0, l->via.str.size)) {
				mtl_task_free(ts);
				return mtl_err_set(err, MTL_ERR_FORMAT,
						   "header task %u: label %u is not a non-empty string",
						   i, k);
			}
			t->n_labels = (int)k + 1;
			if (!(t->labels[k] = data_dup_str(l))) {
				mtl_task_free(ts);
				return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
			}
		}
		{
			size_t d;
			int rc = mtl_task_first_dup((const char *const *)t->labels,
						    (size_t)t->n_labels, &d);
			if (rc > 0)
				rc = mtl_err_set(err, MTL_ERR_FORMAT,
						 "header task %u: duplicate label '%.100s'",
						 i, t->labels[d]);
			else if (rc < 0)
				rc = mtl_err_set(err, rc, "out of memory");
			if (rc < 0) {
				mtl_task_free(ts);
				return rc;
			}
		}
	}
	for (int i = 0; i < ts->n; i++)
		for (int j = 0; j < i; j++)
			if (!strcmp(ts->task[i].name, ts->task[j].name)) {
				int rc = mtl_err_set(err, MTL_ERR_FORMAT,
						     "header names task '%s' twice",
						     ts->task[i].name);
				mtl_task_free(ts);
				return rc;
			}
	*out = ts;
	return 0;
}

void mtl_data_pack_tasks(msgpack_packer *pk, const struct mtl_tasks *ts)
{
	msgpack_pack_array(pk, ts ? (size_t)ts->n : 0);
	for (int i = 0; ts && i < ts->n; i++) {
		const struct mtl_task *t = &ts->task[i];

		msgpack_pack_map(pk, 3 + (t->kind == MTL_TASK_MULTILABEL));
		mtl_mp_pack_str(pk, "name");
		mtl_mp_pack_str(pk, t->name);
		mtl_mp_pack_str(pk, "kind");
		mtl_mp_pack_str(pk, mtl_task_kind_name(t->kind));
		mtl_mp_pack_str(pk, "labels");
		msgpack_pack_array(pk, (size_t)t->n_labels);
		for (int k = 0; k < t->n_labels; k++)
			mtl_mp_pack_str(pk, t->labels[k]);
		if (t->kind == MTL_TASK_MULTILABEL) {
			mtl_mp_pack_str(pk, "threshold");
			msgpack_pack_double(pk, t->threshold);
		}
	}
}

static int same_labels(const struct mtl_task *a, const struct mtl_task *b)
{
	if (a->kind != b->kind || a->n_labels != b->n_labels)
		return 0;
	for (int i = 0; i < a->n_labels; i++)
		if (strcmp(a->labels[i], b->labels[i]))
			return 0;
	return 1;
}

int mtl_data_merge_tasks(struct mtl_tasks *into, const struct mtl_tasks *add,
			 struct mtl_err *err)
{
	for (int i = 0; i < add->n; i++) {
		const struct mtl_task *t = &add->task[i];
		int j = mtl_task_find(into, t->name);
		struct mtl_task *grown, *n;

		if (j >= 0) {
			if (!same_labels(&into->task[j], t))
				return mtl_err_set(err, MTL_ERR_FORMAT,
						   "task '%s' has another kind or other labels in this input",
						   t->name);
			continue;
		}
		if (into->n == 64)
			return mtl_err_set(err, MTL_ERR_FORMAT, "more than 64 tasks");
		grown = realloc(into->task, (size_t)(into->n + 1) * sizeof(*grown));
		if (!grown)
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		into->task = grown;
		n = &into->task[into->n];
		*n = *t;
		n->name = strdup(t->name);
		n->labels = calloc((size_t)t->n_labels, sizeof(char *));
		into->n++;
		if (!n->name || !n->labels)
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		for (int k = 0; k < t->n_labels; k++)
			if (!(n->labels[k] = strdup(t->labels[k])))
				return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	return 0;
}
