/*
 * test_steps.c - the records of a steps stream written by lib/train/steps.c and
 * read back by it: every map's size is the count of its keys (msgpack's
 * fixmap/map16 boundary included), optional figures appear only when the
 * run has them, absent figures read as NaN; and mtl_mp_map, and
 * mtl_batch_remap.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "steps.h"
#include "t.h"

static const char spec[] =
	"{\"tasks\": [{\"name\":\"a\",\"kind\":\"sequence\",\"labels\":[\"x\",\"y\"],\"weight\":2},"
	"{\"name\":\"b\",\"kind\":\"sequence\",\"labels\":[\"x\",\"y\"]},"
	"{\"name\":\"c\",\"kind\":\"sequence\",\"labels\":[\"x\",\"y\"]}]}";

/* A stream in memory: its bytes in *buf, *len. */
struct mem {
	char *buf;
	size_t len;
	FILE *f;
	struct mtl_mp_writer *w;
};

static void mem_open(struct mem *m)
{
	m->buf = NULL;
	m->f = open_memstream(&m->buf, &m->len);
	m->w = mtl_mp_writer_new(m->f, "mem");
}

/* Ends the stream; a reader over the bytes (*in to close after it). */
static struct mtl_mp_reader *mem_reader(struct mem *m, FILE **in)
{
	mtl_mp_finish(m->w, NULL);
	mtl_mp_writer_free(m->w);
	fclose(m->f);
	*in = fmemopen(m->buf, m->len, "r");
	return mtl_mp_reader_new(*in, "mem");
}

/* Whether every map in o (recursively) has distinct string keys. */
static int keys_ok(const msgpack_object *o)
{
	if (o->type != MSGPACK_OBJECT_MAP)
		return 1;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;

		if (k->type != MSGPACK_OBJECT_STR || !keys_ok(&o->via.map.ptr[i].val))
			return 0;
		for (uint32_t j = 0; j < i; j++)
			if (o->via.map.ptr[j].key.via.str.size == k->via.str.size &&
			    !memcmp(o->via.map.ptr[j].key.via.str.ptr, k->via.str.ptr, k->via.str.size))
				return 0;
	}
	return 1;
}

static double figure(const struct mtl_steps_figures *f, int map, const char *key)
{
	for (int i = 0; i < f->n[map]; i++)
		if (!strcmp(f->map[map][i].key, key))
			return f->map[map][i].v;
	return -999;
}

static void test_map(void)
{
	unsigned char *b;

	/* 15 entries pack as a fixmap, 16 as a map16: the size comes first
	 * (a plain buffer: the map is no stream record) */
	for (int n = 15; n <= 16; n++) {
		struct mtl_mp_map map;
		msgpack_sbuffer sb;
		msgpack_packer pk;
		char k[8];

		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		mtl_mp_map_begin(&map);
		for (int i = 0; i < n; i++) {
			snprintf(k, sizeof(k), "k%d", i);
			msgpack_pack_int(mtl_mp_map_key(&map, k), i);
		}
		mtl_mp_map_end(&map, &pk);
		b = (unsigned char *)sb.data;
		T_OK(n == 15 ? b[0] == 0x8f : b[0] == 0xde && b[1] == 0 && b[2] == 16,
		     "a map of %d entries: header 0x%02x", n, b[0]);
		msgpack_sbuffer_destroy(&sb);
	}
}

static void test_step(const struct mtl_tasks *ts)
{
	double task_loss[3] = { 0.5, 0.25, 0 }, coef[3] = { 1, 2, 3 };
	/* cos(a,b) measured, cos(a,c) and cos(b,c) not: c had no labels */
	double cosine[9] = { 1, 0.5, NAN, 0.5, 1, NAN, NAN, NAN, 1 };
	int64_t labelled[3] = { 4, 2, 0 }, correct[3] = { 3, 1, 0 };
	struct mtl_step_stats st = {
		.n_tasks = 3, .loss = 1.25, .task_loss = task_loss,
		.labelled = labelled, .correct = correct, .grad_norm = 0.75,
		.lr = 1e-3f, .head_lr = 2e-3f, .tokens = 40, .step = 7,
		.bwd_layers = 2, .bwd_ms = 3,
	};
	struct mtl_steps_step s = {
		.tasks = ts, .st = &st, .epoch = 2, .ms = 9,
		.has_balance = 1, .balance_ms = 1.5, .coef = coef, .cosine = cosine,
		.has_contrastive = 1, .contrastive = 0.125,
	};
	struct mtl_steps_figures fig;
	struct mtl_mp_reader *r;
	msgpack_object rec;
	struct mtl_err err;
	struct mem m;
	FILE *in;

	mem_open(&m);
	T_OK(mtl_steps_write_header(m.w, 0, NULL, &(struct mtl_steps_header){
		.tasks = ts, .model = "dir", .total_steps = 10, .accumulate = 1,
		.lr = 1e-3f, .parameters = 100, .trainable = 60 }, &err) == 0,
	     "header written");
	T_OK(mtl_steps_write_step(m.w, &s, &err) == 0, "step record with every option written");
	s.has_balance = s.has_contrastive = 0;
	T_OK(mtl_steps_write_step(m.w, &s, &err) == 0, "step record without options written");
	r = mem_reader(&m, &in);

	T_OK(mtl_mp_read_header(r, "steps", &rec, &err) == 0 &&
	     rec.via.map.size == 12 && keys_ok(&rec) &&
	     mtl_mp_get(&rec, "trainable") && mtl_mp_get(&rec, "tasks"),
	     "header: 5 common entries and 7 of its own");

	T_OK(mtl_mp_read(r, &rec, &err) == 1 && rec.via.map.size == 19 && keys_ok(&rec),
	     "step with a balancer and a contrastive term: 19 distinct keys");
	T_OK(mtl_mp_get(mtl_mp_get(&rec, "cosine"), "a") &&
	     !mtl_mp_get(mtl_mp_get(&rec, "cosine"), "b") &&
	     mtl_mp_get(mtl_mp_get(&rec, "cosine"), "a")->via.map.size == 1,
	     "cosine holds the measured pairs only: {a: {b}}");
	T_OK(mtl_steps_read_step(&fig, &rec, r, &err) == 0, "step read back");
	T_OK(fig.v[MTL_STEPS_STEP] == 7 && fig.v[MTL_STEPS_EPOCH] == 2 &&
	     fig.v[MTL_STEPS_LOSS] == 1.25 && fig.v[MTL_STEPS_TOKENS] == 40 &&
	     fig.v[MTL_STEPS_MS] == 9 && fabs(fig.v[MTL_STEPS_LR] - 1e-3) < 1e-9,
	     "scalars as written");
	T_OK(figure(&fig, MTL_STEPS_ACCURACY, "a") == 0.75 &&
	     isnan(figure(&fig, MTL_STEPS_ACCURACY, "c")) &&
	     figure(&fig, MTL_STEPS_WEIGHTS, "a") == 2 &&
	     figure(&fig, MTL_STEPS_LABELLED, "b") == 2 &&
	     figure(&fig, MTL_STEPS_COSINE, "a/b") == 0.5 &&
	     fig.n[MTL_STEPS_COSINE] == 1,
	     "accuracy (nil without labels), the tasks' weights, cosine 'a/b'");
	mtl_steps_figures_release(&fig);

	T_OK(mtl_mp_read(r, &rec, &err) == 1 && rec.via.map.size == 15 && keys_ok(&rec) &&
	     !mtl_mp_get(&rec, "balance_ms") && !mtl_mp_get(&rec, "contrastive"),
	     "step without them: 15 keys");
	T_OK(mtl_steps_read_step(&fig, &rec, r, &err) == 0 &&
	     fig.n[MTL_STEPS_COSINE] == 0, "read back: no cosine");
	mtl_steps_figures_release(&fig);
	mtl_mp_reader_free(r);
	fclose(in);
	free(m.buf);
}

static void test_skip_eval(const struct mtl_tasks *ts)
{
	double loss[3] = { 0.5, 0.25, 0 }, acc[3] = { 1, 0.5, 0 }, f1[3] = { 1, 0.4, 0 };
	double ent[3] = { NAN, 0.75, NAN }, nan3[3] = { NAN, NAN, NAN };
	int64_t labelled[3] = { 4, 2, 0 };
	struct mtl_eval_result res = {
		.n_tasks = 3, .examples = 6, .loss = 1.25, .task_loss = loss,
		.accuracy = acc, .f1 = f1, .labelled = labelled, .entity_f1 = ent,
		.micro_f1 = nan3, .pearson = nan3, .spearman = nan3,
	};
	struct mtl_eval_best best = {
		.metric = "b:entity_f1", .task = 1, .patience = 2, .value = 0.75,
		.step = 3, .stale = 2, .stop = 1,
	};
	struct mtl_steps_evals ev;
	struct mtl_mp_reader *r;
	msgpack_object rec;
	struct mtl_err err;
	struct mem m;
	char *why;
	double step;
	FILE *in;

	mem_open(&m);
	mtl_mp_pack_header(mtl_mp_pk(m.w), "steps", "test", 0, NULL, 0);
	mtl_mp_end(m.w, NULL);
	T_OK(mtl_steps_write_skip(m.w, 3, 1, NAN, 2, &err) == 0 &&
	     mtl_steps_write_skip(m.w, 4, 1, 1, INFINITY, &err) == 0 &&
	     mtl_steps_write_eval(m.w, 5, ts, &res, NULL, &err) == 0 &&
	     mtl_steps_write_eval(m.w, 6, ts, &res, &best, &err) == 0,
	     "skip and eval records written");
	r = mem_reader(&m, &in);
	mtl_mp_read_header(r, "steps", &rec, &err);

	T_OK(mtl_mp_read(r, &rec, &err) == 1 && rec.via.map.size == 6 && keys_ok(&rec) &&
	     mtl_steps_read_skip(&step, &why, &rec, r, &err) == 0 && step == 3 &&
	     why && !strcmp(why, "non-finite loss"), "a skip for a non-finite loss");
	free(why);
	T_OK(mtl_mp_read(r, &rec, &err) == 1 &&
	     mtl_steps_read_skip(&step, &why, &rec, r, &err) == 0 && step == 4 &&
	     why && !strcmp(why, "non-finite gradient"), "a skip for a non-finite gradient");
	free(why);

	T_OK(mtl_mp_read(r, &rec, &err) == 1 && rec.via.map.size == 5 && keys_ok(&rec) &&
	     mtl_mp_get(mtl_mp_get(&rec, "tasks"), "c")->via.map.size == 4 &&
	     mtl_mp_get(mtl_mp_get(&rec, "tasks"), "b")->via.map.size == 5,
	     "eval: 5 keys, 4 per task, and entity_f1 where there is one");
	T_OK(mtl_steps_read_eval(&ev, &rec, r, &err) == 0 && ev.step == 5 && ev.n == 3 &&
	     !strcmp(ev.row[1].task, "b") && ev.row[1].f1 == 0.4 &&
	     ev.row[1].entity_f1 == 0.75 && isnan(ev.row[0].entity_f1) &&
	     isnan(ev.row[2].loss) && isnan(ev.row[2].accuracy),
	     "eval read back: a row per task, nil without labels");
	mtl_steps_evals_release(&ev);
	T_OK(mtl_mp_read(r, &rec, &err) == 1 && rec.via.map.size == 6 && keys_ok(&rec) &&
	     mtl_mp_get(&rec, "best")->via.map.size == 6 &&
	     mtl_mp_is_str(mtl_mp_get(mtl_mp_get(&rec, "best"), "metric"), "b:entity_f1") &&
	     mtl_mp_get(mtl_mp_get(&rec, "best"), "stop")->type == MSGPACK_OBJECT_BOOLEAN,
	     "eval with the best so far: metric, value, step, stale, patience, stop");
	mtl_mp_reader_free(r);
	fclose(in);
	free(m.buf);
}

static void test_bad(void)
{
	static const struct {
		const char *json, *msg;
	} bads[] = {
		{ "{\"type\":\"step\",\"loss\":\"x\"}", "mem: record 2: \"loss\" is not a number" },
		{ "{\"type\":\"step\",\"losses\":[1]}", "mem: record 2: \"losses\" is not a map of numbers" },
		{ "{\"type\":\"step\",\"losses\":{\"a\":\"x\"}}", "mem: record 2: \"losses\": \"a\" is not a number" },
		{ "{\"type\":\"step\",\"cosine\":{\"a\":{\"b\":\"x\"}}}",
		  "mem: record 2: \"cosine\": \"a\" is not a map of numbers" },
		{ "{\"type\":\"eval\",\"tasks\":{\"a\":1}}", "mem: record 2: \"tasks\": \"a\" is not a map" },
		{ "{\"type\":\"eval\",\"tasks\":{\"a\":{\"f1\":\"x\"}}}",
		  "mem: record 2: eval \"loss\", \"accuracy\" and \"f1\" must be numbers" },
	};

	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		json_t *j = json_loads(bads[i].json, 0, NULL);
		struct mtl_steps_figures fig;
		struct mtl_steps_evals ev;
		struct mtl_mp_reader *r;
		msgpack_object rec;
		struct mtl_err err = { 0 };
		struct mem m;
		FILE *in;
		int rc;

		mem_open(&m);
		mtl_mp_pack_header(mtl_mp_pk(m.w), "steps", "test", 0, NULL, 0);
		mtl_mp_end(m.w, NULL);
		mtl_mp_from_json(mtl_mp_pk(m.w), j);
		mtl_mp_end(m.w, NULL);
		json_decref(j);
		r = mem_reader(&m, &in);
		mtl_mp_read_header(r, "steps", &rec, &err);
		mtl_mp_read(r, &rec, &err);
		if (mtl_mp_is_str(mtl_mp_get(&rec, "type"), "step")) {
			rc = mtl_steps_read_step(&fig, &rec, r, &err);
			mtl_steps_figures_release(&fig);
		} else {
			rc = mtl_steps_read_eval(&ev, &rec, r, &err);
			mtl_steps_evals_release(&ev);
		}
		T_OK(rc == MTL_ERR_FORMAT && !strcmp(err.msg, bads[i].msg),
		     "bad record: '%s'", err.msg);
		mtl_mp_reader_free(r);
		fclose(in);
		free(m.buf);
	}
}

static void test_remap(void)
{
	int32_t *labels[2];
	struct mtl_batch b = { .B = 1, .T = 1, .n_tasks = 2 };
	int map[3] = { 1, -1, 0 }; /* model a, b, c: stream tasks c, a */
	struct mtl_err err;

	labels[0] = malloc(sizeof(int32_t));
	labels[1] = malloc(sizeof(int32_t));
	*labels[0] = 10; /* stream task 0 (c) */
	*labels[1] = 20; /* stream task 1 (a) */
	b.labels = malloc(2 * sizeof(*b.labels));
	memcpy(b.labels, labels, sizeof(labels));
	T_OK(mtl_batch_remap(&b, map, 3, &err) == 0 && b.n_tasks == 3 &&
	     b.labels[0] && *b.labels[0] == 20 && !b.labels[1] &&
	     b.labels[2] && *b.labels[2] == 10,
	     "labels into the model's task order, none where the stream lacks the task");
	mtl_batch_release(&b);
}

int main(void)
{
	struct mtl_tasks *ts = NULL;
	struct mtl_err err;

	if (mtl_task_parse(&ts, spec, strlen(spec), "spec", &err)) {
		T_OK(0, "spec: %s", err.msg);
		return t_done();
	}
	test_map();
	test_step(ts);
	test_skip_eval(ts);
	test_bad();
	test_remap();
	mtl_task_free(ts);
	return t_done();
}
