/*
 * q8.c - int8 linear maps: quantisation, packing and the kernels of each
 * path (see q8.h).
 *
 * Layout.  K (the inputs, C) is padded to Kp, a multiple of 4, with zero
 * weights; the output channels to OCp, a multiple of 64, with zero weight
 * rows; the activation rows to a multiple of MR.  A kernel computes an
 * MR x NR tile of int32 sums over all of Kp into a local tile, and the
 * epilogue dequantises the rows and columns that exist.  The weights are
 * packed so that a kernel's loads are whole vectors of output channels:
 *   C     wq[OCp][Kp] as it is;
 *   AVX2  int16 panels of 8 channels: [OCp/8][Kp/2][8][2], one vpmaddwd
 *         sums a pair of k for 8 channels;
 *   VNNI  int8 panels of 16 channels: [OCp/16][Kp/4][16][4], one vpdpbusd
 *         sums four k for 16 channels.
 * The activations are broadcast: 2 (AVX2, int16) or 4 (VNNI, u8 = xq +
 * 128) consecutive k of one row fill every lane.
 *
 * Threads share the output columns in blocks of 64, so no two write the
 * same output and the only synchronisation is the end of the loop
 * (par.h's mtl_par_for, as mtl_linear_forward_split does).
 */
#include "q8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "par.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define Q8_X86 1
#endif

#define MR 6     /* rows per tile */
#define TILE 64  /* columns of the local tile (the widest NR) */
#define MC 48    /* rows per cache block (a multiple of MR) */

struct mtl_q8_linear {
	int OC, C, OCp, Kp;
	enum mtl_q8_path path;
	void *w;       /* packed weights (see the header comment) */
	float *scale;  /* [OC] ws */
	int32_t *corr; /* [OC] 128 * row sum of wq (VNNI), else 0 */
};

static int up(int n, int m)
{
	return (n + m - 1) / m * m;
}

/* ---- dispatch ---- */

int mtl_q8_path_supported(enum mtl_q8_path path)
{
	switch (path) {
	case MTL_Q8_AUTO:
	case MTL_Q8_C:
		return 1;
#ifdef Q8_X86
	case MTL_Q8_AVX2:
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx2");
	case MTL_Q8_VNNI:
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx512f") &&
		       __builtin_cpu_supports("avx512bw") &&
		       __builtin_cpu_supports("avx512vnni");
#endif
	default:
		return 0;
	}
}

enum mtl_q8_path mtl_q8_path_best(void)
{
	if (mtl_q8_path_supported(MTL_Q8_VNNI))
		return MTL_Q8_VNNI;
	if (mtl_q8_path_supported(MTL_Q8_AVX2))
		return MTL_Q8_AVX2;
	return MTL_Q8_C;
}

const char *mtl_q8_path_name(enum mtl_q8_path path)
{
	static const char *const names[] = { "auto", "c", "avx2", "vnni" };

	return (unsigned)path < 4 ? names[path] : "?";
}

enum mtl_q8_path mtl_q8_linear_path(const struct mtl_q8_linear *q)
{
	return q->path;
}

/* ---- quantisation ---- */

/* Round to nearest even: adding 1.5 * 2^23 leaves no fraction bits
 * (|v| <= 127 here); vectorises where lrintf would not. */
static inline int qround(float v)
{
	const float magic = 12582912.0f;

	return (int)((v + magic) - magic);
}

/* max|x| / 127 and its inverse (0 for an all-zero x). */
static float row_scale(const float *x, int n, float *inv)
{
	float amax[16] = { 0 }, m = 0;
	int k0 = 0;

	/* 16 partial maxima over whole blocks of 16, so gcc makes one
	 * vector max of the loop (the tail, which it would not, apart) */
	for (; k0 + 16 <= n; k0 += 16)
		for (int k = 0; k < 16; k++) {
			float a = fabsf(x[k0 + k]);

			amax[k] = a > amax[k] ? a : amax[k];
		}
	for (int k = 0; k0 + k < n; k++) {
		float a = fabsf(x[k0 + k]);

		amax[k] = a > amax[k] ? a : amax[k];
	}
	for (int k = 0; k < 16; k++)
		m = amax[k] > m ? amax[k] : m;
	*inv = m > 0 ? 127.0f / m : 0.0f;
	return m / 127.0f;
}

static inline int qclamp(float v)
{
	int q = qround(v);

	return q > 127 ? 127 : (q < -127 ? -127 : q);
}

float mtl_q8_quantize(int8_t *q, const float *x, int n)
{
	float inv, s = row_scale(x, n, &inv);

	for (int k = 0; k < n; k++)
		q[k] = (int8_t)qclamp(x[k] * inv);
	return s;
}

/* ---- activations into the path's layout ---- */

#ifdef Q8_X86
/* qclamp(x[k] * inv) of 16 floats as two vectors of int32: the product
 * rounded, to nearest even as qround does, and clamped. */
__attribute__((target("avx2"), always_inline)) static inline void
q16(const float *x, __m256 vi, __m256i *a, __m256i *b)
{
	__m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);

	*a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), vi));
	*b = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), vi));
	*a = _mm256_min_epi32(_mm256_max_epi32(*a, lo), hi);
	*b = _mm256_min_epi32(_mm256_max_epi32(*b, lo), hi);
}

/* d[k] = qclamp(x[k] * inv) for the whole blocks of 16 of n; how many. */
__attribute__((target("avx2"))) static int quant_i16(int16_t *d, const float *x,
						    float inv, int n)
{
	__m256 vi = _mm256_set1_ps(inv);
	int k = 0;

	for (; k + 16 <= n; k += 16) {
		__m256i a, b;

		q16(x + k, vi, &a, &b);
		/* packs works within 128-bit lanes: put them in order */
		_mm256_storeu_si256((__m256i *)(d + k),
				    _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xd8));
	}
	return k;
}

/* d[k] = qclamp(x[k] * inv) + 128 likewise. */
__attribute__((target("avx2"))) static int quant_u8(uint8_t *d, const float *x,
						   float inv, int n)
{
	__m256 vi = _mm256_set1_ps(inv);
	__m256i off = _mm256_set1_epi16(128);
	int k = 0;

	for (; k + 16 <= n; k += 16) {
		__m256i a, b, w;

		q16(x + k, vi, &a, &b);
		w = _mm256_add_epi16(_mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xd8), off);
		_mm_storeu_si128((__m128i *)(d + k),
				 _mm_packus_epi16(_mm256_castsi256_si128(w),
						  _mm256_extracti128_si256(w, 1)));
	}
	return k;
}
#endif

/* Row i of buf->x for path: C values of row, from a quantised row (src)
 * or from floats (x, scaled by inv; 16 at a time on the x86 paths, whose
 * CPUs have AVX2), padded to Kp. */
static void put_row(struct mtl_q8_buf *buf, enum mtl_q8_path path, int Kp,
		    int i, const int8_t *src, const float *x, float inv, int C)
{
	switch (path) {
	case MTL_Q8_VNNI: {
		uint8_t *d = (uint8_t *)buf->x + (size_t)i * Kp;
		int k = 0;

		if (src)
			for (; k < C; k++)
				d[k] = (uint8_t)(src[k] + 128);
#ifdef Q8_X86
		else
			k = quant_u8(d, x, inv, C);
#endif
		for (; k < C; k++)
			d[k] = (uint8_t)(qclamp(x[k] * inv) + 128);
		memset(d + C, 128, (size_t)(Kp - C));
		break;
	}
	case MTL_Q8_AVX2: {
		int16_t *d = (int16_t *)buf->x + (size_t)i * Kp;
		int k = 0;

		if (src)
			for (; k < C; k++)
				d[k] = src[k];
#ifdef Q8_X86
		else
			k = quant_i16(d, x, inv, C);
#endif
		for (; k < C; k++)
			d[k] = (int16_t)qclamp(x[k] * inv);
		for (; k < Kp; k++)
			d[k] = 0;
		break;
	}
	default: {
		int8_t *d = (int8_t *)buf->x + (size_t)i * Kp;

		if (src)
			memcpy(d, src, (size_t)C);
		else
			for (int k = 0; k < C; k++)
				d[k] = (int8_t)qclamp(x[k] * inv);
		memset(d + C, 0, (size_t)(Kp - C));
		break;
	}
	}
}

/* Zeroes the padding rows N..Np-1, whose sums are computed and dropped. */
static void pad_rows(struct mtl_q8_buf *buf, enum mtl_q8_path path, int Kp,
		     int N)
{
	size_t el = path == MTL_Q8_AVX2 ? 2 : 1;

	memset((char *)buf->x + (size_t)N * Kp * el, 0,
	       (size_t)(up(N, MR) - N) * Kp * el);
}

/* ---- kernels: tile[MR][TILE] (first NR columns) = x rows @ w panels ---- */

/* Portable: NR 16, w plain [OCp][Kp], x int8 [*, Kp]. */
static void kern_c(int32_t *tile, const int8_t *x, int Kp, const int8_t *w)
{
	for (int r = 0; r < MR; r++)
		for (int c = 0; c < 16; c++) {
			const int8_t *xr = x + (size_t)r * Kp;
			const int8_t *wc = w + (size_t)c * Kp;
			int32_t s = 0;

			for (int k = 0; k < Kp; k++)
				s += (int32_t)xr[k] * wc[k];
			tile[r * TILE + c] = s;
		}
}

#ifdef Q8_X86
/*
 * AVX2: NR 16 = two int16 panels of 8 channels (Kp * 8 apart).  Not
 * inlined: inside product_slices gcc kept fewer of its 12 accumulators
 * in registers, and the products ran at 76 GMAC/s a core instead of
 * 109-115 (Zen 5 with AVX-512 hidden, bge-small's and -base's shapes).
 */
__attribute__((target("avx2"), noinline))
static void kern_avx2(int32_t *tile, const int16_t *x, int Kp,
		      const int16_t *w)
{
	__m256i c0[MR], c1[MR];
	const int16_t *w1 = w + (size_t)Kp * 8;

#pragma GCC unroll 8
	for (int r = 0; r < MR; r++)
		c0[r] = c1[r] = _mm256_setzero_si256();
	for (int k = 0; k < Kp; k += 2) {
		__m256i b0 = _mm256_load_si256((const __m256i *)(w + (size_t)k * 8));
		__m256i b1 = _mm256_load_si256((const __m256i *)(w1 + (size_t)k * 8));

#pragma GCC unroll 8
		for (int r = 0; r < MR; r++) {
			int32_t a;
			__m256i av;

			memcpy(&a, x + (size_t)r * Kp + k, sizeof(a));
			av = _mm256_set1_epi32(a);
			c0[r] = _mm256_add_epi32(c0[r], _mm256_madd_epi16(av, b0));
			c1[r] = _mm256_add_epi32(c1[r], _mm256_madd_epi16(av, b1));
		}
	}
#pragma GCC unroll 8
	for (int r = 0; r < MR; r++) {
		_mm256_storeu_si256((__m256i *)(tile + r * TILE), c0[r]);
		_mm256_storeu_si256((__m256i *)(tile + r * TILE + 8), c1[r]);
	}
}

/* VNNI: NR 64 = four int8 panels of 16 channels (Kp * 16 apart). */
__attribute__((target("avx512f,avx512bw,avx512vnni")))
static void kern_vnni(int32_t *tile, const uint8_t *x, int Kp,
		      const int8_t *w)
{
	__m512i c[MR][4];
	size_t ps = (size_t)Kp * 16;

#pragma GCC unroll 8
	for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
		for (int v = 0; v < 4; v++)
			c[r][v] = _mm512_setzero_si512();
	for (int k = 0; k < Kp; k += 4) {
		const int8_t *wk = w + (size_t)k * 16;
		__m512i b0 = _mm512_load_si512(wk);
		__m512i b1 = _mm512_load_si512(wk + ps);
		__m512i b2 = _mm512_load_si512(wk + 2 * ps);
		__m512i b3 = _mm512_load_si512(wk + 3 * ps);

#pragma GCC unroll 8
		for (int r = 0; r < MR; r++) {
			int32_t a;
			__m512i av;

			memcpy(&a, x + (size_t)r * Kp + k, sizeof(a));
			av = _mm512_set1_epi32(a);
			c[r][0] = _mm512_dpbusd_epi32(c[r][0], av, b0);
			c[r][1] = _mm512_dpbusd_epi32(c[r][1], av, b1);
			c[r][2] = _mm512_dpbusd_epi32(c[r][2], av, b2);
			c[r][3] = _mm512_dpbusd_epi32(c[r][3], av, b3);
		}
	}
#pragma GCC unroll 8
	for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
		for (int v = 0; v < 4; v++)
			_mm512_storeu_si512(tile + r * TILE + v * 16, c[r][v]);
}
#endif

/* Columns per kernel call. */
static int path_nr(enum mtl_q8_path path)
{
	return path == MTL_Q8_VNNI ? 64 : 16;
}

/* The tile of rows i.., columns j.. (NR of them) of buf's activations. */
static void tile_sums(int32_t *tile, const struct mtl_q8_linear *q,
		      const struct mtl_q8_buf *buf, int i, int j)
{
	size_t Kp = (size_t)q->Kp;

	switch (q->path) {
#ifdef Q8_X86
	case MTL_Q8_VNNI:
		kern_vnni(tile, (const uint8_t *)buf->x + i * Kp, q->Kp,
			  (const int8_t *)q->w + j * Kp);
		return;
	case MTL_Q8_AVX2:
		kern_avx2(tile, (const int16_t *)buf->x + i * Kp, q->Kp,
			  (const int16_t *)q->w + j * Kp);
		return;
#endif
	default:
		kern_c(tile, (const int8_t *)buf->x + i * Kp, q->Kp,
		       (const int8_t *)q->w + j * Kp);
		return;
	}
}

/* The arguments of product() and of the row quantisation. */
struct q8_job {
	float *out;
	int32_t *out32;
	const float *inp, *b;
	const struct mtl_q8_linear *q;
	struct mtl_q8_buf *buf; /* written by quant_rows only */
	int N, nt;
};

/* Slices t0..t1-1 of nt of product(): each its blocks of 64 columns. */
static void product_slices(void *arg, int64_t t0, int64_t t1, int slot)
{
	const struct q8_job *jb = arg;
	const struct mtl_q8_linear *q = jb->q;
	const struct mtl_q8_buf *buf = jb->buf;
	int nblk = q->OCp / 64, Np = up(jb->N, MR), nr = path_nr(q->path);
	int OC = q->OC, N = jb->N, n = jb->nt;
	_Alignas(64) int32_t tile[MR * TILE];

	for (int t = (int)t0; t < t1; t++) {
		int lo = nblk * t / n * 64, hi = nblk * (t + 1) / n * 64;

		for (int i0 = 0; i0 < Np; i0 += MC)
			for (int j = lo; j < hi && j < OC; j += nr)
				for (int i = i0; i < i0 + MC && i < Np; i += MR) {
					int cw = OC - j < nr ? OC - j : nr;

					tile_sums(tile, q, buf, i, j);
					for (int r = 0; r < MR && i + r < N; r++) {
						const int32_t *tr = tile + r * TILE;
						const int32_t *corr = q->corr + j;
						size_t o = (size_t)(i + r) * OC + j;

						if (jb->out32) {
							for (int c = 0; c < cw; c++)
								jb->out32[o + c] = tr[c] - corr[c];
							continue;
						}
						float xs = buf->xs[i + r];
						const float *ws = q->scale + j;
						const float *b = jb->b;
						float *orow = jb->out + o;

#pragma omp simd
						for (int c = 0; c < cw; c++)
							orow[c] = (float)(tr[c] - corr[c]) * (xs * ws[c]) +
								  (b ? b[j + c] : 0.0f);
					}
				}
	}
}

/*
 * The product of buf's N quantised rows with q: into out32 (exact sums)
 * when it is not NULL, else dequantised with buf->xs and q->scale into
 * out, plus b.
 */
static void product(float *out, int32_t *out32, const struct mtl_q8_linear *q,
		    const float *b, int N, struct mtl_q8_buf *buf, int nt)
{
	struct q8_job j = { out, out32, NULL, b, q, buf, N, nt < 1 ? 1 : nt };

	mtl_par_for(j.nt, j.nt, 1, product_slices, &j);
}

/* ---- the linear map ---- */

int mtl_q8_linear_new(struct mtl_q8_linear **out, const float *w, int OC,
		      int C, enum mtl_q8_path path, struct mtl_err *err)
{
	struct mtl_q8_linear *q;
	int8_t *wq;
	size_t el;

	if (path == MTL_Q8_AUTO)
		path = mtl_q8_path_best();
	if (!mtl_q8_path_supported(path))
		return mtl_err_set(err, MTL_ERR_ARG,
				   "int8 path '%s' is not supported by this cpu",
				   mtl_q8_path_name(path));
	if (OC < 1 || C < 1 || C > 65536)
		return mtl_err_set(err, MTL_ERR_ARG,
				   "int8 linear map of %d x %d is out of range",
				   OC, C);
	q = calloc(1, sizeof(*q));
	if (!q)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	q->OC = OC;
	q->C = C;
	q->OCp = up(OC, 64);
	q->Kp = up(C, 4);
	q->path = path;
	el = path == MTL_Q8_AVX2 ? 2 : 1;
	q->w = aligned_alloc(64, (size_t)q->OCp * q->Kp * el);
	q->scale = malloc(sizeof(float) * (size_t)OC);
	q->corr = calloc((size_t)q->OCp, sizeof(int32_t));
	wq = calloc((size_t)q->OCp * q->Kp, 1);
	if (!q->w || !q->scale || !q->corr || !wq) {
		free(wq);
		mtl_q8_linear_free(q);
		return mtl_err_set(err, MTL_ERR_NOMEM,
				   "out of memory for an int8 copy of %d x %d weights",
				   OC, C);
	}
	for (int j = 0; j < OC; j++) {
		int32_t s = 0;

		q->scale[j] = mtl_q8_quantize(wq + (size_t)j * q->Kp,
					      w + (size_t)j * C, C);
		for (int k = 0; k < C; k++)
			s += wq[(size_t)j * q->Kp + k];
		if (path == MTL_Q8_VNNI)
			q->corr[j] = 128 * s;
	}
	/* pack wq[OCp][Kp] (zero padded) into the path's panels */
	for (int j = 0; j < q->OCp; j++)
		for (int k = 0; k < q->Kp; k++) {
			int8_t v = wq[(size_t)j * q->Kp + k];

			if (path == MTL_Q8_VNNI)
				((int8_t *)q->w)[(size_t)(j / 16) * q->Kp * 16 +
						 (size_t)(k / 4) * 64 +
						 (j % 16) * 4 + k % 4] = v;
			else if (path == MTL_Q8_AVX2)
				((int16_t *)q->w)[(size_t)(j / 8) * q->Kp * 8 +
						  (size_t)(k / 2) * 16 +
						  (j % 8) * 2 + k % 2] = v;
			else
				((int8_t *)q->w)[(size_t)j * q->Kp + k] = v;
		}
	free(wq);
	*out = q;
	return 0;
}

void mtl_q8_linear_free(struct mtl_q8_linear *q)
{
	if (!q)
		return;
	free(q->w);
	free(q->scale);
	free(q->corr);
	free(q);
}

void mtl_q8_buf_init(struct mtl_q8_buf *buf)
{
	memset(buf, 0, sizeof(*buf));
}

int mtl_q8_buf_reserve(struct mtl_q8_buf *buf, int N, int C,
		       struct mtl_err *err)
{
	/* the widest layout: int16 */
	size_t xl = (size_t)up(N, MR) * up(C, 4) * 2, sl = (size_t)up(N, MR);

	if (xl > buf->x_len) {
		void *x = aligned_alloc(64, (xl + 63) & ~(size_t)63);

		if (!x)
			return mtl_err_set(err, MTL_ERR_NOMEM,
					   "out of memory for %zu bytes of int8 activations",
					   xl);
		free(buf->x);
		buf->x = x;
		buf->x_len = xl;
	}
	if (sl > buf->xs_len) {
		float *s = malloc(sizeof(float) * sl);

		if (!s)
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		free(buf->xs);
		buf->xs = s;
		buf->xs_len = sl;
	}
	return 0;
}

void mtl_q8_buf_release(struct mtl_q8_buf *buf)
{
	free(buf->x);
	free(buf->xs);
	mtl_q8_buf_init(buf);
}

/* Rows lo..hi-1 of the input quantised into buf, with their scales. */
static void quant_rows(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct q8_job *j = arg;
	struct mtl_q8_buf *buf = j->buf;
	int C = j->q->C;

	for (int64_t i = lo; i < hi; i++) {
		float inv;

		buf->xs[i] = row_scale(j->inp + i * C, C, &inv);
		put_row(buf, j->q->path, j->q->Kp, (int)i, NULL, j->inp + i * C,
			inv, C);
	}
}

void mtl_q8_linear_forward(float *out, const float *inp,
			   const struct mtl_q8_linear *q, const float *b,
			   int N, struct mtl_q8_buf *buf, int nt)
{
	int C = q->C, Kp = q->Kp;
	struct q8_job j = { out, NULL, inp, b, q, buf, N, nt };

	MTL_ASSERT((size_t)up(N, MR) * Kp * 2 <= buf->x_len &&
		   (size_t)N <= buf->xs_len);
	mtl_par_for(nt, N, mtl_par_chunk(N, C, nt), quant_rows, &j);
	pad_rows(buf, q->path, Kp, N);
	product(out, NULL, q, b, N, buf, nt);
}

void mtl_q8_linear_forward_i32(int32_t *out, const int8_t *xq,
			       const struct mtl_q8_linear *q, int N,
			       struct mtl_q8_buf *buf, int nt)
{
	MTL_ASSERT((size_t)up(N, MR) * q->Kp * 2 <= buf->x_len);
	for (int i = 0; i < N; i++)
		put_row(buf, q->path, q->Kp, i, xq + (size_t)i * q->C, NULL, 0,
			q->C);
	pad_rows(buf, q->path, q->Kp, N);
	product(NULL, out, q, NULL, N, buf, nt);
}
