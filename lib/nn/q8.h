/*
 * q8.h - int8 linear maps for inference: out[N,OC] ~ inp[N,C] @ w[OC,C]^T + b.
 *
 * An option a user chooses knowingly (mtl-score --int8): the products run
 * in 8-bit integers, so results differ from fp32 by the quantisation error
 * (docs/performance.md gives the measured bound).  Never used in training.
 *
 *   weights      per output channel (row of w), symmetric: wq = round(w /
 *                ws), ws = max|w_row| / 127, quantised once by
 *                mtl_q8_linear_new();
 *   activations  per input row (per token), symmetric and dynamic, each
 *                forward: xq = round(x / xs), xs = max|x_row| / 127;
 *   product      exact int32 sums of xq * wq, then out = sum * xs * ws + b
 *                in fp32.
 *
 * Every kernel path computes the same int32 sums (they are exact), so the
 * paths differ only in speed:
 *   MTL_Q8_C     portable C;
 *   MTL_Q8_AVX2  vpmaddwd on int16-widened operands (no saturation: the
 *                vpmaddubsw shortcut would saturate its int16 pair sums);
 *   MTL_Q8_VNNI  AVX-512 VNNI vpdpbusd, u8 x s8: the activations are
 *                stored offset by 128 and 128 * sum(wq_row) subtracted.
 * MTL_Q8_AUTO picks the fastest the CPU has (__builtin_cpu_supports), so
 * one build runs everywhere.
 *
 * Example:
 *
 *	struct mtl_q8_linear *q;
 *	struct mtl_q8_buf buf;
 *
 *	mtl_q8_buf_init(&buf);
 *	if (mtl_q8_linear_new(&q, w, OC, C, MTL_Q8_AUTO, &err) ||
 *	    mtl_q8_buf_reserve(&buf, N, C, &err))
 *		die("%s", err.msg);
 *	mtl_q8_linear_forward(out, inp, q, b, N, &buf, nt);
 *	mtl_q8_linear_free(q);
 *	mtl_q8_buf_release(&buf);
 *
 * Ownership: mtl_q8_linear_new() returns a copy of the quantised weights
 * (w is not kept) that the caller frees with mtl_q8_linear_free() (NULL
 * accepted).  A struct mtl_q8_buf is caller storage for the quantised
 * activations, reusable across linear maps; a forward never allocates.
 * Failure: new and reserve return 0 or a negative enum mtl_status with err
 * set; nothing here prints.
 */
#ifndef MTL_Q8_H
#define MTL_Q8_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum mtl_q8_path {
	MTL_Q8_AUTO = 0, /* the fastest the CPU supports */
	MTL_Q8_C,
	MTL_Q8_AVX2,
	MTL_Q8_VNNI,
};

/* 1 when this CPU (and build) can run path, else 0; AUTO and C always. */
int mtl_q8_path_supported(enum mtl_q8_path path);
/* The path MTL_Q8_AUTO resolves to on this CPU. */
enum mtl_q8_path mtl_q8_path_best(void);
/* "c", "avx2", "vnni" ("auto" for MTL_Q8_AUTO). */
const char *mtl_q8_path_name(enum mtl_q8_path path);

/*
 * q[n] = round(x[n] / s), clamped to [-127, 127], with s = max|x| / 127;
 * returns s (0 when x is all zero, q then all 0).  The quantiser of both
 * weight rows and activation rows.
 */
float mtl_q8_quantize(int8_t *q, const float *x, int n);

struct mtl_q8_linear;

/*
 * Quantises w[OC,C] (nn.Linear layout) per output channel and packs it
 * for path (AUTO: mtl_q8_path_best()).  Fails with MTL_ERR_ARG for a path
 * the CPU lacks or sizes out of range (C above 65536 could overflow the
 * int32 sums), MTL_ERR_NOMEM.  *out untouched on error.
 */
int mtl_q8_linear_new(struct mtl_q8_linear **out, const float *w, int OC,
		      int C, enum mtl_q8_path path, struct mtl_err *err);
void mtl_q8_linear_free(struct mtl_q8_linear *q);
/* The path q was packed for (never AUTO). */
enum mtl_q8_path mtl_q8_linear_path(const struct mtl_q8_linear *q);

/* Scratch for the quantised activations of up to N rows of C inputs. */
struct mtl_q8_buf {
	void *x;     /* [Np,Cp] in the layout of the path */
	float *xs;   /* [Np] row scales */
	size_t x_len, xs_len; /* capacities in bytes and floats */
};

void mtl_q8_buf_init(struct mtl_q8_buf *buf);
/* Grows buf to hold N rows of C inputs for any path; 0 or MTL_ERR_NOMEM
 * (buf as it was). */
int mtl_q8_buf_reserve(struct mtl_q8_buf *buf, int N, int C,
		       struct mtl_err *err);
void mtl_q8_buf_release(struct mtl_q8_buf *buf);

/*
 * out[N,OC] = dequant(quant(inp[N,C]) @ q^T) + b[OC]   (b may be NULL)
 * with buf reserved for (N, C).  nt threads share the output columns.
 * out must not alias inp.
 */
void mtl_q8_linear_forward(float *out, const float *inp,
			   const struct mtl_q8_linear *q, const float *b,
			   int N, struct mtl_q8_buf *buf, int nt);
/*
 * The integer product alone, for tests: out[N,OC] = xq[N,C] @ wq[OC,C]^T
 * exactly, where wq is q's quantised weights (mtl_q8_quantize of each
 * row of the w it was made from).
 */
void mtl_q8_linear_forward_i32(int32_t *out, const int8_t *xq,
			       const struct mtl_q8_linear *q, int N,
			       struct mtl_q8_buf *buf, int nt);

#endif
