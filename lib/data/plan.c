/* plan.c - batch plans: shuffling, bucketing, task sampling; see plan.h. */
#include "plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int mtl_plan_parse_sampling(struct mtl_plan_opts *o, const char *s,
			    struct mtl_err *err)
{
	char *end;

	if (!strcmp(s, "mixed"))
		o->sampling = MTL_PLAN_MIXED;
	else if (!strcmp(s, "proportional"))
		o->sampling = MTL_PLAN_PROPORTIONAL;
	else if (!strcmp(s, "uniform"))
		o->sampling = MTL_PLAN_UNIFORM;
	else if (!strcmp(s, "round-robin"))
		o->sampling = MTL_PLAN_ROUND_ROBIN;
	else if (!strncmp(s, "temperature:", 12)) {
		o->sampling = MTL_PLAN_TEMPERATURE;
		o->temperature = strtod(s + 12, &end);
		if (end == s + 12 || *end || !(o->temperature > 0) || !isfinite(o->temperature))
			return mtl_err_set(err, MTL_ERR_ARG,
					   "temperature must be a positive number, not '%s'",
					   s + 12);
	} else
		return mtl_err_set(err, MTL_ERR_ARG,
				   "unknown sampling '%s' (mixed, proportional, uniform, temperature:T, round-robin)",
				   s);
	return 0;
}

int mtl_plan_active(const struct mtl_plan_opts *o, int t, int epoch)
{
	return !o->start_epoch || o->start_epoch[t] <= epoch;
}

uint64_t mtl_plan_active_mask(const struct mtl_plan_opts *o, int epoch)
{
	uint64_t m = 0;

	for (int t = 0; t < o->n_tasks; t++)
		if (mtl_plan_active(o, t, epoch))
			m |= 1ull << t;
	return m;
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t c = *cap ? *cap : 64;
	void *q;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	q = realloc(*p, c * size);
	if (!q)
		return -1;
	*p = q;
	*cap = c;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Sorts ix[0..n) by (length, index): keys pack both into one integer, so
 * ties keep input order and the plan is reproducible whatever qsort does.
 */
static int sort_by_length(int32_t *ix, size_t n, const int32_t *len)
{
	uint64_t *key = malloc((n ? n : 1) * sizeof(*key));

	if (!key)
		return -1;
	for (size_t i = 0; i < n; i++)
		key[i] = (uint64_t)(uint32_t)len[ix[i]] << 32 | (uint32_t)ix[i];
	qsort(key, n, sizeof(*key), cmp_u64);
	for (size_t i = 0; i < n; i++)
		ix[i] = (int32_t)(key[i] & 0xffffffffu);
	free(key);
	return 0;
}

/*
 * Cuts order[first..n_order) into batches of task `task`, appending them
 * to p->batch.  Returns 0, MTL_ERR_NOMEM or MTL_ERR_ARG.
 */
static int cut(struct mtl_plan *p, size_t first, const int32_t *len, int task,
	       const struct mtl_plan_opts *o, struct mtl_rng *rng,
	       struct mtl_err *err)
{
	size_t n = p->n_order - first, start = first, nb0 = p->n_batch;
	int32_t *ix = p->order + first;

	if (o->shuffle)
		mtl_rng_shuffle(rng, ix, n, sizeof(*ix));
	if (o->bucket) {
		size_t win = (size_t)(o->batch_size > 0 ? o->batch_size : 32) * 50;
		for (size_t w = 0; w < n; w += win)
			if (sort_by_length(ix + w, n - w < win ? n - w : win, len))
				return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	while (start < p->n_order) {
		size_t k = 0;
		int32_t longest = 0;

		while (start + k < p->n_order) {
			int32_t l = len[p->order[start + k]];
			int32_t m = l > longest ? l : longest;
			if (o->max_tokens > 0) {
				if (l > o->max_tokens)
					return mtl_err_set(err, MTL_ERR_ARG,
							   "an example of %d tokens exceeds --max-tokens %ld",
							   (int)l, o->max_tokens);
				if ((long)m * (long)(k + 1) > o->max_tokens)
					break;
			} else if ((int)k == o->batch_size)
				break;
			longest = m;
			k++;
		}
		if (grow((void **)&p->batch, &p->cap_batch, p->n_batch + 1, sizeof(*p->batch)))
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		p->batch[p->n_batch++] = (struct mtl_plan_batch){ start, k, task };
		start += k;
	}
	/* a short last batch: only a count-based batch can be short */
	if (o->drop_last && p->n_batch > nb0 && o->max_tokens == 0 &&
	    (int)p->batch[p->n_batch - 1].n < o->batch_size)
		p->n_batch--;
	if (o->bucket && o->shuffle)
		mtl_rng_shuffle(rng, p->batch + nb0, p->n_batch - nb0, sizeof(*p->batch));
	return 0;
}

/* The first task of apart that labels an example (labels l), or -1. */
static int apart_task(uint64_t l, uint64_t apart)
{
	for (int t = 0; t < 64; t++)
		if ((l & apart) >> t & 1)
			return t;
	return -1;
}

/*
 * Appends the examples of task t (or all when t < 0) to p->order; with a
 * non-zero apart, only those whose apart_task is g.
 */
static int add_pool(struct mtl_plan *p, const uint64_t *labelled, size_t n, int t,
		    uint64_t apart, int g)
{
	for (size_t i = 0; i < n; i++) {
		if (t >= 0 && !((labelled[i] >> t) & 1))
			continue;
		if (apart && apart_task(labelled[i], apart) != g)
			continue;
		if (grow((void **)&p->order, &p->cap_order, p->n_order + 1, sizeof(*p->order)))
			return -1;
		p->order[p->n_order++] = (int32_t)i;
	}
	return 0;
}

int mtl_plan_epoch(struct mtl_plan *p, const int32_t *len,
		   const uint64_t *labelled, size_t n, int epoch,
		   const struct mtl_plan_opts *o, struct mtl_rng *rng,
		   struct mtl_err *err)
{
	struct mtl_plan pool[64];
	size_t next[64] = { 0 }, total = 0;
	double w[64], wsum = 0;
	int rc = 0, K = o->n_tasks, rr = 0;

	MTL_ASSERT(K <= 64);
	p->n_order = p->n_batch = 0;
	if (o->sampling == MTL_PLAN_MIXED) {
		/* each apart task's examples (by the first such task that
		 * labels them), then the rest */
		for (int g = 0; g <= 64; g++) {
			size_t first = p->n_order;

			if (g < 64 && !((o->apart >> g) & 1))
				continue;
			if (add_pool(p, labelled, n, -1, o->apart, g < 64 ? g : -1))
				return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
			if ((rc = cut(p, first, len, -1, o, rng, err)))
				return rc;
		}
		if (o->apart && o->shuffle)
			mtl_rng_shuffle(rng, p->batch, p->n_batch, sizeof(*p->batch));
		return 0;
	}
	/* homogeneous: one plan per active task, then draws */
	memset(pool, 0, sizeof(pool));
	for (int t = 0; t < K; t++) {
		w[t] = 0;
		if (!mtl_plan_active(o, t, epoch))
			continue;
		if (add_pool(&pool[t], labelled, n, t, 0, -1)) {
			rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
			goto out;
		}
		if (!pool[t].n_order)
			continue;
		if ((rc = cut(&pool[t], 0, len, t, o, rng, err)))
			goto out;
		total += pool[t].n_batch;
		switch (o->sampling) {
		case MTL_PLAN_PROPORTIONAL: w[t] = (double)pool[t].n_order; break;
		case MTL_PLAN_TEMPERATURE: w[t] = pow((double)pool[t].n_order, 1.0 / o->temperature); break;
		default: w[t] = 1; break;
		}
		if (!pool[t].n_batch)
			w[t] = 0;
		wsum += w[t];
	}
	for (size_t b = 0; b < total && wsum > 0; b++) {
		int t = 0;
		struct mtl_plan *q;
		struct mtl_plan_batch *pb;

		if (o->sampling == MTL_PLAN_ROUND_ROBIN) {
			do
				t = rr++ % K;
			while (w[t] == 0);
		} else {
			double u = mtl_rng_double(rng) * wsum;
			for (t = 0; t < K - 1; t++) {
				if (w[t] > 0 && u < w[t])
					break;
				u -= w[t];
			}
			while (w[t] == 0) /* rounding at the top end */
				t--;
		}
		q = &pool[t];
		if (next[t] == q->n_batch) { /* pool drawn empty: re-form it */
			q->n_batch = 0;
			if ((rc = cut(q, 0, len, t, o, rng, err)))
				goto out;
			next[t] = 0;
		}
		pb = &q->batch[next[t]++];
		if (grow((void **)&p->order, &p->cap_order, p->n_order + pb->n, sizeof(*p->order)) ||
		    grow((void **)&p->batch, &p->cap_batch, p->n_batch + 1, sizeof(*p->batch))) {
			rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
			goto out;
		}
		memcpy(p->order + p->n_order, q->order + pb->start, pb->n * sizeof(*p->order));
		p->batch[p->n_batch++] = (struct mtl_plan_batch){ p->n_order, pb->n, t };
		p->n_order += pb->n;
	}
out:
	for (int t = 0; t < K; t++)
		mtl_plan_release(&pool[t]);
	return rc;
}

void mtl_plan_release(struct mtl_plan *p)
{
	if (!p)
		return;
	free(p->order);
	free(p->batch);
	memset(p, 0, sizeof(*p));
}

/* Its name in the batches stream's header. */
static const char *sampling_name(enum mtl_plan_sampling s)
{
	return s == MTL_PLAN_MIXED ? "mixed" :
	       s == MTL_PLAN_PROPORTIONAL ? "proportional" :
	       s == MTL_PLAN_UNIFORM ? "uniform" :
	       s == MTL_PLAN_TEMPERATURE ? "temperature" : "round-robin";
}

int mtl_plan_write_header(struct mtl_mp_writer *w,
			  const struct mtl_plan_opts *o,
			  const struct mtl_plan_header *h, int argc,
			  char **argv, struct mtl_err *err)
{
	struct mtl_mp_map m;
	msgpack_packer *pk;

	mtl_mp_map_begin(&m);
	mtl_data_pack_tasks(mtl_mp_map_key(&m, "tasks"), h->tasks);
	pk = mtl_mp_map_key(&m, "vocab_hash");
	if (h->vocab_hash)
		mtl_mp_pack_str(pk, h->vocab_hash);
	else
		msgpack_pack_nil(pk);
	msgpack_pack_int64(mtl_mp_map_key(&m, "max_length"), h->max_length);
	msgpack_pack_int64(mtl_mp_map_key(&m, "pad_id"), h->pad_id);
	msgpack_pack_int(mtl_mp_map_key(&m, "epochs"), h->epochs);
	msgpack_pack_int(mtl_mp_map_key(&m, "batch_size"), o->max_tokens ? 0 : o->batch_size);
	msgpack_pack_long(mtl_mp_map_key(&m, "max_tokens"), o->max_tokens);
	mtl_mp_pack_str(mtl_mp_map_key(&m, "sampling"), sampling_name(o->sampling));
	msgpack_pack_uint64(mtl_mp_map_key(&m, "seed"), h->seed);
	if (h->examples >= 0)
		msgpack_pack_long(mtl_mp_map_key(&m, "examples"), h->examples);
	if (h->total >= 0)
		msgpack_pack_long(mtl_mp_map_key(&m, "total_batches"), h->total);
	mtl_mp_map_end_header(&m, mtl_mp_pk(w), "batches", "mtl-batch", argc, argv);
	return mtl_mp_end(w, err);
}
