/*
 * gemm.c - packed sgemm with AVX-512 and AVX2 micro-kernels; see gemm.h.
 *
 * Loops (Goto's, as in BLIS), for a row-major C whose rows are the vector
 * direction:
 *
 *   for jc over N by NC:                      columns of C
 *     for pc over K by kc:                    kc <= KC_MAX, K cut evenly
 *       pack op(B)[pc:pc+kc, jc:jc+NC]   ->  bp: slivers of NR columns,
 *                                             each kc rows of NR floats
 *       for ir over M by MR:
 *         A sliver = op(A)[ir:ir+MR, pc:pc+kc], packed or in place
 *         for jr over the NC columns by NR:
 *           C[ir:ir+MR, jr:jr+NR] (+)= A sliver @ bp sliver  (micro-kernel)
 *
 * The A sliver (MR x kc, at most 21 KB) stays in L1 while the micro-kernel
 * walks the B panel; the panel (kc x NC) is read once per A sliver from
 * L2.  The kernel reads the sliver either packed (ap: kc columns of MR
 * floats) or, when op(A) = A and (for the AVX-512 kernel) its rows are
 * not a multiple of 1 KB apart, where it lies (a row is kc consecutive
 * floats, which the hardware prefetcher follows): pack_a_first says
 * which.  Packing A cost 5.8% of a short-sentence job's samples with
 * bge-small.  Weights packed
 * once (mtl_gemm_pack_b) skip the packing of B, and their product
 * (prepacked()) walks groups of rows outermost instead.
 *
 * The micro-kernel keeps an MR x NR block of C in registers (AVX-512: 14
 * rows x 2 zmm = 28 accumulators, plus 2 for the B row; AVX2: 6 rows x 2
 * ymm = 12, plus 2) and for each p broadcasts MR values of A against one
 * row of the B sliver.  Edges: the B panel is padded with zeros to whole
 * slivers and C is written through masks; a short A sliver runs a
 * micro-kernel compiled for its row count (one per count, all from one
 * always-inline body), so no work is wasted on padding rows.
 *
 * The epilogue: in the last K block the micro-kernel adds the bias and
 * the residual to its registers before it stores them (each add one
 * rounding, in the passes' order), and the GELU runs on the stored tile
 * right after, still in L1 (vmath.h's vectors).  A whole tile's rows are
 * stored with plain moves, an edge's through masks: AMD's cores do not
 * forward a masked store to a later load, and with masks the GELU's
 * loads waited for the tile's stores to retire (gelu512 3.3% of a
 * short-sentence job's samples with them, 2.1% without).
 */
#include "gemm.h"

#include <stdlib.h>
#include <string.h>

#include <blis.h>
#include <immintrin.h>

#include "err.h"
#include "vmath.h"

/* Largest K block; K is cut into equal blocks of at most this. */
#define KC_MAX 384
/* Panels up to this many floats live on the stack, larger ones on the heap. */
#define STACK_PANEL 16384
/* Rows of op(A) the prepacked product takes at a time: whole slivers of
 * both kernels (14 and 6 rows). */
#define PRE_ROWS 84
/*
 * How far ahead along its rows the transposing pack of B prefetches, in
 * floats.  It reads 8 rows at a time, ldb apart: a weight matrix in
 * inference, which comes from memory, not cache, for every batch, and
 * whose strided rows the hardware prefetcher does not follow well.
 */
#define PF_AHEAD 64

struct kernel {
	int mr, nr, nc;
	void (*run)(int mr, int nr, int kc, const float *a, int64_t lda,
		    const float *b, float *c, int64_t ldc, float alpha,
		    float beta, const float *bias, const float *res,
		    int64_t ldr);
	/* the GELU on a finished tile, compiled for the kernel's CPU */
	void (*gelu)(int M, int N, float *C, int64_t ldc);
};

/* ---- AVX-512F: 14 x 32 ---- */

#define MR512 14
#define NR512 32

/*
 * Element (i, p) of a kernel's A operand: with lda 0, a is a packed sliver
 * (kc columns of MR floats); else a is op(A) itself, rows lda apart, read
 * where it lies.  Rows come in threes from one base pointer each (row
 * 3g + j at base g plus j * lda: one addressing mode, lda scaled by 4 or
 * 8), so that fourteen rows need five registers and the stride.  Bases
 * of rows beyond mr point at row 0 and are never read.
 */
#define A_ROWS(a, lda, mr)                                                    \
	const float *r0_ = (a), *r1_ = (a) + (3 < (mr) ? 3 * (lda) : 0),      \
		    *r2_ = (a) + (6 < (mr) ? 6 * (lda) : 0),                  \
		    *r3_ = (a) + (9 < (mr) ? 9 * (lda) : 0),                  \
		    *r4_ = (a) + (12 < (mr) ? 12 * (lda) : 0)
#define A_AT(a, lda, i)                                                       \
	((lda) ? ((i) < 3 ? r0_ : (i) < 6 ? r1_ : (i) < 9 ? r2_ : (i) < 12 ? r3_ : r4_) \
			 [((i) % 3) * (lda)]                                  \
	       : (a)[i])
#define A_NEXT(a, lda, MR)                                                    \
	do {                                                                  \
		if (lda)                                                      \
			r0_++, r1_++, r2_++, r3_++, r4_++;                    \
		else                                                          \
			(a) += (MR);                                          \
	} while (0)

/*
 * c[mr, nr] = alpha * A @ b + beta * c, A [mr][kc] (A_AT), b [kc][NR512];
 * then + bias[nr], then + res[mr, nr] (rows ldr apart), where not NULL:
 * each a rounding of its own, as passes over the stored c would be.
 */
__attribute__((target("avx512f"), always_inline)) static inline void
body512(int mr, int nr, int kc, const float *a, int64_t lda, const float *b,
	float *c, int64_t ldc, float alpha, float beta, const float *bias,
	const float *res, int64_t ldr)
{
	__m512 acc[MR512][2], va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
	__mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
	__mmask16 m1 = nr >= 32 ? 0xffff : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
	int full = nr == NR512;
	A_ROWS(a, lda, mr);

#pragma GCC unroll 14
	for (int i = 0; i < mr; i++)
		acc[i][0] = acc[i][1] = _mm512_setzero_ps();
	for (int p = 0; p < kc; p++) {
		__m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);

#pragma GCC unroll 14
		for (int i = 0; i < mr; i++) {
			__m512 ai = _mm512_set1_ps(A_AT(a, lda, i));

			acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
			acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
		}
		A_NEXT(a, lda, MR512);
		b += NR512;
	}
#pragma GCC unroll 14
	for (int i = 0; i < mr; i++) {
		float *ci = c + i * ldc;
		__m512 v0 = _mm512_mul_ps(va, acc[i][0]);
		__m512 v1 = _mm512_mul_ps(va, acc[i][1]);

		/* beta = 0 never reads C; beta = 1 adds with one rounding */
		if (beta != 0) {
			v0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), v0);
			v1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), v1);
		}
		if (bias) {
			v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, bias));
			v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, bias + 16));
		}
		if (res) {
			const float *ri = res + i * ldr;

			v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, ri));
			v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, ri + 16));
		}
		if (full) {
			_mm512_storeu_ps(ci, v0);
			_mm512_storeu_ps(ci + 16, v1);
		} else {
			_mm512_mask_storeu_ps(ci, m0, v0);
			_mm512_mask_storeu_ps(ci + 16, m1, v1);
		}
	}
}

/*
 * The kernels of one row count R, from body BODY compiled for target
 * TGT, twice: A packed (K_R) and A read in place (KR_R: lda a
 * compile-time "not zero", so neither loop tests it).
 */
#define KERNELS(TGT, BODY, K, KR, R)                                          \
	__attribute__((target(TGT))) static void K##_##R(                     \
		int nr, int kc, const float *a, int64_t lda, const float *b,  \
		float *c, int64_t ldc, float alpha, float beta,               \
		const float *bias, const float *res, int64_t ldr)             \
	{                                                                     \
		(void)lda;                                                    \
		BODY(R, nr, kc, a, 0, b, c, ldc, alpha, beta, bias, res, ldr); \
	}                                                                     \
	__attribute__((target(TGT))) static void KR##_##R(                    \
		int nr, int kc, const float *a, int64_t lda, const float *b,  \
		float *c, int64_t ldc, float alpha, float beta,               \
		const float *bias, const float *res, int64_t ldr)             \
	{                                                                     \
		if (lda <= 0)                                                 \
			__builtin_unreachable();                              \
		BODY(R, nr, kc, a, lda, b, c, ldc, alpha, beta, bias, res,    \
		     ldr);                                                    \
	}
#define K512(R) KERNELS("avx512f", body512, k512, k512r, R)
K512(1) K512(2) K512(3) K512(4) K512(5) K512(6) K512(7)
K512(8) K512(9) K512(10) K512(11) K512(12) K512(13) K512(14)

typedef void kfn(int nr, int kc, const float *a, int64_t lda, const float *b,
		 float *c, int64_t ldc, float alpha, float beta,
		 const float *bias, const float *res, int64_t ldr);

static void run512(int mr, int nr, int kc, const float *a, int64_t lda,
		   const float *b, float *c, int64_t ldc, float alpha,
		   float beta, const float *bias, const float *res, int64_t ldr)
{
	static kfn *const k[2][MR512] = {
		{ k512_1, k512_2, k512_3, k512_4, k512_5, k512_6, k512_7,
		  k512_8, k512_9, k512_10, k512_11, k512_12, k512_13, k512_14 },
		{ k512r_1, k512r_2, k512r_3, k512r_4, k512r_5, k512r_6, k512r_7,
		  k512r_8, k512r_9, k512r_10, k512r_11, k512r_12, k512r_13,
		  k512r_14 },
	};

	k[lda != 0][mr - 1](nr, kc, a, lda, b, c, ldc, alpha, beta, bias, res,
			    ldr);
}

/* ---- AVX2 + FMA: 6 x 16 ---- */

#define MR256 6
#define NR256 16

/* body512's contract with AVX2 vectors. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
body256(int mr, int nr, int kc, const float *a, int64_t lda, const float *b,
	float *c, int64_t ldc, float alpha, float beta, const float *bias,
	const float *res, int64_t ldr)
{
	__m256 acc[MR256][2], va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
	__m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	__m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), lane);
	__m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr - 8), lane);
	int full = nr == NR256;
	A_ROWS(a, lda, mr);

#pragma GCC unroll 6
	for (int i = 0; i < mr; i++)
		acc[i][0] = acc[i][1] = _mm256_setzero_ps();
	for (int p = 0; p < kc; p++) {
		__m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);

#pragma GCC unroll 6
		for (int i = 0; i < mr; i++) {
			__m256 ai = _mm256_set1_ps(A_AT(a, lda, i));

			acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
			acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
		}
		A_NEXT(a, lda, MR256);
		b += NR256;
	}
#pragma GCC unroll 6
	for (int i = 0; i < mr; i++) {
		float *ci = c + i * ldc;
		__m256 v0 = _mm256_mul_ps(va, acc[i][0]);
		__m256 v1 = _mm256_mul_ps(va, acc[i][1]);

		if (beta != 0) {
			v0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(ci, m0), v0);
			v1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(ci + 8, m1), v1);
		}
		if (bias) {
			v0 = _mm256_add_ps(v0, _mm256_maskload_ps(bias, m0));
			v1 = _mm256_add_ps(v1, _mm256_maskload_ps(bias + 8, m1));
		}
		if (res) {
			const float *ri = res + i * ldr;

			v0 = _mm256_add_ps(v0, _mm256_maskload_ps(ri, m0));
			v1 = _mm256_add_ps(v1, _mm256_maskload_ps(ri + 8, m1));
		}
		if (full) {
			_mm256_storeu_ps(ci, v0);
			_mm256_storeu_ps(ci + 8, v1);
		} else {
			_mm256_maskstore_ps(ci, m0, v0);
			_mm256_maskstore_ps(ci + 8, m1, v1);
		}
	}
}

#define K256(R) KERNELS("avx2,fma", body256, k256, k256r, R)
K256(1) K256(2) K256(3) K256(4) K256(5) K256(6)

static void run256(int mr, int nr, int kc, const float *a, int64_t lda,
		   const float *b, float *c, int64_t ldc, float alpha,
		   float beta, const float *bias, const float *res, int64_t ldr)
{
	static kfn *const k[2][MR256] = {
		{ k256_1, k256_2, k256_3, k256_4, k256_5, k256_6 },
		{ k256r_1, k256r_2, k256r_3, k256r_4, k256r_5, k256r_6 },
	};

	k[lda != 0][mr - 1](nr, kc, a, lda, b, c, ldc, alpha, beta, bias, res,
			    ldr);
}

/*
 * C[M,N] = GELU(C), rows ldc apart, on the kernel's vectors (vmath.h's
 * vgelu512 and vgelu256: the same bits at either width, and as the
 * scalar vgelu); gelu_c where the CPU has neither.
 */
__attribute__((target("avx512f,avx2,fma"))) static void
gelu512(int M, int N, float *C, int64_t ldc)
{
	for (int i = 0; i < M; i++)
		vgelu_span512(C + (int64_t)i * ldc, C + (int64_t)i * ldc, N);
}

__attribute__((target("avx2,fma"))) static void
gelu256(int M, int N, float *C, int64_t ldc)
{
	for (int i = 0; i < M; i++)
		vgelu_span256(C + (int64_t)i * ldc, C + (int64_t)i * ldc, N);
}

static void gelu_c(int M, int N, float *C, int64_t ldc)
{
	for (int i = 0; i < M; i++)
		for (int j = 0; j < N; j++)
			C[(int64_t)i * ldc + j] = vgelu(C[(int64_t)i * ldc + j]);
}

void mtl_gemm_epi_apply(const struct mtl_gemm_epi *epi, int M, int N,
			float *C, int64_t ldc)
{
	for (int i = 0; i < M; i++) {
		float *c = C + (int64_t)i * ldc;
		const float *b = epi->bias;
		const float *r = epi->res ? epi->res + (int64_t)i * epi->ldr : NULL;

		if (b)
#pragma omp simd
			for (int j = 0; j < N; j++)
				c[j] += b[j];
		if (r)
#pragma omp simd
			for (int j = 0; j < N; j++)
				c[j] += r[j];
	}
	if (epi->gelu)
		(mtl_gemm_supported(MTL_GEMM_AVX512) ? gelu512
		 : mtl_gemm_supported(MTL_GEMM_AVX2) ? gelu256
						     : gelu_c)(M, N, C, ldc);
}

static const struct kernel kernels[] = {
	[MTL_GEMM_AVX2] = { MR256, NR256, 256, run256, gelu256 },
	[MTL_GEMM_AVX512] = { MR512, NR512, 512, run512, gelu512 },
};

/* ---- packing ---- */

/*
 * dst[p][0..n) = src[p * ld ..] for p < rows, dst's rows n floats apart,
 * when n is a sliver's width or height (6, 14, 16, 32): by copies of
 * constant size, which gcc makes vector moves (a call of memcpy for each
 * 24 or 56 bytes cost a quarter of a weight gradient's product on AVX2).
 * Returns the rows copied: rows, or 0 for another n.
 */
static int copy_rows(float *dst, const float *src, int64_t ld, int rows, int n)
{
#define COPY(N)                                                               \
	case N:                                                               \
		for (int p = 0; p < rows; p++)                                \
			memcpy(dst + (int64_t)p * N, src + p * ld, sizeof(float) * N); \
		return rows
	switch (n) {
		COPY(MR256);
		COPY(MR512);
		COPY(NR256);
		COPY(NR512);
	}
	return 0;
#undef COPY
}

/*
 * bp[s][p][nr] = op(B)(pc + p, jc + s*nr + j) for the slivers s of the
 * nc columns from jc, zero beyond nc.
 */
__attribute__((target("avx2"))) static void
pack_b(float *bp, const float *B, int64_t ldb, int tb, int pc, int kc, int jc,
       int nc, int nr)
{
	for (int j0 = 0; j0 < nc; j0 += nr, bp += (int64_t)kc * nr) {
		int w = nc - j0 < nr ? nc - j0 : nr, p = 0;

		if (!tb) {
			const float *src = B + (int64_t)pc * ldb + jc + j0;

			if (w == nr)
				p = copy_rows(bp, src, ldb, kc, nr);
			for (; p < kc; p++, src += ldb) {
				memcpy(bp + (int64_t)p * nr, src, sizeof(float) * (size_t)w);
				memset(bp + (int64_t)p * nr + w, 0,
				       sizeof(float) * (size_t)(nr - w));
			}
			continue;
		}
		/* op(B) = B^T: column j of op(B) is row j of B, 8x8 at a time */
		for (; p + 8 <= kc; p += 8)
			for (int j = 0; j < nr; j += 8) {
				__m256 col[8];
				const float *pf = B + (int64_t)(jc + j0 + j) * ldb + pc + p + PF_AHEAD;

				for (int i = 0; !(p & 15) && i < 8 && i < w - j; i++)
					_mm_prefetch((const char *)(pf + i * ldb), _MM_HINT_T0);
				transpose8(col, B + (int64_t)(jc + j0 + j) * ldb + pc + p,
					   ldb, w - j);
				for (int q = 0; q < 8; q++)
					_mm256_store_ps(bp + (int64_t)(p + q) * nr + j, col[q]);
			}
		for (; p < kc; p++)
			for (int j = 0; j < nr; j++)
				bp[(int64_t)p * nr + j] =
					j < w ? B[(int64_t)(jc + j0 + j) * ldb + pc + p] : 0.0f;
	}
}

/* ap[p][MR] = op(A)(i0 + i, pc + p) for i < mr (the rest unused). */
__attribute__((target("avx2"))) static void
pack_a(float *ap, const float *A, int64_t lda, int ta, int i0, int mr, int pc,
       int kc, int MR)
{
	int p = 0;

	if (ta) {
		const float *src = A + (int64_t)pc * lda + i0;

		if (mr == MR)
			p = copy_rows(ap, src, lda, kc, MR);
		for (; p < kc; p++, src += lda)
			memcpy(ap + (int64_t)p * MR, src, sizeof(float) * (size_t)mr);
		return;
	}
	/* rows of op(A) are rows of A: 8x8 blocks, stored up to row mr */
	for (; p + 8 <= kc; p += 8)
		for (int i = 0; i < mr; i += 8) {
			__m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
			__m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(mr - i), lane);
			__m256 col[8];

			transpose8(col, A + (int64_t)(i0 + i) * lda + pc + p, lda, mr - i);
			for (int q = 0; q < 8; q++)
				_mm256_maskstore_ps(ap + (int64_t)(p + q) * MR + i, m, col[q]);
		}
	for (; p < kc; p++)
		for (int i = 0; i < mr; i++)
			ap[(int64_t)p * MR + i] = A[(int64_t)(i0 + i) * lda + pc + p];
}

/*
 * Whether a kernel of mr rows reads op(A) from a packed copy (else in
 * place): always for op(A) = A^T, whose rows are columns in memory; for A
 * itself when its rows are a multiple of 1 KB apart (lda % 256 == 0:
 * bge-base's 768 and 3072, bge-large's, bge-small's 1536) and the sliver
 * has more rows than an L1 set has ways (8 on Zen 3, 12 on Zen 5): the
 * AVX-512 sliver's 14 rows then start in at most 4 of L1's 64 sets and
 * evict each other while the B sliver streams by.  Measured interleaved
 * in one process, bge-base's AVX-512 forward ran 3-7% faster with A
 * packed, bge-small's (384: 8 sets) 1-2% faster with it read in place;
 * the AVX2 kernel's 6 rows fit a set, and bge-base's forward ran 1-3%
 * faster with them read in place (bench_encode -d -t 2, as an AVX2-only
 * CPU, alternated).
 */
static int pack_a_first(int ta, int64_t lda, int mr)
{
	return ta || (lda % 256 == 0 && mr > 8);
}

int64_t mtl_gemm_ld_in_place(int64_t n)
{
	return pack_a_first(0, n, MR512) ? n + 16 : n;
}

/* ---- the driver ---- */

static void blis(int ta, int tb, int M, int N, int K, float alpha,
		 const float *A, int64_t lda, const float *B, int64_t ldb,
		 float beta, float *C, int64_t ldc)
{
	rntm_t rntm;

	bli_rntm_init(&rntm);
	bli_rntm_set_num_threads(1, &rntm);
	bli_sgemm_ex(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
		     tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, M, N, K, &alpha,
		     (float *)A, lda, 1, (float *)B, ldb, 1, &beta, C, ldc, 1,
		     NULL, &rntm);
}

/* C = beta * C, for K = 0 or alpha = 0 (beta = 0 writes zeros). */
static void scale_c(int M, int N, float beta, float *C, int64_t ldc)
{
	for (int i = 0; i < M; i++) {
		float *c = C + (int64_t)i * ldc;

		if (beta == 0)
			memset(c, 0, sizeof(float) * (size_t)N);
		else
			for (int j = 0; j < N; j++)
				c[j] *= beta;
	}
}

struct mtl_gemm_epi mtl_gemm_epi_at(const struct mtl_gemm_epi *epi,
				    int64_t i0, int64_t j0)
{
	struct mtl_gemm_epi e = *epi;

	if (e.bias)
		e.bias += j0;
	if (e.res)
		e.res += i0 * e.ldr + j0;
	return e;
}

/*
 * C[i0.., jc..jc+nc) = alpha a panel + bt C for one sliver of mr rows
 * (a: kc x MR packed when lda is 0, else mr rows lda apart, A_AT; panel:
 * kc x nc packed), tile by tile, then epi (NULL: none; given at the last
 * K block): bias and res in the kernel's registers, the GELU on the tile
 * just written.
 */
static void sliver(const struct kernel *k, int mr, int nc, int kc,
		   const float *a, int64_t lda, const float *panel, float alpha,
		   float bt, float *C, int64_t ldc, int i0, int jc,
		   const struct mtl_gemm_epi *epi)
{
	for (int jr = 0; jr < nc; jr += k->nr) {
		int nr = nc - jr < k->nr ? nc - jr : k->nr;
		float *c = C + (int64_t)i0 * ldc + jc + jr;
		struct mtl_gemm_epi t = { 0 };

		if (epi)
			t = mtl_gemm_epi_at(epi, i0, jc + jr);
		k->run(mr, nr, kc, a, lda, panel + (int64_t)jr * kc, c, ldc,
		       alpha, bt, t.bias, t.res, t.ldr);
		if (epi && epi->gelu)
			k->gelu(mr, nr, c, ldc);
	}
}

/* The product, each panel of op(B) packed into bp in turn. */
static void packed(const struct kernel *k, float *bp, int ta, int tb, int M,
		   int N, int K, float alpha, const float *A, int64_t lda,
		   const float *B, int64_t ldb, float beta, float *C,
		   int64_t ldc, const struct mtl_gemm_epi *epi)
{
	int nk = (K + KC_MAX - 1) / KC_MAX, kcb = (K + nk - 1) / nk;
	int pk = pack_a_first(ta, lda, k->mr);
	float ap[KC_MAX * MR512] __attribute__((aligned(64)));

	for (int jc = 0; jc < N; jc += k->nc) {
		int nc = N - jc < k->nc ? N - jc : k->nc;

		for (int pc = 0; pc < K; pc += kcb) {
			int kc = K - pc < kcb ? K - pc : kcb;
			/* later K blocks add to what the first wrote */
			float bt = pc ? 1.0f : beta;
			/* the last K block finishes its tiles: epilogue */
			const struct mtl_gemm_epi *e = pc + kc == K ? epi : NULL;

			pack_b(bp, B, ldb, tb, pc, kc, jc, nc, k->nr);
			for (int ir = 0; ir < M; ir += k->mr) {
				int mr = M - ir < k->mr ? M - ir : k->mr;

				if (pk)
					pack_a(ap, A, lda, ta, ir, mr, pc, kc, k->mr);
				sliver(k, mr, nc, kc,
				       pk ? ap : A + (int64_t)ir * lda + pc,
				       pk ? 0 : lda, bp, alpha, bt, C, ldc, ir,
				       jc, e);
			}
		}
	}
}

/*
 * The product with all of op(B) packed beforehand by mtl_gemm_pack_b
 * (pre), where the panel of columns jc.. and K block pc.. starts
 * jc * K + pc * ncpad floats in (every panel before the last is a whole
 * nc, a multiple of nr; ncpad is this panel's width rounded up to nr).
 * Unlike packed(), for each group of up to PRE_ROWS rows and each K
 * block, the group's slivers of op(A) are packed once (when they are
 * packed at all: pack_a_first) and used for every panel of columns,
 * where packed() packs a sliver again for every panel.  (Walking the
 * panels outermost instead, each serving every row while in L2, read the
 * weights once per product but A from L3 once per panel: bge-base's
 * forward ran 3-7% slower, bge-small's the same.)  Each tile still adds
 * its K blocks in order, so the bits are packed()'s.
 */
static void prepacked(const struct kernel *k, const float *pre, int ta, int M,
		      int N, int K, float alpha, const float *A, int64_t lda,
		      float beta, float *C, int64_t ldc,
		      const struct mtl_gemm_epi *epi)
{
	int nk = (K + KC_MAX - 1) / KC_MAX, kcb = (K + nk - 1) / nk;
	int pk = pack_a_first(ta, lda, k->mr);
	float ap[KC_MAX * PRE_ROWS] __attribute__((aligned(64)));

	for (int i0 = 0; i0 < M; i0 += PRE_ROWS) {
		int mg = M - i0 < PRE_ROWS ? M - i0 : PRE_ROWS;

		for (int pc = 0; pc < K; pc += kcb) {
			int kc = K - pc < kcb ? K - pc : kcb;
			float bt = pc ? 1.0f : beta;
			const struct mtl_gemm_epi *e = pc + kc == K ? epi : NULL;

			for (int ir = 0; pk && ir < mg; ir += k->mr)
				pack_a(ap + (int64_t)ir * kc, A, lda, ta, i0 + ir,
				       mg - ir < k->mr ? mg - ir : k->mr, pc, kc,
				       k->mr);
			for (int jc = 0; jc < N; jc += k->nc) {
				int nc = N - jc < k->nc ? N - jc : k->nc;
				int64_t ncpad = (nc + k->nr - 1) / k->nr * k->nr;
				const float *panel = pre + (int64_t)jc * K + pc * ncpad;

				for (int ir = 0; ir < mg; ir += k->mr)
					sliver(k, mg - ir < k->mr ? mg - ir : k->mr,
					       nc, kc,
					       pk ? ap + (int64_t)ir * kc
						  : A + (int64_t)(i0 + ir) * lda + pc,
					       pk ? 0 : lda, panel, alpha, bt,
					       C, ldc, i0 + ir, jc, e);
			}
		}
	}
}

/* The product on kernel k with epi tile by tile; -1 (nothing done) if
 * the panel does not fit on the stack and cannot be allocated. */
static int ours(const struct kernel *k, int ta, int tb, int M, int N, int K,
		float alpha, const float *A, int64_t lda, const float *B,
		int64_t ldb, float beta, float *C, int64_t ldc,
		const struct mtl_gemm_epi *epi)
{
	int nk = (K + KC_MAX - 1) / KC_MAX, kc = (K + nk - 1) / nk;
	int nc = N < k->nc ? N : k->nc;
	int64_t need = (int64_t)kc * ((nc + k->nr - 1) / k->nr * k->nr);

	if (need <= STACK_PANEL) {
		float bp[STACK_PANEL] __attribute__((aligned(64)));

		packed(k, bp, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta,
		       C, ldc, epi);
	} else {
		float *bp = aligned_alloc(64, sizeof(float) * (size_t)need);

		if (!bp)
			return -1;
		packed(k, bp, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta,
		       C, ldc, epi);
		free(bp);
	}
	return 0;
}

void mtl_gemm_fused_ex(enum mtl_gemm_kernel kind, int ta, int tb, int M,
		       int N, int K, float alpha, const float *A, int64_t lda,
		       const float *B, int64_t ldb, float beta, float *C,
		       int64_t ldc, const struct mtl_gemm_epi *epi)
{
	MTL_ASSERT(mtl_gemm_supported(kind));
	MTL_ASSERT(M >= 0 && N >= 0 && K >= 0);
	if (M == 0 || N == 0)
		return;
	if (K == 0 || alpha == 0)
		scale_c(M, N, beta, C, ldc);
	else if (kind != MTL_GEMM_BLIS &&
		 !ours(&kernels[kind], ta, tb, M, N, K, alpha, A, lda, B, ldb,
		       beta, C, ldc, epi))
		return; /* the epilogue ran tile by tile */
	else
		blis(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
	if (epi)
		mtl_gemm_epi_apply(epi, M, N, C, ldc);
}

void mtl_gemm_ex(enum mtl_gemm_kernel kind, int ta, int tb, int M, int N,
		 int K, float alpha, const float *A, int64_t lda,
		 const float *B, int64_t ldb, float beta, float *C,
		 int64_t ldc)
{
	mtl_gemm_fused_ex(kind, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta,
			  C, ldc, NULL);
}

/* ---- choosing a kernel ---- */

int mtl_gemm_supported(enum mtl_gemm_kernel k)
{
	switch (k) {
	case MTL_GEMM_BLIS:
		return 1;
	case MTL_GEMM_AVX2:
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	case MTL_GEMM_AVX512: /* its packing uses AVX2 */
		return __builtin_cpu_supports("avx512f") &&
		       __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	}
	return 0;
}

const char *mtl_gemm_name(enum mtl_gemm_kernel k)
{
	return k == MTL_GEMM_AVX512 ? "avx512" : k == MTL_GEMM_AVX2 ? "avx2" : "blis";
}

const char *mtl_gemm_blis_arch(void)
{
	bli_init(); /* before the query: BLIS_ARCH_TYPE needs its contexts */
	return bli_arch_string(bli_arch_query_id());
}

/*
 * Ours, the widest the CPU has: measured faster than BLIS 0.9 wherever it
 * was compared (docs/performance.md, "Choosing"): on Zen 5, where BLIS
 * knows no kernels of its own, and against BLIS's zen3 and skx kernels
 * (BLIS_ARCH_TYPE), in the whole encoder, whose epilogues and weights
 * packed once only ours have.  BLIS where the CPU has no AVX2.
 */
static enum mtl_gemm_kernel choose(void)
{
	const char *want = getenv("MTL_GEMM");
	enum mtl_gemm_kernel k;

	for (k = MTL_GEMM_BLIS; want && k <= MTL_GEMM_AVX512; k++)
		if (!strcmp(want, mtl_gemm_name(k)) && mtl_gemm_supported(k))
			return k;
	for (k = MTL_GEMM_AVX512; k > MTL_GEMM_BLIS; k--)
		if (mtl_gemm_supported(k))
			return k;
	return MTL_GEMM_BLIS;
}

enum mtl_gemm_kernel mtl_gemm_default(void)
{
	/* -1: not chosen yet; racing first callers choose the same */
	static _Atomic int chosen = -1;
	int k = chosen;

	if (k < 0)
		chosen = k = (int)choose();
	return (enum mtl_gemm_kernel)k;
}

void mtl_gemm(int ta, int tb, int M, int N, int K, float alpha,
	      const float *A, int64_t lda, const float *B, int64_t ldb,
	      float beta, float *C, int64_t ldc)
{
	mtl_gemm_ex(mtl_gemm_default(), ta, tb, M, N, K, alpha, A, lda, B,
		    ldb, beta, C, ldc);
}

size_t mtl_gemm_packed_len(enum mtl_gemm_kernel kind, int N, int K)
{
	const struct kernel *k = &kernels[kind];

	MTL_ASSERT(kind != MTL_GEMM_BLIS && N >= 0 && K >= 0);
	return (size_t)K * (size_t)((N + k->nr - 1) / k->nr * k->nr);
}

void mtl_gemm_pack_b(enum mtl_gemm_kernel kind, int tb, int N, int K,
		     const float *B, int64_t ldb, float *dst)
{
	const struct kernel *k = &kernels[kind];
	int nk = (K + KC_MAX - 1) / KC_MAX, kcb = K ? (K + nk - 1) / nk : 1;

	MTL_ASSERT(mtl_gemm_supported(kind) && kind != MTL_GEMM_BLIS);
	for (int jc = 0; jc < N; jc += k->nc) {
		int nc = N - jc < k->nc ? N - jc : k->nc;
		int64_t ncpad = (nc + k->nr - 1) / k->nr * k->nr;

		for (int pc = 0; pc < K; pc += kcb)
			pack_b(dst + (int64_t)jc * K + pc * ncpad, B, ldb, tb, pc,
			       K - pc < kcb ? K - pc : kcb, jc, nc, k->nr);
	}
}

void mtl_gemm_unpack_b(enum mtl_gemm_kernel kind, int tb, int N, int K,
		       const float *bp, float *B, int64_t ldb)
{
	const struct kernel *k = &kernels[kind];
	int nk = (K + KC_MAX - 1) / KC_MAX, kcb = K ? (K + nk - 1) / nk : 1;

	MTL_ASSERT(kind != MTL_GEMM_BLIS);
	for (int jc = 0; jc < N; jc += k->nc) {
		int nc = N - jc < k->nc ? N - jc : k->nc;
		int64_t ncpad = (nc + k->nr - 1) / k->nr * k->nr;

		for (int pc = 0; pc < K; pc += kcb) {
			int kc = K - pc < kcb ? K - pc : kcb;
			const float *s = bp + (int64_t)jc * K + pc * ncpad;

			/* sliver by sliver, as pack_b wrote them; for B (tb)
			 * each column of a sliver is a run of a row of B */
			for (int j0 = 0; j0 < nc; j0 += k->nr, s += (int64_t)kc * k->nr)
				for (int j = 0; j < k->nr && j0 + j < nc; j++)
					for (int p = 0; p < kc; p++) {
						int64_t n = jc + j0 + j, q = pc + p;

						B[tb ? n * ldb + q : q * ldb + n] =
							s[(int64_t)p * k->nr + j];
					}
		}
	}
}

void mtl_gemm_prepacked(enum mtl_gemm_kernel kind, int ta, int M, int N,
			int K, float alpha, const float *A, int64_t lda,
			const float *bp, float beta, float *C, int64_t ldc,
			const struct mtl_gemm_epi *epi)
{
	MTL_ASSERT(mtl_gemm_supported(kind) && kind != MTL_GEMM_BLIS);
	MTL_ASSERT(M >= 0 && N >= 0 && K >= 0);
	if (M == 0 || N == 0)
		return;
	if (K == 0 || alpha == 0) {
		scale_c(M, N, beta, C, ldc);
		if (epi)
			mtl_gemm_epi_apply(epi, M, N, C, ldc);
		return;
	}
	prepacked(&kernels[kind], bp, ta, M, N, K, alpha, A, lda, beta, C, ldc,
		  epi);
}

void mtl_gemm_fused(int ta, int tb, int M, int N, int K, float alpha,
		    const float *A, int64_t lda, const float *B, int64_t ldb,
		    float beta, float *C, int64_t ldc,
		    const struct mtl_gemm_epi *epi)
{
	mtl_gemm_fused_ex(mtl_gemm_default(), ta, tb, M, N, K, alpha, A, lda,
			  B, ldb, beta, C, ldc, epi);
}
