/*
 * ops.c - encoder kernels on mtl's or BLIS's sgemm, threaded by par.h; see
 * ops.h.
 *
 * Built without -ffast-math, so gcc will not reorder a float sum: every
 * reduction here keeps 16 partial sums, which gcc turns into one AVX-512
 * register (or two AVX2 ones) while the rounding stays defined.  exp, the
 * GELU and its derivative are straight-line polynomials (vmath.h) so that
 * their loops vectorise; a libm call per element would cost as much as
 * the matrix products on the FFN.
 */
#include "ops.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include <blis.h>

#include "err.h"
#include "gemm.h"
#include "ops_int.h"
#include "par.h"
#include "vmath.h"

/* ---- scalar building blocks ---- */

float mtl_expf(float x)
{
	return vexp(x);
}

/* Sum of x[0..n-1] in 16 lanes. */
static inline float sum16(const float *x, int n)
{
	float acc[16] = { 0 };
	int i = 0;

	for (; i + 16 <= n; i += 16)
		for (int j = 0; j < 16; j++)
			acc[j] += x[i + j];
	for (int j = 0; i < n; i++, j++)
		acc[j] += x[i];
	for (int w = 8; w; w /= 2)
		for (int j = 0; j < w; j++)
			acc[j] += acc[j + w];
	return acc[0];
}

/* Sum of (x[i] - m)^2 in 16 lanes. */
static inline float sumsq16(const float *x, float m, int n)
{
	float acc[16] = { 0 };
	int i = 0;

	for (; i + 16 <= n; i += 16)
		for (int j = 0; j < 16; j++) {
			float d = x[i + j] - m;
			acc[j] = fmaf(d, d, acc[j]);
		}
	for (int j = 0; i < n; i++, j++) {
		float d = x[i] - m;
		acc[j] = fmaf(d, d, acc[j]);
	}
	for (int w = 8; w; w /= 2)
		for (int j = 0; j < w; j++)
			acc[j] += acc[j + w];
	return acc[0];
}

/* Max of x[0..n-1], n >= 1, in 16 lanes. */
static inline float max16(const float *x, int n)
{
	float acc[16];
	int i = 0;

	for (int j = 0; j < 16; j++)
		acc[j] = x[0];
	for (; i + 16 <= n; i += 16)
		for (int j = 0; j < 16; j++)
			acc[j] = x[i + j] > acc[j] ? x[i + j] : acc[j];
	for (int j = 0; i < n; i++, j++)
		acc[j] = x[i] > acc[j] ? x[i] : acc[j];
	for (int w = 8; w; w /= 2)
		for (int j = 0; j < w; j++)
			acc[j] = acc[j + w] > acc[j] ? acc[j + w] : acc[j];
	return acc[0];
}

/* Sum of a[i] * b[i] in 16 lanes (the order fixed, so it vectorises). */
static inline float dot16(const float *a, const float *b, int n)
{
	float acc[16] = { 0 };
	int i = 0;

	for (; i + 16 <= n; i += 16)
		for (int j = 0; j < 16; j++)
			acc[j] = fmaf(a[i + j], b[i + j], acc[j]);
	for (int j = 0; i < n; i++, j++)
		acc[j] = fmaf(a[i], b[i], acc[j]);
	for (int w = 8; w; w /= 2)
		for (int j = 0; j < w; j++)
			acc[j] += acc[j + w];
	return acc[0];
}

/*
 * A BLIS runtime for nt threads, with or without the "sup" (small,
 * unpacked) path.  sup reads the operands in place.  Measured on this
 * machine's BLIS 0.9: for products with fewer than ~512 rows (a short
 * batch, or attention with T >= 64 on per-head views whose rows are 3H
 * apart) the packed path is 2-4x faster; for attention at T = 32, sup is
 * 1.5x faster; on the large products the two are equal.
 */
static void rntm_threads(rntm_t *rntm, int nt, int sup)
{
	bli_rntm_init(rntm);
	bli_rntm_set_num_threads(nt < 1 ? 1 : nt, rntm);
	if (!sup)
		bli_rntm_disable_l3_sup(rntm);
}

/*
 * Columns [lo, lo+n) of nt slices of X (multiples of 16), for thread t.
 * The slices cover all X columns: each is ceil(X / nt) rounded up to 16.
 */
static int slice(int X, int nt, int t, int *lo)
{
	int chunk = ((X + nt - 1) / nt + 15) & ~15;

	*lo = t * chunk;
	return X - *lo < chunk ? (X - *lo > 0 ? X - *lo : 0) : chunk;
}

/*
 * C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C, row-major, then epi
 * (NULL: none; gemm.h's mtl_gemm_fused) on nt threads.  With
 * mtl_gemm_default() BLIS, BLIS threads the product (sup as above) and
 * the epilogue is a pass over C's rows after it; with one of our
 * kernels, each of the nt threads multiplies a slice of C's columns and
 * runs the epilogue on each tile as it finishes.
 */
struct gemm_job {
	int ta, tb, M, N, K, nt;
	float alpha, beta;
	const float *A, *B;
	float *C;
	int64_t lda, ldb, ldc;
	const struct mtl_gemm_epi *epi;
};

/* The epilogue on C's rows lo..hi-1 (BLIS's products). */
static void epi_rows(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct gemm_job *j = arg;

	for (int64_t i = lo; i < hi; i++) {
		struct mtl_gemm_epi e = mtl_gemm_epi_at(j->epi, (int)i, 0);

		mtl_gemm_epi_apply(&e, 1, j->N, j->C + i * j->ldc, j->ldc);
	}
}

/* Column slices t0..t1-1 of nt (slice()), each with its epilogue. */
static void gemm_slices(void *arg, int64_t t0, int64_t t1, int slot)
{
	const struct gemm_job *j = arg;

	for (int64_t t = t0; t < t1; t++) {
		int lo, n = slice(j->N, j->nt, (int)t, &lo);
		struct mtl_gemm_epi e;

		if (n <= 0)
			continue;
		if (j->epi)
			e = mtl_gemm_epi_at(j->epi, 0, lo);
		mtl_gemm_fused(j->ta, j->tb, j->M, n, j->K, j->alpha, j->A,
			       j->lda, j->B + (j->tb ? lo * j->ldb : lo), j->ldb,
			       j->beta, j->C + lo, j->ldc, j->epi ? &e : NULL);
	}
}

static void gemm_fused(int nt, int sup, int ta, int tb, int M, int N, int K,
		       float alpha, const float *A, int64_t lda, const float *B,
		       int64_t ldb, float beta, float *C, int64_t ldc,
		       const struct mtl_gemm_epi *epi)
{
	struct gemm_job j = { ta, tb, M, N, K, nt, alpha, beta, A, B, C,
			      lda, ldb, ldc, epi };

	if (mtl_gemm_default() == MTL_GEMM_BLIS) {
		rntm_t rntm;

		rntm_threads(&rntm, nt, sup);
		bli_sgemm_ex(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
			     tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, M, N, K,
			     &alpha, (float *)A, lda, 1, (float *)B, ldb, 1,
			     &beta, C, ldc, 1, NULL, &rntm);
		if (epi)
			mtl_par_for(nt, M, mtl_par_chunk(M, N, nt), epi_rows, &j);
		return;
	}
	if (nt <= 1) {
		mtl_gemm_fused(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C,
			       ldc, epi);
		return;
	}
	mtl_par_for(nt, nt, 1, gemm_slices, &j);
}

/* gemm_fused without an epilogue. */
static void gemm(int nt, int sup, int ta, int tb, int M, int N, int K,
		 float alpha, const float *A, int64_t lda, const float *B,
		 int64_t ldb, float beta, float *C, int64_t ldc)
{
	gemm_fused(nt, sup, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C,
		   ldc, NULL);
}

static void zero_part(void *arg, int64_t lo, int64_t hi, int slot)
{
	memset((float *)arg + lo, 0, sizeof(float) * (size_t)(hi - lo));
}

void mtl_zero(float *x, int64_t n, int nt)
{
	int64_t chunk = 1 << 16;

	/* four chunks at least, or not worth a thread */
	mtl_par_for(n >= 4 * chunk ? nt : 1, n, chunk, zero_part, x);
}

/* The arguments of mtl_axpy and mtl_dot. */
struct vec_job {
	float *y;
	const float *a, *b;
	float alpha;
	double *part;
	int64_t q, r; /* mtl_dot's block k: q elements, one more when k < r */
};

static void axpy_part(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct vec_job *j = arg;

#pragma omp simd
	for (int64_t i = lo; i < hi; i++)
		j->y[i] += j->alpha * j->a[i];
}

void mtl_axpy(float *y, float a, const float *x, int64_t n, int nt)
{
	struct vec_job j = { .y = y, .a = x, .alpha = a };

	mtl_par_for(nt, n, mtl_par_chunk(n, 1, nt), axpy_part, &j);
}

static void dot_blocks(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct vec_job *j = arg;

	for (int64_t k = lo; k < hi; k++) {
		int64_t i = k * j->q + (k < j->r ? k : j->r);
		int64_t end = i + j->q + (k < j->r);
		double s = 0;

		for (; i < end; i++)
			s += (double)j->a[i] * j->b[i];
		j->part[k] = s;
	}
}

double mtl_dot(const float *a, const float *b, int64_t n, int nt)
{
	double part[256], s = 0;
	int blocks = n < 65536 || nt < 1 ? 1 : nt < 256 ? nt : 256;
	struct vec_job j = { .a = a, .b = b, .part = part, .q = n / blocks,
			     .r = n % blocks };

	mtl_par_for(nt, blocks, 1, dot_blocks, &j);
	for (int k = 0; k < blocks; k++)
		s += part[k];
	return s;
}

/* ---- layers ---- */

void mtl_linear_forward_ex(float *out, const float *inp, const float *w,
			   const float *b, const float *res, int gelu, int N,
			   int C, int OC, int nt)
{
	struct mtl_gemm_epi e = { b, res, OC, gelu };

	/* out[N,OC] = inp[N,C] @ w^T: w is [OC,C] row-major, read transposed */
	gemm_fused(nt, 0, 0, 1, N, OC, C, 1.0f, inp, C, w, C, 0.0f, out, OC,
		   b || res || gelu ? &e : NULL);
}

void mtl_linear_forward(float *out, const float *inp, const float *w,
			const float *b, int N, int C, int OC, int nt)
{
	mtl_linear_forward_ex(out, inp, w, b, NULL, 0, N, C, OC, nt);
}

/* db[j0..j0+w) += column sums of dout[N,OC] there (w <= 64), summed in
 * registers first: db may alias nothing, but gcc cannot know that. */
static void colsum64(float *db, const float *dout, int N, int OC, int j0,
		     int w)
{
	float acc[64] = { 0 };

	for (int i = 0; i < N; i++) {
		const float *d = dout + (int64_t)i * OC + j0;

#pragma omp simd
		for (int j = 0; j < w; j++)
			acc[j] += d[j];
	}
	for (int j = 0; j < w; j++)
		db[j0 + j] += acc[j];
}

/* The arguments of the column sums db += sum over rows of dout. */
struct colsum_job {
	float *db;
	const float *dout;
	int N, OC;
};

/* Bands lo..hi-1 of 64 columns. */
static void colsum_bands(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct colsum_job *j = arg;

	for (int64_t b = lo; b < hi; b++) {
		int j0 = (int)b * 64;

		colsum64(j->db, j->dout, j->N, j->OC, j0,
			 j0 + 64 < j->OC ? 64 : j->OC - j0);
	}
}

void mtl_linear_backward(float *dinp, float *dw, float *db, const float *dout,
			 const float *inp, const float *w, int N, int C,
			 int OC, int nt)
{
	struct colsum_job j = { db, dout, N, OC };
	int bands = (OC + 63) / 64;

	/* dinp[N,C] += dout[N,OC] @ w[OC,C] */
	if (dinp)
		gemm(nt, 0, 0, 0, N, C, OC, 1.0f, dout, OC, w, C, 1.0f, dinp, C);
	/* dw[OC,C] += dout^T[OC,N] @ inp[N,C] */
	gemm(nt, 0, 1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
	if (!db)
		return;
	/* column sums in bands of 64 columns */
	mtl_par_for(nt, bands, mtl_par_chunk(bands, (int64_t)N * 64, nt),
		    colsum_bands, &j);
}

/* A column slice of mtl_linear_forward_split_ex: its columns lo..hi-1. */
struct split_job {
	float *out;
	const float *inp, *w;
	struct mtl_gemm_epi epi;
	int N, C, OC;
};

static void split_cols(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct split_job *j = arg;
	/* out[:, lo:hi] = inp @ w[lo:hi, :]^T, then the epilogue (+ b,
	 * + res, GELU) on those columns */
	struct mtl_gemm_epi e = mtl_gemm_epi_at(&j->epi, 0, lo);

	gemm_fused(1, 0, 0, 1, j->N, (int)(hi - lo), j->C, 1.0f, j->inp, j->C,
		   j->w + lo * j->C, j->C, 0.0f, j->out + lo, j->OC, &e);
}

void mtl_linear_forward_split_ex(float *out, const float *inp,
				 const float *w, const float *b,
				 const float *res, int gelu, int N, int C,
				 int OC, int nt)
{
	struct split_job j = { out, inp, w, { b, res, OC, gelu }, N, C, OC };
	/*
	 * One slice a thread: each slice packs all of inp again, so more
	 * slices than threads cost more packing than they gain in balance.
	 * A thread that has not started when the other has finished its
	 * slice leaves its slice to it (par.h).
	 */
	int chunk = (OC / (nt < 1 ? 1 : nt) + 15) & ~15;

	if (nt <= 1 || chunk >= OC) {
		mtl_linear_forward_ex(out, inp, w, b, res, gelu, N, C, OC, 1);
		return;
	}
	mtl_par_for(nt, OC, chunk, split_cols, &j);
}

/* Rows lo..hi-1 of mtl_linear_forward_packed. */
struct packed_job {
	float *out;
	const float *inp, *wp;
	struct mtl_gemm_epi epi;
	int C, OC;
	int64_t ldo, ldi;
};

static void packed_rows(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct packed_job *j = arg;
	struct mtl_gemm_epi e = mtl_gemm_epi_at(&j->epi, lo, 0);

	mtl_gemm_prepacked(mtl_gemm_default(), 0, (int)(hi - lo), j->OC, j->C,
			   1.0f, j->inp + lo * j->ldi, j->ldi, j->wp, 0.0f,
			   j->out + lo * j->ldo, j->ldo,
			   j->epi.bias || j->epi.res || j->epi.gelu ? &e : NULL);
}

void mtl_linear_forward_packed(float *out, int64_t ldo, const float *inp,
			       int64_t ldi, const float *wp, const float *b,
			       const float *res, int gelu, int N, int C, int OC,
			       int nt)
{
	struct packed_job j = { out, inp, wp, { b, res, OC, gelu }, C, OC, ldo, ldi };
	/* mtl_par_chunk's rows, in whole 14- and 6-row slivers (the kernels'
	 * heights) */
	int64_t chunk = (mtl_par_chunk(N, C, nt) + 41) / 42 * 42;

	mtl_par_for(nt, N, chunk, packed_rows, &j);
}

void mtl_linear_forward_split(float *out, const float *inp, const float *w,
			      const float *b, int N, int C, int OC, int nt)
{
	mtl_linear_forward_split_ex(out, inp, w, b, NULL, 0, N, C, OC, nt);
}

/* The arguments of mtl_linear_backward_split. */
struct back_job {
	float *dinp, *dw, *db;
	const float *dout, *inp, *w;
	int N, C, OC, nt;
};

/* Slices t0..t1-1 of nt: each its columns of dinp and its rows of dw, db. */
static void back_slices(void *arg, int64_t t0, int64_t t1, int slot)
{
	const struct back_job *j = arg;
	int N = j->N, C = j->C, OC = j->OC;

	for (int t = (int)t0; t < t1; t++) {
		int lo, n;

		/* dinp[:, lo:lo+n] += dout[N,OC] @ w[:, lo:lo+n] */
		n = slice(C, j->nt, t, &lo);
		if (j->dinp && n > 0)
			gemm(1, 0, 0, 0, N, n, OC, 1.0f, j->dout, OC, j->w + lo,
			     C, 1.0f, j->dinp + lo, C);
		/* dw[lo:lo+n, :] += dout[:, lo:lo+n]^T @ inp; db[lo:lo+n] */
		n = slice(OC, j->nt, t, &lo);
		if (n <= 0)
			continue;
		gemm(1, 0, 1, 0, n, C, N, 1.0f, j->dout + lo, OC, j->inp, C,
		     1.0f, j->dw + (int64_t)lo * C, C);
		for (int j0 = lo; j->db && j0 < lo + n; j0 += 64)
			colsum64(j->db, j->dout, N, OC, j0,
				 j0 + 64 < lo + n ? 64 : lo + n - j0);
	}
}

void mtl_linear_backward_split(float *dinp, float *dw, float *db,
			       const float *dout, const float *inp,
			       const float *w, int N, int C, int OC, int nt)
{
	struct back_job j = { dinp, dw, db, dout, inp, w, N, C, OC, nt };

	if (nt <= 1) {
		mtl_linear_backward(dinp, dw, db, dout, inp, w, N, C, OC, 1);
		return;
	}
	mtl_par_for(nt, nt, 1, back_slices, &j);
}

void mtl_embed_forward(float *out, const int32_t *ids, const int32_t *types,
		       const float *wte, const float *wpe, const float *wtt,
		       int B, int T, int H)
{
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++) {
			int64_t bt = (int64_t)b * T + t;
			float *o = out + bt * H;
			const float *we = wte + (int64_t)ids[bt] * H;
			const float *pe = wpe + (int64_t)t * H;
			const float *te = wtt + (int64_t)(types ? types[bt] : 0) * H;

			/* HF adds word + token type first, then position */
#pragma omp simd
			for (int i = 0; i < H; i++)
				o[i] = (we[i] + te[i]) + pe[i];
		}
}

void mtl_embed_backward(float *dwte, float *dwpe, float *dwtt,
			const float *dout, const int32_t *ids,
			const int32_t *types, int pad_id, int B, int T, int H)
{
	/* serial: two tokens with one id scatter into the same row */
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++) {
			int64_t bt = (int64_t)b * T + t;
			const float *d = dout + bt * H;
			float *pe = dwpe + (int64_t)t * H;
			float *te = dwtt + (int64_t)(types ? types[bt] : 0) * H;

			for (int i = 0; i < H; i++) {
				pe[i] += d[i];
				te[i] += d[i];
			}
			if (ids[bt] == pad_id)
				continue;
			for (int i = 0; i < H; i++)
				dwte[(int64_t)ids[bt] * H + i] += d[i];
		}
}

/* o[C] = (x - m) * s * w + b: one row, shared by the forward and
 * mtl_layernorm_apply so that a recomputed row has the same bits. */
static inline void ln_row(float *o, const float *x, const float *w,
			  const float *b, float m, float s, int C)
{
#pragma omp simd
	for (int j = 0; j < C; j++)
		o[j] = (x[j] - m) * s * w[j] + b[j];
}

struct ln_job {
	float *out, *mean, *rstd;
	const float *inp, *w, *b;
	int C;
	float eps;
};

static void ln_rows(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct ln_job *j = arg;
	int C = j->C;

	for (int64_t i = lo; i < hi; i++) {
		const float *x = j->inp + i * C;
		float m = sum16(x, C) / (float)C;
		float v = sumsq16(x, m, C) / (float)C;
		float s = 1.0f / sqrtf(v + j->eps);

		ln_row(j->out + i * C, x, j->w, j->b, m, s, C);
		j->mean[i] = m;
		j->rstd[i] = s;
	}
}

void mtl_layernorm_forward(float *out, float *mean, float *rstd,
			   const float *inp, const float *w, const float *b,
			   int N, int C, float eps, int nt)
{
	struct ln_job j = { out, mean, rstd, inp, w, b, C, eps };

	mtl_par_for(nt, N, mtl_par_chunk(N, C, nt), ln_rows, &j);
}

/* The arguments of mtl_layernorm_apply and mtl_layernorm_backward. */
struct ln_back_job {
	float *out, *dinp, *dw, *db;
	const float *dout, *inp, *w, *b, *mean, *rstd;
	int N, C;
};

static void ln_apply_rows(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct ln_back_job *j = arg;

	for (int64_t i = lo; i < hi; i++)
		ln_row(j->out + i * j->C, j->inp + i * j->C, j->w, j->b,
		       j->mean[i], j->rstd[i], j->C);
}

void mtl_layernorm_apply(float *out, const float *inp, const float *w,
			 const float *b, const float *mean, const float *rstd,
			 int N, int C, int nt)
{
	struct ln_back_job j = { .out = out, .inp = inp, .w = w, .b = b,
				 .mean = mean, .rstd = rstd, .N = N, .C = C };

	mtl_par_for(nt, N, mtl_par_chunk(N, C, nt), ln_apply_rows, &j);
}

/* dinp's rows lo..hi-1: rows are independent. */
static void ln_back_rows(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct ln_back_job *j = arg;
	int C = j->C;

	for (int64_t i = lo; i < hi; i++) {
		const float *x = j->inp + i * C;
		const float *d = j->dout + i * C;
		const float *w = j->w;
		float *dx = j->dinp + i * C;
		float m = j->mean[i], s = j->rstd[i], gm, gnm;
		float am[16] = { 0 }, an[16] = { 0 };
		int c = 0;

		/* mean(g) and mean(g * n) in 16 lanes, g = dout * w */
		for (; c + 16 <= C; c += 16)
			for (int k = 0; k < 16; k++) {
				float g = d[c + k] * w[c + k];

				am[k] += g;
				an[k] += g * ((x[c + k] - m) * s);
			}
		for (int k = 0; c < C; c++, k++) {
			float g = d[c] * w[c];

			am[k] += g;
			an[k] += g * ((x[c] - m) * s);
		}
		for (int h = 8; h; h /= 2)
			for (int k = 0; k < h; k++) {
				am[k] += am[k + h];
				an[k] += an[k + h];
			}
		gm = am[0] / (float)C;
		gnm = an[0] / (float)C;
#pragma omp simd
		for (c = 0; c < C; c++) {
			float n = (x[c] - m) * s;

			dx[c] += s * (d[c] * w[c] - gm - n * gnm);
		}
	}
}

/* dw, db's bands lo..hi-1 of 64 columns: column sums in registers, then
 * added to dw, db. */
static void ln_back_bands(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct ln_back_job *j = arg;
	int C = j->C;

	for (int64_t band = lo; band < hi; band++) {
		int j0 = (int)band * 64, w = j0 + 64 < C ? 64 : C - j0;
		float aw[64] = { 0 }, ab[64] = { 0 };

		for (int i = 0; i < j->N; i++) {
			const float *x = j->inp + (int64_t)i * C + j0;
			const float *d = j->dout + (int64_t)i * C + j0;
			float m = j->mean[i], s = j->rstd[i];

#pragma omp simd
			for (int c = 0; c < w; c++) {
				aw[c] += d[c] * ((x[c] - m) * s);
				ab[c] += d[c];
			}
		}
		for (int c = 0; c < w; c++) {
			j->dw[j0 + c] += aw[c];
			j->db[j0 + c] += ab[c];
		}
	}
}

void mtl_layernorm_backward(float *dinp, float *dw, float *db,
			    const float *dout, const float *inp,
			    const float *w, const float *mean,
			    const float *rstd, int N, int C, int nt)
{
	struct ln_back_job j = { .dinp = dinp, .dw = dw, .db = db,
				 .dout = dout, .inp = inp, .w = w,
				 .mean = mean, .rstd = rstd, .N = N, .C = C };
	int bands = (C + 63) / 64;

	mtl_par_for(nt, N, mtl_par_chunk(N, C, nt), ln_back_rows, &j);
	mtl_par_for(nt, bands, mtl_par_chunk(bands, (int64_t)N * 64, nt),
		    ln_back_bands, &j);
}

/* The arguments of an element-wise forward pass. */
struct ew_job {
	float *out;
	const float *a, *b;
};

static void residual_part(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct ew_job *j = arg;

#pragma omp simd
	for (int64_t i = lo; i < hi; i++)
		j->out[i] = j->a[i] + j->b[i];
}

void mtl_residual_forward(float *out, const float *a, const float *b,
			  int64_t n, int nt)
{
	struct ew_job j = { out, a, b };

	mtl_par_for(nt, n, mtl_par_chunk(n, 1, nt), residual_part, &j);
}

/* The arguments of an element-wise backward pass. */
struct ew_back_job {
	float *da, *db;
	const float *dout, *inp;
};

static void residual_back_part(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct ew_back_job *j = arg;

#pragma omp simd
	for (int64_t i = lo; i < hi; i++) {
		j->da[i] += j->dout[i];
		j->db[i] += j->dout[i];
	}
}

void mtl_residual_backward(float *da, float *db, const float *dout,
			   int64_t n, int nt)
{
	struct ew_back_job j = { da, db, dout, NULL };

	mtl_par_for(nt, n, mtl_par_chunk(n, 1, nt), residual_back_part, &j);
}

/*
 * AVX-512 where the CPU has it, whatever ARCH says (the same bits: one
 * element's operations do not depend on the vector width).  Chosen at run
 * time by __builtin_cpu_supports, as the kernels of gemm.c and ops_attn.c
 * are, not by target_clones: an ifunc is resolved while the program is
 * loaded, before anything (bench/avx2only.c) can change what the CPU says.
 */
static int have_v4(void)
{
	return __builtin_cpu_supports("x86-64-v4");
}

/* The GELU on vmath.h's vectors, or one by one: the same bits. */
__attribute__((target("arch=x86-64-v4"))) static void
gelu_part_v4(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct ew_job *j = arg;

	vgelu_span512(j->out + lo, j->a + lo, hi - lo);
}

__attribute__((target("avx2,fma"))) static void
gelu_part_v3(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct ew_job *j = arg;

	vgelu_span256(j->out + lo, j->a + lo, hi - lo);
}

static void gelu_part(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct ew_job *j = arg;

	for (int64_t i = lo; i < hi; i++)
		j->out[i] = vgelu(j->a[i]);
}

void mtl_gelu_forward(float *out, const float *inp, int64_t n, int nt)
{
	struct ew_job j = { out, inp, NULL };

	mtl_par_for(nt, n, mtl_par_chunk(n, 1, nt),
		    have_v4() ? gelu_part_v4
		    : mtl_gemm_supported(MTL_GEMM_AVX2) ? gelu_part_v3
							: gelu_part,
		    &j);
}

/* da += dout GELU'(inp), on vmath.h's vectors or one by one: the same bits. */
__attribute__((target("arch=x86-64-v4"))) static void
gelu_back_part_v4(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct ew_back_job *j = arg;

	vgelu_grad_span512(j->da + lo, j->inp + lo, j->dout + lo, hi - lo);
}

__attribute__((target("avx2,fma"))) static void
gelu_back_part_v3(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct ew_back_job *j = arg;

	vgelu_grad_span256(j->da + lo, j->inp + lo, j->dout + lo, hi - lo);
}

static void gelu_back_part(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct ew_back_job *j = arg;

	for (int64_t i = lo; i < hi; i++)
		j->da[i] += j->dout[i] * vgelu_grad(j->inp[i]);
}

void mtl_gelu_backward(float *dinp, const float *inp, const float *dout,
		       int64_t n, int nt)
{
	struct ew_back_job j = { dinp, NULL, dout, inp };

	mtl_par_for(nt, n, mtl_par_chunk(n, 1, nt),
		    have_v4() ? gelu_back_part_v4
		    : mtl_gemm_supported(MTL_GEMM_AVX2) ? gelu_back_part_v3
							: gelu_back_part,
		    &j);
}

void mtl_tanh_forward(float *out, const float *inp, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		out[i] = tanhf(inp[i]);
}

void mtl_tanh_backward(float *dinp, const float *out, const float *dout,
		       int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}

void mtl_relu_forward(float *out, const float *inp, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		out[i] = inp[i] > 0 ? inp[i] : 0.0f;
}

void mtl_relu_backward(float *dinp, const float *out, const float *dout,
		       int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		dinp[i] += out[i] > 0 ? dout[i] : 0.0f;
}

/* ---- dropout ---- */

/*
 * Masks multiply (x * (scale * keep)), as PyTorch's dropout does, rather
 * than select: the loops vectorise, and a dropped NaN stays NaN.
 */

void mtl_dropout_mask(uint8_t *keep, int64_t n, float p, struct mtl_rng *r)
{
	int64_t i = 0;

	if (p <= 0) {
		memset(keep, 1, (size_t)n);
		return;
	}
	/* two 24-bit uniforms per 64-bit draw: u < p drops */
	for (; i + 2 <= n; i += 2) {
		uint64_t x = mtl_rng_u64(r);
		float u0 = (float)(x >> 40) * 0x1.0p-24f;
		float u1 = (float)((x >> 16) & 0xffffff) * 0x1.0p-24f;

		keep[i] = u0 >= p;
		keep[i + 1] = u1 >= p;
	}
	if (i < n)
		keep[i] = mtl_rng_float(r) >= p;
}

void mtl_dropout_mask_at(uint8_t *keep, int64_t n, float p, uint64_t seed,
			 uint64_t ctr)
{
	int64_t i = 0, pairs;

	if (p <= 0) {
		memset(keep, 1, (size_t)n);
		return;
	}
	/* element e is half e & 1 of draw e / 2: an odd start and an odd
	 * end take half a draw, the pairs between whole ones (a vector loop:
	 * the 24-bit halves convert through int32, which AVX2 has) */
	if (n > 0 && (ctr & 1))
		keep[i++] = (float)(int32_t)((mtl_rng_at(seed, ctr >> 1) >> 16) & 0xffffff) *
				    0x1.0p-24f >= p;
	pairs = (n - i) / 2;
#pragma omp simd
	for (int64_t k = 0; k < pairs; k++) {
		uint64_t x = mtl_rng_at(seed, ((ctr + (uint64_t)i) >> 1) + (uint64_t)k);

		keep[i + 2 * k] = (float)(int32_t)(x >> 40) * 0x1.0p-24f >= p;
		keep[i + 2 * k + 1] = (float)(int32_t)((x >> 16) & 0xffffff) *
					      0x1.0p-24f >= p;
	}
	i += 2 * pairs;
	if (i < n)
		keep[i] = (float)(int32_t)(mtl_rng_at(seed, (ctr + (uint64_t)i) >> 1) >> 40) *
				  0x1.0p-24f >= p;
}

void mtl_dropout_forward(float *out, const float *inp, const uint8_t *keep,
			 float p, int64_t n)
{
	float s = p > 0 ? 1.0f / (1.0f - p) : 1.0f;

#pragma omp simd
	for (int64_t i = 0; i < n; i++)
		out[i] = inp[i] * (s * (float)keep[i]);
}

void mtl_dropout_backward(float *dinp, const float *dout, const uint8_t *keep,
			  float p, int64_t n)
{
	float s = p > 0 ? 1.0f / (1.0f - p) : 1.0f;

#pragma omp simd
	for (int64_t i = 0; i < n; i++)
		dinp[i] += dout[i] * (s * (float)keep[i]);
}

/* ---- pooling and L2 normalisation (sentence vectors) ---- */

void mtl_pool_forward(float *out, const float *inp, const int32_t *mask,
		      int B, int T, int H, enum mtl_pool mode)
{
	MTL_ASSERT(mode == MTL_POOL_CLS || mode == MTL_POOL_MEAN ||
		   mode == MTL_POOL_MAX);
	for (int b = 0; b < B; b++) {
		float *o = out + (size_t)b * H;
		const float *x = inp + (size_t)b * T * H;
		const int32_t *mb = mask ? mask + (size_t)b * T : NULL;
		float cnt = 0;

		switch (mode) {
		case MTL_POOL_CLS:
			memcpy(o, x, sizeof(float) * (size_t)H);
			break;
		case MTL_POOL_MEAN:
			memset(o, 0, sizeof(float) * (size_t)H);
			for (int t = 0; t < T; t++) {
				if (mb && !mb[t])
					continue;
				cnt += 1;
				for (int j = 0; j < H; j++)
					o[j] += x[(size_t)t * H + j];
			}
			cnt = cnt < 1e-9f ? 1e-9f : cnt;
			for (int j = 0; j < H; j++)
				o[j] /= cnt;
			break;
		default: /* MTL_POOL_MAX */
			for (int j = 0; j < H; j++)
				o[j] = -INFINITY;
			for (int t = 0; t < T; t++)
				for (int j = 0; j < H; j++) {
					float v = mb && !mb[t] ? -1e9f : x[(size_t)t * H + j];

					o[j] = v > o[j] ? v : o[j];
				}
			break;
		}
	}
}

void mtl_pool_backward(float *dinp, const float *dout, const int32_t *mask,
		       int B, int T, int H, enum mtl_pool mode)
{
	MTL_ASSERT(mode == MTL_POOL_CLS || mode == MTL_POOL_MEAN);
	for (int b = 0; b < B; b++) {
		const float *d = dout + (size_t)b * H;
		float *dx = dinp + (size_t)b * T * H;
		const int32_t *mb = mask ? mask + (size_t)b * T : NULL;
		float cnt = 0;

		if (mode == MTL_POOL_CLS) {
			for (int j = 0; j < H; j++)
				dx[j] += d[j];
			continue;
		}
		/* the forward's count, clamped the same way */
		for (int t = 0; t < T; t++)
			cnt += !mb || mb[t];
		cnt = cnt < 1e-9f ? 1e-9f : cnt;
		for (int t = 0; t < T; t++) {
			if (mb && !mb[t])
				continue;
			for (int j = 0; j < H; j++)
				dx[(size_t)t * H + j] += d[j] / cnt;
		}
	}
}

void mtl_l2norm_forward(float *out, float *norm, const float *inp, int B,
			int H)
{
	for (int b = 0; b < B; b++) {
		const float *x = inp + (size_t)b * H;
		float *o = out + (size_t)b * H;
		double ss = 0;
		float n, inv;

		for (int j = 0; j < H; j++)
			ss += (double)x[j] * x[j];
		n = (float)sqrt(ss);
		inv = 1.0f / (n > 1e-12f ? n : 1e-12f);
		for (int j = 0; j < H; j++)
			o[j] = x[j] * inv;
		if (norm)
			norm[b] = n;
	}
}

void mtl_l2norm_backward(float *dinp, const float *dout, const float *out,
			 const float *norm, int B, int H)
{
	for (int b = 0; b < B; b++) {
		const float *y = out + (size_t)b * H, *g = dout + (size_t)b * H;
		double dot = 0, n = norm[b] > 1e-12f ? norm[b] : 1e-12;

		for (int j = 0; j < H; j++)
			dot += (double)y[j] * g[j];
		for (int j = 0; j < H; j++)
			dinp[(size_t)b * H + j] += (float)((g[j] - y[j] * dot) / n);
	}
}

/* One row: p[C] = softmax(s[C] + mask[C]). */
static inline void softmax_row(float *p, const float *s, const float *mask,
			       int C)
{
	float mx, sum, inv;

	if (mask)
#pragma omp simd
		for (int j = 0; j < C; j++)
			p[j] = s[j] + mask[j];
	else if (p != s)
		memcpy(p, s, sizeof(*p) * (size_t)C);
	mx = max16(p, C);
#pragma omp simd
	for (int j = 0; j < C; j++)
		p[j] = vexp(p[j] - mx);
	sum = sum16(p, C);
	inv = 1.0f / sum;
#pragma omp simd
	for (int j = 0; j < C; j++)
		p[j] *= inv;
}

/* One row: ds[C] += p * (dp - sum(dp * p)). */
static inline void softmax_row_backward(float *ds, const float *p,
					const float *dp, int C)
{
	float dot = dot16(dp, p, C);

#pragma omp simd
	for (int j = 0; j < C; j++)
		ds[j] += p[j] * (dp[j] - dot);
}

void mtl_softmax_forward(float *probs, const float *scores,
			 const float *mask_add, int R, int C)
{
	for (int r = 0; r < R; r++)
		softmax_row(probs + (int64_t)r * C, scores + (int64_t)r * C,
			    mask_add, C);
}

void mtl_softmax_backward(float *dscores, const float *probs,
			  const float *dprobs, int R, int C)
{
	for (int r = 0; r < R; r++)
		softmax_row_backward(dscores + (int64_t)r * C,
				     probs + (int64_t)r * C,
				     dprobs + (int64_t)r * C, C);
}

/*
 * p[T,T] = softmax(scale q k^T + madd) of one (b, h), q and k rows ld
 * apart: every forward that makes a [T,T] matrix, and the training
 * backward's recomputation, so these bits are the same in all of them.
 * The product runs on the calling thread.
 */
static void head_probs(float *p, const float *q, const float *k, int64_t ld,
		       const float *madd, int T, int D, float scale)
{
	gemm(1, T < 64, 0, 1, T, T, D, scale, q, ld, k, ld, 0.0f, p, T);
	for (int i = 0; i < T; i++)
		softmax_row(p + (int64_t)i * T, p + (int64_t)i * T, madd, T);
}

size_t mtl_attention_train_scratch(int T)
{
	size_t TT = (size_t)T * T;

	/* P, dP and dS (the forward: P and the dropped P), the byte mask */
	return (3 * TT + (TT + 3) / 4 + 15) & ~(size_t)15;
}

/* The arguments of attention_forward and mtl_attention_backward. */
struct attn_job {
	float *ctx, *att, *scratch, *dqkv;
	const float *qkv, *dctx, *mask_add;
	size_t per;
	float pdrop, scale, dscale;
	uint64_t seed, ctr;
	int T, H, NH, D;
};

/* (b, h) pairs lo..hi-1 of attention_forward (below). */
static void attn_fwd_heads(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct attn_job *j = arg;
	int T = j->T, H = j->H, NH = j->NH, D = j->D;
	int64_t TT = (int64_t)T * T;

	for (int bh = (int)lo; bh < hi; bh++) {
		int b = bh / NH, h = bh % NH;
		float *s = j->att ? NULL : j->scratch + slot * j->per;
		float *p = j->att ? j->att + bh * TT : s;
		float *pd = p;
		const float *q = j->qkv + (int64_t)b * T * 3 * H + (int64_t)h * D;
		const float *k = q + H, *v = q + 2 * H;
		float *c = j->ctx ? j->ctx + (int64_t)b * T * H + (int64_t)h * D : NULL;

		head_probs(p, q, k, 3 * H, j->mask_add + (int64_t)b * T, T, D,
			   j->scale);
		if (j->pdrop > 0) {
			uint8_t *m = (uint8_t *)(s + 2 * TT);

			MTL_ASSERT(s);
			pd = s + TT;
			mtl_dropout_mask_at(m, TT, j->pdrop, j->seed,
					    j->ctr + (uint64_t)(bh * TT));
#pragma omp simd
			for (int64_t i = 0; i < TT; i++)
				pd[i] = p[i] * (j->dscale * (float)m[i]);
		}
		/* c[T,D] (row stride H) = pd[T,T] @ v[T,D] */
		if (c)
			gemm(1, T < 64, 0, 0, T, D, T, 1.0f, pd, T, v, 3 * H,
			     0.0f, c, H);
	}
}

/*
 * The shared body of the forwards.  With att, each (b, h)'s probabilities
 * go to its [T,T] slot of att; without, to the running thread's slot of
 * scratch (per floats a thread), followed there by the dropped copy and
 * the byte mask when pdrop > 0 (elements ctr + bh*T*T + ... of the
 * stream seed).  With ctx NULL, only the probabilities.
 */
static void attention_forward(float *ctx, float *att, float *scratch,
			      size_t per, const float *qkv,
			      const float *mask_add, float pdrop, uint64_t seed,
			      uint64_t ctr, int B, int T, int H, int NH, int nt)
{
	struct attn_job j = {
		.ctx = ctx, .att = att, .scratch = scratch, .qkv = qkv,
		.mask_add = mask_add, .per = per, .pdrop = pdrop,
		.scale = 1.0f / sqrtf((float)(H / NH)),
		.dscale = pdrop > 0 ? 1.0f / (1.0f - pdrop) : 1.0f,
		.seed = seed, .ctr = ctr, .T = T, .H = H, .NH = NH, .D = H / NH,
	};

	MTL_ASSERT(j.D * NH == H);
	mtl_par_for(nt, (int64_t)B * NH, 1, attn_fwd_heads, &j);
}

void mtl_ops_attention_unfused(float *ctx, float *scratch, const float *qkv,
			       const float *mask_add, int B, int T, int H,
			       int NH, int nt)
{
	attention_forward(ctx, NULL, scratch, (size_t)T * T, qkv, mask_add, 0,
			  0, 0, B, T, H, NH, nt);
}

void mtl_attention_forward(float *ctx, float *att, const float *qkv,
			   const float *mask_add, int B, int T, int H, int NH,
			   int keep, int nt)
{
	if (keep)
		attention_forward(ctx, att, NULL, 0, qkv, mask_add, 0, 0, 0, B,
				  T, H, NH, nt);
	else
		mtl_attention_forward_ex(mtl_attn_default(), ctx, att, qkv,
					 mask_add, B, T, H, NH, nt);
}

void mtl_attention_probs(float *att, const float *qkv, const float *mask_add,
			 int B, int T, int H, int NH, int nt)
{
	attention_forward(NULL, att, NULL, 0, qkv, mask_add, 0, 0, 0, B, T, H,
			  NH, nt);
}

void mtl_attention_forward_train(float *ctx, float *scratch, const float *qkv,
				 const float *mask_add, float p, uint64_t seed,
				 uint64_t ctr, int B, int T, int H, int NH,
				 int nt)
{
	attention_forward(ctx, NULL, scratch, mtl_attention_train_scratch(T),
			  qkv, mask_add, p, seed, ctr, B, T, H, NH, nt);
}

/* (b, h) pairs lo..hi-1 of mtl_attention_backward: each writes its own
 * columns of dqkv, with the running thread's slot of scratch. */
static void attn_back_heads(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct attn_job *j = arg;
	int T = j->T, H = j->H, NH = j->NH, D = j->D;
	int64_t TT = (int64_t)T * T;
	float scale = j->scale, dscale = j->dscale;

	for (int bh = (int)lo; bh < hi; bh++) {
		int b = bh / NH, h = bh % NH;
		float *p = j->scratch + slot * j->per, *dp = p + TT, *ds = dp + TT;
		const float *pd = p;
		const float *q = j->qkv + (int64_t)b * T * 3 * H + (int64_t)h * D;
		const float *k = q + H, *v = q + 2 * H;
		float *dq = j->dqkv + (int64_t)b * T * 3 * H + (int64_t)h * D;
		float *dk = dq + H, *dv = dq + 2 * H;
		const float *dc = j->dctx + (int64_t)b * T * H + (int64_t)h * D;
		uint8_t *m = j->pdrop > 0 ? (uint8_t *)(ds + TT) : NULL;

		/* the forward's probabilities again, not kept */
		head_probs(p, q, k, 3 * H, j->mask_add + (int64_t)b * T, T, D,
			   scale);
		if (m) {
			/* the forward's mask again; ds holds the dropped
			 * probabilities for a moment */
			mtl_dropout_mask_at(m, TT, j->pdrop, j->seed,
					    j->ctr + (uint64_t)(bh * TT));
#pragma omp simd
			for (int64_t i = 0; i < TT; i++)
				ds[i] = p[i] * (dscale * (float)m[i]);
			pd = ds;
		}
		/* dv[T,D] += pd^T[T,T] @ dc[T,D] */
		gemm(1, T < 64, 1, 0, T, D, T, 1.0f, pd, T, dc, H, 1.0f, dv, 3 * H);
		/* dp[T,T] = dc[T,D] @ v[T,D]^T */
		gemm(1, T < 64, 0, 1, T, T, D, 1.0f, dc, H, v, 3 * H, 0.0f, dp, T);
		if (m)
#pragma omp simd
			for (int64_t i = 0; i < TT; i++)
				dp[i] = dp[i] * (dscale * (float)m[i]);
		memset(ds, 0, sizeof(*ds) * (size_t)TT);
		for (int i = 0; i < T; i++)
			softmax_row_backward(ds + (int64_t)i * T,
					     p + (int64_t)i * T,
					     dp + (int64_t)i * T, T);
		/* dq[T,D] += scale * ds[T,T] @ k[T,D] */
		gemm(1, T < 64, 0, 0, T, D, T, scale, ds, T, k, 3 * H, 1.0f, dq,
		     3 * H);
		/* dk[T,D] += scale * ds^T[T,T] @ q[T,D] */
		gemm(1, T < 64, 1, 0, T, D, T, scale, ds, T, q, 3 * H, 1.0f, dk,
		     3 * H);
	}
}

void mtl_attention_backward(float *dqkv, float *scratch, const float *dctx,
			    const float *qkv, const float *mask_add,
			    float pdrop, uint64_t seed, uint64_t ctr, int B,
			    int T, int H, int NH, int nt)
{
	struct attn_job j = {
		.scratch = scratch, .dqkv = dqkv, .qkv = qkv, .dctx = dctx,
		.mask_add = mask_add, .per = mtl_attention_train_scratch(T),
		.pdrop = pdrop, .scale = 1.0f / sqrtf((float)(H / NH)),
		.dscale = pdrop > 0 ? 1.0f / (1.0f - pdrop) : 1.0f,
		.seed = seed, .ctr = ctr, .T = T, .H = H, .NH = NH, .D = H / NH,
	};

	MTL_ASSERT(j.D * NH == H);
	mtl_par_for(nt, (int64_t)B * NH, 1, attn_back_heads, &j);
}
