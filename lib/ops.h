/*
 * ops.h - the encoder's numerical kernels, one forward function per layer
 * type (backward partners will sit beside each one, llm.c style).
 *
 * Conventions: row-major float32; outputs first, then inputs, then
 * weights, then sizes; the last argument nt is the thread count (BLIS and
 * OpenMP).  Every matrix product goes through BLIS sgemm with explicit
 * strides; the element-wise kernels are plain loops that gcc vectorises
 * without -ffast-math (reductions use 16 independent accumulators, exp and
 * erf are branch-free polynomials rather than libm calls).
 *
 * Nothing here allocates, prints or fails: the callers (bert.c) have
 * already checked every size, so a bad size is a programmer error.
 */
#ifndef MTL_OPS_H
#define MTL_OPS_H

#include <stdint.h>

/*
 * out[N,OC] = inp[N,C] @ w[OC,C]^T + b[OC]   (b may be NULL)
 * w is in PyTorch nn.Linear layout (out_features rows).
 */
void mtl_linear_forward(float *out, const float *inp, const float *w,
			const float *b, int N, int C, int OC, int nt);

/*
 * The same product threaded by us instead of by BLIS: the OC output
 * columns are cut into nt slices (multiples of 16), and each thread runs
 * a single-threaded sgemm on its slice and adds its bias.  The only
 * synchronisation is the end of one OpenMP region, where BLIS's own
 * threading synchronises inside the product; each thread packs the
 * whole of inp, the price of that.
 */
void mtl_linear_forward_split(float *out, const float *inp, const float *w,
			      const float *b, int N, int C, int OC, int nt);

/*
 * out[B,T,H] = wte[ids[b,t]] + wpe[t] + wtt[types[b,t]]
 * (types NULL means all 0).  BERT, unlike GPT-2, adds a token-type
 * embedding; positions are 0..T-1 whatever the padding (HF's default
 * position_ids), so right padding leaves real tokens untouched.
 */
void mtl_embed_forward(float *out, const int32_t *ids, const int32_t *types,
		       const float *wte, const float *wpe, const float *wtt,
		       int B, int T, int H);

/*
 * out[N,C] = (inp - mean) * rstd * w + b, per row; mean[N] and rstd[N]
 * are kept for the backward pass.  Two-pass mean/variance (biased, as
 * torch), rstd = 1/sqrt(var + eps).
 */
void mtl_layernorm_forward(float *out, float *mean, float *rstd,
			   const float *inp, const float *w, const float *b,
			   int N, int C, float eps, int nt);

/* out[n] = a[n] + b[n]; out may alias a or b. */
void mtl_residual_forward(float *out, const float *a, const float *b,
			  int64_t n, int nt);

/*
 * out[n] = x * Phi(x) = 0.5 x erfc(-x/sqrt 2), the exact (erf) GELU of
 * BERT's "gelu", not GPT-2's tanh approximation.  out may alias inp.
 * Absolute error below 1e-6 for |x| < 10 (see mtl_erfcf).
 */
void mtl_gelu_forward(float *out, const float *inp, int64_t n, int nt);

/*
 * probs[R,C] = softmax(scores[R,C] + mask_add[C]) per row (mask_add may be
 * NULL).  probs may alias scores.  Max-subtracted, so a row whose every
 * entry carries the float32-min mask comes out uniform, as in PyTorch.
 */
void mtl_softmax_forward(float *probs, const float *scores,
			 const float *mask_add, int R, int C);

/*
 * Multi-head self-attention core, padding-masked (not causal as in GPT-2):
 *   qkv [B,T,3H]  rows are [q | k | v], head h at columns h*D..h*D+D-1
 *   mask_add [B,T] 0 for a real key, -FLT_MAX for padding (HF's
 *                  (1 - mask) * finfo(float32).min)
 *   att  keep ? [B,NH,T,T] softmax probabilities kept for backward
 *              : [nt,T,T]  per-thread scratch
 *   ctx  [B,T,H]  softmax(q k^T / sqrt(D) + mask) v, heads side by side
 * Two sgemms per (batch, head), the pairs spread over nt threads.
 */
void mtl_attention_forward(float *ctx, float *att, const float *qkv,
			   const float *mask_add, int B, int T, int H, int NH,
			   int keep, int nt);

/* exp(x) for float, relative error < 2e-7, 0 below -87.3 (vectorisable). */
float mtl_expf(float x);
/* erfc(x) (Chebyshev fit, vectorisable): relative error below 2e-7 for
 * x < 4, growing to 5e-6 at x = 9 (rounding of x^2 in float), and 0
 * where erfc(x) is below the float normal range (x > 9.2). */
float mtl_erfcf(float x);

#endif
