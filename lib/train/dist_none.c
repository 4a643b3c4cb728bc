/*
 * dist_none.c - lib/dist without a transport (dist_net.h): the group is
 * the calling process, rank 0 of 1; sums and broadcasts leave their data
 * as it is.  This is what libmtl.a holds, so every program and test but
 * build/mtl-step-mpi (dist_mpi.c) runs it.
 */
#include "dist_net.h"

#include <string.h>

int mtl_dist_has_mpi(void)
{
	return 0;
}

int mtl_dist_net_init(struct mtl_dist *d, int *argc, char ***argv,
		      struct mtl_err *err)
{
	return 0;
}

void mtl_dist_net_free(struct mtl_dist *d)
{
}

int mtl_dist_net_plan(struct mtl_dist *d, int n_ranges)
{
	return 0;
}

int mtl_dist_net_gather(struct mtl_dist *d, const void *bytes, size_t n,
			void *all, struct mtl_err *err)
{
	memcpy(all, bytes, n);
	return 0;
}

void mtl_dist_abort(struct mtl_dist *d, int code)
{
}

int mtl_dist_bcast(struct mtl_dist *d, void *bytes, size_t n,
		   struct mtl_err *err)
{
	return 0;
}

void mtl_dist_ready(struct mtl_dist *d, int bucket)
{
}

int mtl_dist_wait(struct mtl_dist *d, struct mtl_err *err)
{
	return 0;
}

int mtl_dist_sum_i64(struct mtl_dist *d, int64_t *v, int n,
		     struct mtl_err *err)
{
	return 0;
}

int mtl_dist_sum_f64(struct mtl_dist *d, double *v, int n,
		     struct mtl_err *err)
{
	return 0;
}

int mtl_dist_same(struct mtl_dist *d, const float *v, size_t n, int *same,
		  struct mtl_err *err)
{
	*same = 1;
	return 0;
}
