/*
 * bench_allreduce.c - the cost of summing a gradient block across the
 * ranks of an MPI job, alone, without the training around it (make
 * bench-dist runs it beside the training figures, which include the wait
 * for the slowest rank).  Built with MPI by mk/dist.mk only.
 *
 * Usage: mpirun -np N bench_allreduce FLOATS [REPEATS]
 *
 * Sums FLOATS floats in place with one MPI_Allreduce, REPEATS times
 * (default 10) after one warm-up, with a barrier before each so that no
 * rank's lateness is counted; rank 0 prints the median time and the
 * bandwidth seen by one rank (bytes of the block / time).
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	long n, reps = 10;
	double *t;
	float *g;
	int rank, size;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (argc < 2 || (n = atol(argv[1])) < 1 || n > 1L << 30 ||
	    (argc > 2 && (reps = atol(argv[2])) < 1)) {
		if (rank == 0)
			fputs("usage: bench_allreduce FLOATS [REPEATS]\n", stderr);
		MPI_Finalize();
		return 2;
	}
	g = malloc(sizeof(float) * (size_t)n);
	t = malloc(sizeof(double) * (size_t)reps);
	if (!g || !t)
		MPI_Abort(MPI_COMM_WORLD, 1);
	for (long i = 0; i < n; i++)
		g[i] = (float)(i % 7) * 1e-3f;
	for (long r = -1; r < reps; r++) {
		double t0;

		MPI_Barrier(MPI_COMM_WORLD);
		t0 = MPI_Wtime();
		MPI_Allreduce(MPI_IN_PLACE, g, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
		if (r >= 0)
			t[r] = MPI_Wtime() - t0;
	}
	qsort(t, (size_t)reps, sizeof(double), cmp_double);
	if (rank == 0)
		printf("allreduce of %ld floats (%.1f MB) over %d ranks: %.2f ms, %.2f GB/s\n",
		       n, 4e-6 * (double)n, size, 1e3 * t[reps / 2],
		       4e-9 * (double)n / t[reps / 2]);
	free(g);
	free(t);
	MPI_Finalize();
	return 0;
}
