/*
 * ops_attn.c - the inference attention forward fused per (batch, head),
 * with AVX-512F, AVX2 and plain C bodies chosen at run time; see ops.h.
 *
 * The unfused form (ops.c) writes each head's [T,T] scores, runs a
 * softmax over every row and multiplies by V: two sgemm calls on small,
 * strided operands and T*T floats through memory, per head.  Here a
 * tile of query rows takes the keys in blocks of KB: each block's scores
 * are made in registers and stored to the tile's [T][QW] strip (L1 for
 * T = 128, L2 for 512) with the rows' max; then their exps and sums, and
 * P V with the output columns in registers.  Nothing of size T*T is
 * written.  (Until 2026-12-07 the SIMD bodies ran the softmax online, as
 * FlashAttention does, rescaling the sum and the output by
 * exp(m_old - m_new) after every block; the strip ran one layer's
 * attention 10-15% faster at T = 128 and 1-8% at 512.)  A sentence of
 * at most 32 keys (24 with AVX2) goes another way, the keys along the
 * lanes, so that only k is transposed (ops_attn_body.h, "Short
 * sentences").
 *
 * Padding.  mtl-score's records must not depend on how much padding a
 * batch has (docs/performance.md, "Padding").  Key blocks start at key 0
 * whatever T is; a block whose keys are all masked is skipped, and a
 * masked key in a live block (or a lane past T) scores -FLT_MAX, so its
 * probability is exactly 0: it adds exactly 0 to l and, in the ordered
 * sum over keys, to the output.  A row's result is then the same bits for
 * any number of padded keys after its real ones.
 */
#include "ops.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <immintrin.h>

#include "err.h"
#include "ops_int.h"
#include "par.h"
#include "vmath.h"

/* Keys per block and query rows per tile of the plain C body. */
#define KB_C 16
/* The largest of the bodies' key blocks and query tiles, for the scratch size. */
#define KB_MAX 12
#define W_MAX 32

/*
 * One (b, h) in plain C: c[T,D] (rows ldc apart) =
 * softmax(scale q k^T + madd) v, q k v rows ld apart; s: KB_C + D
 * floats.  One query row at a time, keys in blocks of KB_C, skipped and
 * padded as the SIMD bodies are (see above).
 */
static void attn_head_c(float *c, int64_t ldc, const float *q,
			const float *k, const float *v, int64_t ld,
			const float *madd, int T, int nq, int D, float scale,
			float *s)
{
	float *p = s, *o = s + KB_C;
	int all = 1;

	for (int j = 0; j < T; j++)
		all &= madd[j] == -FLT_MAX;
	for (int i = 0; i < nq; i++) {
		const float *qi = q + (int64_t)i * ld;
		float m = -FLT_MAX, l = 0;

		memset(o, 0, sizeof(*o) * (size_t)D);
		for (int j0 = 0; j0 < T; j0 += KB_C) {
			int n = T - j0 < KB_C ? T - j0 : KB_C, live = all;
			float bm = -FLT_MAX, mn, al, sum = 0;

			for (int jj = 0; jj < n; jj++)
				live |= madd[j0 + jj] != -FLT_MAX;
			if (!live)
				continue;
			for (int jj = 0; jj < n; jj++) {
				const float *kj = k + (int64_t)(j0 + jj) * ld;
				float dot = 0;

				for (int d = 0; d < D; d++)
					dot = fmaf(qi[d], kj[d], dot);
				p[jj] = fmaf(dot, scale, madd[j0 + jj]);
				bm = p[jj] > bm ? p[jj] : bm;
			}
			mn = m > bm ? m : bm;
			al = mtl_expf(m - mn);
			for (int jj = 0; jj < n; jj++) {
				p[jj] = mtl_expf(p[jj] - mn);
				sum += p[jj];
			}
			l = l * al + sum;
			m = mn;
			for (int d = 0; d < D; d++)
				o[d] *= al;
			for (int jj = 0; jj < n; jj++) {
				const float *vj = v + (int64_t)(j0 + jj) * ld;

				for (int d = 0; d < D; d++)
					o[d] = fmaf(p[jj], vj[d], o[d]);
			}
		}
		for (int d = 0; d < D; d++)
			c[(int64_t)i * ldc + d] = o[d] / l;
	}
}

/* n (<= 8) floats of x to p (the bodies' key blocks of 12 and 6). */
__attribute__((target("avx2"))) static inline void store8(float *p, __m256 x,
							   int n)
{
	float t[8];

	if (n == 8) {
		_mm256_storeu_ps(p, x);
		return;
	}
	_mm256_storeu_ps(t, x);
	memcpy(p, t, sizeof(float) * (size_t)n);
}

/* The largest and the sum of x's lanes, by a fixed tree (halves, then
 * quarters, then pairs), for the short-sentence bodies. */
__attribute__((target("avx2"))) static inline float hmax256(__m256 x)
{
	__m128 h = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));

	h = _mm_max_ps(h, _mm_movehl_ps(h, h));
	return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}

__attribute__((target("avx2"))) static inline float hsum256(__m256 x)
{
	__m128 h = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));

	h = _mm_add_ps(h, _mm_movehl_ps(h, h));
	return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

/* ---- AVX-512F: scores of 32 queries x 12 keys in 24 registers ---- */

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
#define VF __m512
#define W 16
#define QV 2
#define QW 32
#define KB 12
#define DC 8
#define NAME(x) x##_avx512
#define VLD(p) _mm512_loadu_ps(p)
#define VST(p, v) _mm512_storeu_ps(p, v)
#define VSET1(x) _mm512_set1_ps(x)
#define VZERO() _mm512_setzero_ps()
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VDIV(a, b) _mm512_div_ps(a, b)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VSUB(a, b) _mm512_sub_ps(a, b)
#define VMAX(a, b) _mm512_max_ps(a, b)
#define VMIN(a, b) _mm512_min_ps(a, b)
/* 2^n for integral n in the normal range, built in the exponent bits */
#define VPOW2(n) _mm512_castsi512_ps(_mm512_slli_epi32(                     \
	_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))
#define VZERO_BELOW(x, lim, v)                                               \
	_mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(lim), _CMP_GE_OQ), v)
/* short sentences: rows of 8 queries by up to 3 registers of keys
 * (at 2, 33 to 48 keys took the tiles: 8-17% slower; at 4, 49 to 64
 * keys ran 35-40% slower than on the tiles) */
#define SKV 3
#define SR 8
#define SACC 16
#define SRV 8
#define SDC 2
#define VHMAX(x) _mm512_reduce_max_ps(x)
#define VHSUM(x) _mm512_reduce_add_ps(x)
#include "ops_attn_body.h"
#pragma GCC pop_options

/* ---- AVX2 + FMA: scores of 8 queries x 12 keys in 12 registers ---- */

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define VF __m256
#define W 8
#define QV 2
#define QW 16
#define KB 6
#define DC 4
#define NAME(x) x##_avx2
#define VLD(p) _mm256_loadu_ps(p)
#define VST(p, v) _mm256_storeu_ps(p, v)
#define VSET1(x) _mm256_set1_ps(x)
#define VZERO() _mm256_setzero_ps()
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VDIV(a, b) _mm256_div_ps(a, b)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VSUB(a, b) _mm256_sub_ps(a, b)
#define VMAX(a, b) _mm256_max_ps(a, b)
#define VMIN(a, b) _mm256_min_ps(a, b)
#define VPOW2(n) _mm256_castsi256_ps(_mm256_slli_epi32(                     \
	_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))
#define VZERO_BELOW(x, lim, v)                                               \
	_mm256_and_ps(_mm256_cmp_ps(x, _mm256_set1_ps(lim), _CMP_GE_OQ), v)
/* short sentences: up to 3 registers of keys (at 4, 32 keys, the
 * tiles above were faster), 12 accumulators */
#define SKV 3
#define SR 8
#define SACC 12
#define SRV 3
#define SDC 4
#define VHMAX(x) hmax256(x)
#define VHSUM(x) hsum256(x)
#include "ops_attn_body.h"
#pragma GCC pop_options

/* ---- choosing a body ---- */

int mtl_attn_supported(enum mtl_attn_kernel k)
{
	switch (k) {
	case MTL_ATTN_UNFUSED:
	case MTL_ATTN_C:
		return 1;
	case MTL_ATTN_AVX2:
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	case MTL_ATTN_AVX512:
		return __builtin_cpu_supports("avx512f") &&
		       __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	}
	return 0;
}

const char *mtl_attn_name(enum mtl_attn_kernel k)
{
	static const char *const names[] = { "unfused", "c", "avx2", "avx512" };

	return names[k];
}

/* MTL_ATTN if set, known and supported; else the widest the CPU has. */
static enum mtl_attn_kernel choose(void)
{
	const char *want = getenv("MTL_ATTN");
	enum mtl_attn_kernel k;

	for (k = MTL_ATTN_UNFUSED; want && k <= MTL_ATTN_AVX512; k++)
		if (!strcmp(want, mtl_attn_name(k)) && mtl_attn_supported(k))
			return k;
	for (k = MTL_ATTN_AVX512; k > MTL_ATTN_C; k--)
		if (mtl_attn_supported(k))
			return k;
	return MTL_ATTN_C;
}

enum mtl_attn_kernel mtl_attn_default(void)
{
	/* -1: not chosen yet; racing first callers choose the same */
	static _Atomic int chosen = -1;
	int k = chosen;

	if (k < 0)
		chosen = k = (int)choose();
	return (enum mtl_attn_kernel)k;
}

size_t mtl_attention_scratch(int T, int H, int NH)
{
	size_t D = (size_t)(H / NH), kt = ((size_t)T + KB_MAX) * D;
	/* k^T, q^T and the output of a tile, its strip of scores, and a
	 * byte a key block (at most T + 1 bytes) */
	size_t fused = kt + 2 * W_MAX * D + ((size_t)T + KB_MAX) * W_MAX +
		       (size_t)T / sizeof(float) + 1;
	/* the short-sentence bodies: k^T, the masks, p and 1 / l of
	 * every row, at most 48 keys (AVX-512's 3 registers) */
	size_t brief = 48 * D + 48 * ((size_t)T + 1) + (size_t)T;

	fused = fused > brief ? fused : brief;

	return (size_t)T * T > fused ? (size_t)T * T : fused;
}

/* The arguments of mtl_attention_forward_ex's heads. */
struct heads_job {
	enum mtl_attn_kernel kind;
	float *ctx, *scratch;
	const float *qkv, *mask_add;
	const int32_t *off, *len; /* ragged rows, or NULL (see ops.h) */
	size_t per;
	int T, nq, H, NH;
	float scale;
};

/* Heads lo..hi-1 of the B * NH (batch-major), with slot's scratch. */
static void heads(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct heads_job *j = arg;
	int T = j->T, H = j->H, NH = j->NH, D = H / NH;
	float *s = j->scratch + (size_t)slot * j->per;

	for (int64_t bh = lo; bh < hi; bh++) {
		int64_t b = bh / NH, h = bh % NH;
		int64_t r0 = j->off ? j->off[b] : b * T;
		int n = j->len ? j->len[b] : T, nq = j->nq < n ? j->nq : n;
		const float *q = j->qkv + r0 * 3 * H + h * D;
		float *c = j->ctx + r0 * H + h * D;
		const float *madd = j->mask_add + r0;

		if (j->kind == MTL_ATTN_AVX512)
			head_avx512(c, H, q, q + H, q + 2 * H, 3 * H, madd, n,
				    nq, D, j->scale, s);
		else if (j->kind == MTL_ATTN_AVX2)
			head_avx2(c, H, q, q + H, q + 2 * H, 3 * H, madd, n,
				  nq, D, j->scale, s);
		else
			attn_head_c(c, H, q, q + H, q + 2 * H, 3 * H, madd, n,
				    nq, D, j->scale, s);
	}
}

/* Query rows 0..nq-1 of each sequence, with kernel kind. */
static void forward_rows(enum mtl_attn_kernel kind, float *ctx,
			 float *scratch, const float *qkv, const float *mask_add,
			 const int32_t *off, const int32_t *len, int B, int T,
			 int nq, int H, int NH, int nt)
{
	int D = H / NH;
	struct heads_job j = { kind, ctx, scratch, qkv, mask_add, off, len,
			       mtl_attention_scratch(T, H, NH), T, nq, H, NH,
			       1.0f / sqrtf((float)D) };

	MTL_ASSERT(D * NH == H && mtl_attn_supported(kind));
	MTL_ASSERT(nq >= 1 && nq <= T && (!off) == (!len));
	MTL_ASSERT(!off || kind != MTL_ATTN_UNFUSED);
	if (kind == MTL_ATTN_UNFUSED) {
		mtl_ops_attention_unfused(ctx, scratch, qkv, mask_add, B, T, H,
					  NH, nt);
		return;
	}
	/* one head a chunk: B * NH of them, each a few microseconds or more */
	mtl_par_for(nt, (int64_t)B * NH, 1, heads, &j);
}

void mtl_attention_forward_ex(enum mtl_attn_kernel kind, float *ctx,
			      float *scratch, const float *qkv,
			      const float *mask_add, int B, int T, int H,
			      int NH, int nt)
{
	forward_rows(kind, ctx, scratch, qkv, mask_add, NULL, NULL, B, T, T, H,
		     NH, nt);
}

void mtl_attention_forward_rows(float *ctx, float *scratch, const float *qkv,
				const float *mask_add, const int32_t *off,
				const int32_t *len, int B, int T, int nq,
				int H, int NH, int nt)
{
	forward_rows(mtl_attn_default(), ctx, scratch, qkv, mask_add, off, len,
		     B, T, nq, H, NH, nt);
}
