/*
 * dist_mpi.c - the MPI transport of lib/dist (dist_net.h): the group is
 * MPI_COMM_WORLD.  mk/dist.mk compiles it against MPI for
 * build/mtl-step-mpi; libmtl.a holds dist_none.c instead.
 */
#include "dist_net.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <mpi.h>

struct mtl_dist_net {
	MPI_Request *req;  /* one per range of every bucket */
	int n_req, cap_req;
};

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* MTL_ERR_IO naming the call and MPI's reason. */
static int mpi_fail(struct mtl_err *err, const char *call, int rc)
{
	char why[MPI_MAX_ERROR_STRING];
	int len = 0;

	if (MPI_Error_string(rc, why, &len) != MPI_SUCCESS)
		snprintf(why, sizeof(why), "error %d", rc);
	return mtl_err_set(err, MTL_ERR_IO, "%s failed: %s", call, why);
}

int mtl_dist_has_mpi(void)
{
	return 1;
}

int mtl_dist_net_init(struct mtl_dist *d, int *argc, char ***argv,
		      struct mtl_err *err)
{
	int provided, rc;
	MPI_Comm local;

	d->net = calloc(1, sizeof(*d->net));
	if (!d->net)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
	if (rc != MPI_SUCCESS) {
		free(d->net);
		return mtl_err_set(err, MTL_ERR_IO, "cannot start MPI (error %d)", rc);
	}
	MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
	MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
	MPI_Comm_size(MPI_COMM_WORLD, &d->size);
	rc = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0,
				 MPI_INFO_NULL, &local);
	if (rc == MPI_SUCCESS) {
		MPI_Comm_size(local, &d->local_size);
		MPI_Comm_free(&local);
	}
	return 0;
}

void mtl_dist_net_free(struct mtl_dist *d)
{
	free(d->net->req);
	free(d->net);
	MPI_Finalize();
}

int mtl_dist_net_plan(struct mtl_dist *d, int n_ranges)
{
	struct mtl_dist_net *net = d->net;

	free(net->req);
	net->n_req = 0;
	net->cap_req = n_ranges;
	net->req = calloc((size_t)n_ranges + 1, sizeof(*net->req));
	return net->req ? 0 : MTL_ERR_NOMEM;
}

int mtl_dist_net_gather(struct mtl_dist *d, const void *bytes, size_t n,
			void *all, struct mtl_err *err)
{
	int rc;

	MTL_ASSERT(n <= (size_t)INT_MAX);
	rc = MPI_Gather(bytes, (int)n, MPI_BYTE, all, (int)n, MPI_BYTE, 0,
			MPI_COMM_WORLD);
	return rc == MPI_SUCCESS ? 0 : mpi_fail(err, "MPI_Gather", rc);
}

void mtl_dist_abort(struct mtl_dist *d, int code)
{
	if (d)
		MPI_Abort(MPI_COMM_WORLD, code);
}

int mtl_dist_bcast(struct mtl_dist *d, void *bytes, size_t n,
		   struct mtl_err *err)
{
	char *p = bytes;

	/* MPI counts are ints: large buffers go in pieces */
	while (n) {
		int k = n > (size_t)INT_MAX ? INT_MAX : (int)n, rc;

		if ((rc = MPI_Bcast(p, k, MPI_BYTE, 0, MPI_COMM_WORLD)) != MPI_SUCCESS)
			return mpi_fail(err, "MPI_Bcast", rc);
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

void mtl_dist_ready(struct mtl_dist *d, int bucket)
{
	struct mtl_dist_net *net = d->net;
	double t0 = now();
	int flag;

	if (d->size == 1)
		return;
	for (; d->started <= bucket && d->started < d->n_buckets; d->started++) {
		const struct mtl_dist_bucket *bk = &d->buckets[d->started];

		for (int i = 0; i < bk->n; i++) {
			MTL_ASSERT(net->n_req < net->cap_req);
			/* an error shows again, and is reported, in the wait */
			if (MPI_Iallreduce(MPI_IN_PLACE, bk->r[i].p, (int)bk->r[i].n,
					   MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
					   &net->req[net->n_req]) == MPI_SUCCESS)
				net->n_req++;
		}
	}
	/* MPI moves non-blocking collectives on only inside MPI calls */
	if (net->n_req)
		MPI_Testall(net->n_req, net->req, &flag, MPI_STATUSES_IGNORE);
	d->comm += now() - t0;
}

int mtl_dist_wait(struct mtl_dist *d, struct mtl_err *err)
{
	struct mtl_dist_net *net = d->net;
	int expect = 0, rc;
	double t0;

	if (d->size == 1)
		return 0;
	mtl_dist_ready(d, d->n_buckets - 1);
	t0 = now();
	for (int k = 0; k < d->n_buckets; k++)
		expect += d->buckets[k].n;
	rc = MPI_Waitall(net->n_req, net->req, MPI_STATUSES_IGNORE);
	d->comm += now() - t0;
	d->started = 0;
	if (rc != MPI_SUCCESS)
		return mpi_fail(err, "MPI_Waitall", rc);
	if (net->n_req != expect)
		return mtl_err_set(err, MTL_ERR_IO,
				   "MPI_Iallreduce failed for %d of %d gradient ranges",
				   expect - net->n_req, expect);
	net->n_req = 0;
	return 0;
}

/* Sums n values of type t across the ranks, in place (blocking). */
static int sum_in_place(struct mtl_dist *d, void *v, int n, MPI_Datatype t,
			struct mtl_err *err)
{
	double t0 = now();
	int rc;

	if (d->size == 1)
		return 0;
	rc = MPI_Allreduce(MPI_IN_PLACE, v, n, t, MPI_SUM, MPI_COMM_WORLD);
	d->comm += now() - t0;
	return rc == MPI_SUCCESS ? 0 : mpi_fail(err, "MPI_Allreduce", rc);
}

int mtl_dist_sum_i64(struct mtl_dist *d, int64_t *v, int n,
		     struct mtl_err *err)
{
	return sum_in_place(d, v, n, MPI_INT64_T, err);
}

int mtl_dist_sum_f64(struct mtl_dist *d, double *v, int n,
		     struct mtl_err *err)
{
	return sum_in_place(d, v, n, MPI_DOUBLE, err);
}

int mtl_dist_same(struct mtl_dist *d, const float *v, size_t n, int *same,
		  struct mtl_err *err)
{
	uint64_t h = mtl_dist_hash(v, n, 0xcbf29ce484222325ULL);
	/* max of h and max of ~h: equal hashes iff max == ~max(~h) */
	uint64_t x[2] = { h, ~h };
	int rc;

	*same = 1;
	if (d->size == 1)
		return 0;
	rc = MPI_Allreduce(MPI_IN_PLACE, x, 2, MPI_UINT64_T, MPI_MAX,
			   MPI_COMM_WORLD);
	if (rc != MPI_SUCCESS)
		return mpi_fail(err, "MPI_Allreduce", rc);
	*same = x[0] == ~x[1];
	return 0;
}
