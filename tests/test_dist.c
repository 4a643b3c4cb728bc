/*
 * test_dist.c - the parts of dist.c that do not need MPI: a process's
 * rows of a batch (ids, lengths, sequence and token labels, empty
 * shares), the one-process group that every build without MPI uses (its
 * sums and shares leave everything as it was), and the weight hash.
 * tests/dist.bats runs the MPI build itself under mpirun.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "dist.h"
#include "rng.h"
#include "task.h"
#include "t.h"

static const char tasks_json[] =
	"{\"tasks\":[{\"name\":\"topic\",\"kind\":\"sequence\",\"labels\":[\"a\",\"b\"]},"
	" {\"name\":\"ner\",\"kind\":\"token\",\"labels\":[\"O\",\"X\"]},"
	" {\"name\":\"none\",\"kind\":\"sequence\",\"labels\":[\"a\",\"b\"]}]}";

/* A 3 x 4 batch: ids 100*row + col, topic labelled, ner labelled per
 * token, the third task without labels. */
static void make_batch(struct mtl_batch *b)
{
	memset(b, 0, sizeof(*b));
	b->B = 3;
	b->T = 4;
	b->epoch = 7;
	b->index = 9;
	b->n_tasks = 3;
	b->ids = malloc(sizeof(int32_t) * 12);
	b->lengths = malloc(sizeof(int32_t) * 3);
	b->type_ids = malloc(sizeof(int32_t) * 12);
	b->labels = calloc(3, sizeof(*b->labels));
	b->labels[0] = malloc(sizeof(int32_t) * 3);
	b->labels[1] = malloc(sizeof(int32_t) * 12);
	for (int i = 0; i < 3; i++) {
		b->lengths[i] = 2 + i;
		b->labels[0][i] = i % 2;
		for (int t = 0; t < 4; t++) {
			b->ids[i * 4 + t] = 100 * i + t;
			b->type_ids[i * 4 + t] = t > i; /* a pair's second text */
			b->labels[1][i * 4 + t] = t < b->lengths[i] ? (i + t) % 2 : MTL_IGNORE;
		}
	}
}

static void test_rows(const struct mtl_tasks *ts)
{
	struct mtl_batch b, s;
	struct mtl_err err;
	int ok;

	make_batch(&b);
	T_OK(mtl_dist_rows(&s, &b, 1, 3, ts, &err) == 0, "rows [1,3) of a 3-row batch");
	T_OK(s.B == 2 && s.T == 4 && s.epoch == 7 && s.index == 9 && s.n_tasks == 3,
	     "the share keeps T, epoch, index and the tasks");
	ok = 1;
	for (int i = 0; i < 2; i++) {
		ok &= s.lengths[i] == b.lengths[i + 1];
		ok &= s.labels[0][i] == b.labels[0][i + 1];
		for (int t = 0; t < 4; t++) {
			ok &= s.ids[i * 4 + t] == 100 * (i + 1) + t;
			ok &= s.type_ids[i * 4 + t] == (t > i + 1);
			ok &= s.labels[1][i * 4 + t] == b.labels[1][(i + 1) * 4 + t];
		}
	}
	T_OK(ok, "ids, type ids, lengths, sequence labels (1 per row) and token labels (T per row) are rows 1 and 2");
	T_OK(s.labels[2] == NULL, "a task without labels has none in the share");
	mtl_batch_release(&s);

	T_OK(mtl_dist_rows(&s, &b, 3, 3, ts, &err) == 0 && s.B == 0 && s.ids &&
	     s.lengths && s.labels && s.labels[0] && s.labels[1],
	     "an empty share has no rows and real arrays");
	mtl_batch_release(&s);
	mtl_batch_release(&b);
}

static void test_one_process(const struct mtl_tasks *ts)
{
	struct mtl_dist *d = NULL;
	struct mtl_batch b[2];
	struct mtl_err err;
	int64_t c[3] = { 1, 2, 3 };
	double f[2] = { 0.5, -1 };
	int argc = 1, n = 1, same = 0;
	char *args[] = { "test_dist", NULL }, **argv = args;

	T_OK(!mtl_dist_has_mpi(), "libmtl.a's group runs without MPI");
	T_OK(mtl_dist_init(&d, &argc, &argv, &err) == 0 && d, "a group of one process");
	T_OK(mtl_dist_rank(d) == 0 && mtl_dist_size(d) == 1 && mtl_dist_local_size(d) == 1,
	     "rank 0 of 1, alone on its machine");
	T_OK(mtl_dist_sum_i64(d, c, 3, &err) == 0 && c[0] == 1 && c[1] == 2 && c[2] == 3,
	     "the sum of counts over one process is the counts");
	T_OK(mtl_dist_sum_f64(d, f, 2, &err) == 0 && f[0] == 0.5 && f[1] == -1,
	     "the sum of values over one process is the values");
	make_batch(&b[0]);
	T_OK(mtl_dist_share(d, b, &n, 2, ts, &err) == 0 && n == 1 && b[0].B == 3 &&
	     b[0].ids[5] == 101, "one process keeps its whole batches");
	T_OK(mtl_dist_same(d, (const float *)f, 2, &same, &err) == 0 && same,
	     "one process agrees with itself");
	mtl_batch_release(&b[0]);
	T_OK(mtl_dist_bcast(d, c, sizeof(c), &err) == 0 && c[2] == 3, "a broadcast from rank 0 to itself");
	{
		struct mtl_rng r, keep;

		mtl_rng_init(&r, 7);
		mtl_rng_u64(&r);
		keep = r;
		mtl_dist_derive_rng(d, &r);
		T_OK(!memcmp(&r, &keep, sizeof(r)),
		     "rank 0 keeps its random stream (it draws what one process would)");
	}
	mtl_dist_free(d);
	mtl_dist_free(NULL);
}

static void test_hash(void)
{
	float a[3] = { 1, 0, 2 }, b[3] = { 1, -0.0f, 2 }, c[3] = { 1, 0, 2 };
	uint64_t h0 = 0xcbf29ce484222325ULL;

	T_OK(mtl_dist_hash(a, 3, h0) == mtl_dist_hash(c, 3, h0), "equal bits, equal hashes");
	T_OK(mtl_dist_hash(a, 3, h0) != mtl_dist_hash(b, 3, h0), "0 and -0 hash apart (the bits count)");
	c[2] = nextafterf(2, 3);
	T_OK(mtl_dist_hash(a, 3, h0) != mtl_dist_hash(c, 3, h0), "one ulp apart hashes apart");
}

/* What the hook saw: the whole gradient block at each call. */
struct seen {
	const float *grad;
	size_t n;
	float *copy[64];
	int layer[64];
	int calls;
};

static void record(void *arg, int l)
{
	struct seen *s = arg;

	if (s->calls == 64)
		return;
	s->layer[s->calls] = l;
	s->copy[s->calls] = malloc(sizeof(float) * s->n);
	memcpy(s->copy[s->calls], s->grad, sizeof(float) * s->n);
	s->calls++;
}

/* The layer of tensor name, or -1 (embeddings, pooler). */
static int layer_of(const char *name)
{
	int l;

	return sscanf(name, "encoder.layer.%d.", &l) == 1 ? l : -1;
}

static void test_hook(void)
{
	struct mtl_bert *m = NULL;
	struct mtl_err err;
	struct mtl_rng rng;
	struct seen s = { 0 };
	enum { B = 2, T = 5 };
	int32_t ids[B * T], mask[B * T];
	float *grad, *dlast;
	int L, order = 1, final = 1, early = 1;

	if (mtl_bert_load(&m, "fixtures/tiny", &err)) {
		T_OK(0, "fixtures/tiny loads: %s", err.msg);
		return;
	}
	L = m->cfg.layers;
	mtl_bert_set_threads(m, 1);
	mtl_rng_init(&rng, 5);
	for (int i = 0; i < B * T; i++) {
		ids[i] = 1 + (int)mtl_rng_below(&rng, (uint64_t)m->cfg.vocab - 1);
		mask[i] = i % T < 4 || i / T == 0;
	}
	grad = calloc(m->n_params, sizeof(float));
	dlast = malloc(sizeof(float) * B * T * m->cfg.hidden);
	for (int i = 0; i < B * T * m->cfg.hidden; i++)
		dlast[i] = (float)mtl_rng_normal(&rng);
	T_OK(mtl_bert_forward_train(m, ids, NULL, mask, B, T, 0.1f, 0.1f, &rng, &err) == 0,
	     "a training forward of the tiny model");
	s.grad = grad;
	s.n = m->n_params;
	m->grad_ready = record;
	m->grad_ready_arg = &s;
	mtl_bert_backward(m, grad, dlast);
	m->grad_ready = NULL;
	T_OK(s.calls == L + 1, "the hook fires L + 1 times (%d)", s.calls);
	for (int c = 0; c < s.calls; c++)
		order &= s.layer[c] == (c < L ? L - 1 - c : -1);
	T_OK(order, "top layer first, the embeddings last");
	for (int c = 0; c < s.calls; c++)
		for (size_t i = 0; i < m->n_tensors; i++) {
			const struct mtl_bert_tensor *t = &m->tensors[i];
			int l = layer_of(t->name);
			const float *at = s.copy[c] + t->offset;

			/* the hook's layer (every tensor outside the layers
			 * for -1): already what it will be at the end */
			if (l == s.layer[c] || s.layer[c] == -1)
				final &= memcmp(at, grad + t->offset,
						sizeof(float) * t->numel) == 0;
			/* the layers below and the embeddings: not started */
			if (s.layer[c] >= 0 && l < s.layer[c])
				for (size_t k = 0; k < t->numel; k++)
					early &= at[k] == 0;
		}
	T_OK(final, "at each call the finished layer's gradient is final");
	T_OK(early, "at each call the layers below have no gradient yet (the sum can overlap them)");
	for (int c = 0; c < s.calls; c++)
		free(s.copy[c]);
	free(grad);
	free(dlast);
	mtl_bert_free(m);
}

int main(void)
{
	struct mtl_tasks *ts = NULL;
	struct mtl_err err;

	if (mtl_task_parse(&ts, tasks_json, sizeof(tasks_json) - 1, "tasks", &err)) {
		T_OK(0, "tasks parse: %s", err.msg);
		return t_done();
	}
	test_rows(ts);
	test_one_process(ts);
	test_hash();
	test_hook();
	mtl_task_free(ts);
	return t_done();
}
