/*
 * par.h - a parallel loop without a barrier: every threaded loop of the
 * encoder, forward and backward, of the optimiser and of the embedding
 * search.
 *
 *	static void rows(void *arg, int64_t lo, int64_t hi, int slot)
 *	{
 *		struct job *j = arg;
 *		// rows lo..hi-1, with scratch j->scratch + slot * per
 *	}
 *	...
 *	mtl_par_for(nt, N, 64, rows, &job);
 *
 * mtl_par_for cuts [0, n) into chunks of `chunk` indices and runs
 * fn(arg, lo, hi, slot) once for each, on the calling thread and on up to
 * nt - 1 pool threads.  The chunks go to whichever thread asks next, from
 * one shared counter, and the call returns as soon as every chunk is
 * done: it waits for chunks other threads have started, never for a
 * thread that has not started one.  An OpenMP parallel loop ends at a
 * barrier instead, which every thread must reach; when another process
 * holds one of the cores, each barrier waits for the thread that shares
 * that core to be scheduled again (docs/performance.md, "Threads under
 * load"), and the encoder meets a barrier several times a layer.  Every
 * threaded loop of lib/ runs here; only BLIS threads its own products,
 * when it runs them (MTL_GEMM=blis).
 *
 * slot is 0 on the calling thread and 1..nt-1 on the pool's threads, so fn
 * may use per-thread scratch indexed by slot.  Which thread runs a chunk
 * varies from call to call, so fn's result must not depend on it: the
 * chunks must write disjoint outputs, each a function of its inputs only.
 *
 * Pool threads are started on first use and live for the process.  They
 * spin briefly after a call, for the next one, then sleep on a futex.  One
 * loop runs at a time: a call made while another thread's loop runs, or
 * from inside fn, runs its chunks on the calling thread alone, in order.
 * Nothing here fails: if a pool thread cannot be started, fewer threads
 * share the chunks.
 */
#ifndef MTL_PAR_H
#define MTL_PAR_H

#include <stdint.h>

typedef void mtl_par_fn(void *arg, int64_t lo, int64_t hi, int slot);

/* fn over [0, n) in chunks of chunk (> 0) on up to nt threads (see above). */
void mtl_par_for(int nt, int64_t n, int64_t chunk, mtl_par_fn *fn, void *arg);

/*
 * A chunk for mtl_par_for over n rows of w elements each on nt threads:
 * about four chunks a thread, in whole 16-element vectors when rows are
 * single elements; all of n in one chunk (the loop runs on the calling
 * thread alone) when the rows hold fewer than 32768 elements in all, for
 * which waking a thread costs more than it saves.
 */
int64_t mtl_par_chunk(int64_t n, int64_t w, int nt);

#endif
