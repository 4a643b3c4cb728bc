/*
 * test_attn.c - the fused attention forward (lib/nn/ops_attn.c), every body
 * this CPU can run (C, AVX2, AVX-512), against a naive softmax(q k^T) v in
 * double and against the unfused path (ops.c: scores through memory):
 * head widths that are and are not whole vectors, T = 1, T beside and
 * between the key blocks (12, 16, 24) and the query tiles (8, 16), T =
 * 512, padding masks, a row whose every key is masked, scores whose
 * maximum moves from block to block.  Also: a sequence gives the same
 * bits alone and followed by any amount of padding (what mtl-score's
 * length-sorted batches rely on), nothing is written outside ctx, the
 * thread count does not change a bit, and MTL_ATTN chooses the kernel.
 *
 * Tolerance: ctx is a convex combination of v's rows, so an error is
 * measured against max|v|.  float softmax and sums over up to 512 keys in
 * a different order, with exp to 2e-7, stay within about 1e-6 of that
 * (the double reference); 1e-5 leaves room, as test_bert's check of the
 * unfused path against its naive loop does.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ops.h"
#include "t.h"

#define TOL 1e-5
#define SENTINEL 12345.0f

static float urand(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (float)(*s >> 40) * 0x1.0p-24f * 2.0f - 1.0f;
}

/* ctx[B,T,H] in double, masked keys left out (a row without keys: uniform). */
static void naive(double *ctx, const float *qkv, const float *madd, int B,
		  int T, int H, int NH)
{
	int D = H / NH;
	double *s = malloc(sizeof(double) * T);

	for (int b = 0; b < B; b++)
		for (int h = 0; h < NH; h++)
			for (int i = 0; i < T; i++) {
				const float *qi = qkv + ((int64_t)b * T + i) * 3 * H + h * D;
				double mx = -INFINITY, sum = 0;
				int any = 0;

				for (int j = 0; j < T; j++)
					any |= madd[b * T + j] == 0;
				for (int j = 0; j < T; j++) {
					const float *kj = qkv + ((int64_t)b * T + j) * 3 * H + H + h * D;
					double d = 0;

					for (int e = 0; e < D; e++)
						d += (double)qi[e] * kj[e];
					s[j] = any && madd[b * T + j] ? -INFINITY : d / sqrt(D);
					if (!any)
						s[j] = 0;
					mx = fmax(mx, s[j]);
				}
				for (int j = 0; j < T; j++)
					sum += exp(s[j] - mx);
				for (int e = 0; e < D; e++) {
					double o = 0;

					for (int j = 0; j < T; j++)
						o += exp(s[j] - mx) / sum *
						     qkv[((int64_t)b * T + j) * 3 * H + 2 * H + h * D + e];
					ctx[((int64_t)b * T + i) * H + h * D + e] = o;
				}
			}
	free(s);
}

/* Random qkv[B,T,3H] (values of size amp), key masks of random lengths. */
static void fill(float *qkv, float *madd, int *len, int B, int T, int H,
		 float amp, uint64_t *r)
{
	for (int64_t i = 0; i < (int64_t)B * T * 3 * H; i++)
		qkv[i] = amp * urand(r);
	for (int b = 0; b < B; b++) {
		len[b] = b == 0 ? T : 1 + (int)((urand(r) + 1) / 2 * (T - 1));
		for (int j = 0; j < T; j++)
			madd[b * T + j] = j < len[b] ? 0.0f : -FLT_MAX;
	}
}

/* Largest |x - ref| over n, and max|v| of qkv's v columns. */
static double vmax(const float *qkv, int BT, int H)
{
	double m = 0;

	for (int64_t t = 0; t < BT; t++)
		for (int e = 0; e < H; e++)
			m = fmax(m, fabs(qkv[t * 3 * H + 2 * H + e]));
	return m;
}

/*
 * Kernel k on one shape: against the double reference and the unfused
 * path, guard floats after ctx untouched, the same bits on 1 and 3
 * threads.
 */
static void shape(enum mtl_attn_kernel k, int B, int T, int H, int NH,
		  float amp, uint64_t *r)
{
	int64_t n = (int64_t)B * T * H;
	size_t per = mtl_attention_scratch(T, H, NH);
	float *qkv = malloc(sizeof(float) * B * T * 3 * H);
	float *madd = malloc(sizeof(float) * B * T);
	float *ctx = malloc(sizeof(float) * (n + 16)), *ctx3 = malloc(sizeof(float) * n);
	float *un = malloc(sizeof(float) * n), *s = malloc(sizeof(float) * 3 * per);
	double *ref = malloc(sizeof(double) * n), dref = 0, dun = 0, vm;
	int *len = malloc(sizeof(int) * B), guard = 1;

	fill(qkv, madd, len, B, T, H, amp, r);
	if (B > 2 && T > 1) /* a row whose every key is masked */
		for (int j = 0; j < T; j++)
			madd[2 * T + j] = -FLT_MAX;
	if (B > 1 && len[1] > 2) /* a masked key between live ones */
		madd[T + 1] = -FLT_MAX;
	for (int i = 0; i < 16; i++)
		ctx[n + i] = SENTINEL;
	naive(ref, qkv, madd, B, T, H, NH);
	vm = vmax(qkv, B * T, H);
	mtl_attention_forward_ex(k, ctx, s, qkv, madd, B, T, H, NH, 1);
	mtl_attention_forward_ex(k, ctx3, s, qkv, madd, B, T, H, NH, 3);
	mtl_attention_forward_ex(MTL_ATTN_UNFUSED, un, s, qkv, madd, B, T, H, NH, 1);
	for (int64_t i = 0; i < n; i++) {
		double d = fabs(ctx[i] - ref[i]), e = fabs((double)ctx[i] - un[i]);

		dref = d > dref || d != d ? (d != d ? INFINITY : d) : dref;
		dun = e > dun || e != e ? (e != e ? INFINITY : e) : dun;
	}
	for (int i = 0; i < 16; i++)
		guard &= ctx[n + i] == SENTINEL;
	T_OK(dref <= TOL * vm && dun <= TOL * vm && guard &&
		     !memcmp(ctx, ctx3, sizeof(float) * n),
	     "%s B=%d T=%d H=%d NH=%d amp %g: vs double %.2e, vs unfused %.2e (max|v| %.2f)%s%s",
	     mtl_attn_name(k), B, T, H, NH, amp, dref, dun, vm,
	     guard ? "" : ", WROTE PAST ctx",
	     memcmp(ctx, ctx3, sizeof(float) * n) ? ", 3 THREADS DIFFER" : "");
	free(qkv), free(madd), free(ctx), free(ctx3), free(un), free(s);
	free(ref), free(len);
}

/*
 * Scores that rise along the keys (q and k along one direction, k
 * growing), so the running max moves in every block and the sums so far
 * are rescaled each time; and fall, so it never moves.
 */
static void moving_max(enum mtl_attn_kernel k, int T, int dir)
{
	enum { H = 64, NH = 2 };
	float *qkv = malloc(sizeof(float) * T * 3 * H), *ctx = malloc(sizeof(float) * T * H);
	float *madd = calloc((size_t)T, sizeof(float));
	float *s = malloc(sizeof(float) * mtl_attention_scratch(T, H, NH));
	double *ref = malloc(sizeof(double) * T * H), worst = 0;
	uint64_t r = 7;

	for (int t = 0; t < T; t++)
		for (int e = 0; e < 3 * H; e++) {
			float x = urand(&r) * 0.1f;

			if (e >= H && e < 2 * H) /* k: a growing (or shrinking) ramp */
				x += 3.0f * (dir > 0 ? t : T - t) / T;
			else if (e < H)
				x += 1.0f;
			qkv[t * 3 * H + e] = x;
		}
	naive(ref, qkv, madd, 1, T, H, NH);
	mtl_attention_forward_ex(k, ctx, s, qkv, madd, 1, T, H, NH, 1);
	for (int i = 0; i < T * H; i++)
		worst = fmax(worst, fabs(ctx[i] - ref[i]));
	T_OK(worst <= TOL * vmax(qkv, T, H), "%s T=%d scores %s along the keys: %.2e",
	     mtl_attn_name(k), T, dir > 0 ? "rising" : "falling", worst);
	free(qkv), free(ctx), free(madd), free(s), free(ref);
}

/*
 * One sequence of length len alone (T = len) and as row 1 of a batch
 * padded to each longer T (padding keys hold other values): its context
 * rows must have the same bits.
 */
static void padding(enum mtl_attn_kernel k, int len, int H, int NH)
{
	int Tmax = len + 70, same = 1, worstT = 0;
	float *one = malloc(sizeof(float) * len * 3 * H), *c1 = malloc(sizeof(float) * len * H);
	float *qkv = malloc(sizeof(float) * 2 * Tmax * 3 * H);
	float *ctx = malloc(sizeof(float) * 2 * Tmax * H), *madd = malloc(sizeof(float) * 2 * Tmax);
	float *s = malloc(sizeof(float) * mtl_attention_scratch(Tmax, H, NH));
	uint64_t r = 99 + len;

	for (int i = 0; i < len * 3 * H; i++)
		one[i] = 2 * urand(&r);
	mtl_attention_forward_ex(k, c1, s, one, (float[1024]){ 0 }, 1, len, H, NH, 1);
	for (int T = len + 1; T <= Tmax; T += T < len + 30 ? 1 : 13) {
		for (int i = 0; i < 2 * T * 3 * H; i++)
			qkv[i] = 5 * urand(&r);
		memcpy(qkv + (int64_t)T * 3 * H, one, sizeof(float) * len * 3 * H);
		for (int j = 0; j < T; j++) {
			madd[j] = 0;
			madd[T + j] = j < len ? 0.0f : -FLT_MAX;
		}
		mtl_attention_forward_ex(k, ctx, s, qkv, madd, 2, T, H, NH, 1);
		if (memcmp(ctx + (int64_t)T * H, c1, sizeof(float) * len * H)) {
			same = 0;
			worstT = T;
		}
	}
	T_OK(same, "%s: %d tokens give the same bits alone and padded to T = %d..%d%s",
	     mtl_attn_name(k), len, len + 1, Tmax, same ? "" : " (first that differs below)");
	if (!same)
		printf("# differs at T = %d\n", worstT);
	free(one), free(c1), free(qkv), free(ctx), free(madd), free(s);
}

/* mtl_attn_default() in a child with MTL_ATTN set to want (NULL: unset). */
static int default_with(const char *want)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		if (want)
			setenv("MTL_ATTN", want, 1);
		else
			unsetenv("MTL_ATTN");
		_exit((int)mtl_attn_default());
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

int main(void)
{
	/* B, T, H, NH: D = 32, 64 (bge), 8, 12, 5, 1; T around 12, 16, 24,
	 * and T = 9, 24, 25, 31, 32, 47, 48, 49 at D = 32 and 64, around
	 * the short-sentence bodies' 8, 16, 24 (AVX2) and 16, 32, 48 keys
	 * (AVX-512) */
	static const int shapes[][4] = {
		{ 1, 1, 64, 2 }, { 3, 1, 384, 12 }, { 4, 7, 64, 2 },
		{ 3, 12, 64, 1 }, { 3, 13, 96, 3 }, { 4, 16, 768, 12 },
		{ 3, 17, 24, 3 }, { 4, 23, 40, 8 }, { 3, 24, 64, 2 },
		{ 5, 25, 128, 2 }, { 3, 33, 36, 3 }, { 4, 47, 384, 12 },
		{ 3, 100, 128, 2 }, { 3, 129, 64, 1 }, { 3, 512, 64, 2 },
		{ 3, 512, 128, 2 }, { 3, 32, 64, 2 }, { 4, 32, 128, 2 },
		{ 3, 9, 128, 2 }, { 4, 31, 384, 12 }, { 3, 48, 128, 2 },
		{ 3, 49, 64, 2 }, { 2, 47, 128, 2 }, { 3, 48, 384, 12 },
	};
	const char *names[] = { "unfused", "c", "avx2", "avx512" };
	enum mtl_attn_kernel best = MTL_ATTN_C;
	uint64_t r = 1;

	for (int k = MTL_ATTN_C; k <= MTL_ATTN_AVX512; k++) {
		if (!mtl_attn_supported(k)) {
			t_skip(k == MTL_ATTN_AVX512 ? "this CPU has no AVX-512F"
						    : "this CPU has no AVX2 and FMA");
			continue;
		}
		best = k;
		for (size_t i = 0; i < sizeof(shapes) / sizeof(*shapes); i++)
			if (k != MTL_ATTN_C || shapes[i][1] < 512)
				shape(k, shapes[i][0], shapes[i][1], shapes[i][2],
				      shapes[i][3], i % 2 ? 1.0f : 4.0f, &r);
		moving_max(k, 200, 1);
		moving_max(k, 200, -1);
		padding(k, 1, 64, 2);
		padding(k, 11, 64, 2);
		padding(k, 37, 384, 12);
		padding(k, 20, 128, 2);
		padding(k, 32, 64, 2);
		padding(k, 45, 128, 2);
	}
	T_OK(default_with(NULL) == (int)best, "MTL_ATTN unset: %s", mtl_attn_name(best));
	T_OK(default_with("bogus") == (int)best, "MTL_ATTN=bogus: as unset");
	for (int k = MTL_ATTN_UNFUSED; k <= MTL_ATTN_AVX512; k++)
		T_OK(default_with(names[k]) == (mtl_attn_supported(k) ? k : (int)best),
		     "MTL_ATTN=%s: %s", names[k],
		     mtl_attn_supported(k) ? "that kernel" : "unsupported, as unset");
	return t_done();
}
