/*
 * task.c - tasks.json: strict parsing with jansson, saving, look-ups; see
 * task.h for the format.
 */
#include "task.h"

#include "fs.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define TASK_MAX_HIDDEN (1 << 20)

static const char *const kind_names[] = { "sequence", "token", "embedding",
					   "multilabel", "regression", "pair" };
#define N_KINDS ((int)(sizeof(kind_names) / sizeof(*kind_names)))
static const char *const act_names[] = { "gelu", "tanh", "relu" };
static const char *const pool_names[] = { "default", "cls", "mean", "max" };
static const char *const emb_loss_names[] = { "mnrl", "cosent", "cosine_mse" };

const char *mtl_task_kind_name(enum mtl_task_kind k)
{
	return (unsigned)k < (unsigned)N_KINDS ? kind_names[k] : "?";
}

const char *mtl_task_act_name(enum mtl_task_act a)
{
	return (unsigned)a < 3 ? act_names[a] : "?";
}

const char *mtl_task_emb_loss_name(enum mtl_emb_loss l)
{
	return (unsigned)l < 3 ? emb_loss_names[l] : "?";
}

const char *mtl_task_pool_name(enum mtl_pool p)
{
	return (unsigned)p < 4 ? pool_names[p] : "?";
}

void mtl_task_free(struct mtl_tasks *ts)
{
	if (!ts)
		return;
	for (int i = 0; i < ts->n; i++) {
		struct mtl_task *t = &ts->task[i];
		free(t->name);
		for (int k = 0; k < t->n_labels; k++)
			free(t->labels[k]);
		free(t->labels);
	}
	free(ts->task);
	free(ts);
}

int mtl_task_find(const struct mtl_tasks *ts, const char *name)
{
	for (int i = 0; ts && i < ts->n; i++)
		if (strcmp(ts->task[i].name, name) == 0)
			return i;
	return -1;
}

int mtl_task_label(const struct mtl_task *t, const char *label)
{
	for (int i = 0; i < t->n_labels; i++)
		if (strcmp(t->labels[i], label) == 0)
			return i;
	return -1;
}

int mtl_task_width(const struct mtl_task *t, int T)
{
	return t->kind == MTL_TASK_TOKEN ? T :
	       t->kind == MTL_TASK_MULTILABEL ? t->n_labels : 1;
}

struct dup_key {
	const char *s;
	size_t i;
};

static int dup_cmp(const void *a, const void *b)
{
	const struct dup_key *x = a, *y = b;
	int c = strcmp(x->s, y->s);

	return c ? c : (x->i > y->i) - (x->i < y->i);
}

int mtl_task_first_dup(const char *const *s, size_t n, size_t *at)
{
	struct dup_key *k = malloc((n ? n : 1) * sizeof(*k));
	int found = 0;

	if (!k)
		return MTL_ERR_NOMEM;
	for (size_t i = 0; i < n; i++)
		k[i] = (struct dup_key){ s[i], i };
	qsort(k, n, sizeof(*k), dup_cmp);
	/* equal strings sort by position: the second of a pair repeats */
	for (size_t i = 1; i < n; i++)
		if (!strcmp(k[i - 1].s, k[i].s) && (!found || k[i].i < *at)) {
			*at = k[i].i;
			found = 1;
		}
	free(k);
	return found;
}

static int valid_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

/* Index of s in names[0..n), or -1. */
static int pick(const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

/* Fails unless every key of o is in allowed (NULL-terminated). */
static int check_keys(json_t *o, const char *const *allowed, const char *name,
		      const char *where, struct mtl_err *err)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v) {
		int ok = 0;
		for (int i = 0; allowed[i]; i++)
			ok |= strcmp(key, allowed[i]) == 0;
		if (!ok)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "%s: %s: unknown key '%s'", name,
					   where, key);
	}
	return 0;
}

/* A number field of o into *v when present: 0, or <0 when not a finite
 * number in [lo, inf) (open at lo when open). */
static int emb_number(json_t *o, const char *key, double lo, int open,
		      double *v, const char *name, const char *where,
		      struct mtl_err *err)
{
	json_t *j = json_object_get(o, key);

	if (!j)
		return 0;
	if (!json_is_number(j) || !isfinite(json_number_value(j)) ||
	    (open ? !(json_number_value(j) > lo) : !(json_number_value(j) >= lo)))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "%s: %s: '%s' must be a number %s %g", name,
				   where, key, open ? ">" : ">=", lo);
	*v = json_number_value(j);
	return 0;
}

/* The rest of an embedding task (kind "embedding", task.h). */
static int parse_emb(struct mtl_task *t, json_t *o, const char *name,
		     const char *where, struct mtl_err *err)
{
	static const char *const emb_keys[] = {
		"name", "kind", "weight", "loss", "scale", "symmetric",
		"matryoshka_dims", "matryoshka_weights", NULL };
	struct mtl_task_emb *e = &t->emb;
	json_t *j, *wj;
	double v;
	int rc;

	if ((rc = check_keys(o, emb_keys, name, where, err)) < 0)
		return rc;
	t->weight = 1.0;
	t->dropout = 0.1;
	t->pooling = MTL_POOL_DEFAULT;
	e->loss = MTL_EMB_MNRL;
	j = json_object_get(o, "loss");
	if (j) {
		int l = json_is_string(j) ? pick(json_string_value(j), emb_loss_names, 3) : -1;
		if (l < 0)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "%s: %s: 'loss' must be \"mnrl\", \"cosent\" or \"cosine_mse\"",
					   name, where);
		e->loss = (enum mtl_emb_loss)l;
	}
	v = 20;
	if ((rc = emb_number(o, "scale", 0, 1, &v, name, where, err)) < 0)
		return rc;
	e->scale = (float)v;
	v = 1;
	if ((rc = emb_number(o, "weight", 0, 0, &v, name, where, err)) < 0)
		return rc;
	t->weight = v;
	j = json_object_get(o, "symmetric");
	if (j && !json_is_boolean(j))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "%s: %s: 'symmetric' must be true or false",
				   name, where);
	e->symmetric = j && json_is_true(j);
	if (e->symmetric && e->loss != MTL_EMB_MNRL)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "%s: %s: 'symmetric' is for the mnrl loss only",
				   name, where);
	j = json_object_get(o, "matryoshka_dims");
	wj = json_object_get(o, "matryoshka_weights");
	if (j && (!json_is_array(j) || json_array_size(j) == 0 ||
		  json_array_size(j) > MTL_EMB_MAX_DIMS))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "%s: %s: 'matryoshka_dims' must be an array of 1 to %d integers",
				   name, where, MTL_EMB_MAX_DIMS);
	if (wj && (!j || !json_is_array(wj) ||
		   json_array_size(wj) != json_array_size(j)))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "%s: %s: 'matryoshka_weights' needs one number per entry of 'matryoshka_dims'",
				   name, where);
	for (size_t i = 0; j && i < json_array_size(j); i++) {
		json_t *d = json_array_get(j, i), *w = wj ? json_array_get(wj, i) : NULL;

		if (!json_is_integer(d) || json_integer_value(d) < 1 ||
		    json_integer_value(d) > TASK_MAX_HIDDEN ||
		    (i && json_integer_value(d) >= e->dims[i - 1]))
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "%s: %s: 'matryoshka_dims' must be decreasing integers >= 1",
					   name, where);
		if (w && (!json_is_number(w) || !isfinite(json_number_value(w)) ||
			  json_number_value(w) < 0))
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "%s: %s: 'matryoshka_weights' must be numbers >= 0",
					   name, where);
		e->dims[i] = (int)json_integer_value(d);
		e->weights[i] = w ? (float)json_number_value(w) : 1.0f;
		e->n_dims = (int)i + 1;
	}
	return 0;
}

static int parse_task(struct mtl_task *t, json_t *o, int idx,
		      const char *name, struct mtl_err *err)
{
	static const char *const task_keys[] = { "name", "kind", "labels",
						 "weight", "head", "threshold",
						 NULL };
	static const char *const head_keys[] = { "hidden", "activation",
						 "dropout", "pooling", NULL };
	char where[160];
	json_t *j, *head;
	size_t i;
	int rc;

	snprintf(where, sizeof(where), "tasks[%d]", idx);
	if (!json_is_object(o))
		return mtl_err_set(err, MTL_ERR_FORMAT, "%s: %s: not an object",
				   name, where);
	j = json_object_get(o, "name");
	if (!json_is_string(j))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "%s: %s: %s", name, where,
				   j ? "'name' is not a string" : "missing 'name'");
	if (!valid_name(json_string_value(j)) ||
	    strlen(json_string_value(j)) > 100)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "%s: %s: bad name '%.100s' (want [A-Za-z0-9_-]+)",
				   name, where, json_string_value(j));
	t->name = strdup(json_string_value(j));
	if (!t->name)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	snprintf(where, sizeof(where), "task '%s'", t->name);
	j = json_object_get(o, "kind");
	if (json_is_string(j) && !strcmp(json_string_value(j), "embedding")) {
		t->kind = MTL_TASK_EMBEDDING;
		return parse_emb(t, o, name, where, err);
	}
	rc = check_keys(o, task_keys, name, where, err);
	if (rc < 0)
		return rc;

	j = json_object_get(o, "kind");
	if (!json_is_string(j) ||
	    pick(json_string_value(j), kind_names, N_KINDS) < 0)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "%s: %s: %s", name, where,
				   !j ? "missing 'kind'" :
				   "'kind' must be \"sequence\", \"pair\", \"token\", \"embedding\", \"multilabel\" or \"regression\"");
	t->kind = (enum mtl_task_kind)pick(json_string_value(j), kind_names,
					   N_KINDS);

	j = json_object_get(o, "labels");
	if (t->kind == MTL_TASK_REGRESSION) {
		/* one output, one number per text: no label names */
		if (j)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "%s: %s: a regression task has no 'labels'",
					   name, where);
		t->labels = calloc(1, sizeof(*t->labels));
		if (!t->labels || !(t->labels[0] = strdup("value")))
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		t->n_labels = 1;
		goto weight;
	}
	if (!json_is_array(j) || json_array_size(j) == 0)
		return mtl_err_set(err, MTL_ERR_FORMAT, "%s: %s: %s", name,
				   where, !j ? "missing 'labels'" :
				   "'labels' must be a non-empty array of strings");
	if (json_array_size(j) > 1000000)
		return mtl_err_set(err, MTL_ERR_FORMAT, "%s: %s: too many labels",
				   name, where);
	t->labels = calloc(json_array_size(j), sizeof(*t->labels));
	if (!t->labels)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	for (i = 0; i < json_array_size(j); i++) {
		json_t *l = json_array_get(j, i);
		if (!json_is_string(l) || json_string_length(l) == 0 ||
		    strlen(json_string_value(l)) != json_string_length(l))
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "%s: %s: labels[%zu] is not a non-empty string",
					   name, where, i);
		t->labels[i] = strdup(json_string_value(l));
		if (!t->labels[i])
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		t->n_labels++;
	}
	rc = mtl_task_first_dup((const char *const *)t->labels,
				(size_t)t->n_labels, &i);
	if (rc < 0)
		return mtl_err_set(err, rc, "out of memory");
	if (rc > 0)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "%s: %s: duplicate label '%.100s'",
				   name, where, t->labels[i]);
weight:
	t->weight = 1.0;
	j = json_object_get(o, "weight");
	if (j) {
		if (!json_is_number(j) || !isfinite(json_number_value(j)) ||
		    json_number_value(j) < 0)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "%s: %s: 'weight' must be a number >= 0",
					   name, where);
		t->weight = json_number_value(j);
	}

	t->threshold = 0.5;
	j = json_object_get(o, "threshold");
	if (j) {
		if (t->kind != MTL_TASK_MULTILABEL)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "%s: %s: 'threshold' is for multilabel tasks only",
					   name, where);
		if (!json_is_number(j) || !(json_number_value(j) > 0) ||
		    !(json_number_value(j) < 1))
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "%s: %s: 'threshold' must be a number in (0, 1)",
					   name, where);
		t->threshold = json_number_value(j);
	}

	t->hidden = 0;
	t->activation = MTL_TASK_ACT_GELU;
	t->dropout = 0.1;
	t->pooling = MTL_POOL_DEFAULT;
	head = json_object_get(o, "head");
	if (!head)
		return 0;
	if (!json_is_object(head))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "%s: %s: 'head' is not an object", name, where);
	snprintf(where, sizeof(where), "task '%s': head", t->name);
	rc = check_keys(head, head_keys, name, where, err);
	if (rc < 0)
		return rc;
	j = json_object_get(head, "hidden");
	if (j) {
		if (!json_is_integer(j) || json_integer_value(j) < 0 ||
		    json_integer_value(j) > TASK_MAX_HIDDEN)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "%s: %s: 'hidden' must be an integer in [0, %d]",
					   name, where, TASK_MAX_HIDDEN);
		t->hidden = (int)json_integer_value(j);
	}
	j = json_object_get(head, "activation");
	if (j) {
		int a = json_is_string(j) ? pick(json_string_value(j), act_names, 3) : -1;
		if (a < 0)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "%s: %s: 'activation' must be \"gelu\", \"tanh\" or \"relu\"",
					   name, where);
		t->activation = (enum mtl_task_act)a;
	}
	j = json_object_get(head, "dropout");
	if (j) {
		if (!json_is_number(j) || !(json_number_value(j) >= 0) ||
		    !(json_number_value(j) < 1))
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "%s: %s: 'dropout' must be a number in [0, 1)",
					   name, where);
		t->dropout = json_number_value(j);
	}
	j = json_object_get(head, "pooling");
	if (j) {
		int p = json_is_string(j) ? pick(json_string_value(j), pool_names + 1, 2) : -1;
		if (p < 0)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "%s: %s: 'pooling' must be \"cls\" or \"mean\"",
					   name, where);
		if (t->kind == MTL_TASK_TOKEN)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "%s: %s: 'pooling' is not for token tasks",
					   name, where);
		t->pooling = (enum mtl_pool)(p + 1);
	}
	return 0;
}

int mtl_task_parse(struct mtl_tasks **out, const char *json, size_t len,
		   const char *name, struct mtl_err *err)
{
	static const char *const top_keys[] = { "tasks", NULL };
	json_error_t je;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je), *arr;
	struct mtl_tasks *ts = NULL;
	int rc = 0;

	if (!root)
		return mtl_err_set(err, MTL_ERR_FORMAT, "%s:%d:%d: %s", name,
				   je.line, je.column, je.text);
	if (!json_is_object(root)) {
		rc = mtl_err_set(err, MTL_ERR_FORMAT, "%s: not a JSON object",
				 name);
		goto out;
	}
	rc = check_keys(root, top_keys, name, "top level", err);
	if (rc < 0)
		goto out;
	arr = json_object_get(root, "tasks");
	if (!json_is_array(arr) || json_array_size(arr) == 0 ||
	    json_array_size(arr) > 10000) {
		rc = mtl_err_set(err, MTL_ERR_FORMAT, "%s: %s", name,
				 !arr ? "missing 'tasks'" :
				 "'tasks' must be a non-empty array");
		goto out;
	}
	ts = calloc(1, sizeof(*ts));
	if (ts)
		ts->task = calloc(json_array_size(arr), sizeof(*ts->task));
	if (!ts || !ts->task) {
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		rc = parse_task(&ts->task[i], json_array_get(arr, i), (int)i,
				name, err);
		ts->n++;
		if (rc < 0)
			goto out;
		if (mtl_task_find(ts, ts->task[i].name) < (int)i) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "%s: duplicate task name '%s'", name,
					 ts->task[i].name);
			goto out;
		}
	}
out:
	json_decref(root);
	if (rc < 0) {
		mtl_task_free(ts);
		return rc;
	}
	*out = ts;
	return 0;
}

int mtl_task_load(struct mtl_tasks **out, const char *path,
		  struct mtl_err *err)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int rc;

	if (!f)
		return mtl_err_set(err, MTL_ERR_IO, "cannot open '%s': %s", path,
				   strerror(errno));
	for (;;) {
		if (cap - n < 4096) {
			char *nb;
			if (cap >= ((size_t)64 << 20)) {
				free(buf);
				fclose(f);
				return mtl_err_set(err, MTL_ERR_FORMAT,
						   "'%s' is too large", path);
			}
			cap = cap ? cap * 2 : 16384;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
			}
			buf = nb;
		}
		size_t k = fread(buf + n, 1, cap - n, f);
		n += k;
		if (k == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return mtl_err_set(err, MTL_ERR_IO, "cannot read '%s'", path);
	}
	fclose(f);
	rc = mtl_task_parse(out, buf, n, path, err);
	free(buf);
	return rc;
}

/* An embedding task's fields, every one explicit. */
static json_t *emb_json(const struct mtl_task *t)
{
	const struct mtl_task_emb *e = &t->emb;
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(t->name));
	json_object_set_new(o, "kind", json_string(mtl_task_kind_name(t->kind)));
	json_object_set_new(o, "weight", json_real(t->weight));
	json_object_set_new(o, "loss", json_string(emb_loss_names[e->loss]));
	json_object_set_new(o, "scale", json_real(e->scale));
	json_object_set_new(o, "symmetric", json_boolean(e->symmetric));
	if (e->n_dims) {
		json_t *d = json_array(), *w = json_array();

		for (int i = 0; i < e->n_dims; i++) {
			json_array_append_new(d, json_integer(e->dims[i]));
			json_array_append_new(w, json_real(e->weights[i]));
		}
		json_object_set_new(o, "matryoshka_dims", d);
		json_object_set_new(o, "matryoshka_weights", w);
	}
	return o;
}

static json_t *task_json(const struct mtl_task *t)
{
	json_t *o, *labels, *head;

	if (t->kind == MTL_TASK_EMBEDDING)
		return emb_json(t);
	o = json_object();
	labels = json_array();
	head = json_object();

	for (int i = 0; i < t->n_labels; i++)
		json_array_append_new(labels, json_string(t->labels[i]));
	json_object_set_new(head, "hidden", json_integer(t->hidden));
	json_object_set_new(head, "activation",
			    json_string(mtl_task_act_name(t->activation)));
	json_object_set_new(head, "dropout", json_real(t->dropout));
	if (t->pooling != MTL_POOL_DEFAULT)
		json_object_set_new(head, "pooling",
				    json_string(mtl_task_pool_name(t->pooling)));
	json_object_set_new(o, "name", json_string(t->name));
	json_object_set_new(o, "kind", json_string(mtl_task_kind_name(t->kind)));
	if (t->kind != MTL_TASK_REGRESSION)
		json_object_set_new(o, "labels", labels);
	else
		json_decref(labels);
	json_object_set_new(o, "weight", json_real(t->weight));
	if (t->kind == MTL_TASK_MULTILABEL)
		json_object_set_new(o, "threshold", json_real(t->threshold));
	json_object_set_new(o, "head", head);
	return o;
}

int mtl_task_save(const struct mtl_tasks *ts, const char *path,
		  struct mtl_err *err)
{
	json_t *root, *arr;
	char *text;
	struct mtl_tasks *back;
	int rc;

	root = json_object();
	arr = json_array();
	if (!root || !arr) {
		json_decref(root);
		json_decref(arr);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	json_object_set_new(root, "tasks", arr);
	for (int i = 0; i < ts->n; i++)
		json_array_append_new(arr, task_json(&ts->task[i]));
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	/* never write what we would refuse to read */
	if (mtl_task_parse(&back, text, strlen(text), path, err) < 0) {
		free(text);
		return mtl_err_prefix(err, MTL_ERR_ARG, "cannot save an invalid spec");
	}
	mtl_task_free(back);
	{
		size_t n = strlen(text);
		char *t = realloc(text, n + 2);
		if (!t) {
			free(text);
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		}
		text = t;
		text[n++] = '\n';
		rc = mtl_fs_write(path, text, n, err);
	}
	free(text);
	return rc;
}

int mtl_task_map(int *map, const struct mtl_tasks *model,
		 const struct mtl_tasks *stream, struct mtl_err *err)
{
	for (int t = 0; t < model->n; t++)
		map[t] = mtl_task_find(stream, model->task[t].name);
	for (int s = 0; s < stream->n; s++) {
		const struct mtl_task *a = &stream->task[s];
		int t = mtl_task_find(model, a->name);
		const struct mtl_task *b = t >= 0 ? &model->task[t] : NULL;

		if (!b)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "task '%s' is not one of the model's tasks",
					   a->name);
		if (a->kind != b->kind)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "task '%s' is a %s task in the stream, a %s task in the model",
					   a->name, mtl_task_kind_name(a->kind),
					   mtl_task_kind_name(b->kind));
		if (a->n_labels != b->n_labels)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "task '%s' has %d labels in the stream, %d in the model",
					   a->name, a->n_labels, b->n_labels);
		for (int k = 0; k < a->n_labels; k++)
			if (strcmp(a->labels[k], b->labels[k]))
				return mtl_err_set(err, MTL_ERR_FORMAT,
						   "task '%s': label %d is '%s' in the stream, '%s' in the model",
						   a->name, k, a->labels[k],
						   b->labels[k]);
	}
	return 0;
}
