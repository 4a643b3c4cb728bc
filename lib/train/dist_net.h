/*
 * dist_net.h - inside lib/dist: what the shared part (dist.c) and the
 * transport it is linked with share.  Not a public header: only
 * dist.c, dist_mpi.c and dist_none.c include it.
 *
 * The build picks the transport: libmtl.a holds dist_none.c (the group
 * is the calling process: rank 0 of 1, sums are the identity);
 * mk/dist.mk compiles dist_mpi.c against MPI for build/mtl-step-mpi and
 * links it ahead of the archive.  Both define the same functions: the
 * transport half of dist.h's API (mtl_dist_has_mpi, _abort, _bcast,
 * _ready, _wait, _sum_i64, _sum_f64, _same) and the four below.
 */
#ifndef MTL_DIST_NET_H
#define MTL_DIST_NET_H

#include <stddef.h>

#include "dist.h"

/* A contiguous range of a gradient block. */
struct mtl_dist_range {
	float *p;
	size_t n;
};

struct mtl_dist_bucket {
	struct mtl_dist_range *r;
	int n;
};

/* The transport's own state (dist_mpi.c: its requests). */
struct mtl_dist_net;

struct mtl_dist {
	int rank, size, local_size;
	struct mtl_dist_bucket *buckets;
	int n_buckets, n_layers;
	int started;       /* buckets [0, started) are under way */
	struct mtl_rng *rngs; /* [size] on rank 0: every rank's dropout stream */
	double comm;       /* seconds in reductions since the last read */
	struct mtl_dist_net *net; /* NULL without a transport */
};

/*
 * Joins the group: sets d's rank, size and local_size (1 and 0 are set
 * already) and d->net.  0, or <0 (err set; nothing to release).
 */
int mtl_dist_net_init(struct mtl_dist *d, int *argc, char ***argv,
		      struct mtl_err *err);
/* Frees d->net and leaves the group. */
void mtl_dist_net_free(struct mtl_dist *d);
/*
 * Makes room for the sums of n_ranges gradient ranges (every range of
 * every bucket, as mtl_dist_attach has just planned).  0 or
 * MTL_ERR_NOMEM.
 */
int mtl_dist_net_plan(struct mtl_dist *d, int n_ranges);
/*
 * Collective: rank 0 receives every rank's bytes[n] into all[size * n],
 * in rank order (all is not read on the other ranks).  0, or
 * MTL_ERR_IO.
 */
int mtl_dist_net_gather(struct mtl_dist *d, const void *bytes, size_t n,
			void *all, struct mtl_err *err);

#endif
