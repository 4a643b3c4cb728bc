/*
 * dist.h - data-parallel training across processes (MPI): the group of
 * processes, each step's batches shared out by rows, and the summing of
 * gradients, per-task counts and step statistics.
 *
 * Example (what mtl-step does; docs/distributed.md has the whole design):
 *
 *	struct mtl_dist *d;
 *	if (mtl_dist_init(&d, &argc, &argv, &err)) die(...);
 *	... load the model, mtl_train_new(&tr, ...) on every rank ...
 *	if (mtl_train_set_dist(tr, d, NULL, &err)) die(...);  // train.h
 *	// rank 0 reads n batches into b[]; every rank then calls
 *	mtl_dist_share(d, b, &n, cap, &err);   // b[] now holds this rank's rows
 *	mtl_train_step(tr, b, n, &st, &err);   // same update on every rank
 *	mtl_dist_free(d);
 *
 * Two transports, chosen by the build (dist_net.h): dist_mpi.c runs on
 * MPI_COMM_WORLD (mk/dist.mk links it into build/mtl-step-mpi);
 * dist_none.c, what libmtl.a holds (so every other program and test),
 * makes the group the one calling process: rank 0 of 1, sums are the
 * identity, shares are whole batches.  Both define the same functions,
 * so the MPI object simply takes the place of the archive's.  dist.c,
 * the rest, is the same in both.
 *
 * The group knows nothing of the trainer: the trainer attaches to it
 * (mtl_train_set_dist in train.h) and calls the hooks below.
 *
 * Splitting: every rank gets, of every batch of the step, the rows
 * [B*r/N, B*(r+1)/N) (some ranks may get none of a small batch), padded
 * to the batch's T.  Gradients: the trainer adds each rank's rows into
 * its own gradient blocks with the *global* per-task normalisers
 * (mtl_dist_sum_i64 over the local counts before any loss), so the sum
 * over ranks is the gradient of the whole batch; the blocks are summed in
 * buckets (the heads, then each encoder layer from the top, then the
 * embeddings and the pooler), each bucket started with a non-blocking
 * allreduce as soon as the backward pass has finished it
 * (mtl_dist_ready, mtl_dist_layer_ready) and all of them waited for in
 * mtl_dist_wait before the optimiser step.  Buckets are always started
 * in that order on every rank, as MPI requires of collectives.
 *
 * Ownership: mtl_dist_init() returns a group the caller frees with
 * mtl_dist_free() (accepts NULL), which finalises MPI.  mtl_dist_attach()
 * borrows the gradient blocks and the tensor tables; they must outlive
 * the group or the next attach.
 *
 * Failure: every MPI call returns its errors (MPI_ERRORS_RETURN); a
 * failed call gives MTL_ERR_IO with the call and MPI's reason in err.  A
 * process that dies is noticed by the MPI runtime (mpirun), which ends
 * the others; mtl_dist_abort() ends them on purpose.  Nothing here prints.
 */
#ifndef MTL_DIST_H
#define MTL_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "bert.h"
#include "data.h"
#include "err.h"
#include "head.h"
#include "rng.h"

struct mtl_dist;

/* Whether this build has MPI (1) or runs one process only (0). */
int mtl_dist_has_mpi(void);

/*
 * Joins the group (MPI_Init_thread, funneled: only the calling thread
 * communicates).  argc and argv are passed to MPI as it wants them.
 * 0 and *out, or <0 (err set).
 */
int mtl_dist_init(struct mtl_dist **out, int *argc, char ***argv,
		  struct mtl_err *err);
/* Leaves the group (MPI_Finalize); accepts NULL. */
void mtl_dist_free(struct mtl_dist *d);

int mtl_dist_rank(const struct mtl_dist *d);
int mtl_dist_size(const struct mtl_dist *d);
/* Processes of the group on this machine (1 without MPI). */
int mtl_dist_local_size(const struct mtl_dist *d);

/*
 * Ends every process of the group with exit status code (MPI_Abort).
 * Without MPI it returns, and the caller exits as usual.
 */
void mtl_dist_abort(struct mtl_dist *d, int code);

/*
 * Rank 0's bytes[n] to every rank (blocking).  0, or MTL_ERR_IO.
 */
int mtl_dist_bcast(struct mtl_dist *d, void *bytes, size_t n,
		   struct mtl_err *err);

/*
 * Collective: shares out one optimiser step's batches.  On rank 0, b[0..*n)
 * are the whole batches (*n == 0: the stream has ended); on the others b
 * is zeroed storage for cap batches and *n is ignored.  On return, on
 * every rank, *n is rank 0's count and b[0..*n) hold this rank's rows of
 * each batch (epoch and index kept; labels in the order of ts, the
 * tasks every rank knows: the model's; no example ids), which the
 * caller releases with
 * mtl_batch_release().  0, or <0 (MTL_ERR_ARG when rank 0 sends more
 * than cap batches, MTL_ERR_NOMEM, MTL_ERR_IO).
 */
int mtl_dist_share(struct mtl_dist *d, struct mtl_batch *b, int *n, int cap,
		   const struct mtl_tasks *ts, struct mtl_err *err);

/*
 * Rows [r0, r1) of b into out (0 <= r0 <= r1 <= b->B), with b's T,
 * epoch, index and label tasks; b's labels are in the order of ts (one
 * label per row for a sequence task, T for a token task).  No example
 * ids.  The caller releases out.  0 or MTL_ERR_NOMEM (out released).
 */
int mtl_dist_rows(struct mtl_batch *out, const struct mtl_batch *b, int r0,
		  int r1, const struct mtl_tasks *ts, struct mtl_err *err);

/*
 * Plans the gradient buckets of an encoder m and heads hd whose gradient
 * blocks are grad[m->n_params] and hgrad[hd->n_params] (both borrowed).
 * 0 or MTL_ERR_NOMEM.
 */
int mtl_dist_attach(struct mtl_dist *d, const struct mtl_bert *m, float *grad,
		    const struct mtl_heads *hd, float *hgrad,
		    struct mtl_err *err);

/* Bucket numbers, in the order the backward pass completes them. */
#define MTL_DIST_BUCKET_HEADS 0
/* layer l of L: bucket 1 + (L - 1 - l); the embeddings and pooler: L + 1 */

/*
 * Starts the sum over ranks of every bucket up to and including bucket
 * that is not started yet, and lets MPI progress the earlier ones.
 */
void mtl_dist_ready(struct mtl_dist *d, int bucket);
/*
 * mtl_bert's gradient hook (struct mtl_bert grad_ready): arg is the
 * group; layer l is finished, or the embeddings when l < 0.
 */
void mtl_dist_layer_ready(void *arg, int l);
/*
 * Starts every bucket not started yet and waits for all of them: then the
 * gradient blocks hold the sum over ranks.  0, or MTL_ERR_IO.
 */
int mtl_dist_wait(struct mtl_dist *d, struct mtl_err *err);

/*
 * Turns rng (the same on every rank) into this rank's own stream, so that
 * the ranks draw different dropout masks: rank 0 keeps rng as it is (it
 * draws what one process would), rank r > 0 restarts it from its next
 * draw and r.  Never fails.
 */
void mtl_dist_derive_rng(const struct mtl_dist *d, struct mtl_rng *rng);

/*
 * Collective: gathers every rank's dropout stream r on rank 0, where
 * mtl_dist_rngs() then returns them: [size] generators in rank order,
 * valid until the next gather (NULL on the other ranks), so that a
 * checkpoint written by rank 0 can resume every rank bit-identically.
 * The trainer calls it as it attaches and at the end of each gradient
 * pass, after the step's last draw.  0, or MTL_ERR_IO.
 */
int mtl_dist_gather_rng(struct mtl_dist *d, const struct mtl_rng *r,
			struct mtl_err *err);
const struct mtl_rng *mtl_dist_rngs(const struct mtl_dist *d);

/* In-place sums over ranks (blocking).  0, or MTL_ERR_IO. */
int mtl_dist_sum_i64(struct mtl_dist *d, int64_t *v, int n,
		     struct mtl_err *err);
int mtl_dist_sum_f64(struct mtl_dist *d, double *v, int n,
		     struct mtl_err *err);

/*
 * Collective: whether v[0..n) has the same bits on every rank (a 64-bit
 * hash of the bytes compared across ranks: a cheap check that every rank
 * holds the same weights).  *same set to 1 or 0.  0, or MTL_ERR_IO.
 */
int mtl_dist_same(struct mtl_dist *d, const float *v, size_t n, int *same,
		  struct mtl_err *err);

/* A 64-bit hash of n floats' bits (what mtl_dist_same compares). */
uint64_t mtl_dist_hash(const float *v, size_t n, uint64_t h);

/*
 * Seconds spent inside the gradient, count and statistics reductions
 * (posting, progressing and waiting) since the last call, which resets
 * the clock: the communication a step did not hide behind its compute.
 */
double mtl_dist_comm_seconds(struct mtl_dist *d);

#endif
