/*
 * test_plan.c - batch plans: every example once per mixed epoch, sizes and
 * token budgets respected, bucketing reduces padding, reproducible
 * shuffles, and task sampling draws tasks at the rates it promises.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "t.h"

#define N 1000

static int32_t len[N];
static uint64_t lab[N];

/* Each example exactly once, and the batch runs cover order[] once. */
static int once_each(const struct mtl_plan *p, size_t n)
{
	int *seen = calloc(n, sizeof(int)), *covered = calloc(n, sizeof(int));
	int ok = p->n_order == n;

	for (size_t b = 0; ok && b < p->n_batch; b++)
		for (size_t k = 0; k < p->batch[b].n; k++)
			ok &= p->batch[b].start + k < n && covered[p->batch[b].start + k]++ == 0;
	for (size_t i = 0; ok && i < n; i++)
		ok &= covered[i] == 1 && seen[p->order[i]]++ == 0;
	free(seen);
	free(covered);
	return ok;
}

static long padded(const struct mtl_plan *p)
{
	long sum = 0;

	for (size_t b = 0; b < p->n_batch; b++) {
		int32_t m = 0;
		for (size_t k = 0; k < p->batch[b].n; k++)
			if (len[p->order[p->batch[b].start + k]] > m)
				m = len[p->order[p->batch[b].start + k]];
		sum += (long)m * (long)p->batch[b].n;
	}
	return sum;
}

int main(void)
{
	struct mtl_plan_opts o = { .batch_size = 32, .n_tasks = 2 };
	struct mtl_plan p = { 0 }, q = { 0 };
	struct mtl_rng rng;
	struct mtl_err err;
	long counts[2] = { 0 };
	int ok, starts[2] = { 1, 3 };

	mtl_rng_init(&rng, 7);
	for (int i = 0; i < N; i++) {
		len[i] = 5 + (int32_t)mtl_rng_below(&rng, 120);
		/* task 0 on 900 examples, task 1 on 100, 50 on both, some on none */
		lab[i] = (i < 900 ? 1u : 0u) | (i >= 850 && i < 950 ? 2u : 0u);
	}

	T_OK(mtl_plan_epoch(&p, len, lab, N, 1, &o, &rng, &err) == 0, "mixed plan");
	T_OK(once_each(&p, N) && p.n_batch == 32, "mixed: every example once, 32 batches");
	ok = 1;
	for (size_t i = 0; i < p.n_order; i++)
		ok &= p.order[i] == (int32_t)i;
	T_OK(ok && p.batch[31].n == 8 && p.batch[0].task == -1,
	     "without --shuffle the input order stays, the last batch is short");
	o.drop_last = 1;
	mtl_plan_epoch(&p, len, lab, N, 1, &o, &rng, &err);
	T_OK(p.n_batch == 31, "--drop-last drops the short batch");
	o.drop_last = 0;

	o.shuffle = 1;
	mtl_rng_init(&rng, 1);
	mtl_plan_epoch(&p, len, lab, N, 1, &o, &rng, &err);
	mtl_rng_init(&rng, 1);
	mtl_plan_epoch(&q, len, lab, N, 1, &o, &rng, &err);
	T_OK(once_each(&p, N) && !memcmp(p.order, q.order, N * sizeof(int32_t)),
	     "shuffle: every example once, and the same seed gives the same plan");
	mtl_plan_epoch(&q, len, lab, N, 2, &o, &rng, &err);
	T_OK(memcmp(p.order, q.order, N * sizeof(int32_t)), "the next epoch is shuffled anew");

	{
		long plain = padded(&p);
		o.bucket = 1;
		mtl_plan_epoch(&q, len, lab, N, 1, &o, &rng, &err);
		T_OK(once_each(&q, N) && padded(&q) < plain * 0.7,
		     "bucketing cuts padded tokens: %ld vs %ld", padded(&q), plain);
		o.bucket = 0;
	}

	o.max_tokens = 1000;
	mtl_plan_epoch(&p, len, lab, N, 1, &o, &rng, &err);
	ok = once_each(&p, N);
	for (size_t b = 0; b < p.n_batch; b++) {
		long m = 0;
		for (size_t k = 0; k < p.batch[b].n; k++)
			if (len[p.order[p.batch[b].start + k]] > m)
				m = len[p.order[p.batch[b].start + k]];
		ok &= m * (long)p.batch[b].n <= 1000 && p.batch[b].n > 0;
	}
	T_OK(ok, "--max-tokens: every batch within the budget (%zu batches)", p.n_batch);
	o.max_tokens = 50;
	T_OK(mtl_plan_epoch(&p, len, lab, N, 1, &o, &rng, &err) == MTL_ERR_ARG &&
	     strstr(err.msg, "exceeds --max-tokens 50"), "an example over the budget: %s", err.msg);
	o.max_tokens = 0;

	/* task-homogeneous sampling */
	T_OK(mtl_plan_parse_sampling(&o, "proportional", &err) == 0, "parse proportional");
	mtl_plan_epoch(&p, len, lab, N, 1, &o, &rng, &err);
	ok = p.n_batch == 29 + 4; /* ceil(900/32) + ceil(100/32) */
	for (size_t b = 0; b < p.n_batch; b++)
		for (size_t k = 0; k < p.batch[b].n; k++)
			ok &= (lab[p.order[p.batch[b].start + k]] >> p.batch[b].task) & 1;
	T_OK(ok, "homogeneous batches hold only examples of their task, %zu batches", p.n_batch);
	for (int e = 1; e <= 200; e++) {
		mtl_plan_epoch(&p, len, lab, N, e, &o, &rng, &err);
		for (size_t b = 0; b < p.n_batch; b++)
			counts[p.batch[b].task]++;
	}
	T_OK(fabs(counts[1] / (double)(counts[0] + counts[1]) - 0.1) < 0.01,
	     "proportional: task 1 drawn %.3f of the time (0.1 expected)",
	     counts[1] / (double)(counts[0] + counts[1]));

	mtl_plan_parse_sampling(&o, "uniform", &err);
	counts[0] = counts[1] = 0;
	for (int e = 1; e <= 200; e++) {
		mtl_plan_epoch(&p, len, lab, N, e, &o, &rng, &err);
		for (size_t b = 0; b < p.n_batch; b++)
			counts[p.batch[b].task]++;
	}
	T_OK(fabs(counts[1] / (double)(counts[0] + counts[1]) - 0.5) < 0.02,
	     "uniform: task 1 drawn %.3f of the time (0.5 expected, oversampled)",
	     counts[1] / (double)(counts[0] + counts[1]));

	T_OK(mtl_plan_parse_sampling(&o, "temperature:2", &err) == 0 && o.temperature == 2,
	     "parse temperature:2");
	counts[0] = counts[1] = 0;
	for (int e = 1; e <= 200; e++) {
		mtl_plan_epoch(&p, len, lab, N, e, &o, &rng, &err);
		for (size_t b = 0; b < p.n_batch; b++)
			counts[p.batch[b].task]++;
	}
	T_OK(fabs(counts[1] / (double)(counts[0] + counts[1]) - 0.25) < 0.015,
	     "temperature 2: task 1 drawn %.3f (sqrt(100)/(sqrt(900)+sqrt(100)) = 0.25)",
	     counts[1] / (double)(counts[0] + counts[1]));

	mtl_plan_parse_sampling(&o, "round-robin", &err);
	mtl_plan_epoch(&p, len, lab, N, 1, &o, &rng, &err);
	ok = 1;
	for (size_t b = 0; b < p.n_batch; b++)
		ok &= p.batch[b].task == (int)(b % 2);
	T_OK(ok, "round-robin alternates the tasks");

	o.start_epoch = starts;
	mtl_plan_parse_sampling(&o, "uniform", &err);
	mtl_plan_epoch(&p, len, lab, N, 2, &o, &rng, &err);
	ok = p.n_batch == 29;
	for (size_t b = 0; b < p.n_batch; b++)
		ok &= p.batch[b].task == 0;
	mtl_plan_epoch(&q, len, lab, N, 3, &o, &rng, &err);
	T_OK(ok && q.n_batch == 33 && !mtl_plan_active(&o, 1, 2) && mtl_plan_active(&o, 1, 3),
	     "curriculum: task 1 joins at epoch 3");

	T_OK(mtl_plan_parse_sampling(&o, "temperature:0", &err) == MTL_ERR_ARG &&
	     mtl_plan_parse_sampling(&o, "bogus", &err) == MTL_ERR_ARG,
	     "bad samplings are refused: %s", err.msg);
	mtl_plan_release(&p);
	mtl_plan_release(&q);
	return t_done();
}
