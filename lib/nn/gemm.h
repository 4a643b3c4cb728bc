/*
 * gemm.h - mtl's own single-threaded sgemm, with BLIS as the fallback.
 *
 *   C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C
 *
 * row-major throughout: op(A)(i,p) is A[i*lda + p], or A[p*lda + i] when
 * ta is set (A stored transposed); likewise op(B)(p,j) is B[p*ldb + j], or
 * B[j*ldb + p] with tb.  C's rows are ldc apart and its columns adjacent.
 * beta = 0 writes C without reading it (NaN there does not propagate, as
 * in BLAS); beta = 1 adds into C.
 *
 * Kernels: packed panels of op(B) (KC x NC, zero-padded to whole slivers
 * of NR columns) and slivers of op(A) (MR x KC, read where they lie, or
 * packed when ta is set), multiplied by a register-blocked micro-kernel
 * written with intrinsics: 14x32 for AVX-512F, 6x16 for AVX2+FMA.  Each
 * is compiled with its own target attribute, so one build (whatever
 * -march says) runs everywhere and uses AVX-512 only on a CPU that has
 * it; MTL_GEMM_BLIS calls bli_sgemm_ex on one thread.
 *
 * mtl_gemm_default() picks the kernel once per process: the environment
 * variable MTL_GEMM ("blis", "avx2" or "avx512") if the CPU supports that
 * kernel; otherwise (unset, unknown or unsupported) the widest of ours the
 * CPU supports, and BLIS only on a CPU without AVX2 and FMA.
 *
 * Summation order: each element of C is summed over K in order within
 * blocks of KC (a fixed value per kernel), whatever M, N, the strides or
 * the element's position, so results depend only on the kernel, K and
 * the data: the same on every thread count and column slice.
 *
 * Epilogue: mtl_gemm_fused_ex also applies element-wise work to C after
 * the product (a bias per column, a residual matrix, the exact GELU), to
 * each MR x NR tile of C right after the micro-kernel wrote its last K
 * block, while the tile is in L1, instead of in passes over the whole
 * of C afterwards (an encoder's [B*T, 4H] is megabytes: L3 at best).
 * The tile's product is finished and stored first and the epilogue
 * reads it back, each step one rounding, so the bits are those of the
 * product followed by the separate passes (mtl_linear_forward,
 * mtl_residual_forward, mtl_gelu_forward in ops.h), whatever the kernel;
 * the GELU is vmath.h's, the one mtl_gelu_forward runs, compiled with the
 * kernel's target (16 lanes beside the AVX-512 kernel: the lane count
 * changes no bit).  BLIS runs the passes after its product.
 *
 * Nothing here fails: a panel too large for the stack is allocated, and
 * if that allocation fails the product is left to BLIS.
 */
#ifndef MTL_GEMM_H
#define MTL_GEMM_H

#include <stddef.h>
#include <stdint.h>

enum mtl_gemm_kernel {
	MTL_GEMM_BLIS,   /* bli_sgemm_ex, one thread */
	MTL_GEMM_AVX2,   /* 6x16 micro-kernel, AVX2 + FMA */
	MTL_GEMM_AVX512, /* 14x32 micro-kernel, AVX-512F */
};

/* 1 if kernel k can run on this CPU (BLIS always can). */
int mtl_gemm_supported(enum mtl_gemm_kernel k);

/* The kernel mtl_gemm uses (see above); the same for the whole process. */
enum mtl_gemm_kernel mtl_gemm_default(void);

/* "blis", "avx2", "avx512". */
const char *mtl_gemm_name(enum mtl_gemm_kernel k);

/* BLIS's sub-configuration for this CPU ("zen3", "skx", "generic", or the
 * one BLIS_ARCH_TYPE asks for), BLIS initialised first. */
const char *mtl_gemm_blis_arch(void);

/* The product above with kernel k, which must be supported (asserted). */
void mtl_gemm_ex(enum mtl_gemm_kernel k, int ta, int tb, int M, int N, int K,
		 float alpha, const float *A, int64_t lda, const float *B,
		 int64_t ldb, float beta, float *C, int64_t ldc);

/* mtl_gemm_ex with mtl_gemm_default(). */
void mtl_gemm(int ta, int tb, int M, int N, int K, float alpha,
	      const float *A, int64_t lda, const float *B, int64_t ldb,
	      float beta, float *C, int64_t ldc);

/*
 * What mtl_gemm_fused_ex does to C once the product is in it, in this
 * order, for each element C(i,j) (i < M, j < N):
 *   C(i,j) += bias[j]                  (bias NULL: skipped)
 *   C(i,j) += res[i*ldr + j]           (res NULL: skipped)
 *   C(i,j)  = GELU(C(i,j))             (gelu 0: skipped)
 * bias and res are indexed like C: for a slice of C's columns from lo,
 * pass bias + lo and res + lo.  res must not overlap C.
 */
struct mtl_gemm_epi {
	const float *bias; /* [N] */
	const float *res;  /* [M, ldr] */
	int64_t ldr;
	int gelu;
};

/* mtl_gemm_ex, then epi (NULL: none) on C; same bits as the product
 * followed by mtl_gemm_epi_apply on the whole of C. */
void mtl_gemm_fused_ex(enum mtl_gemm_kernel k, int ta, int tb, int M, int N,
		       int K, float alpha, const float *A, int64_t lda,
		       const float *B, int64_t ldb, float beta, float *C,
		       int64_t ldc, const struct mtl_gemm_epi *epi);

/* mtl_gemm_fused_ex with mtl_gemm_default(). */
void mtl_gemm_fused(int ta, int tb, int M, int N, int K, float alpha,
		    const float *A, int64_t lda, const float *B, int64_t ldb,
		    float beta, float *C, int64_t ldc,
		    const struct mtl_gemm_epi *epi);

/* epi for the block of C from row i0, column j0: bias and res moved
 * there (a NULL one stays NULL). */
struct mtl_gemm_epi mtl_gemm_epi_at(const struct mtl_gemm_epi *epi,
				    int64_t i0, int64_t j0);

/* epi applied to C[M,N] (rows ldc apart) as a pass on its own: what the
 * fused product does tile by tile, and what follows a BLIS product. */
void mtl_gemm_epi_apply(const struct mtl_gemm_epi *epi, int M, int N,
			float *C, int64_t ldc);

/*
 * Weights packed once: op(B)[K,N] in kernel k's panels (not BLIS), so
 * that a product with the same B many times, as inference does with the
 * encoder's weights, does not pack them again each time.
 * mtl_gemm_packed_len() floats, 64-byte aligned, written by
 * mtl_gemm_pack_b() from B as mtl_gemm_ex() reads it (tb, ldb).
 * mtl_gemm_prepacked() is mtl_gemm_fused_ex() with that B, bit for bit
 * (the same panels, summed in the same order), for any M and any rows of
 * A and C: threads may each take rows of one packed B.
 */
size_t mtl_gemm_packed_len(enum mtl_gemm_kernel k, int N, int K);
void mtl_gemm_pack_b(enum mtl_gemm_kernel k, int tb, int N, int K,
		     const float *B, int64_t ldb, float *dst);
/* The inverse: B (as mtl_gemm_pack_b read it) from its packed copy bp. */
void mtl_gemm_unpack_b(enum mtl_gemm_kernel k, int tb, int N, int K,
		       const float *bp, float *B, int64_t ldb);
void mtl_gemm_prepacked(enum mtl_gemm_kernel k, int ta, int M, int N, int K,
			float alpha, const float *A, int64_t lda,
			const float *bp, float beta, float *C, int64_t ldc,
			const struct mtl_gemm_epi *epi);

/*
 * A row stride of at least n floats at which our kernels read op(A) = A
 * where it lies instead of packing it: n, or n + 16 when n floats are a
 * multiple of 1 KB (a sliver's rows would share a few L1 sets).  For a
 * caller that lays out a product's input itself.
 */
int64_t mtl_gemm_ld_in_place(int64_t n);

#endif
