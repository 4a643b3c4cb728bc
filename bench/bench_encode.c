/*
 * bench_encode.c - encoder throughput against the sgemm kernel it runs on
 * (make bench-encode).
 *
 * For bge-small, bge-base and bge-large shapes with random weights,
 * computes sentence embeddings as bge does (mtl_bert_embed: CLS pooling,
 * L2-normalised; what mtl-score --embed runs) at batch 32x32 and 8x128
 * tokens and reports the median time, sentences/s and achieved GFLOP/s,
 * counting 2*m*n*k for every matrix product of the whole forward
 * (attention q k^T and p v included; element-wise work counts nothing).
 * With CLS pooling the last layer runs for the CLS rows only, so the
 * count is the work a forward of every row would do: GFLOP/s "as if".  The reference is the model's sgemm kernel
 * (lib/nn/gemm.h: ours or BLIS, as MTL_GEMM and the CPU choose) measured in the same
 * run with the same thread count on large shapes: once up front (the
 * peak, best of three shapes), and again interleaved with the encoder
 * runs (a 2048^3 product before each forward), so that on a shared
 * machine both sides of the ratio see the same load.  Each encoder shape
 * is printed as a fraction of both.
 *
 * Each forward is timed twice per run, interleaved: with BLIS threading
 * each projection (row "blis") and with each thread running a
 * single-threaded product on a slice of the output columns (the model's
 * default, mtl_bert_set_gemm_split, row "split"), and in that mode with
 * the weights packed once beforehand and batches in parts side by side
 * (mtl_bert_set_packed and mtl_bert_set_parts, what mtl-score does; row
 * "packed": packing is not timed, a model does it once).
 *
 * With -l, every mode is also timed with a busy loop beside it (rows
 * "blis+busy", "split+busy", "packed+busy"): another process (this
 * program run again, sharing no pages: busy.h) that spins on the last
 * core for the duration of that forward, as another program taking a
 * core would.  Quiet and busy timings alternate within every run.
 *
 * With -8 PATH (auto, vnni, avx2 or c; repeatable), each forward is also
 * timed with int8 linear maps on that kernel path (mtl_bert_set_int8,
 * rows "int8-PATH"), interleaved with the fp32 modes in every run; a
 * path this CPU lacks is an error.
 *
 * With -A, only one layer's attention core is timed (qkv to context,
 * mtl_attention_forward_ex on random q, k, v, no padding), with each
 * kernel this CPU has but the plain C one (lib/nn/ops.h: unfused, avx2,
 * avx512), interleaved round by round; GFLOP/s counts q k^T and p v.
 *
 * Usage: bench_encode [-a] [-A] [-b] [-c] [-d] [-g] [-l] [-t THREADS] [-r RUNS] [-s BxT]
 *                     [-m small|base|large]... [-8 PATH]...
 *   -a  print BLIS's sub-configuration for this CPU (e.g. skx, zen3;
 *       "generic" means reference kernels: BLIS did not know the CPU)
 *   -b  time the "blis" mode only
 *   -d  time the default mode only: mtl-score's (packed weights, or
 *       split when the products run on BLIS)
 *   -g  print the sgemm kernel the model runs (lib/nn/gemm.h: avx512, avx2
 *       or blis; MTL_GEMM chooses)
 *   -c  time by process CPU time instead of wall time (meaningful with
 *       -t 1 on a shared machine; with more threads it counts spinning)
 *   -l  also time each mode beside a busy loop on one core
 *   -s  one batch shape (e.g. 32x32) instead of 32x32 and 8x128
 */
#define _GNU_SOURCE /* sched_setaffinity, in busy.h */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <blis.h>

#include "bench.h"
#include "busy.h"
#include "bert.h"
#include "gemm.h"
#include "ops.h"
#include "par.h"

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct gemm {
	int m, n, k;
	float *a, *b, *c;
};

static void gemm_init(struct gemm *g, int m, int n, int k)
{
	g->m = m, g->n = n, g->k = k;
	g->a = malloc(sizeof(float) * (size_t)m * k);
	g->b = malloc(sizeof(float) * (size_t)n * k);
	g->c = malloc(sizeof(float) * (size_t)m * n);
	for (size_t i = 0; i < (size_t)m * k; i++)
		g->a[i] = (float)(i % 7) * 0.1f;
	for (size_t i = 0; i < (size_t)n * k; i++)
		g->b[i] = (float)(i % 5) * 0.1f;
}

static void gemm_release(struct gemm *g)
{
	free(g->a), free(g->b), free(g->c);
}

/* Columns lo..hi-1 of a struct gemm's product (par.h). */
static void gemm_cols(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct gemm *g = arg;

	(void)slot;
	mtl_gemm(0, 1, g->m, (int)(hi - lo), g->k, 1.0f, g->a, g->k,
		 g->b + lo * g->k, g->k, 0.0f, g->c + lo, g->n);
}

/*
 * Seconds for one C[m,n] = A[m,k] B[n,k]^T (the encoder's layout) with
 * the model's sgemm kernel (lib/nn/gemm.h): BLIS threading the product, or
 * ours on column slices, one per thread, on the encoder's own thread pool
 * (par.h: OpenMP's threads would go on spinning into the forward timed
 * after it).
 */
static double gemm_run(struct gemm *g, int threads)
{
	float one = 1, zero = 0;
	rntm_t rntm;
	double t0;

	if (mtl_gemm_default() != MTL_GEMM_BLIS) {
		t0 = bench_now();
		mtl_par_for(threads, g->n, ((g->n + threads - 1) / threads + 31) & ~31,
			    gemm_cols, g);
		return bench_now() - t0;
	}
	bli_rntm_init(&rntm);
	bli_rntm_set_num_threads(threads, &rntm);
	t0 = bench_now();
	bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, g->m, g->n, g->k, &one,
		     g->a, g->k, 1, g->b, g->k, 1, &zero, g->c, g->n, 1, NULL,
		     &rntm);
	return bench_now() - t0;
}

/* Median GFLOP/s of one shape over runs (after a warm-up). */
static double sgemm_gflops(int m, int n, int k, int threads, int runs)
{
	struct gemm g;
	double t[64];

	gemm_init(&g, m, n, k);
	gemm_run(&g, threads);
	for (int r = 0; r < runs; r++)
		t[r] = gemm_run(&g, threads);
	gemm_release(&g);
	return 2.0 * m * n * k / median(t, runs) * 1e-9;
}

static void print_load(const char *when)
{
	FILE *f = fopen("/proc/loadavg", "r");
	char buf[128];

	if (f && fgets(buf, sizeof(buf), f))
		printf("# load average %s: %s", when, buf);
	if (f)
		fclose(f);
}

struct model {
	const char *name;
	int hidden, layers, heads, inter;
};

static const struct model models[] = {
	{ "small", 384, 12, 12, 1536 },
	{ "base", 768, 12, 12, 3072 },
	{ "large", 1024, 24, 16, 4096 },
};

static int shapes[2][2] = { { 32, 32 }, { 8, 128 } };

/*
 * -A: one layer's attention of model md at BxT on threads threads, each
 * kernel but "c", median of runs (after a warm-up), interleaved.
 */
static void attention_only(const struct model *md, int B, int T, int threads,
			   int runs)
{
	int H = md->hidden, NH = md->heads;
	size_t per = mtl_attention_scratch(T, H, NH);
	float *qkv = malloc(sizeof(float) * B * T * 3 * H);
	float *ctx = malloc(sizeof(float) * B * T * H);
	float *mask = calloc((size_t)B * T, sizeof(float));
	float *s = malloc(sizeof(float) * per * threads);
	double t[4][64], flops = 4.0 * B * T * (double)T * H;
	uint64_t x = 1;

	for (int64_t i = 0; i < (int64_t)B * T * 3 * H; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		qkv[i] = (float)(x >> 40) * 0x1.0p-24f - 0.5f;
	}
	for (int r = -1; r < runs; r++)
		for (int k = MTL_ATTN_UNFUSED; k <= MTL_ATTN_AVX512; k++) {
			double t0;

			if (k == MTL_ATTN_C || !mtl_attn_supported(k))
				continue;
			t0 = bench_now();
			mtl_attention_forward_ex(k, ctx, s, qkv, mask, B, T, H, NH,
						 threads);
			if (r >= 0)
				t[k][r] = bench_now() - t0;
		}
	for (int k = MTL_ATTN_UNFUSED; k <= MTL_ATTN_AVX512; k++) {
		double med;

		if (k == MTL_ATTN_C || !mtl_attn_supported(k))
			continue;
		med = median(t[k], runs);
		printf("%-6s %4dx%-4d attn-%-7s %10.2f ms/layer %8.1f GFLOP/s\n",
		       md->name, B, T, mtl_attn_name(k), med * 1e3,
		       flops / med * 1e-9);
	}
	fflush(stdout);
	free(qkv), free(ctx), free(mask), free(s);
}

/* One row of the table: a mode's median time med (s) for a BxT batch of
 * flops, against the sgemm peak and the sgemm beside it (GFLOP/s). */
static void print_row(const char *model, int B, int T, const char *mode,
		      double med, double flops, double peak, double medg)
{
	double g = flops / med * 1e-9;

	printf("%-6s %4dx%-4d %-10s %10.1f %12.1f %10.1f %8.1f%% %12.1f %8.1f%%\n",
	       model, B, T, mode, med * 1e3, B / med, g, 100 * g / peak, medg,
	       100 * g / medg);
}

/* 1 if mode (bits: 1 split, 2 busy, 4 packed) is not timed: split 0 is
 * -b (blis only), 5 times the packed split alone (-d). */
static int skip_mode(int mode, int split, int busy, int only_default)
{
	/* packed weights only with the split */
	if (((mode & 4) && !(mode & 1)) || ((mode & 2) && !busy))
		return 1;
	if (only_default)
		return (mode & 5) != split;
	return (mode & 1) > split;
}

int main(int argc, char **argv)
{
	int threads = 2, runs = 5, want[3] = { 0, 0, 0 }, any = 0, c, split = 1;
	int busy = 0, n_shapes = 2, only_default = 0, attn = 0;
	/* mode bits: 1 split, 2 busy loop, 4 packed weights (split only) */
	static const char *const mode_name[] = { "blis", "split", "blis+busy", "split+busy",
						 NULL, "packed", NULL, "packed+busy" };
	double peak = 0;
	struct mtl_err err;
	struct gemm ref;
	enum mtl_q8_path q8[4];
	int n_q8 = 0;
	char q8_name[4][16];

	busy_main(argc, argv);

	while ((c = getopt(argc, argv, "aAbcdglt:r:s:m:8:h")) != -1) {
		switch (c) {
		case '8': {
			int k = 0;

			while (k < 4 && strcmp(optarg, mtl_q8_path_name((enum mtl_q8_path)k)))
				k++;
			if (k == 4 || n_q8 == 4) {
				fprintf(stderr, "bench_encode: -8 takes auto, vnni, avx2 or c (4 at most), not '%s'\n", optarg);
				return 2;
			}
			q8[n_q8] = k == MTL_Q8_AUTO ? mtl_q8_path_best() : (enum mtl_q8_path)k;
			snprintf(q8_name[n_q8], sizeof(q8_name[n_q8]), "int8-%s",
				 mtl_q8_path_name(q8[n_q8]));
			n_q8++;
			break;
		}
		case 'A':
			attn = 1;
			break;
		case 'b':
			split = 0;
			break;
		case 'c':
			bench_clock = CLOCK_PROCESS_CPUTIME_ID;
			break;
		case 'a':
			printf("%s\n", mtl_gemm_blis_arch());
			return 0;
		case 'g':
			printf("%s\n", mtl_gemm_name(mtl_gemm_default()));
			return 0;
		case 'd':
			only_default = 1;
			break;
		case 'l':
			busy = 1;
			break;
		case 's':
			if (sscanf(optarg, "%dx%d", &shapes[0][0], &shapes[0][1]) != 2 ||
			    shapes[0][0] < 1 || shapes[0][1] < 1 || shapes[0][1] > 512) {
				fprintf(stderr, "bench_encode: -s takes BxT (T at most 512), not '%s'\n", optarg);
				return 2;
			}
			n_shapes = 1;
			break;
		case 't':
			threads = atoi(optarg);
			break;
		case 'r':
			runs = atoi(optarg);
			break;
		case 'm':
			for (int i = 0; i < 3; i++)
				if (!strcmp(optarg, models[i].name))
					want[i] = any = 1;
			break;
		default:
			fprintf(c == 'h' ? stdout : stderr, "usage: bench_encode [-a] [-A] [-b] [-c] [-d] [-g] [-l] [-t THREADS] [-r RUNS] [-s BxT] [-m small|base|large]... [-8 PATH]...\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (runs < 1 || runs > 64 || threads < 1) {
		fprintf(stderr, "bench_encode: runs must be 1..64, threads >= 1\n");
		return 2;
	}
	if (!any)
		want[0] = want[1] = want[2] = 1;
	if (attn) {
		printf("# attention alone, %d threads, median of %d runs, %s time\n",
		       threads, runs, bench_clock == CLOCK_MONOTONIC ? "wall" : "process CPU");
		print_load("at start");
		for (int mi = 0; mi < 3; mi++)
			for (int si = 0; want[mi] && si < n_shapes; si++)
				attention_only(&models[mi], shapes[si][0],
					       shapes[si][1], threads, runs);
		print_load("at end");
		return 0;
	}

	printf("# %d threads, median of %d runs (after one warm-up), %s time\n",
	       threads, runs, bench_clock == CLOCK_MONOTONIC ? "wall" : "process CPU");
	printf("# BLIS %s, sub-configuration %s; sgemm kernel %s (MTL_GEMM)\n",
	       bli_info_get_version_str(), mtl_gemm_blis_arch(),
	       mtl_gemm_name(mtl_gemm_default()));
	print_load("at start");
	{
		static const int gs[][3] = {
			{ 1024, 4096, 1024 }, { 1024, 1024, 4096 }, { 2048, 2048, 2048 },
		};

		for (size_t i = 0; i < sizeof(gs) / sizeof(gs[0]); i++) {
			double g = sgemm_gflops(gs[i][0], gs[i][1], gs[i][2], threads, runs);

			printf("sgemm %5d x %5d x %5d      %8.1f GFLOP/s\n", gs[i][0],
			       gs[i][1], gs[i][2], g);
			if (g > peak)
				peak = g;
		}
	}
	printf("sgemm peak (best of the above) %8.1f GFLOP/s\n\n", peak);
	printf("%-6s %9s %-10s %10s %12s %10s %9s %12s %9s\n", "model", "batch",
	       "gemm", "ms/batch", "sentences/s", "GFLOP/s", "of peak",
	       "sgemm beside", "of it");
	gemm_init(&ref, 2048, 2048, 2048);

	for (int mi = 0; mi < 3; mi++) {
		const struct model *md = &models[mi];
		struct mtl_bert_config cfg = {
			.vocab = 30522, .hidden = md->hidden, .layers = md->layers,
			.heads = md->heads, .intermediate = md->inter,
			.max_pos = 512, .type_vocab = 2, .ln_eps = 1e-12f,
			.pad_id = 0,
		};
		struct mtl_bert *m;

		if (!want[mi])
			continue;
		if (mtl_bert_new(&m, &cfg, &err)) {
			fprintf(stderr, "bench_encode: %s\n", err.msg);
			return 1;
		}
		mtl_bert_init_random(m, 1234);
		/* mtl-score's mode: split with packed weights, which BLIS has not */
		if (only_default)
			split = mtl_gemm_default() == MTL_GEMM_BLIS ? 1 : 5;
		mtl_bert_set_threads(m, threads);
		for (int si = 0; si < n_shapes; si++) {
			int B = shapes[si][0], T = shapes[si][1];
			int32_t *ids = malloc(sizeof(int32_t) * B * T);
			int32_t *mask = malloc(sizeof(int32_t) * B * T);
			float *emb = malloc(sizeof(float) * B * cfg.hidden);
			struct mtl_bert_pooling pool = { .mode = MTL_POOL_CLS, .normalize = 1 };
			double t[8][64], t8[4][64], tg[64], medg;
			int packed = 0;
			double flops = mtl_bert_forward_flops(&cfg, B, T);

			for (int i = 0; i < B * T; i++) {
				ids[i] = 1000 + (i * 7919) % 29000;
				mask[i] = 1;
			}
			for (int r = -1; r < runs; r++) {
				double tr = gemm_run(&ref, threads);

				if (r >= 0)
					tg[r] = tr;
				for (int mode = 0; mode < 8; mode++) {
					pid_t pid = 0;
					double t0;
					int rc;

					if (skip_mode(mode, split, busy, only_default))
						continue;
					/* packing is not timed: a model does it once */
					if (packed != mode >> 2 &&
					    (rc = mtl_bert_set_packed(m, packed = mode >> 2, &err)))
						goto fail;
					mtl_bert_set_gemm_split(m, mode & 1);
					/* mtl-score's mode runs batches in parts */
					mtl_bert_set_parts(m, mode >> 2);
					if (mode & 2)
						pid = busy_start();
					t0 = bench_now();
					rc = mtl_bert_embed(m, &pool, emb, ids, NULL, mask, B, T, &err);
					if (r >= 0)
						t[mode][r] = bench_now() - t0;
					busy_stop(pid);
					if (rc)
						goto fail;
				}
				mtl_bert_set_packed(m, packed = 0, NULL);
				/* int8: quantising is not timed (a model does it once) */
				for (int k = 0; k < n_q8; k++) {
					double t0;
					int rc;

					mtl_bert_set_parts(m, 1);
					if ((rc = mtl_bert_set_int8(m, 1, q8[k], &err)) == 0) {
						t0 = bench_now();
						rc = mtl_bert_embed(m, &pool, emb, ids, NULL, mask, B, T, &err);
						if (r >= 0)
							t8[k][r] = bench_now() - t0;
					}
					mtl_bert_set_int8(m, 0, MTL_Q8_AUTO, NULL);
					if (rc) {
						fprintf(stderr, "bench_encode: %s\n", err.msg);
						return 1;
					}
				}
			}
			medg = 2.0 * 2048 * 2048 * 2048 / median(tg, runs) * 1e-9;
			for (int mode = 0; mode < 8; mode++) {
				double med;

				if (skip_mode(mode, split, busy, only_default))
					continue;
				med = median(t[mode], runs);
				print_row(md->name, B, T, mode_name[mode], med, flops,
					  peak, medg);
			}
			for (int k = 0; k < n_q8; k++)
				print_row(md->name, B, T, q8_name[k], median(t8[k], runs),
					  flops, peak, medg);
			fflush(stdout);
			free(ids);
			free(mask);
			free(emb);
		}
		mtl_bert_free(m);
	}
	gemm_release(&ref);
	print_load("at end");
	return 0;
fail:
	fprintf(stderr, "bench_encode: %s\n", err.msg);
	return 1;
}
