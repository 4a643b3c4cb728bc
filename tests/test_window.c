/*
 * test_window.c - length-sorted batches over a window of examples: each
 * batch is a run of the length order (equal lengths in input order), no
 * larger than the batch size (or, with a token budget, as large as fits
 * it), and the records come out in input order;
 * a window no larger than a batch runs in input order; a function that
 * writes the wrong number of records is an error; the token counts give
 * the padding; and the memory writer keeps records apart.  On several
 * threads (mtl_window_run_on) every example runs once, on one of the
 * threads' contexts, and the output is the same; a failure reports the
 * first failing batch in the order they run, however the threads race.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp.h"
#include "t.h"
#include "window.h"

#define N 23

static const int32_t lens[N] = { 9, 3, 17, 3, 5, 12, 1, 9, 9, 30, 2, 4,
				 8, 3, 17, 6, 7, 11, 2, 9, 5, 1, 25 };

/* What the batch function saw. */
struct log {
	int n_batches, max_n, sorted, extra;
	long fail_at[2]; /* fail a batch holding one of these records */
	long seen[N]; /* record numbers in the order they were run */
	int n_seen;
	int bn[N];    /* each batch's size */
};

/* A record {"type":"r","rec":REC} per example; log->extra more for the
 * first batch. */
static int fn(void *ctx, const struct mtl_example *const *ex, const long *recs,
	      int n, struct mtl_mp_writer *w, struct mtl_err *err)
{
	struct log *log = ctx;

	for (int i = 0; i < n; i++)
		if (recs[i] == log->fail_at[0] || recs[i] == log->fail_at[1])
			return mtl_err_set(err, MTL_ERR_ARG, "record %ld failed", recs[i]);
	log->bn[log->n_batches++] = n;
	if (n > log->max_n)
		log->max_n = n;
	for (int i = 0; i < n + (log->n_batches == 1 ? log->extra : 0); i++) {
		msgpack_packer *pk = mtl_mp_pk(w);

		if (i < n) {
			log->seen[log->n_seen++] = recs[i];
			if (ex[i]->len != lens[recs[i] - 1])
				log->sorted = 0; /* the example and its number disagree */
		}
		msgpack_pack_map(pk, 2);
		mtl_mp_pack_str(pk, "type");
		mtl_mp_pack_str(pk, "r");
		mtl_mp_pack_str(pk, "rec");
		msgpack_pack_long(pk, i < n ? recs[i] : -1);
		if (mtl_mp_end(w, err))
			return MTL_ERR_IO;
	}
	return 0;
}

/* Adds the N examples (numbered 1..N) to win, running it when full. */
static int feed(struct mtl_window *win, struct log *log,
		struct mtl_mp_writer *out, struct mtl_err *err)
{
	int rc = 0;

	for (int i = 0; i < N && !rc; i++) {
		struct mtl_example *ex = mtl_window_add(win, i + 1);

		ex->len = lens[i];
		ex->ids = calloc((size_t)lens[i], sizeof(int32_t));
		if (mtl_window_full(win))
			rc = mtl_window_run(win, fn, log, out, err);
	}
	return rc ? rc : mtl_window_run(win, fn, log, out, err);
}

/* The numbers in out's records, in order; their count. */
static int out_recs(const struct mtl_mp_writer *out, long *recs)
{
	int n = (int)mtl_mp_writer_count(out);

	for (int i = 0; i < n; i++) {
		msgpack_unpacked u;
		size_t len, off = 0;
		const char *b = mtl_mp_writer_record(out, (size_t)i, &len);
		int64_t v = 0;

		msgpack_unpacked_init(&u);
		if (msgpack_unpack_next(&u, b, len, &off) == MSGPACK_UNPACK_SUCCESS &&
		    off == len)
			mtl_mp_as_int(mtl_mp_get(&u.data, "rec"), &v);
		recs[i] = (long)v;
		msgpack_unpacked_destroy(&u);
	}
	return n;
}

/* Padded positions of batches taken as runs of `batch` from `order`,
 * starting afresh at each window of cap. */
static long long padded(const long *order, int cap, int batch)
{
	long long p = 0;

	for (int w = 0; w < N; w += cap) {
		int end = w + cap < N ? w + cap : N;

		for (int s = w; s < end; s += batch) {
			int T = 0, n = end - s < batch ? end - s : batch;

			for (int j = s; j < s + n; j++)
				if (lens[order[j] - 1] > T)
					T = lens[order[j] - 1];
			p += (long long)n * T;
		}
	}
	return p;
}

static void sorted_window(int cap, int batch)
{
	struct log log = { .sorted = 1 };
	struct mtl_mp_writer *out = mtl_mp_writer_new_mem();
	struct mtl_window *win = NULL;
	struct mtl_err err = { "" };
	long recs[N + 8], expect_pos = 0, expect_tok = 0;
	long long pos, tok;
	int ok_order = 1, ok_run = 1, n;

	T_OK(!mtl_window_new(&win, cap, batch, 0, &err), "window %d, batch %d: made", cap, batch);
	T_OK(!feed(win, &log, out, &err), "window %d, batch %d: runs (%s)", cap, batch, err.msg);
	n = out_recs(out, recs);
	for (int i = 0; i < n; i++)
		ok_order &= recs[i] == i + 1;
	T_OK(n == N && ok_order, "window %d, batch %d: %d records, in input order", cap, batch, n);
	/* within each window, the run order is by length, then input order */
	for (int i = 1; i < log.n_seen; i++) {
		long a = log.seen[i - 1], b = log.seen[i];

		if ((a - 1) / cap == (b - 1) / cap &&
		    (lens[a - 1] > lens[b - 1] || (lens[a - 1] == lens[b - 1] && a > b)))
			ok_run = 0;
	}
	T_OK(log.n_seen == N && ok_run && log.sorted && log.max_n <= batch,
	     "window %d, batch %d: batches of at most %d, shortest first, ties in input order",
	     cap, batch, batch);
	mtl_window_tokens(win, &pos, &tok);
	for (int i = 0; i < N; i++)
		expect_tok += lens[i];
	expect_pos = padded(log.seen, cap, batch);
	T_OK(tok == expect_tok && pos == expect_pos,
	     "window %d, batch %d: %lld positions for %lld tokens", cap, batch, pos, tok);
	mtl_window_free(win);
	mtl_mp_writer_free(out);
}

static void input_order(int cap)
{
	struct log log = { .sorted = 1 };
	struct mtl_mp_writer *out = mtl_mp_writer_new_mem();
	struct mtl_window *win = NULL;
	long recs[N + 8];
	int ok = 1, n;

	mtl_window_new(&win, cap, 4, 0, NULL);
	T_OK(!feed(win, &log, out, NULL), "window %d, batch 4: runs", cap);
	n = out_recs(out, recs);
	for (int i = 0; i < N; i++)
		ok &= log.seen[i] == i + 1 && (i >= n || recs[i] == i + 1);
	T_OK(n == N && ok && log.max_n == 4 && log.n_batches == (N + 3) / 4,
	     "window %d, batch 4: consecutive batches in input order", cap);
	mtl_window_free(win);
	mtl_mp_writer_free(out);
}

/*
 * A window of all N with batch 2 and a budget of 20 positions: each batch
 * holds 2 examples, or more as long as size x longest <= 20, and no more
 * than that (the next example would not fit); the records stay in input
 * order.
 */
static void token_budget(void)
{
	struct log log = { .sorted = 1 };
	struct mtl_mp_writer *out = mtl_mp_writer_new_mem();
	struct mtl_window *win = NULL;
	long recs[N + 8];
	int ok = 1, i = 0, n;

	mtl_window_new(&win, 1024, 2, 20, NULL);
	T_OK(!feed(win, &log, out, NULL), "budget 20, batch 2: runs");
	n = out_recs(out, recs);
	for (int k = 0; k < n; k++)
		ok &= recs[k] == k + 1;
	T_OK(n == N && ok, "budget 20, batch 2: %d records, in input order", n);
	ok = log.n_seen == N;
	for (int b = 0; ok && b < log.n_batches; i += log.bn[b++]) {
		int size = log.bn[b], T = lens[log.seen[i + size - 1] - 1];

		/* sorted: the last of a batch is its longest */
		ok = size >= 1 && (size <= 2 || size * T <= 20);
		if (i + size < N) {
			int next = lens[log.seen[i + size] - 1];

			ok &= size >= 2 && (size + 1) * next > 20;
		}
	}
	T_OK(ok && log.max_n > 2 && i == N,
	     "budget 20, batch 2: short examples fill the budget (up to %d a batch), long ones make batches of 2",
	     log.max_n);
	mtl_window_free(win);
	mtl_mp_writer_free(out);
}

/*
 * All N in one window, batch 2 (12 batches), on np threads with the logs
 * pl[0..np) and one for the one-thread context; returns the status.
 */
static int run_on(int np, struct log *pl, struct log *one,
		  struct mtl_mp_writer *out, struct mtl_err *err)
{
	struct mtl_window *win = NULL;
	void *pctx[4];
	int rc = 0;

	for (int t = 0; t < np; t++)
		pctx[t] = &pl[t];
	mtl_window_new(&win, 1024, 2, 0, NULL);
	for (int i = 0; i < N; i++) {
		struct mtl_example *ex = mtl_window_add(win, i + 1);

		ex->len = lens[i];
		ex->ids = calloc((size_t)lens[i], sizeof(int32_t));
	}
	rc = mtl_window_run_on(win, fn, one, pctx, np, out, err);
	mtl_window_free(win);
	return rc;
}

static void threads(int np)
{
	struct log pl[4] = { { .sorted = 1 }, { .sorted = 1 }, { .sorted = 1 },
			     { .sorted = 1 } };
	struct mtl_mp_writer *out = mtl_mp_writer_new_mem();
	struct log one = { .sorted = 1 };
	struct mtl_err err = { "" };
	long recs[N + 8];
	int seen[N + 1] = { 0 }, ok = 1, n, total = 0;

	T_OK(!run_on(np, pl, &one, out, &err), "%d threads: runs (%s)", np, err.msg);
	n = out_recs(out, recs);
	for (int i = 0; i < n; i++)
		ok &= recs[i] == i + 1;
	for (int t = 0; t < np; t++) {
		for (int i = 0; i < pl[t].n_seen; i++)
			seen[pl[t].seen[i]]++;
		total += pl[t].n_batches;
		ok &= pl[t].sorted && pl[t].max_n <= 2;
	}
	for (int i = 0; i < one.n_seen; i++)
		seen[one.seen[i]]++;
	for (int i = 1; i <= N; i++)
		ok &= seen[i] == 1;
	/* 12 batches: enough for 2 and 3 threads (4 each), not for 4; the
	 * last, smallest ones (2 of 12 with 2 threads, 3 with 3) on the
	 * one-thread context, so that each thread runs as many */
	if (np < 4)
		T_OK(n == N && ok && one.n_batches == 12 - 11 / np * np &&
		     total == 11 / np * np,
		     "%d threads: every example once, in batches of 2, %d on the threads' contexts, the %d smallest after; records in input order",
		     np, 11 / np * np, 12 - 11 / np * np);
	else
		T_OK(n == N && one.n_batches == 12 && total == 0,
		     "%d threads: 12 batches are too few: one context runs them", np);
	mtl_mp_writer_free(out);
}

/* Two batches fail: the one that runs first (more positions: record 10,
 * the longest, alone makes 30, record 22 and its neighbour 2) is the
 * error, every time. */
static void threads_fail(void)
{
	struct mtl_mp_writer *out = mtl_mp_writer_new_mem();
	int ok = 1;

	for (int r = 0; r < 20; r++) {
		struct log pl[2] = { { .sorted = 1, .fail_at = { 22, 10 } },
				     { .sorted = 1, .fail_at = { 22, 10 } } };
		struct log one = { .sorted = 1, .fail_at = { 22, 10 } };
		struct mtl_err err = { "" };
		int rc = run_on(2, pl, &one, out, &err);

		ok &= rc == MTL_ERR_ARG && !strcmp(err.msg, "record 10 failed") &&
		      mtl_mp_writer_count(out) == 0;
	}
	T_OK(ok, "2 threads: of two failing batches, the first to run is the error, 20 times out of 20");
	{
		struct log pl[2] = { { .sorted = 1, .extra = 1 }, { .sorted = 1, .extra = 1 } };
		struct log one = { .sorted = 1 };
		struct mtl_err err = { "" };
		int b = 0, r = 0;

		T_OK(run_on(2, pl, &one, out, &err) == MTL_ERR_ARG &&
		     sscanf(err.msg, "a batch of %d examples gave %d records", &b, &r) == 2 &&
		     r == b + 1,
		     "2 threads: one record too many is an error: %s", err.msg);
	}
	mtl_mp_writer_free(out);
}

int main(void)
{
	struct mtl_mp_writer *out = mtl_mp_writer_new_mem();
	struct mtl_window *win = NULL;
	struct mtl_err err = { "" };
	struct log log = { .sorted = 1, .extra = 1 };
	long long pos, tok;

	sorted_window(1024, 4);
	sorted_window(8, 3);  /* windows smaller than the input */
	sorted_window(16, 5);  /* a last batch shorter than the rest */
	input_order(0);
	input_order(1);
	input_order(4);
	token_budget();
	threads(2);
	threads(3);
	threads(4);
	threads_fail();

	/* unsorted is worse: the same examples in input order */
	{
		long id[N];
		long long unsorted;

		for (int i = 0; i < N; i++)
			id[i] = i + 1;
		unsorted = padded(id, N, 4);
		mtl_window_new(&win, 1024, 4, 0, NULL);
		feed(win, &(struct log){ .sorted = 1 }, out, NULL);
		mtl_window_tokens(win, &pos, &tok);
		T_OK(pos < unsorted, "sorting pads less: %lld positions against %lld", pos,
		     unsorted);
		mtl_window_free(win);
		mtl_mp_writer_clear(out);
	}

	/* a batch function that writes one record too many */
	mtl_window_new(&win, 16, 4, 0, NULL);
	T_OK(feed(win, &log, out, &err) == MTL_ERR_ARG &&
	     strstr(err.msg, "a batch of 4 examples gave 5 records"),
	     "one record too many is an error: %s", err.msg);
	mtl_window_free(win);

	/* the memory writer: empty records are not records; clear keeps none */
	mtl_mp_writer_clear(out);
	T_OK(!mtl_mp_end(out, NULL) && mtl_mp_writer_count(out) == 0,
	     "memory writer: an empty record is not kept");
	msgpack_pack_int(mtl_mp_pk(out), 7);
	mtl_mp_end(out, NULL);
	msgpack_pack_int(mtl_mp_pk(out), 300);
	mtl_mp_end(out, NULL);
	{
		size_t l0, l1;
		const char *r0 = mtl_mp_writer_record(out, 0, &l0);
		const char *r1 = mtl_mp_writer_record(out, 1, &l1);

		T_OK(mtl_mp_writer_count(out) == 2 && l0 == 1 && r0[0] == 7 && l1 == 3 &&
		     (unsigned char)r1[0] == 0xcd,
		     "memory writer: records kept apart (%zu and %zu bytes)", l0, l1);
	}
	mtl_mp_writer_free(out);
	mtl_window_free(NULL);
	return t_done();
}
