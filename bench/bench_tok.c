/*
 * bench_tok.c - tokenizer throughput on one core (make bench-tokenize):
 * encodes every line of a text file with a model's tokenizer, RUNS times,
 * and prints the median MB/s and tokens/s.  Throughput is per CPU second
 * of this thread (CLOCK_THREAD_CPUTIME_ID), which other processes on a
 * shared machine disturb far less than wall time; wall time is shown too.
 *
 * Usage: bench_tok RUNS TEXT MODEL_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tok.h"

static double now(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	struct mtl_tok *t;
	struct mtl_tok_enc e;
	struct mtl_err err;
	FILE *f;
	char *buf;
	long size;
	int runs;
	double secs[32], wall[32];
	size_t tokens = 0, lines = 0;

	if (argc != 4 || (runs = atoi(argv[1])) < 1 || runs > 32) {
		fprintf(stderr, "usage: bench_tok RUNS(1-32) TEXT MODEL_DIR\n");
		return 2;
	}
	if (mtl_tok_load(&t, argv[3], &err) < 0) {
		fprintf(stderr, "bench_tok: %s\n", err.msg);
		return 1;
	}
	f = fopen(argv[2], "rb");
	if (!f || fseek(f, 0, SEEK_END) || (size = ftell(f)) <= 0 ||
	    fseek(f, 0, SEEK_SET) || !(buf = malloc((size_t)size)) ||
	    fread(buf, 1, (size_t)size, f) != (size_t)size) {
		fprintf(stderr, "bench_tok: cannot read '%s'\n", argv[2]);
		return 1;
	}
	fclose(f);
	mtl_tok_enc_init(&e);
	for (int r = 0; r < runs; r++) {
		double t0 = now(CLOCK_THREAD_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
		char *p = buf, *end = buf + size;
		tokens = lines = 0;
		while (p < end) {
			char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
			if (mtl_tok_encode(t, p, n, 0, 0, &e, &err) < 0) {
				fprintf(stderr, "bench_tok: line %zu: %s\n", lines + 1,
					err.msg);
				return 1;
			}
			tokens += e.n;
			lines++;
			p += n + 1;
		}
		secs[r] = now(CLOCK_THREAD_CPUTIME_ID) - t0;
		wall[r] = now(CLOCK_MONOTONIC) - w0;
	}
	qsort(secs, (size_t)runs, sizeof(secs[0]), cmp);
	qsort(wall, (size_t)runs, sizeof(wall[0]), cmp);
	printf("tokenizer: %s, %.1f MB (%zu lines), %d runs\n", argv[3],
	       (double)size / 1e6, lines, runs);
	printf("median %.3f CPU s (%.3f s wall): %.1f MB/s, %.2f M tokens/s "
	       "(%.1f tokens a line)\n", secs[runs / 2], wall[runs / 2],
	       (double)size / 1e6 / secs[runs / 2],
	       (double)tokens / 1e6 / secs[runs / 2], (double)tokens / (double)lines);
	mtl_tok_enc_release(&e);
	mtl_tok_free(t);
	free(buf);
	return 0;
}
