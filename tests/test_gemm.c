/*
 * test_gemm.c - every sgemm kernel this CPU can run (lib/nn/gemm.h: BLIS,
 * AVX2, AVX-512) against a naive product in double: shapes with edges of
 * 1, odd sizes and sizes beside the tiles (MR 6 and 14, NR 16 and 32), K
 * = 0 and 1 and K cut into several blocks, N beyond one panel, all four
 * transposes, padded leading dimensions, alpha and beta (beta = 0 must
 * not read C, beta = 1 adds into it).  Also: nothing outside C[M,N] is
 * written, a column slice gives the bits of the whole product (what the
 * threaded column split relies on), and MTL_GEMM chooses the kernel.
 * The epilogue (bias, residual, GELU after the product) gives exactly the
 * bits of the product followed by the separate passes, on every kernel
 * and through ops.h's linear forwards on 1 and 2 threads.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <blis.h>

#include "gemm.h"
#include "ops.h"
#include "t.h"

static float urand(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (float)(*s >> 40) * 0x1.0p-24f * 2.0f - 1.0f;
}

/* op(X)(r, c) of a row-major X with leading dimension ld. */
/* x[0..n-1] = urand */
static void fill(float *x, int64_t n, uint64_t *s)
{
	for (int64_t i = 0; i < n; i++)
		x[i] = urand(s);
}

static float at(const float *x, int64_t ld, int t, int r, int c)
{
	return t ? x[(int64_t)c * ld + r] : x[(int64_t)r * ld + c];
}

#define SENTINEL 12345.0f

/*
 * One product with kernel k on random operands (leading dimensions padded
 * by pad), checked element by element against double within the rounding
 * bound 2 (K + 2) eps (|alpha| sum |a b| + |beta c|).  Returns 0 if it
 * holds and nothing beyond C[M,N] changed; else 1 with *worst set.
 */
static int check(enum mtl_gemm_kernel k, int ta, int tb, int M, int N, int K,
		 float alpha, float beta, int pad, uint64_t seed, double *worst)
{
	int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
	int64_t lda = ac + pad, ldb = bc + pad, ldc = N + pad;
	float *a = malloc(sizeof(float) * (size_t)(ar * lda + 1));
	float *b = malloc(sizeof(float) * (size_t)(br * ldb + 1));
	float *c = malloc(sizeof(float) * (size_t)(M * ldc + 1));
	float *c0 = malloc(sizeof(float) * (size_t)(M * ldc + 1));
	int bad = 0;

	for (int64_t i = 0; i < ar * lda; i++)
		a[i] = urand(&seed);
	for (int64_t i = 0; i < br * ldb; i++)
		b[i] = urand(&seed);
	for (int i = 0; i < M; i++)
		for (int64_t j = 0; j < ldc; j++)
			/* beta = 0 must not read C: NaN there must vanish */
			c0[i * ldc + j] = j >= N ? SENTINEL : beta == 0 ? NAN : urand(&seed);
	memcpy(c, c0, sizeof(float) * (size_t)(M * ldc));
	mtl_gemm_ex(k, ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
	*worst = 0;
	for (int i = 0; i < M; i++) {
		for (int j = 0; j < N; j++) {
			double s = 0, mag = 0, ref, err;

			for (int p = 0; p < K; p++) {
				double x = (double)at(a, lda, ta, i, p) * at(b, ldb, tb, p, j);

				s += x;
				mag += fabs(x);
			}
			ref = alpha * s + (beta != 0 ? beta * (double)c0[i * ldc + j] : 0);
			mag = fabs(alpha) * mag + (beta != 0 ? fabs(beta * c0[i * ldc + j]) : 0);
			err = fabs(c[i * ldc + j] - ref);
			if (!(err <= 2.0 * (K + 2) * FLT_EPSILON * mag + 1e-30))
				bad = 1;
			if (!(err / (mag + 1e-30) <= *worst))
				*worst = err / (mag + 1e-30);
		}
		for (int64_t j = N; j < ldc; j++)
			bad |= c[i * ldc + j] != SENTINEL;
	}
	free(a), free(b), free(c), free(c0);
	return bad;
}

static const int Ms[] = { 1, 2, 5, 6, 7, 13, 14, 15, 29, 64 };
static const int Ns[] = { 1, 3, 8, 15, 16, 17, 31, 32, 33, 65 };
/* 768 = 3 x 256: rows a multiple of 1 KB apart, which gemm.c packs for
 * the AVX-512 kernel and the AVX2 one reads in place */
static const int Ks[] = { 0, 1, 2, 9, 64, 384, 385, 768, 769 };
static const float alphas[] = { 1.0f, 0.125f, -1.5f, 1.0f, 0.0f };
static const float betas[] = { 0.0f, 0.0f, 1.0f, 0.25f, 0.5f };
#define LEN(x) (int)(sizeof(x) / sizeof(x[0]))

static void kernel_shapes(enum mtl_gemm_kernel k)
{
	uint64_t seed = 1;

	for (int t = 0; t < 4; t++)
		for (int ab = 0; ab < LEN(alphas); ab++) {
			int fails = 0, bm = 0, bn = 0, bk = 0;
			double w, worst = 0;

			for (int mi = 0; mi < LEN(Ms); mi++)
				for (int ni = 0; ni < LEN(Ns); ni++)
					for (int ki = 0; ki < LEN(Ks); ki++) {
						int pad = (mi + ni + ki) % 3 == 0 ? 0 : 3;

						if (check(k, t & 1, t >> 1, Ms[mi], Ns[ni],
							  Ks[ki], alphas[ab], betas[ab], pad,
							  seed++, &w) && !fails++)
							bm = Ms[mi], bn = Ns[ni], bk = Ks[ki];
						worst = w > worst ? w : worst;
					}
			T_OK(!fails, "%s %c%c alpha %g beta %g: %d shapes within 2(K+2)eps "
			     "(worst relative %.2g)", mtl_gemm_name(k), t & 1 ? 'T' : 'N',
			     t >> 1 ? 'T' : 'N', alphas[ab], betas[ab],
			     LEN(Ms) * LEN(Ns) * LEN(Ks), worst);
			if (fails)
				T_NOTE("%d failed, first M %d N %d K %d", fails, bm, bn, bk);
		}
}

/* Larger than one panel in N (NC 256 or 512) and in K (KC 384); and a
 * tall product. */
static void kernel_large(enum mtl_gemm_kernel k)
{
	double w;
	int bad;

	for (int t = 0; t < 4; t++) {
		bad = check(k, t & 1, t >> 1, 131, 1100, 1000, 0.5f, 1.0f, 5, 99, &w);

		T_OK(!bad, "%s %c%c 131x1100x1000, padded, beta 1 (worst relative %.2g)",
		     mtl_gemm_name(k), t & 1 ? 'T' : 'N', t >> 1 ? 'T' : 'N', w);
	}
	bad = check(k, 1, 1, 2100, 45, 30, 1.0f, 0.5f, 2, 5, &w);
	T_OK(!bad, "%s TT 2100x45x30 (worst relative %.2g)", mtl_gemm_name(k), w);
}

/* C[:, lo:lo+n] computed alone has the bits of the whole product's. */
static void kernel_slice(enum mtl_gemm_kernel k)
{
	int M = 37, N = 200, K = 500, lo = 48, n = 80;
	float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * N * K);
	float *c = malloc(sizeof(float) * M * N), *s = malloc(sizeof(float) * M * N);
	uint64_t seed = 7;
	int same = 1;

	fill(a, M * K, &seed);
	fill(b, N * K, &seed);
	memset(s, 0, sizeof(float) * M * N);
	/* the encoder's layout: inp[M,K] @ w[N,K]^T */
	mtl_gemm_ex(k, 0, 1, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
	mtl_gemm_ex(k, 0, 1, M, n, K, 1.0f, a, K, b + lo * K, K, 0.0f, s + lo, N);
	for (int i = 0; i < M; i++)
		same &= !memcmp(c + i * N + lo, s + i * N + lo, sizeof(float) * n);
	T_OK(same, "%s: a column slice has the whole product's bits", mtl_gemm_name(k));
	free(a), free(b), free(c), free(s);
}

/* C[M,N] (rows ldc apart) after the product: the passes an epilogue
 * replaces, as the encoder ran them (bias loop, mtl_residual_forward,
 * mtl_gelu_forward). */
static void passes(float *c, int64_t ldc, int M, int N, const float *bias,
		   const float *res, int64_t ldr, int gelu)
{
	for (int i = 0; i < M; i++) {
		float *ci = c + i * ldc;

		for (int j = 0; bias && j < N; j++)
			ci[j] += bias[j];
		if (res)
			mtl_residual_forward(ci, ci, res + i * ldr, N, 1);
		if (gelu)
			mtl_gelu_forward(ci, ci, N, 1);
	}
}

/*
 * mtl_gemm_fused_ex against mtl_gemm_ex then passes(), with kernel k:
 * memcmp of the whole of C (padding columns included, so nothing beyond
 * C[M,N] is written), for each combination of bias, residual and GELU
 * (bits 0, 1, 2 of what), on edge shapes: M and N beside the tiles, K cut
 * into blocks (K > 384), beta = 1 adding into C, padded strides.
 */
static void kernel_epilogue(enum mtl_gemm_kernel k)
{
	static const int shape[][3] = {
		{ 1, 1, 1 }, { 7, 17, 9 }, { 29, 65, 385 }, { 15, 33, 769 },
		{ 64, 600, 64 },
	};
	int same = 1, n = 0;

	for (size_t s = 0; s < sizeof(shape) / sizeof(*shape); s++)
		for (int what = 1; what < 8; what++)
			for (int bt = 0; bt < 2; bt++) {
				int M = shape[s][0], N = shape[s][1], K = shape[s][2];
				int64_t ldc = N + 3, ldr = N + 5;
				/* values near 0, where GELU bends, and beyond */
				float alpha = 2.0f / sqrtf((float)K), beta = (float)bt;
				float *a = malloc(sizeof(float) * (size_t)(M * K));
				float *b = malloc(sizeof(float) * (size_t)(N * K));
				float *bias = malloc(sizeof(float) * (size_t)N);
				float *res = malloc(sizeof(float) * (size_t)(M * ldr));
				float *c = malloc(sizeof(float) * (size_t)(M * ldc));
				float *ref = malloc(sizeof(float) * (size_t)(M * ldc));
				struct mtl_gemm_epi e = {
					what & 1 ? bias : NULL, what & 2 ? res : NULL,
					ldr, !!(what & 4),
				};
				uint64_t seed = 11 + s;

				fill(a, M * K, &seed);
				fill(b, N * K, &seed);
				fill(bias, N, &seed);
				fill(res, M * ldr, &seed);
				for (int i = 0; i < M * ldc; i++)
					ref[i] = i % ldc >= N ? SENTINEL : urand(&seed);
				memcpy(c, ref, sizeof(float) * (size_t)(M * ldc));
				/* the encoder's layout: inp[M,K] @ w[N,K]^T */
				mtl_gemm_ex(k, 0, 1, M, N, K, alpha, a, K, b, K, beta, ref, ldc);
				passes(ref, ldc, M, N, e.bias, e.res, ldr, e.gelu);
				mtl_gemm_fused_ex(k, 0, 1, M, N, K, alpha, a, K, b, K, beta,
						  c, ldc, &e);
				same &= !memcmp(c, ref, sizeof(float) * (size_t)(M * ldc));
				n++;
				free(a), free(b), free(bias), free(res), free(c), free(ref);
			}
	T_OK(same, "%s: epilogue has the bits of the product then the passes (%d cases)",
	     mtl_gemm_name(k), n);
}

/*
 * mtl_gemm_prepacked with op(B) packed by mtl_gemm_pack_b: the bits of
 * mtl_gemm_fused_ex, over the whole of A and C and over rows of them cut
 * into pieces (what the threads of mtl_linear_forward_packed do), with
 * several panels of N, blocks of K and groups of rows (200 > 2 x 84,
 * gemm.c's PRE_ROWS), A read in place and packed (K = 768), each
 * epilogue.
 */
static void kernel_prepacked(enum mtl_gemm_kernel k)
{
	static const int shape[][3] = {
		{ 1, 1, 1 }, { 29, 33, 17 }, { 37, 600, 385 }, { 50, 1100, 769 },
		{ 14, 1536, 384 }, { 200, 600, 385 }, { 100, 70, 768 },
	};
	int same = 1, back = 1, n = 0;

	for (size_t s = 0; s < sizeof(shape) / sizeof(*shape); s++)
		for (int what = 0; what < 8; what++) {
			int M = shape[s][0], N = shape[s][1], K = shape[s][2];
			float alpha = 2.0f / sqrtf((float)K);
			float *a = malloc(sizeof(float) * (size_t)(M * K));
			float *b = malloc(sizeof(float) * (size_t)(N * K));
			float *bp = aligned_alloc(64, sizeof(float) * ((mtl_gemm_packed_len(k, N, K) + 15) & ~(size_t)15));
			float *bias = malloc(sizeof(float) * (size_t)N);
			float *res = malloc(sizeof(float) * (size_t)(M * N));
			float *c = malloc(sizeof(float) * (size_t)(M * N));
			float *ref = malloc(sizeof(float) * (size_t)(M * N));
			struct mtl_gemm_epi e = {
				what & 1 ? bias : NULL, what & 2 ? res : NULL, N,
				!!(what & 4),
			};
			uint64_t seed = 23 + s;

			fill(a, M * K, &seed);
			fill(b, N * K, &seed);
			fill(bias, N, &seed);
			fill(res, M * N, &seed);
			mtl_gemm_fused_ex(k, 0, 1, M, N, K, alpha, a, K, b, K, 0.0f,
					  ref, N, what ? &e : NULL);
			mtl_gemm_pack_b(k, 1, N, K, b, K, bp);
			memset(c, 0xff, sizeof(float) * (size_t)(M * N));
			mtl_gemm_prepacked(k, 0, M, N, K, alpha, a, K, bp, 0.0f, c, N,
					   what ? &e : NULL);
			same &= !memcmp(c, ref, sizeof(float) * (size_t)(M * N));
			/* rows in pieces of 5 (not the kernels' 6 or 14) */
			memset(c, 0xff, sizeof(float) * (size_t)(M * N));
			for (int lo = 0; lo < M; lo += 5) {
				struct mtl_gemm_epi el = mtl_gemm_epi_at(&e, lo, 0);

				mtl_gemm_prepacked(k, 0, M - lo < 5 ? M - lo : 5, N, K,
						   alpha, a + (int64_t)lo * K, K, bp, 0.0f,
						   c + (int64_t)lo * N, N, what ? &el : NULL);
			}
			same &= !memcmp(c, ref, sizeof(float) * (size_t)(M * N));
			/* unpacked again: B as it was, in either layout */
			if (what == 0) {
				float *u = malloc(sizeof(float) * (size_t)(N * K));
				float *bt = malloc(sizeof(float) * (size_t)(N * K));

				memset(u, 0xff, sizeof(float) * (size_t)(N * K));
				mtl_gemm_unpack_b(k, 1, N, K, bp, u, K);
				back &= !memcmp(u, b, sizeof(float) * (size_t)(N * K));
				for (int i = 0; i < N * K; i++)
					bt[(i % K) * N + i / K] = b[i];
				mtl_gemm_pack_b(k, 0, N, K, bt, N, bp);
				memset(u, 0xff, sizeof(float) * (size_t)(N * K));
				mtl_gemm_unpack_b(k, 0, N, K, bp, u, N);
				back &= !memcmp(u, bt, sizeof(float) * (size_t)(N * K));
				free(u), free(bt);
			}
			n++;
			free(a), free(b), free(bp), free(bias), free(res), free(c), free(ref);
		}
	T_OK(same, "%s: packed once, whole or by rows, the unpacked product's bits (%d cases)",
	     mtl_gemm_name(k), n);
	T_OK(back, "%s: unpacking a packed B gives B again, B or B^T packed",
	     mtl_gemm_name(k));
}

/* mtl_gemm_default() in a child with MTL_GEMM set to want (NULL: unset). */
static int default_with(const char *want)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		if (want)
			setenv("MTL_GEMM", want, 1);
		else
			unsetenv("MTL_GEMM");
		_exit((int)mtl_gemm_default());
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/*
 * ops.c's threaded products cut C's columns into one slice per thread: the
 * slices must cover every column whatever their count (a head with one
 * output on two threads got no column at all, and 33 columns lost the
 * last).  mtl_linear_forward on 2 threads against a double reference.
 */
static void ops_slices(void)
{
	const int outs[] = { 1, 2, 15, 17, 33, 47 };
	enum { N = 3, C = 8 };

	for (size_t o = 0; o < sizeof(outs) / sizeof(*outs); o++) {
		int OC = outs[o];
		float inp[N * C], w[47 * C], b[47], out[N * 47];
		double worst = 0;

		for (int i = 0; i < N * C; i++)
			inp[i] = (float)((i * 7) % 11) / 11 - 0.5f;
		for (int i = 0; i < OC * C; i++)
			w[i] = (float)((i * 5) % 13) / 13 - 0.5f;
		for (int i = 0; i < OC; i++)
			b[i] = (float)i / 10;
		for (int i = 0; i < N * OC; i++)
			out[i] = NAN;
		mtl_linear_forward(out, inp, w, b, N, C, OC, 2);
		for (int n = 0; n < N; n++)
			for (int j = 0; j < OC; j++) {
				double r = b[j], d;

				for (int c = 0; c < C; c++)
					r += (double)inp[n * C + c] * w[j * C + c];
				d = fabs(r - out[n * OC + j]);
				worst = d > worst || d != d ? (d != d ? INFINITY : d) : worst;
			}
		T_OK(worst < 1e-5, "linear forward on 2 threads, %d outputs: every column (max diff %.3g)",
		     OC, worst);
	}
}

/*
 * mtl_linear_forward_ex and _split_ex (residual, GELU) on 1 and 2 threads
 * against mtl_linear_forward then the passes: the same bits, with the
 * default kernel, at the encoder's FFN shape in small (N not a multiple
 * of any tile, OC cut into two slices).
 */
static void ops_epilogue(void)
{
	enum { N = 45, C = 400, OC = 200 };
	float *inp = malloc(sizeof(float) * N * C), *w = malloc(sizeof(float) * OC * C);
	float *b = malloc(sizeof(float) * OC), *res = malloc(sizeof(float) * N * OC);
	float *ref = malloc(sizeof(float) * N * OC), *out = malloc(sizeof(float) * N * OC);
	uint64_t seed = 3;

	for (int i = 0; i < N * C; i++)
		inp[i] = urand(&seed) * 0.1f;
	fill(w, OC * C, &seed);
	fill(b, OC, &seed);
	fill(res, N * OC, &seed);
	for (int split = 0; split < 2; split++)
		for (int nt = 1; nt <= 2; nt++)
			for (int gelu = 0; gelu < 2; gelu++) {
				const float *r = gelu ? NULL : res;

				mtl_linear_forward(ref, inp, w, b, N, C, OC, nt);
				passes(ref, OC, N, OC, NULL, r, OC, gelu);
				memset(out, 0xff, sizeof(float) * N * OC);
				(split ? mtl_linear_forward_split_ex : mtl_linear_forward_ex)(
					out, inp, w, b, r, gelu, N, C, OC, nt);
				T_OK(!memcmp(out, ref, sizeof(float) * N * OC),
				     "%s on %d thread%s with %s: the passes' bits (%s)",
				     split ? "linear_forward_split_ex" : "linear_forward_ex",
				     nt, nt > 1 ? "s" : "", gelu ? "GELU" : "residual",
				     mtl_gemm_name(mtl_gemm_default()));
			}
	free(inp), free(w), free(b), free(res), free(ref), free(out);
}

/* mtl_linear_forward_packed on 1, 2 and 3 threads: mtl_linear_forward_ex's
 * bits, with the default kernel (skipped on BLIS: nothing is packed). */
static void ops_packed(void)
{
	enum { N = 301, C = 384, OC = 1152 };
	enum mtl_gemm_kernel k = mtl_gemm_default();
	float *inp = malloc(sizeof(float) * N * C), *w = malloc(sizeof(float) * OC * C);
	float *wp = aligned_alloc(64, sizeof(float) * ((mtl_gemm_packed_len(k == MTL_GEMM_BLIS ? MTL_GEMM_AVX2 : k, OC, C) + 15) & ~(size_t)15));
	float *b = malloc(sizeof(float) * OC), *res = malloc(sizeof(float) * N * OC);
	float *ref = malloc(sizeof(float) * N * OC), *out = malloc(sizeof(float) * N * OC);
	uint64_t seed = 5;
	int same = 1;

	if (k == MTL_GEMM_BLIS) {
		t_skip("the products run on BLIS: no packed weights");
		free(inp), free(w), free(wp), free(b), free(res), free(ref), free(out);
		return;
	}
	for (int i = 0; i < N * C; i++)
		inp[i] = urand(&seed) * 0.1f;
	fill(w, OC * C, &seed);
	fill(b, OC, &seed);
	fill(res, N * OC, &seed);
	mtl_gemm_pack_b(k, 1, OC, C, w, C, wp);
	for (int nt = 1; nt <= 3; nt++)
		for (int gelu = 0; gelu < 2; gelu++) {
			const float *r = gelu ? NULL : res;

			mtl_linear_forward_ex(ref, inp, w, b, r, gelu, N, C, OC, 1);
			memset(out, 0xff, sizeof(float) * N * OC);
			mtl_linear_forward_packed(out, OC, inp, C, wp, b, r, gelu, N, C, OC, nt);
			same &= !memcmp(out, ref, sizeof(float) * N * OC);
		}
	T_OK(same, "linear_forward_packed on 1-3 threads, GELU or residual: linear_forward_ex's bits (%s)",
	     mtl_gemm_name(k));
	free(inp), free(w), free(wp), free(b), free(res), free(ref), free(out);
}

int main(void)
{
	enum mtl_gemm_kernel best = MTL_GEMM_BLIS;
	const char *names[] = { "blis", "avx2", "avx512" };

	for (int k = MTL_GEMM_BLIS; k <= MTL_GEMM_AVX512; k++) {
		if (!mtl_gemm_supported(k)) {
			t_skip(k == MTL_GEMM_AVX512 ? "this CPU has no AVX-512F"
						    : "this CPU has no AVX2 and FMA");
			continue;
		}
		best = k;
		kernel_shapes(k);
		kernel_large(k);
		kernel_slice(k);
		kernel_epilogue(k);
		if (k != MTL_GEMM_BLIS)
			kernel_prepacked(k);
	}
	/* without a choice: the widest of ours, whatever BLIS knows */
	T_OK(default_with(NULL) == (int)best, "MTL_GEMM unset: %s (BLIS's kernels: %s)",
	     mtl_gemm_name(best), mtl_gemm_blis_arch());
	T_OK(default_with("bogus") == (int)best, "MTL_GEMM=bogus: as unset");
	for (int k = MTL_GEMM_BLIS; k <= MTL_GEMM_AVX512; k++)
		T_OK(default_with(names[k]) == (mtl_gemm_supported(k) ? k : (int)best),
		     "MTL_GEMM=%s: %s", names[k],
		     mtl_gemm_supported(k) ? "that kernel" : "unsupported, as unset");
	/* last: it fixes this process's default kernel, which the children
	 * above choose afresh */
	ops_slices();
	ops_epilogue();
	ops_packed();
	return t_done();
}
