/*
 * window.h - inference over an examples stream in length-sorted batches,
 * with the output in input order.
 *
 * A batch is padded to its longest example, so batches taken in input
 * order from text of mixed length spend much of their work on padding.
 * A window gathers up to `cap` examples, orders them by length (stable:
 * equal lengths keep their input order), cuts that order into batches of
 * `batch` examples (more when they are short: see mtl_window_new), and
 * hands each batch to the caller's function, which writes exactly one
 * record per example.  Those records are kept in
 * memory and written to the output in the examples' input order once the
 * whole window has run, so the output is the same stream as without
 * sorting; memory grows with the window's output, not the input's.
 *
 * With cap at most `batch` (e.g. 0 or 1) nothing is reordered: batches
 * are consecutive examples and their records go straight to the output.
 *
 * Ownership: the window owns its examples (mtl_window_add() gives a zeroed
 * slot that the caller parses into; running or freeing the window releases
 * them).  The batch function borrows the examples for the call only.
 * mtl_window_free() accepts NULL.
 */
#ifndef MTL_WINDOW_H
#define MTL_WINDOW_H

#include "data.h"
#include "err.h"
#include "mp.h"

struct mtl_window;

/*
 * Runs *ex[0..n) (one batch, in sorted order) and writes one record per
 * example, in that order, to w.  recs[0..n) are the examples' numbers as
 * given to mtl_window_add(), for messages.  Returns 0 or <0 with err set.
 */
typedef int (*mtl_window_fn)(void *ctx, const struct mtl_example *const *ex,
			     const long *recs, int n, struct mtl_mp_writer *w,
			     struct mtl_err *err);

/*
 * A window of up to cap examples run in batches of batch (>= 1) examples,
 * or of more while a batch stays within tokens token positions (its size
 * times its longest example's length; 0: batch examples exactly), up to
 * the window's size: short examples then make batches of about as many
 * positions as long ones.  0, or MTL_ERR_NOMEM (*out untouched).
 */
int mtl_window_new(struct mtl_window **out, int cap, int batch, int tokens,
		   struct mtl_err *err);
void mtl_window_free(struct mtl_window *win);

/*
 * A zeroed example slot for the next input example, numbered rec (e.g.
 * its record number).  Call only while !mtl_window_full(win).  The slot
 * may be left zeroed (a failed parse leaves it released) before the
 * caller gives up; running the window then would use it, so a caller that
 * goes on must have filled it.
 */
struct mtl_example *mtl_window_add(struct mtl_window *win, long rec);
int mtl_window_full(const struct mtl_window *win);

/*
 * Runs the window's examples through fn, shortest first, and writes their
 * records to out in input order; then releases them and empties the
 * window (also on error).  Returns 0, fn's error, MTL_ERR_ARG when fn
 * wrote another number of records than it had examples, MTL_ERR_NOMEM, or
 * a write error on out (MTL_ERR_IO).
 */
int mtl_window_run(struct mtl_window *win, mtl_window_fn fn, void *ctx,
		   struct mtl_mp_writer *out, struct mtl_err *err);

/*
 * mtl_window_run on up to np threads (par.h's pool), for a window of
 * many batches: when it has at least 4 np of them, they run side by
 * side, most token positions first, the thread of slot t calling fn
 * with pctx[t] (0 <= t < np) and a writer of its own; the smallest (1 to
 * np of them, so that the rest are a whole number a thread) run after,
 * one by one, with ctx; the records still come out in input order.
 * Else, or with np <= 1, it is mtl_window_run with ctx.  fn must then
 * be safe to run on different pctx at once.  On failure the error is
 * that of the first batch to fail in the order the batches run, and
 * the batches after it may not have run.
 */
int mtl_window_run_on(struct mtl_window *win, mtl_window_fn fn, void *ctx,
		      void *const *pctx, int np, struct mtl_mp_writer *out,
		      struct mtl_err *err);

/*
 * Token positions processed (sum over batches of size x longest) and
 * real tokens (sum of lengths) of everything run so far: their ratio is
 * the padding overhead.
 */
void mtl_window_tokens(const struct mtl_window *win, long long *positions,
		       long long *tokens);

/* Batches run so far; *side: how many of them ran side by side on
 * several threads (mtl_window_run_on). */
long long mtl_window_batches(const struct mtl_window *win, long long *side);

#endif
