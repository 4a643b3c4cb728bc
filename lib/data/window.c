/* window.c - length-sorted batches over a window of examples; see window.h. */
#include "window.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "par.h"

/* Batches a thread a window needs before mtl_window_run_on() shares them
 * out: with fewer, the last ones would leave threads idle. */
#define PAR_BATCHES 4

/* A batch to run: its place in the order, size and token positions. */
struct plan {
	int start, size;
	long long positions;
};

struct mtl_window {
	int cap, batch, budget, n;
	struct mtl_example *ex; /* [cap] in input order */
	long *rec;              /* [cap] their numbers */
	int *order;             /* [cap] input indices, sorted by length */
	int *pos;               /* [cap] input index -> place in order */
	const struct mtl_example **bex; /* [cap] the examples in order */
	long *brec;             /* [cap] their numbers */
	struct plan *plan;      /* [cap] the batches of a run */
	struct mtl_mp_writer *mem; /* the window's records, in sorted order */
	long long positions, tokens;
	long long batches, side;   /* batches run; of them on threads */
	/* run on threads: each slot's records (pmem[0] is mem), and where
	 * sorted example k's record went: pmem[slot[k]], record first[k] */
	struct mtl_mp_writer **pmem;
	int n_pmem;
	int *slot, *first;
};

int mtl_window_new(struct mtl_window **out, int cap, int batch, int tokens,
		   struct mtl_err *err)
{
	struct mtl_window *win = calloc(1, sizeof(*win));

	MTL_ASSERT(batch >= 1 && tokens >= 0);
	if (!win)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	win->batch = batch;
	win->budget = tokens;
	win->cap = cap > batch ? cap : batch;
	win->ex = calloc((size_t)win->cap, sizeof(*win->ex));
	win->rec = calloc((size_t)win->cap, sizeof(*win->rec));
	win->order = calloc((size_t)win->cap, sizeof(*win->order));
	win->pos = calloc((size_t)win->cap, sizeof(*win->pos));
	win->bex = calloc((size_t)win->cap, sizeof(*win->bex));
	win->brec = calloc((size_t)win->cap, sizeof(*win->brec));
	win->plan = calloc((size_t)win->cap, sizeof(*win->plan));
	if (win->cap > batch)
		win->mem = mtl_mp_writer_new_mem();
	if (!win->ex || !win->rec || !win->order || !win->pos || !win->bex ||
	    !win->brec || !win->plan || (win->cap > batch && !win->mem)) {
		mtl_window_free(win);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	*out = win;
	return 0;
}

static void release_all(struct mtl_window *win)
{
	while (win->n)
		mtl_example_release(&win->ex[--win->n]);
}

void mtl_window_free(struct mtl_window *win)
{
	if (!win)
		return;
	if (win->ex)
		release_all(win);
	free(win->ex);
	free(win->rec);
	free(win->order);
	free(win->pos);
	free(win->bex);
	free(win->brec);
	free(win->plan);
	mtl_mp_writer_free(win->mem);
	for (int i = 1; i < win->n_pmem; i++)
		mtl_mp_writer_free(win->pmem[i]);
	free(win->pmem);
	free(win->slot);
	free(win->first);
	free(win);
}

struct mtl_example *mtl_window_add(struct mtl_window *win, long rec)
{
	MTL_ASSERT(win->n < win->cap);
	win->rec[win->n] = rec;
	memset(&win->ex[win->n], 0, sizeof(win->ex[0]));
	return &win->ex[win->n++];
}

int mtl_window_full(const struct mtl_window *win)
{
	return win->n == win->cap;
}

void mtl_window_tokens(const struct mtl_window *win, long long *positions,
		       long long *tokens)
{
	*positions = win->positions;
	*tokens = win->tokens;
}

long long mtl_window_batches(const struct mtl_window *win, long long *side)
{
	*side = win->side;
	return win->batches;
}

/*
 * Sorts order[0..n) by length, then input index: a counting sort, linear
 * and stable by construction.  0 or MTL_ERR_NOMEM.
 */
static int sort_by_length(struct mtl_window *win, struct mtl_err *err)
{
	int max = 0, *count;

	for (int i = 0; i < win->n; i++)
		if (win->ex[i].len > max)
			max = win->ex[i].len;
	if (!(count = calloc((size_t)max + 2, sizeof(*count))))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	for (int i = 0; i < win->n; i++)
		count[win->ex[i].len + 1]++;
	for (int l = 1; l <= max + 1; l++)
		count[l] += count[l - 1];
	for (int i = 0; i < win->n; i++)
		win->order[count[win->ex[i].len]++] = i;
	free(count);
	return 0;
}

/*
 * The size of the batch that starts at order[s]: win->batch examples, or
 * more while the batch stays within win->budget positions (its size times
 * its longest example's length).
 */
static int batch_at(const struct mtl_window *win, int s)
{
	int n = 0, T = 0;

	while (s + n < win->n) {
		int len = win->ex[win->order[s + n]].len, t = len > T ? len : T;

		if (n >= win->batch && (long long)(n + 1) * t > win->budget)
			break;
		T = t;
		n++;
	}
	return n;
}

/*
 * Lays order[0..n) out for the batch function (bex, brec), cuts it into
 * batches (plan, batch_at) and counts its tokens, positions and batches.
 * Returns the number of batches.
 */
static int lay_out(struct mtl_window *win)
{
	int nb = 0;

	for (int k = 0; k < win->n; k++) {
		int i = win->order[k];

		win->bex[k] = &win->ex[i];
		win->brec[k] = win->rec[i];
		win->tokens += win->ex[i].len;
	}
	for (int s = 0, n; s < win->n; s += n, nb++) {
		int T = 0;

		n = batch_at(win, s);
		for (int k = s; k < s + n; k++)
			T = win->bex[k]->len > T ? win->bex[k]->len : T;
		win->plan[nb] = (struct plan){ s, n, (long long)n * T };
		win->positions += (long long)n * T;
	}
	win->batches += nb;
	return nb;
}

/* The error of a batch of n examples that wrote records - before (not
 * n) records; else 0. */
static int count_check(size_t records, size_t before, int n,
		       struct mtl_err *err)
{
	if (records - before == (size_t)n)
		return 0;
	return mtl_err_set(err, MTL_ERR_ARG,
			   "a batch of %d examples gave %zu records", n,
			   records - before);
}

/* Runs win->plan[0..nb) in order through fn, writing to w. */
static int run_batches(struct mtl_window *win, int nb, mtl_window_fn fn,
		       void *ctx, struct mtl_mp_writer *w, struct mtl_err *err)
{
	for (int b = 0; b < nb; b++) {
		int s = win->plan[b].start, n = win->plan[b].size, rc;
		size_t before = w == win->mem ? mtl_mp_writer_count(w) : 0;

		if ((rc = fn(ctx, win->bex + s, win->brec + s, n, w, err)))
			return rc;
		if (w == win->mem &&
		    (rc = count_check(mtl_mp_writer_count(w), before, n, err)))
			return rc;
	}
	return 0;
}

/* A window's batches on several threads (mtl_window_run_on). */
struct par_job {
	struct mtl_window *win;
	mtl_window_fn fn;
	void *const *ctx;
	const int *start, *size; /* [nb] the batches, in the order they run */
	_Atomic int failed;      /* the first batch (in that order) that
				  * failed so far, or nb */
	int *rc;                 /* [nb] a failed batch's status */
	struct mtl_err *err;     /* [nb] and its message */
};

/* Batch b of a par_job with ctx, writing to thread slot's writer. */
static void par_batch(struct par_job *j, int b, int slot, void *ctx)
{
	struct mtl_window *win = j->win;
	struct mtl_mp_writer *w = win->pmem[slot];
	int s = j->start[b], n = j->size[b], rc, f;
	size_t before = mtl_mp_writer_count(w);
	struct mtl_err e;

	/* after a failure only the batches before it still matter, so the
	 * error reported is the same whatever the timing */
	if (atomic_load(&j->failed) < b)
		return;
	rc = j->fn(ctx, win->bex + s, win->brec + s, n, w, &e);
	if (!rc)
		rc = count_check(mtl_mp_writer_count(w), before, n, &e);
	if (rc) {
		j->rc[b] = rc;
		j->err[b] = e;
		f = atomic_load(&j->failed);
		while (b < f && !atomic_compare_exchange_weak(&j->failed, &f, b))
			;
		return;
	}
	for (int k = 0; k < n; k++) {
		win->slot[s + k] = slot;
		win->first[s + k] = (int)before + k;
	}
}

/* Batches lo..hi-1 of a par_job on thread slot (par.h). */
static void par_batches(void *arg, int64_t lo, int64_t hi, int slot)
{
	struct par_job *j = arg;

	for (int b = (int)lo; b < hi; b++)
		par_batch(j, b, slot, j->ctx[slot]);
}

/* Most positions first (the longest examples first among equals), so
 * that the batches left when threads start to run out are the small ones. */
static int by_work(const void *pa, const void *pb)
{
	const struct plan *a = pa, *b = pb;

	if (a->positions != b->positions)
		return a->positions > b->positions ? -1 : 1;
	return b->start - a->start;
}

/*
 * Runs the sorted window's nb batches (plan[0..nb)), most positions
 * first: the first side of them on np threads, thread slot t calling fn
 * with pctx[t] and writing to win->pmem[t], then the rest, one by one,
 * with ctx (which may share each between the threads).  0, or the error
 * of the first batch to fail in the order they run.
 */
static int run_par(struct mtl_window *win, mtl_window_fn fn, void *ctx,
		   void *const *pctx, int np, struct plan *plan, int nb,
		   int side, struct mtl_err *err)
{
	int *start = malloc(sizeof(int) * 3 * (size_t)nb);
	struct mtl_err *errs = malloc(sizeof(*errs) * (size_t)nb);
	struct par_job j = { win, fn, pctx, start, start + nb, nb,
			     start + 2 * nb, errs };
	int ret = 0;

	if (!start || !errs) {
		free(start), free(errs);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	qsort(plan, (size_t)nb, sizeof(*plan), by_work);
	for (int b = 0; b < nb; b++)
		start[b] = plan[b].start, start[nb + b] = plan[b].size;
	for (int t = 0; t < np; t++)
		mtl_mp_writer_clear(win->pmem[t]);
	mtl_par_for(np, side, 1, par_batches, &j);
	for (int b = side; b < nb; b++)
		par_batch(&j, b, 0, ctx);
	if (j.failed < nb) {
		ret = j.rc[j.failed];
		*err = j.err[j.failed];
	}
	free(start), free(errs);
	return ret;
}

/* win->pmem, slot and first for np threads: 0 or MTL_ERR_NOMEM. */
static int par_reserve(struct mtl_window *win, int np, struct mtl_err *err)
{
	if (!win->slot) {
		win->slot = malloc(sizeof(int) * (size_t)win->cap);
		win->first = malloc(sizeof(int) * (size_t)win->cap);
		if (!win->slot || !win->first)
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	if (np > win->n_pmem) {
		struct mtl_mp_writer **p = realloc(win->pmem, sizeof(*p) * (size_t)np);

		if (!p)
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		win->pmem = p;
		if (!win->n_pmem)
			p[win->n_pmem++] = win->mem;
		for (; win->n_pmem < np; win->n_pmem++)
			if (!(p[win->n_pmem] = mtl_mp_writer_new_mem()))
				return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	return 0;
}

int mtl_window_run(struct mtl_window *win, mtl_window_fn fn, void *ctx,
		   struct mtl_mp_writer *out, struct mtl_err *err)
{
	return mtl_window_run_on(win, fn, ctx, NULL, 0, out, err);
}

int mtl_window_run_on(struct mtl_window *win, mtl_window_fn fn, void *ctx,
		      void *const *pctx, int np, struct mtl_mp_writer *out,
		      struct mtl_err *err)
{
	int rc, nb, par;

	if (!win->mem) {
		for (int i = 0; i < win->n; i++)
			win->order[i] = i;
		rc = run_batches(win, lay_out(win), fn, ctx, out, err);
		release_all(win);
		return rc;
	}
	mtl_mp_writer_clear(win->mem);
	if ((rc = sort_by_length(win, err))) {
		release_all(win);
		return rc;
	}
	nb = lay_out(win);
	par = np > 1 && nb >= PAR_BATCHES * np;
	if (par && (rc = par_reserve(win, np, err)))
		par = 0;
	if (par) {
		/* a whole number of batches a thread side by side (the
		 * largest), so that none waits long for the last: the
		 * smallest, at least one, after them with ctx */
		int side = (nb - 1) / np * np;

		win->side += side;
		rc = run_par(win, fn, ctx, pctx, np, win->plan, nb, side, err);
	} else if (!rc) {
		rc = run_batches(win, nb, fn, ctx, win->mem, err);
	}
	for (int k = 0; k < win->n; k++)
		win->pos[win->order[k]] = k;
	for (int i = 0; !rc && i < win->n; i++) {
		int k = win->pos[i];
		size_t len;
		const char *b = par ? mtl_mp_writer_record(win->pmem[win->slot[k]],
							   (size_t)win->first[k], &len)
				    : mtl_mp_writer_record(win->mem, (size_t)k, &len);

		mtl_data_pack_raw(mtl_mp_pk(out), b, len);
		rc = mtl_mp_end(out, err);
	}
	for (int t = 0; t < (par ? np : 1); t++)
		mtl_mp_writer_clear(par ? win->pmem[t] : win->mem);
	release_all(win);
	return rc;
}
