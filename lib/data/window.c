/* window.c - length-sorted batches over a window of examples; see window.h. */
#include "window.h"

#include <stdlib.h>
#include <string.h>

struct mtl_window {
	int cap, batch, budget, n;
	struct mtl_example *ex; /* [cap] in input order */
	long *rec;              /* [cap] their numbers */
	int *order;             /* [cap] input indices, sorted by length */
	int *pos;               /* [cap] input index -> place in order */
	const struct mtl_example **bex; /* [batch] one batch */
	long *brec;             /* [batch] */
	struct mtl_mp_writer *mem; /* the window's records, in sorted order */
	long long positions, tokens;
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
	if (win->cap > batch)
		win->mem = mtl_mp_writer_new_mem();
	if (!win->ex || !win->rec || !win->order || !win->pos || !win->bex ||
	    !win->brec || (win->cap > batch && !win->mem)) {
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
	mtl_mp_writer_free(win->mem);
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

/* Runs order[0..n) in batches through fn, writing to w. */
static int run_batches(struct mtl_window *win, mtl_window_fn fn, void *ctx,
		       struct mtl_mp_writer *w, struct mtl_err *err)
{
	for (int s = 0, n; s < win->n; s += n) {
		int T = 0, rc;
		size_t before = w == win->mem ? mtl_mp_writer_count(w) : 0;

		n = batch_at(win, s);
		for (int j = 0; j < n; j++) {
			int i = win->order[s + j];

			win->bex[j] = &win->ex[i];
			win->brec[j] = win->rec[i];
			if (win->ex[i].len > T)
				T = win->ex[i].len;
			win->tokens += win->ex[i].len;
		}
		win->positions += (long long)n * T;
		if ((rc = fn(ctx, win->bex, win->brec, n, w, err)))
			return rc;
		if (w == win->mem && mtl_mp_writer_count(w) - before != (size_t)n)
			return mtl_err_set(err, MTL_ERR_ARG,
					   "a batch of %d examples gave %zu records", n,
					   mtl_mp_writer_count(w) - before);
	}
	return 0;
}

int mtl_window_run(struct mtl_window *win, mtl_window_fn fn, void *ctx,
		   struct mtl_mp_writer *out, struct mtl_err *err)
{
	int rc;

	if (!win->mem) {
		for (int i = 0; i < win->n; i++)
			win->order[i] = i;
		rc = run_batches(win, fn, ctx, out, err);
		release_all(win);
		return rc;
	}
	mtl_mp_writer_clear(win->mem);
	if (!(rc = sort_by_length(win, err)))
		rc = run_batches(win, fn, ctx, win->mem, err);
	for (int k = 0; k < win->n; k++)
		win->pos[win->order[k]] = k;
	for (int i = 0; !rc && i < win->n; i++) {
		size_t len;
		const char *b = mtl_mp_writer_record(win->mem, (size_t)win->pos[i], &len);

		mtl_data_pack_raw(mtl_mp_pk(out), b, len);
		rc = mtl_mp_end(out, err);
	}
	mtl_mp_writer_clear(win->mem);
	release_all(win);
	return rc;
}
