/*
 * dist.c - data-parallel training across processes, the part that does
 * not depend on the transport: the group's lifetime, a step's batches
 * shared out by rows, the gradient buckets, and each rank's random
 * stream; see dist.h.  The communication itself is dist_mpi.c's (MPI)
 * or dist_none.c's (one process), whichever the build links
 * (dist_net.h).
 */
#include "dist_net.h"

#include <stdlib.h>
#include <string.h>

int mtl_dist_init(struct mtl_dist **out, int *argc, char ***argv,
		  struct mtl_err *err)
{
	struct mtl_dist *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	d->size = d->local_size = 1;
	if ((rc = mtl_dist_net_init(d, argc, argv, err))) {
		free(d);
		return rc;
	}
	if (d->rank == 0 &&
	    !(d->rngs = calloc((size_t)d->size, sizeof(*d->rngs)))) {
		mtl_dist_net_free(d);
		free(d);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	*out = d;
	return 0;
}

void mtl_dist_free(struct mtl_dist *d)
{
	if (!d)
		return;
	for (int i = 0; i < d->n_buckets; i++)
		free(d->buckets[i].r);
	free(d->buckets);
	free(d->rngs);
	mtl_dist_net_free(d);
	free(d);
}

int mtl_dist_rank(const struct mtl_dist *d)
{
	return d->rank;
}

int mtl_dist_size(const struct mtl_dist *d)
{
	return d->size;
}

int mtl_dist_local_size(const struct mtl_dist *d)
{
	return d->local_size;
}

int mtl_dist_rows(struct mtl_batch *out, const struct mtl_batch *b, int r0,
		  int r1, const struct mtl_tasks *ts, struct mtl_err *err)
{
	int n = r1 - r0, T = b->T;

	MTL_ASSERT(0 <= r0 && r0 <= r1 && r1 <= b->B && b->n_tasks <= ts->n);
	memset(out, 0, sizeof(*out));
	out->B = n;
	out->T = T;
	out->epoch = b->epoch;
	out->index = b->index;
	out->n_tasks = b->n_tasks;
	/* +1: a share of no rows still gets real (non-NULL) arrays */
	out->ids = malloc(sizeof(int32_t) * ((size_t)n * T + 1));
	out->lengths = malloc(sizeof(int32_t) * ((size_t)n + 1));
	out->labels = calloc((size_t)b->n_tasks + 1, sizeof(*out->labels));
	if (!out->ids || !out->lengths || !out->labels)
		goto nomem;
	memcpy(out->ids, b->ids + (size_t)r0 * T, sizeof(int32_t) * (size_t)n * T);
	memcpy(out->lengths, b->lengths + r0, sizeof(int32_t) * (size_t)n);
	if (b->type_ids) {
		if (!(out->type_ids = malloc(sizeof(int32_t) * ((size_t)n * T + 1))))
			goto nomem;
		memcpy(out->type_ids, b->type_ids + (size_t)r0 * T,
		       sizeof(int32_t) * (size_t)n * T);
	}
	for (int t = 0; t < b->n_tasks; t++) {
		size_t w = (size_t)mtl_task_width(&ts->task[t], T);

		if (!b->labels[t])
			continue;
		out->labels[t] = malloc(sizeof(int32_t) * (w * n + 1));
		if (!out->labels[t])
			goto nomem;
		memcpy(out->labels[t], b->labels[t] + w * r0,
		       sizeof(int32_t) * w * n);
	}
	return 0;
nomem:
	mtl_batch_release(out);
	return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
}

/*
 * The wire form of a step's batches, int32 words: n, then per batch
 * B, T, epoch (low, high), index (low, high), has-type-ids, one
 * has-labels flag per task, ids[B*T], lengths[B], type_ids[B*T] when
 * present, and each present task's labels.
 */
#define BATCH_HEAD 7

static size_t wire_words(const struct mtl_batch *b, int n,
			 const struct mtl_tasks *ts)
{
	size_t w = 1;

	for (int i = 0; i < n; i++) {
		w += BATCH_HEAD + (size_t)ts->n + (size_t)b[i].B * b[i].T + b[i].B;
		if (b[i].type_ids)
			w += (size_t)b[i].B * b[i].T;
		for (int t = 0; t < b[i].n_tasks; t++)
			if (b[i].labels[t])
				w += (size_t)b[i].B * mtl_task_width(&ts->task[t], b[i].T);
	}
	return w;
}

static void wire_pack(int32_t *w, const struct mtl_batch *b, int n,
		      const struct mtl_tasks *ts)
{
	*w++ = n;
	for (int i = 0; i < n; i++) {
		const struct mtl_batch *x = &b[i];
		size_t BT = (size_t)x->B * x->T;

		*w++ = x->B;
		*w++ = x->T;
		*w++ = (int32_t)(uint32_t)((uint64_t)x->epoch & 0xffffffffu);
		*w++ = (int32_t)(uint32_t)((uint64_t)x->epoch >> 32);
		*w++ = (int32_t)(uint32_t)((uint64_t)x->index & 0xffffffffu);
		*w++ = (int32_t)(uint32_t)((uint64_t)x->index >> 32);
		*w++ = x->type_ids != NULL;
		for (int t = 0; t < ts->n; t++)
			*w++ = t < x->n_tasks && x->labels[t] != NULL;
		memcpy(w, x->ids, sizeof(int32_t) * BT);
		w += BT;
		memcpy(w, x->lengths, sizeof(int32_t) * (size_t)x->B);
		w += x->B;
		if (x->type_ids) {
			memcpy(w, x->type_ids, sizeof(int32_t) * BT);
			w += BT;
		}
		for (int t = 0; t < x->n_tasks; t++) {
			size_t k = (size_t)x->B * mtl_task_width(&ts->task[t], x->T);

			if (!x->labels[t])
				continue;
			memcpy(w, x->labels[t], sizeof(int32_t) * k);
			w += k;
		}
	}
}

static uint64_t join32(int32_t lo, int32_t hi)
{
	return (uint64_t)(uint32_t)lo | (uint64_t)(uint32_t)hi << 32;
}

/*
 * Batch i of the wire form at *pw (words left: *left) into x as a view:
 * ids, lengths and labels point into the buffer (x->labels allocated).
 * 0, or MTL_ERR_FORMAT for a short or inconsistent buffer.
 */
static int wire_view(struct mtl_batch *x, const int32_t **pw, size_t *left,
		     const struct mtl_tasks *ts, struct mtl_err *err)
{
	const int32_t *w = *pw;
	size_t need;

	memset(x, 0, sizeof(*x));
	if (*left < BATCH_HEAD + (size_t)ts->n || w[0] < 0 || w[1] < 1)
		return mtl_err_set(err, MTL_ERR_FORMAT, "rank 0 sent a short batch");
	x->B = w[0];
	x->T = w[1];
	x->epoch = (int64_t)join32(w[2], w[3]);
	x->index = (int64_t)join32(w[4], w[5]);
	x->n_tasks = ts->n;
	need = BATCH_HEAD + (size_t)ts->n + (size_t)x->B * x->T + x->B;
	if (w[6])
		need += (size_t)x->B * x->T;
	for (int t = 0; t < ts->n; t++)
		if (w[BATCH_HEAD + t])
			need += (size_t)x->B * mtl_task_width(&ts->task[t], x->T);
	if (need > *left)
		return mtl_err_set(err, MTL_ERR_FORMAT, "rank 0 sent a short batch");
	x->labels = calloc((size_t)ts->n + 1, sizeof(*x->labels));
	if (!x->labels)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	w += BATCH_HEAD;
	{
		const int32_t *flag = w;

		w += ts->n;
		x->ids = (int32_t *)w;
		w += (size_t)x->B * x->T;
		x->lengths = (int32_t *)w;
		w += x->B;
		if ((*pw)[6]) {
			x->type_ids = (int32_t *)w;
			w += (size_t)x->B * x->T;
		}
		for (int t = 0; t < ts->n; t++) {
			if (!flag[t])
				continue;
			x->labels[t] = (int32_t *)w;
			w += (size_t)x->B * mtl_task_width(&ts->task[t], x->T);
		}
	}
	*pw = w;
	*left -= need;
	return 0;
}

int mtl_dist_share(struct mtl_dist *d, struct mtl_batch *b, int *n, int cap,
		   const struct mtl_tasks *ts, struct mtl_err *err)
{
	int32_t *buf = NULL;
	const int32_t *w;
	int64_t words = 0;
	size_t left;
	int rc = 0, count;

	if (d->size == 1)
		return 0;
	if (d->rank == 0) {
		words = (int64_t)wire_words(b, *n, ts);
		buf = malloc(sizeof(int32_t) * (size_t)words);
		if (!buf)
			words = -1; /* tells the others to stop too */
		else
			wire_pack(buf, b, *n, ts);
	}
	if ((rc = mtl_dist_bcast(d, &words, sizeof(words), err)))
		goto out;
	if (words < 1) {
		rc = mtl_err_set(err, MTL_ERR_NOMEM,
				 "rank 0 cannot allocate the step's batches");
		goto out;
	}
	if (d->rank != 0 && !(buf = malloc(sizeof(int32_t) * (size_t)words))) {
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = mtl_dist_bcast(d, buf, sizeof(int32_t) * (size_t)words, err)))
		goto out;
	count = buf[0];
	if (count < 0 || count > cap) {
		rc = mtl_err_set(err, MTL_ERR_ARG,
				 "rank 0 sent %d batches, more than the %d of a step",
				 count, cap);
		goto out;
	}
	if (d->rank == 0)
		for (int i = 0; i < *n; i++)
			mtl_batch_release(&b[i]);
	w = buf + 1;
	left = (size_t)words - 1;
	for (int i = 0; i < count; i++) {
		struct mtl_batch x;
		int r0, r1;

		if ((rc = wire_view(&x, &w, &left, ts, err)))
			goto out;
		r0 = (int)((int64_t)x.B * d->rank / d->size);
		r1 = (int)((int64_t)x.B * (d->rank + 1) / d->size);
		rc = mtl_dist_rows(&b[i], &x, r0, r1, ts, err);
		free(x.labels);
		if (rc) {
			while (i--)
				mtl_batch_release(&b[i]);
			goto out;
		}
	}
	*n = count;
out:
	free(buf);
	return rc;
}

/* Appends the range [p, p+n) to bucket k, merged with its last range
 * when adjacent; pieces at most `piece` floats (MPI counts are ints). */
static int add_range(struct mtl_dist *d, int k, float *p, size_t n)
{
	const size_t piece = (size_t)1 << 28;
	struct mtl_dist_bucket *bk = &d->buckets[k];

	while (n) {
		struct mtl_dist_range *last = bk->n ? &bk->r[bk->n - 1] : NULL;
		size_t take;

		if (last && last->p + last->n == p && last->n < piece) {
			take = piece - last->n < n ? piece - last->n : n;
			last->n += take;
		} else {
			struct mtl_dist_range *r = realloc(bk->r, sizeof(*r) * (size_t)(bk->n + 1));

			if (!r)
				return MTL_ERR_NOMEM;
			bk->r = r;
			take = n < piece ? n : piece;
			bk->r[bk->n++] = (struct mtl_dist_range){ p, take };
		}
		p += take;
		n -= take;
	}
	return 0;
}

int mtl_dist_attach(struct mtl_dist *d, const struct mtl_bert *m, float *grad,
		    const struct mtl_heads *hd, float *hgrad,
		    struct mtl_err *err)
{
	int L = m->cfg.layers, total = 0;

	for (int i = 0; i < d->n_buckets; i++)
		free(d->buckets[i].r);
	free(d->buckets);
	d->n_layers = L;
	d->n_buckets = L + 2;
	d->started = 0;
	d->buckets = calloc((size_t)d->n_buckets, sizeof(*d->buckets));
	if (!d->buckets)
		goto nomem;
	if (hd->n_params && add_range(d, MTL_DIST_BUCKET_HEADS, hgrad, hd->n_params))
		goto nomem;
	for (size_t i = 0; i < m->n_tensors; i++) {
		const struct mtl_bert_tensor *t = &m->tensors[i];
		int k;

		if (t->layer >= 0)
			k = 1 + (L - 1 - t->layer);
		else
			k = L + 1;
		if (add_range(d, k, grad + t->offset, t->numel))
			goto nomem;
	}
	for (int k = 0; k < d->n_buckets; k++)
		total += d->buckets[k].n;
	if (mtl_dist_net_plan(d, total))
		goto nomem;
	return 0;
nomem:
	return mtl_err_set(err, MTL_ERR_NOMEM, "cannot plan the gradient buckets");
}

void mtl_dist_layer_ready(void *arg, int l)
{
	struct mtl_dist *d = arg;

	mtl_dist_ready(d, l < 0 ? d->n_layers + 1 : 1 + (d->n_layers - 1 - l));
}

void mtl_dist_derive_rng(const struct mtl_dist *d, struct mtl_rng *rng)
{
	struct mtl_rng from = *rng;

	if (d->rank == 0)
		return;
	mtl_rng_init(rng, mtl_rng_u64(&from) ^
		     (0x9e3779b97f4a7c15ULL * (uint64_t)d->rank));
}

int mtl_dist_gather_rng(struct mtl_dist *d, const struct mtl_rng *r,
			struct mtl_err *err)
{
	return mtl_dist_net_gather(d, r, sizeof(*r), d->rngs, err);
}

const struct mtl_rng *mtl_dist_rngs(const struct mtl_dist *d)
{
	return d->rngs;
}

uint64_t mtl_dist_hash(const float *v, size_t n, uint64_t h)
{
	/* FNV-1a over 32-bit words: the bits, so -0 and 0 differ, NaNs
	 * with different payloads differ */
	for (size_t i = 0; i < n; i++) {
		uint32_t w;

		memcpy(&w, &v[i], sizeof(w));
		h = (h ^ w) * 0x100000001b3ULL;
	}
	return h;
}

double mtl_dist_comm_seconds(struct mtl_dist *d)
{
	double s = d->comm;

	d->comm = 0;
	return s;
}
