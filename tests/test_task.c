/*
 * test_task.c - tasks.json: a full spec parses with its defaults, every
 * kind of bad spec is refused with a message naming the task and field
 * (or the JSON position), save and load round-trip, and label look-ups.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t.h"
#include "task.h"

static const char good[] =
	"{\"tasks\": [\n"
	"  {\"name\": \"topic\", \"kind\": \"sequence\",\n"
	"   \"labels\": [\"business\",\"sports\",\"tech\"], \"weight\": 1.0,\n"
	"   \"head\": {\"hidden\": 16, \"activation\": \"tanh\", \"dropout\": 0.1}},\n"
	"  {\"name\": \"ner\", \"kind\": \"token\", \"labels\": [\"O\",\"B-PER\",\"I-PER\",\"B-LOC\",\"I-LOC\"],\n"
	"   \"weight\": 0.5, \"head\": {\"dropout\": 0.1}},\n"
	"  {\"name\": \"q_type-2\", \"kind\": \"sequence\", \"labels\": [\"x\"],\n"
	"   \"head\": {\"pooling\": \"mean\"}},\n"
	"  {\"name\": \"tags\", \"kind\": \"multilabel\", \"labels\": [\"a\",\"b\",\"c\"],\n"
	"   \"threshold\": 0.25},\n"
	"  {\"name\": \"tags2\", \"kind\": \"multilabel\", \"labels\": [\"x\",\"y\"],\n"
	"   \"head\": {\"pooling\": \"cls\"}},\n"
	"  {\"name\": \"score\", \"kind\": \"regression\", \"weight\": 2,\n"
	"   \"head\": {\"pooling\": \"mean\", \"hidden\": 8}}\n"
	"]}\n";

static void check_good(const struct mtl_tasks *ts, const char *what)
{
	const struct mtl_task *a, *b, *c, *m;

	if (!T_OK(ts && ts->n == 6, "%s: 6 tasks", what))
		return;
	a = &ts->task[0];
	b = &ts->task[1];
	c = &ts->task[2];
	T_OK(strcmp(a->name, "topic") == 0 && a->kind == MTL_TASK_SEQUENCE &&
	     a->n_labels == 3 && strcmp(a->labels[2], "tech") == 0 &&
	     a->weight == 1.0 && a->hidden == 16 &&
	     a->activation == MTL_TASK_ACT_TANH && a->dropout == 0.1 &&
	     a->pooling == MTL_POOL_DEFAULT, "%s: topic fields", what);
	T_OK(strcmp(b->name, "ner") == 0 && b->kind == MTL_TASK_TOKEN &&
	     b->n_labels == 5 && b->weight == 0.5 && b->hidden == 0 &&
	     b->activation == MTL_TASK_ACT_GELU, "%s: ner fields and defaults",
	     what);
	T_OK(c->weight == 1.0 && c->dropout == 0.1 &&
	     c->pooling == MTL_POOL_MEAN, "%s: default weight, dropout; pooling",
	     what);
	m = &ts->task[3];
	T_OK(m->kind == MTL_TASK_MULTILABEL && m->threshold == 0.25 &&
	     ts->task[4].threshold == 0.5 &&
	     ts->task[4].pooling == MTL_POOL_CLS,
	     "%s: multilabel threshold (given, default) and pooling", what);
	T_OK(ts->task[5].kind == MTL_TASK_REGRESSION && ts->task[5].n_labels == 1 &&
	     !strcmp(ts->task[5].labels[0], "value") && ts->task[5].weight == 2 &&
	     ts->task[5].hidden == 8, "%s: a regression task: one output", what);
	T_OK(mtl_task_width(a, 7) == 1 && mtl_task_width(b, 7) == 7 &&
	     mtl_task_width(m, 7) == 3, "%s: label widths", what);
	T_OK(mtl_task_find(ts, "ner") == 1 && mtl_task_find(ts, "nope") == -1,
	     "%s: mtl_task_find", what);
	T_OK(mtl_task_label(b, "I-LOC") == 4 && mtl_task_label(b, "i-loc") == -1 &&
	     mtl_task_label(a, "business") == 0, "%s: mtl_task_label", what);
}

struct bad {
	const char *json;
	const char *msg; /* expected message */
};

static const struct bad bads[] = {
	{ "{\"tasks\": [", "t.json:1:11: " },
	{ "[]", "t.json: not a JSON object" },
	{ "{}", "t.json: missing 'tasks'" },
	{ "{\"tasks\": []}", "t.json: 'tasks' must be a non-empty array" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"token\",\"labels\":[\"O\"]}], \"x\": 1}",
	  "t.json: top level: unknown key 'x'" },
	{ "{\"tasks\": [1]}", "t.json: tasks[0]: not an object" },
	{ "{\"tasks\": [{\"kind\":\"token\",\"labels\":[\"O\"]}]}",
	  "t.json: tasks[0]: missing 'name'" },
	{ "{\"tasks\": [{\"name\":\"a b\",\"kind\":\"token\",\"labels\":[\"O\"]}]}",
	  "t.json: tasks[0]: bad name 'a b' (want [A-Za-z0-9_-]+)" },
	{ "{\"tasks\": [{\"name\":\"\",\"kind\":\"token\",\"labels\":[\"O\"]}]}",
	  "t.json: tasks[0]: bad name '' (want [A-Za-z0-9_-]+)" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"token\",\"lables\":[\"O\"]}]}",
	  "t.json: task 'a': unknown key 'lables'" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"span\",\"labels\":[\"O\"]}]}",
	  "t.json: task 'a': 'kind' must be \"sequence\", \"pair\", \"token\", \"embedding\", \"multilabel\" or \"regression\"" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"regression\",\"labels\":[\"O\"]}]}",
	  "t.json: task 'a': a regression task has no 'labels'" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"sequence\",\"labels\":[\"O\"],\"threshold\":0.5}]}",
	  "t.json: task 'a': 'threshold' is for multilabel tasks only" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"multilabel\",\"labels\":[\"O\"],\"threshold\":1}]}",
	  "t.json: task 'a': 'threshold' must be a number in (0, 1)" },
	{ "{\"tasks\": [{\"name\":\"a\",\"labels\":[\"O\"]}]}",
	  "t.json: task 'a': missing 'kind'" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"token\",\"labels\":[]}]}",
	  "t.json: task 'a': 'labels' must be a non-empty array of strings" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"token\",\"labels\":[\"O\",3]}]}",
	  "t.json: task 'a': labels[1] is not a non-empty string" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"token\",\"labels\":[\"O\",\"\"]}]}",
	  "t.json: task 'a': labels[1] is not a non-empty string" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"token\",\"labels\":[\"O\",\"O\"]}]}",
	  "t.json: task 'a': duplicate label 'O'" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"token\",\"labels\":[\"O\"],\"weight\":-1}]}",
	  "t.json: task 'a': 'weight' must be a number >= 0" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"token\",\"labels\":[\"O\"],\"weight\":\"1\"}]}",
	  "t.json: task 'a': 'weight' must be a number >= 0" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"token\",\"labels\":[\"O\"],\"head\":{\"hiden\":2}}]}",
	  "t.json: task 'a': head: unknown key 'hiden'" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"token\",\"labels\":[\"O\"],\"head\":{\"hidden\":1.5}}]}",
	  "t.json: task 'a': head: 'hidden' must be an integer in [0, 1048576]" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"token\",\"labels\":[\"O\"],\"head\":{\"hidden\":-1}}]}",
	  "t.json: task 'a': head: 'hidden' must be an integer in [0, 1048576]" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"token\",\"labels\":[\"O\"],\"head\":{\"activation\":\"swish\"}}]}",
	  "t.json: task 'a': head: 'activation' must be \"gelu\", \"tanh\" or \"relu\"" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"token\",\"labels\":[\"O\"],\"head\":{\"dropout\":1}}]}",
	  "t.json: task 'a': head: 'dropout' must be a number in [0, 1)" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"token\",\"labels\":[\"O\"],\"head\":{\"pooling\":\"cls\"}}]}",
	  "t.json: task 'a': head: 'pooling' is not for token tasks" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"sequence\",\"labels\":[\"O\"],\"head\":{\"pooling\":\"max\"}}]}",
	  "t.json: task 'a': head: 'pooling' must be \"cls\" or \"mean\"" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"token\",\"labels\":[\"O\"],\"head\":[]}]}",
	  "t.json: task 'a': 'head' is not an object" },
	{ "{\"tasks\": [{\"name\":\"a\",\"kind\":\"token\",\"labels\":[\"O\"]},"
	  "{\"name\":\"a\",\"kind\":\"sequence\",\"labels\":[\"O\"]}]}",
	  "t.json: duplicate task name 'a'" },
	{ "{\"tasks\": [{\"name\":\"a\",\"name\":\"b\",\"kind\":\"token\",\"labels\":[\"O\"]}]}",
	  "t.json:1:" },
	/* embedding tasks */
	{ "{\"tasks\": [{\"name\":\"e\",\"kind\":\"embedding\",\"labels\":[\"O\"]}]}",
	  "t.json: task 'e': unknown key 'labels'" },
	{ "{\"tasks\": [{\"name\":\"e\",\"kind\":\"embedding\",\"loss\":\"triplet\"}]}",
	  "t.json: task 'e': 'loss' must be \"mnrl\", \"cosent\" or \"cosine_mse\"" },
	{ "{\"tasks\": [{\"name\":\"e\",\"kind\":\"embedding\",\"scale\":0}]}",
	  "t.json: task 'e': 'scale' must be a number > 0" },
	{ "{\"tasks\": [{\"name\":\"e\",\"kind\":\"embedding\",\"loss\":\"cosine_mse\",\"symmetric\":true}]}",
	  "t.json: task 'e': 'symmetric' is for the mnrl loss only" },
	{ "{\"tasks\": [{\"name\":\"e\",\"kind\":\"embedding\",\"matryoshka_dims\":[8,8]}]}",
	  "t.json: task 'e': 'matryoshka_dims' must be decreasing integers >= 1" },
	{ "{\"tasks\": [{\"name\":\"e\",\"kind\":\"embedding\",\"matryoshka_dims\":[8,4],\"matryoshka_weights\":[1]}]}",
	  "t.json: task 'e': 'matryoshka_weights' needs one number per entry of 'matryoshka_dims'" },
	{ "{\"tasks\": [{\"name\":\"e\",\"kind\":\"embedding\",\"matryoshka_weights\":[1]}]}",
	  "t.json: task 'e': 'matryoshka_weights' needs one number per entry of 'matryoshka_dims'" },
	{ "{\"tasks\": [{\"name\":\"e\",\"kind\":\"embedding\",\"head\":{}}]}",
	  "t.json: task 'e': unknown key 'head'" },
};

/* An embedding task: defaults, every field, and a save that reads back. */
static void test_embedding(const char *dir)
{
	static const char spec[] =
		"{\"tasks\": [{\"name\":\"e\",\"kind\":\"embedding\"},"
		"{\"name\":\"m\",\"kind\":\"embedding\",\"loss\":\"mnrl\",\"scale\":10,"
		"\"symmetric\":true,\"weight\":0.5,\"matryoshka_dims\":[64,32],"
		"\"matryoshka_weights\":[1,0.25]}]}";
	struct mtl_tasks *ts = NULL, *back = NULL;
	struct mtl_err err;
	char file[600];

	if (!T_OK(mtl_task_parse(&ts, spec, strlen(spec), "e.json", &err) == 0,
		  "embedding spec parses"))
		return;
	for (int pass = 0; pass < 2; pass++) {
		const struct mtl_tasks *x = pass ? back : ts;
		const struct mtl_task_emb *d = &x->task[0].emb, *e = &x->task[1].emb;

		T_OK(x->task[0].kind == MTL_TASK_EMBEDDING && x->task[0].n_labels == 0 &&
		     d->loss == MTL_EMB_MNRL && d->scale == 20 && !d->symmetric &&
		     d->n_dims == 0 && x->task[0].weight == 1,
		     "%s: defaults mnrl, scale 20, not symmetric, no dims", pass ? "round trip" : "parsed");
		T_OK(e->scale == 10 && e->symmetric && x->task[1].weight == 0.5 &&
		     e->n_dims == 2 && e->dims[0] == 64 && e->dims[1] == 32 &&
		     e->weights[0] == 1 && e->weights[1] == 0.25f,
		     "%s: every field", pass ? "round trip" : "parsed");
		if (pass)
			break;
		snprintf(file, sizeof(file), "%s/e.json", dir);
		if (!T_OK(mtl_task_save(ts, file, &err) == 0 &&
			  mtl_task_load(&back, file, &err) == 0, "embedding spec saved and read back"))
			break;
		remove(file);
	}
	mtl_task_free(back);
	mtl_task_free(ts);
}

/*
 * The duplicate check sorts (O(n log n)); it reports the first label, by
 * position, that repeats an earlier one.  A spec of 100,000 labels, which
 * the old pairwise check took over 30 s to read, parses and still names
 * its one duplicate.
 */
static void test_many_labels(void)
{
	const char *const s[] = { "b", "a", "c", "a", "b" };
	const int n = 100000;
	size_t at = 99, len = 64 + (size_t)n * 12;
	char *json = malloc(len), *p = json;
	struct mtl_tasks *ts = NULL;
	struct mtl_err err;

	T_OK(mtl_task_first_dup(s, 3, &at) == 0 && at == 99, "first_dup: all differ");
	T_OK(mtl_task_first_dup(s, 5, &at) == 1 && at == 3,
	     "first_dup: the first repeat by position (%zu)", at);
	T_OK(mtl_task_first_dup(s, 0, &at) == 0, "first_dup: none");
	if (!json)
		return;
	p += sprintf(p, "{\"tasks\":[{\"name\":\"t\",\"kind\":\"token\",\"labels\":[");
	for (int i = 0; i < n; i++)
		p += sprintf(p, "%s\"B-%d\"", i ? "," : "", i);
	p += sprintf(p, "]}]}");
	T_OK(mtl_task_parse(&ts, json, (size_t)(p - json), "t.json", &err) == 0 &&
	     ts->task[0].n_labels == n, "%d labels parse", n);
	mtl_task_free(ts);
	ts = NULL;
	/* the last label, "B-99999"]}]}, becomes "B-5" */
	memcpy(p - 13, "\"B-5\"    ", 9);
	T_OK(mtl_task_parse(&ts, json, (size_t)(p - json), "t.json", &err) == MTL_ERR_FORMAT &&
	     !strcmp(err.msg, "t.json: task 't': duplicate label 'B-5'"),
	     "a duplicate among %d labels: '%s'", n, err.msg);
	free(json);
}

int main(void)
{
	struct mtl_tasks *ts = NULL, *back = NULL;
	struct mtl_err err;
	char path[] = "/tmp/mtl-test-task-XXXXXX";
	char file[600];

	T_OK(mtl_task_parse(&ts, good, strlen(good), "good.json", &err) == 0,
	     "good spec parses");
	check_good(ts, "parsed");

	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		struct mtl_tasks *x = (struct mtl_tasks *)&err; /* must stay */
		int rc = mtl_task_parse(&x, bads[i].json, strlen(bads[i].json),
					"t.json", &err);
		T_OK(rc == MTL_ERR_FORMAT &&
		     strncmp(err.msg, bads[i].msg, strlen(bads[i].msg)) == 0 &&
		     x == (struct mtl_tasks *)&err,
		     "bad spec %zu: '%s'", i, rc < 0 ? err.msg : "accepted");
	}

	if (T_OK(mkdtemp(path) != NULL, "temp dir")) {
		snprintf(file, sizeof(file), "%s/tasks.json", path);
		T_OK(mtl_task_save(ts, file, &err) == 0, "save");
		T_OK(mtl_task_load(&back, file, &err) == 0, "load saved");
		check_good(back, "round trip");
		mtl_task_free(back);
		ts->task[0].labels[1][0] = 0; /* now an empty label */
		T_OK(mtl_task_save(ts, file, &err) == MTL_ERR_ARG,
		     "invalid spec not saved: '%s'", err.msg);
		remove(file);
		T_OK(mtl_task_load(&back, file, &err) == MTL_ERR_IO &&
		     strstr(err.msg, "cannot open"), "missing file: '%s'", err.msg);
		test_embedding(path);
		rmdir(path);
	}
	mtl_task_free(ts);
	mtl_task_free(NULL);
	test_many_labels();
	return t_done();
}
