/*
 * bench_gemm.c - mtl's sgemm kernels against BLIS sgemm on the encoder's
 * shapes, one thread (make bench-gemm).
 *
 * For every product a bge-small or bge-base forward and backward makes
 * (the projections at 1024 tokens, their two backward products, and one
 * attention head at T = 32 and T = 128 with the strides of the qkv
 * block), times each kernel this CPU supports (lib/nn/gemm.h: blis, avx2,
 * avx512), interleaved round by round, and prints the median GFLOP/s
 * (2*m*n*k per product) and each kernel's ratio to BLIS.  Timed by the
 * thread's CPU time, so that other processes on a shared machine cost
 * little beyond cache contention (-w: wall time).
 *
 * With -e, times instead the four forward projections with the
 * element-wise work the encoder does after them (qkv: bias; attention
 * output and ffn2: bias + residual; ffn1: bias + GELU), on each of our
 * kernels: the product followed by passes over the whole of C (a bias
 * loop, mtl_residual_forward, mtl_gelu_forward: the encoder before the
 * epilogue) against mtl_gemm_fused_ex (the epilogue on each tile),
 * interleaved, and prints the milliseconds of each.
 *
 * Before the table it prints the FMA peak of each vector width the CPU
 * has: a loop of 12 independent fused multiply-adds on registers, the
 * most a kernel can reach on one core (its GFLOP/s are the table's
 * ceiling).
 *
 * Usage: bench_gemm [-e] [-w] [-r ROUNDS] [-m small|base]...
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <blis.h>
#include <immintrin.h>

#include "bench.h"
#include "gemm.h"
#include "ops.h"

struct shape {
	const char *what;
	int ta, tb, m, n, k;
	int64_t lda, ldb, ldc; /* 0: dense */
	float alpha, beta;
};

/* The products of one layer at B*T = 1024 tokens, hidden H, FFN I, and of
 * one attention head (D = 64 for base, 32 for small) at T = 32 and 128. */
static int shapes(struct shape *s, int H, int I, int D)
{
	int n = 0, BT = 1024;

	s[n++] = (struct shape){ "qkv fwd  inp@w^T", 0, 1, BT, 3 * H, H, 0, 0, 0, 1, 0 };
	s[n++] = (struct shape){ "out fwd  inp@w^T", 0, 1, BT, H, H, 0, 0, 0, 1, 0 };
	s[n++] = (struct shape){ "ffn1 fwd inp@w^T", 0, 1, BT, I, H, 0, 0, 0, 1, 0 };
	s[n++] = (struct shape){ "ffn2 fwd inp@w^T", 0, 1, BT, H, I, 0, 0, 0, 1, 0 };
	s[n++] = (struct shape){ "ffn1 dinp += d@w", 0, 0, BT, H, I, 0, 0, 0, 1, 1 };
	s[n++] = (struct shape){ "ffn1 dw += d^T@x", 1, 0, I, H, BT, 0, 0, 0, 1, 1 };
	for (int T = 32; T <= 128; T *= 4) {
		int64_t ld = 3 * H;

		s[n] = (struct shape){ "attn q@k^T", 0, 1, T, T, D, ld, ld, T, 0.125f, 0 };
		s[n + 1] = (struct shape){ "attn p@v", 0, 0, T, D, T, T, ld, H, 1, 0 };
		n += 2;
	}
	return n;
}

/*
 * GFLOP/s of n rounds of 12 independent FMA chains on vectors of type T,
 * the best of 5 (chains of 12 hide the FMA latency at 2 a cycle; the
 * empty asm keeps them in registers and the loop from being folded).
 */
#define FMA_LOOP(T, FMA, SET, lanes)                                          \
	double best = 0;                                                      \
	for (int r = 0; r < 5; r++) {                                         \
		T a0 = SET(0), a1 = SET(1), a2 = SET(2), a3 = SET(3),         \
		  a4 = SET(4), a5 = SET(5), a6 = SET(6), a7 = SET(7),         \
		  a8 = SET(8), a9 = SET(9), a10 = SET(10), a11 = SET(11),     \
		  x = SET(0.999999f), y = SET(1e-7f);                         \
		double t = bench_now();                                       \
		for (long i = 0; i < n; i++) {                                \
			a0 = FMA(a0, x, y), a1 = FMA(a1, x, y);               \
			a2 = FMA(a2, x, y), a3 = FMA(a3, x, y);               \
			a4 = FMA(a4, x, y), a5 = FMA(a5, x, y);               \
			a6 = FMA(a6, x, y), a7 = FMA(a7, x, y);               \
			a8 = FMA(a8, x, y), a9 = FMA(a9, x, y);               \
			a10 = FMA(a10, x, y), a11 = FMA(a11, x, y);           \
			__asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2),   \
					 "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), \
					 "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), \
					 "+v"(a11));                          \
		}                                                             \
		t = bench_now() - t;                                          \
		if (24.0 * lanes * n / t * 1e-9 > best)                       \
			best = 24.0 * lanes * n / t * 1e-9;                   \
	}                                                                     \
	return best

__attribute__((target("avx2,fma"))) static double fma_avx2(long n)
{
	FMA_LOOP(__m256, _mm256_fmadd_ps, _mm256_set1_ps, 8);
}

__attribute__((target("avx512f"))) static double fma_avx512(long n)
{
	FMA_LOOP(__m512, _mm512_fmadd_ps, _mm512_set1_ps, 16);
}

static float *rnd(int64_t n)
{
	float *x = malloc(sizeof(float) * (size_t)n);

	for (int64_t i = 0; i < n; i++)
		x[i] = (float)((i * 7919) % 2003) / 2003.0f - 0.5f;
	return x;
}

/* Seconds per product: batches of products, doubled until one batch
 * takes 0.05 s (reading the clock costs as much as a small product). */
static double time_one(enum mtl_gemm_kernel k, const struct shape *s,
		       const float *a, int64_t lda, const float *b,
		       int64_t ldb, float *c, int64_t ldc)
{
	double t;

	for (int reps = 1;; reps *= 2) {
		double t0 = bench_now();

		for (int r = 0; r < reps; r++)
			mtl_gemm_ex(k, s->ta, s->tb, s->m, s->n, s->k, s->alpha,
				    a, lda, b, ldb, s->beta, c, ldc);
		if ((t = bench_now() - t0) >= 0.05)
			return t / reps;
	}
}

/* Seconds per product with the epilogue e on C[m,n]: fused (the
 * epilogue on each tile) or as passes over the whole of C after it. */
static double time_epi(enum mtl_gemm_kernel k, const struct shape *s,
		       const float *a, const float *b, float *c,
		       const struct mtl_gemm_epi *e, int fused)
{
	int64_t n = (int64_t)s->m * s->n;
	struct mtl_gemm_epi bias = { e->bias, NULL, 0, 0 };
	double t;

	for (int reps = 1;; reps *= 2) {
		double t0 = bench_now();

		for (int r = 0; r < reps; r++) {
			if (fused) {
				mtl_gemm_fused_ex(k, 0, 1, s->m, s->n, s->k, 1.0f, a,
						  s->k, b, s->k, 0.0f, c, s->n, e);
				continue;
			}
			mtl_gemm_ex(k, 0, 1, s->m, s->n, s->k, 1.0f, a, s->k, b,
				    s->k, 0.0f, c, s->n);
			/* the bias loop mtl_linear_forward ran (omp simd) */
			mtl_gemm_epi_apply(&bias, s->m, s->n, c, s->n);
			if (e->res)
				mtl_residual_forward(c, c, e->res, n, 1);
			if (e->gelu)
				mtl_gelu_forward(c, c, n, 1);
		}
		if ((t = bench_now() - t0) >= 0.05)
			return t / reps;
	}
}

/* -e: the forward projections with their epilogues, passes against fused. */
static void epilogues(const char *model, int rounds)
{
	int base = !strcmp(model, "base");
	int H = base ? 768 : 384, I = base ? 3072 : 1536;
	struct shape s[16];
	static const char *what[] = { "bias", "bias+res", "bias+GELU", "bias+res" };

	shapes(s, H, I, 32);
	for (int si = 0; si < 4; si++) {
		float *a = rnd((int64_t)s[si].m * s[si].k), *b = rnd((int64_t)s[si].n * s[si].k);
		float *c = rnd((int64_t)s[si].m * s[si].n), *bias = rnd(s[si].n);
		float *res = rnd((int64_t)s[si].m * s[si].n);
		struct mtl_gemm_epi e = { bias, si == 1 || si == 3 ? res : NULL,
					  s[si].n, si == 2 };

		printf("%-6s %-17s %-9s", model, s[si].what, what[si]);
		for (int k = MTL_GEMM_AVX2; k <= MTL_GEMM_AVX512; k++) {
			double t[2][64];

			if (!mtl_gemm_supported(k))
				continue;
			for (int r = 0; r < rounds; r++)
				for (int o = 0; o < 2; o++) {
					/* which goes first alternates */
					int f = (r + o) % 2;

					t[f][r] = time_epi(k, &s[si], a, b, c, &e, f);
				}
			for (int f = 0; f < 2; f++)
				qsort(t[f], (size_t)rounds, sizeof(double), bench_cmp_double);
			printf(" %8.2f %8.2f", t[0][rounds / 2] * 1e3, t[1][rounds / 2] * 1e3);
		}
		printf("\n");
		fflush(stdout);
		free(a), free(b), free(c), free(bias), free(res);
	}
}

int main(int argc, char **argv)
{
	const char *models[4];
	int nmodels = 0, rounds = 5, epi = 0, opt;

	bench_clock = CLOCK_THREAD_CPUTIME_ID; /* one thread: its own CPU time; -w: wall */
	while ((opt = getopt(argc, argv, "ewr:m:")) != -1) {
		if (opt == 'e')
			epi = 1;
		else if (opt == 'w')
			bench_clock = CLOCK_MONOTONIC;
		else if (opt == 'r')
			rounds = atoi(optarg);
		else if (opt == 'm' && nmodels < 4)
			models[nmodels++] = optarg;
		else {
			fprintf(stderr, "usage: bench_gemm [-e] [-w] [-r ROUNDS] [-m small|base]...\n");
			return 2;
		}
	}
	if (rounds < 1 || rounds > 64)
		rounds = 5;
	if (!nmodels)
		models[nmodels++] = "small", models[nmodels++] = "base";
	printf("# BLIS %s, sub-configuration %s; mtl_gemm default: %s\n",
	       bli_info_get_version_str(), mtl_gemm_blis_arch(),
	       mtl_gemm_name(mtl_gemm_default()));
	printf("# one thread, %s time, median of %d rounds, %s\n",
	       bench_clock == CLOCK_MONOTONIC ? "wall" : "CPU", rounds,
	       epi ? "ms per product with its epilogue" : "GFLOP/s");
	printf("# FMA peak (12 independent chains):");
	if (mtl_gemm_supported(MTL_GEMM_AVX2))
		printf(" avx2 %.1f", fma_avx2(20000000));
	if (mtl_gemm_supported(MTL_GEMM_AVX512))
		printf(" avx512 %.1f", fma_avx512(20000000));
	printf(" GFLOP/s\n");
	if (epi) {
		printf("%-6s %-17s %-9s", "model", "product", "epilogue");
		for (int k = MTL_GEMM_AVX2; k <= MTL_GEMM_AVX512; k++)
			if (mtl_gemm_supported(k))
				printf(" %8s %8s", mtl_gemm_name(k), "fused");
		printf("\n");
		for (int mi = 0; mi < nmodels; mi++)
			epilogues(models[mi], rounds);
		return 0;
	}
	printf("%-6s %-17s %2s %5s %5s %5s", "model", "product", "t", "m", "n", "k");
	for (int k = MTL_GEMM_BLIS; k <= MTL_GEMM_AVX512; k++)
		if (mtl_gemm_supported(k))
			printf(" %8s", mtl_gemm_name(k));
	for (int k = MTL_GEMM_AVX2; k <= MTL_GEMM_AVX512; k++)
		if (mtl_gemm_supported(k))
			printf(" %6s/b", mtl_gemm_name(k));
	printf("\n");
	for (int mi = 0; mi < nmodels; mi++) {
		int base = !strcmp(models[mi], "base");
		struct shape s[16];
		int ns = shapes(s, base ? 768 : 384, base ? 3072 : 1536, base ? 64 : 32);

		for (int si = 0; si < ns; si++) {
			/* operands as stored: rows x cols of A, B, C */
			int ar = s[si].ta ? s[si].k : s[si].m, ac = s[si].ta ? s[si].m : s[si].k;
			int br = s[si].tb ? s[si].n : s[si].k, bc = s[si].tb ? s[si].k : s[si].n;
			int64_t lda = s[si].lda ? s[si].lda : ac, ldb = s[si].ldb ? s[si].ldb : bc;
			int64_t ldc = s[si].ldc ? s[si].ldc : s[si].n;
			float *a = rnd(ar * lda), *b = rnd(br * ldb), *c = rnd(s[si].m * ldc);
			double t[3][64], flops = 2.0 * s[si].m * s[si].n * s[si].k;
			double g[3] = { 0 };

			for (int r = 0; r < rounds; r++)
				for (int k = MTL_GEMM_BLIS; k <= MTL_GEMM_AVX512; k++)
					if (mtl_gemm_supported(k))
						t[k][r] = time_one(k, &s[si], a, lda, b, ldb, c, ldc);
			printf("%-6s %-17s %c%c %5d %5d %5d", models[mi], s[si].what,
			       s[si].ta ? 'T' : 'N', s[si].tb ? 'T' : 'N', s[si].m,
			       s[si].n, s[si].k);
			for (int k = MTL_GEMM_BLIS; k <= MTL_GEMM_AVX512; k++) {
				if (!mtl_gemm_supported(k))
					continue;
				qsort(t[k], (size_t)rounds, sizeof(double), bench_cmp_double);
				g[k] = flops / t[k][rounds / 2] * 1e-9;
				printf(" %8.1f", g[k]);
			}
			for (int k = MTL_GEMM_AVX2; k <= MTL_GEMM_AVX512; k++)
				if (mtl_gemm_supported(k))
					printf(" %8.2f", g[k] / g[MTL_GEMM_BLIS]);
			printf("\n");
			fflush(stdout);
			free(a), free(b), free(c);
		}
	}
	return 0;
}
