/*
 * bench.h - what the benchmarks share: their clock (wall time, or with -c
 * the process CPU time: with one thread that is the work itself,
 * unaffected by other processes taking the cores) and a comparison for
 * their medians.
 */
#ifndef MTL_BENCH_H
#define MTL_BENCH_H

#include <time.h>

/* CLOCK_MONOTONIC, or CLOCK_PROCESS_CPUTIME_ID under -c */
static clockid_t bench_clock = CLOCK_MONOTONIC;

static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(bench_clock, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* qsort order of doubles */
static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#endif
