/*
 * bench_search.c - exact top-k retrieval throughput (make bench-search):
 * mtl_embeval_search (lib/heads/embeval.h) of random L2-normalised queries in a
 * random normalised corpus, the work of mtl-search and of the retrieval
 * evaluators.
 *
 * Defaults: a 100,000 x 384 corpus (bge-small's width), 2,000 queries,
 * k 10 and 100, 1 and 2 threads.  Each run is one call in a child process,
 * so its peak RSS (ru_maxrss of the child) is its own: the corpus and the
 * queries (generated in the child), the results, and a 4 MiB block of
 * scores per thread.  Prints the CPU, its vector flags, the load average
 * before and after, then per run the wall seconds, queries/s, the corpus
 * rows scored per second (a row is 2*D flops), and the CPU seconds of the
 * search (user + system) with queries per CPU second: on a shared machine
 * the wall figures say as much about the other processes as about this
 * one.
 *
 * Usage: bench_search [-n CORPUS] [-q QUERIES] [-d DIM] [-k K]... [-t THREADS]...
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "embeval.h"
#include "ops.h"
#include "rng.h"

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* n random normal rows of d values, L2-normalised. */
static float *random_rows(long n, int d, uint64_t seed)
{
	float *x = malloc(sizeof(float) * (size_t)n * (size_t)d);
	struct mtl_rng r;

	if (!x)
		return NULL;
	mtl_rng_init(&r, seed);
	for (long i = 0; i < n * d; i++)
		x[i] = (float)mtl_rng_normal(&r);
	mtl_l2norm_forward(x, NULL, x, (int)n, d);
	return x;
}

/* The CPU's model name and its AVX flags, from /proc/cpuinfo. */
static void print_cpu(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[8192], model[256] = "?";
	int got_flags = 0;

	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "model name", 10) && model[0] == '?')
			snprintf(model, sizeof(model), "%s", strchr(line, ':') + 2);
		if (!strncmp(line, "flags", 5) && !got_flags) {
			char *tok = strtok(strchr(line, ':') + 1, " \n");

			printf("flags:");
			for (; tok; tok = strtok(NULL, " \n"))
				if (!strncmp(tok, "avx", 3) || !strcmp(tok, "fma"))
					printf(" %s", tok);
			printf("\n");
			got_flags = 1;
		}
	}
	if (f)
		fclose(f);
	model[strcspn(model, "\n")] = 0;
	printf("cpu: %s, %ld online\n", model, sysconf(_SC_NPROCESSORS_ONLN));
}

static void print_load(const char *when)
{
	double l[3];

	if (getloadavg(l, 3) == 3)
		printf("load %s: %.2f %.2f %.2f\n", when, l[0], l[1], l[2]);
}

/* One run in this process: prints a result line. */
static int run(long n, long nq, int d, int k, int nt)
{
	float *c = random_rows(n, d, 1), *q = random_rows(nq, d, 2);
	int32_t *idx = malloc(sizeof(int32_t) * (size_t)nq * (size_t)k);
	float *sc = malloc(sizeof(float) * (size_t)nq * (size_t)k);
	struct rusage ru;
	double t, cpu;

	if (!c || !q || !idx || !sc) {
		fprintf(stderr, "bench_search: out of memory\n");
		return 1;
	}
	getrusage(RUSAGE_SELF, &ru);
	cpu = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
	      (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
	t = now();
	if (mtl_embeval_search(idx, sc, q, nq, c, n, d, k, -1, nt, NULL))
		return 1;
	t = now() - t;
	getrusage(RUSAGE_SELF, &ru);
	cpu = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
	      (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec - cpu;
	printf("%6ld x %d  %5ld queries  k %3d  %d thread%s  %6.2f s  %7.1f queries/s  %6.1f M rows/s  %5.1f GFLOP/s  cpu %6.2f s (%6.1f queries/cpu-s)  peak RSS %5.1f MiB\n",
	       n, d, nq, k, nt, nt == 1 ? " " : "s", t, (double)nq / t,
	       (double)nq * (double)n / t / 1e6, 2.0 * (double)nq * (double)n * d / t / 1e9,
	       cpu, (double)nq / cpu, ru.ru_maxrss / 1024.0);
	fflush(stdout);
	free(c);
	free(q);
	free(idx);
	free(sc);
	return 0;
}

int main(int argc, char **argv)
{
	long n = 100000, nq = 2000;
	int d = 384, ks[8], nk = 0, ts[8], nts = 0, c, bad = 0;

	while ((c = getopt(argc, argv, "n:q:d:k:t:")) != -1) {
		switch (c) {
		case 'n': n = atol(optarg); break;
		case 'q': nq = atol(optarg); break;
		case 'd': d = atoi(optarg); break;
		case 'k': if (nk < 8) ks[nk++] = atoi(optarg); break;
		case 't': if (nts < 8) ts[nts++] = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: bench_search [-n CORPUS] [-q QUERIES] [-d DIM] [-k K]... [-t THREADS]...\n");
			return 2;
		}
	}
	if (!nk) {
		ks[nk++] = 10;
		ks[nk++] = 100;
	}
	if (!nts) {
		ts[nts++] = 1;
		ts[nts++] = 2;
	}
	print_cpu();
	print_load("before");
	for (int a = 0; a < nk; a++)
		for (int b = 0; b < nts; b++) {
			pid_t p;
			int st;

			fflush(stdout); /* or the child writes the buffer again */
			p = fork();
			if (p == 0)
				_exit(run(n, nq, d, ks[a], ts[b]));
			if (p < 0 || waitpid(p, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
				bad = 1;
		}
	print_load("after");
	return bad;
}
