/*
 * ops.h - the numerical kernels of the encoder and the task heads: one
 * X_forward / X_backward pair per layer type, side by side (llm.c style).
 *
 * Conventions: row-major float32; outputs first, then inputs, then
 * weights, then sizes; the last argument nt is the thread count (BLIS's,
 * and par.h's loops for everything else).  Every matrix product goes through gemm.h: mtl's own packed
 * sgemm (AVX-512 or AVX2 micro-kernels), or BLIS sgemm where that is the
 * kernel chosen (MTL_GEMM; BLIS then threads a product itself, ours is
 * cut into column slices, one per thread).  The element-wise kernels are
 * plain loops that gcc vectorises without -ffast-math (reductions use 16
 * independent accumulators, exp and erf are branch-free polynomials
 * rather than libm calls).  Forward writes its output (beta = 0).
 * Backward ADDS into its gradient outputs (sgemm with beta = 1, "+=" in
 * the loops), so the caller zeroes every gradient once per step and
 * contributions from several consumers of one tensor simply accumulate.
 *
 * Dropout is inverted dropout as in PyTorch: a kept element is scaled by
 * 1/(1-p), a dropped one is 0.  The keep mask (uint8, 1 = kept) is drawn by
 * mtl_dropout_mask() from a struct mtl_rng before the forward call and is
 * what the backward call reads, so the result does not depend on the
 * thread count.  The attention probabilities' masks, T*T a head, are not
 * stored: the training attention draws them from a counter-based stream
 * (mtl_dropout_mask_at()), its backward draws the same again.
 *
 * Nothing here allocates, prints or fails: the callers have checked every
 * size, so a bad size is a programmer error.
 */
#ifndef MTL_OPS_H
#define MTL_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

/*
 * out[N,OC] = inp[N,C] @ w[OC,C]^T + b[OC]   (b may be NULL)
 * w is in PyTorch nn.Linear layout (out_features rows).
 */
void mtl_linear_forward(float *out, const float *inp, const float *w,
			const float *b, int N, int C, int OC, int nt);
/*
 * out[N,OC] = act(inp[N,C] @ w[OC,C]^T + b[OC] + res[N,OC]): the product
 * and its bias as above, then res added (NULL: none; must not overlap
 * out), then the GELU when gelu is set, done on each tile of out while
 * it is in cache (gemm.h's epilogue).  The bits are those of
 * mtl_linear_forward, mtl_residual_forward(out, out, res) and
 * mtl_gelu_forward(out, out) in turn.
 */
void mtl_linear_forward_ex(float *out, const float *inp, const float *w,
			   const float *b, const float *res, int gelu, int N,
			   int C, int OC, int nt);
/*
 * dinp[N,C] += dout[N,OC] @ w[OC,C]      (dinp may be NULL: not needed)
 * dw[OC,C]  += dout[N,OC]^T @ inp[N,C]
 * db[OC]    += sum_n dout[n,:]           (db may be NULL: no bias)
 */
void mtl_linear_backward(float *dinp, float *dw, float *db, const float *dout,
			 const float *inp, const float *w, int N, int C,
			 int OC, int nt);

/*
 * The same product threaded by us instead of by BLIS: the OC output
 * columns are cut into nt slices (multiples of 16), and each thread runs
 * a single-threaded sgemm on its slice with the epilogue (bias, and for
 * the _ex form res and GELU, as mtl_linear_forward_ex).  The only
 * synchronisation is the end of one loop (par.h), where BLIS's own
 * threading synchronises inside the product; each thread packs the
 * whole of inp, the price of that.
 */
void mtl_linear_forward_split(float *out, const float *inp, const float *w,
			      const float *b, int N, int C, int OC, int nt);
void mtl_linear_forward_split_ex(float *out, const float *inp,
				 const float *w, const float *b,
				 const float *res, int gelu, int N, int C,
				 int OC, int nt);

/*
 * mtl_linear_forward_ex with w packed once (wp: gemm.h's mtl_gemm_pack_b
 * for mtl_gemm_default(), which must not be BLIS, with tb set, N = OC,
 * K = C): the same bits, and no packing of w per call.  Rows of out are
 * ldo floats apart, rows of inp ldi (OC and C when dense; res's OC).
 * The rows of inp are cut into chunks that the nt threads take as they
 * come (par.h): each chunk reads the one packed w, so more chunks than
 * threads cost nothing in packing, and a thread whose core is busy
 * elsewhere holds up only the chunk it has started.
 */
void mtl_linear_forward_packed(float *out, int64_t ldo, const float *inp,
			       int64_t ldi, const float *wp, const float *b,
			       const float *res, int gelu, int N, int C, int OC,
			       int nt);

/*
 * mtl_linear_backward threaded by us: each of the nt threads runs
 * single-threaded products on its slice of dinp's columns and of dw's
 * (and db's) rows, so the only synchronisation is the end of one loop
 * (see mtl_linear_forward_split).  Same results to rounding.
 */
void mtl_linear_backward_split(float *dinp, float *dw, float *db,
			       const float *dout, const float *inp,
			       const float *w, int N, int C, int OC, int nt);

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
 * dwte[ids[b,t]] += dout[b,t] unless ids[b,t] == pad_id, dwpe[t] +=
 * dout[b,t], dwtt[types[b,t]] += dout[b,t].  Sparse: only the word rows
 * of ids in the batch are touched, and never the pad_id row (< 0: none),
 * as Hugging Face's word_embeddings = nn.Embedding(..., padding_idx=
 * pad_token_id) never gives it a gradient, even where a real token (a
 * literal "[PAD]" in the text) has that id.  Positions and types have no
 * padding_idx: they take every token's gradient.
 */
void mtl_embed_backward(float *dwte, float *dwpe, float *dwtt,
			const float *dout, const int32_t *ids,
			const int32_t *types, int pad_id, int B, int T, int H);

/*
 * out[N,C] = (inp - mean) * rstd * w + b, per row; mean[N] and rstd[N]
 * are kept for the backward pass.  Two-pass mean/variance (biased, as
 * torch), rstd = 1/sqrt(var + eps).
 */
void mtl_layernorm_forward(float *out, float *mean, float *rstd,
			   const float *inp, const float *w, const float *b,
			   int N, int C, float eps, int nt);
/*
 * out[N,C] = (inp - mean) * rstd * w + b from the statistics a forward
 * kept: the forward's output again, bit for bit (for a backward pass that
 * recomputes it instead of keeping it).
 */
void mtl_layernorm_apply(float *out, const float *inp, const float *w,
			 const float *b, const float *mean, const float *rstd,
			 int N, int C, int nt);
/*
 * With n = (inp - mean) * rstd and g = dout * w:
 *   dinp += rstd * (g - mean_c(g) - n * mean_c(g * n))
 *   dw   += sum_rows dout * n,   db += sum_rows dout
 */
void mtl_layernorm_backward(float *dinp, float *dw, float *db,
			    const float *dout, const float *inp,
			    const float *w, const float *mean,
			    const float *rstd, int N, int C, int nt);

/* out[n] = a[n] + b[n]; out may alias a or b. */
void mtl_residual_forward(float *out, const float *a, const float *b,
			  int64_t n, int nt);
/* da[n] += dout[n], db[n] += dout[n]. */
void mtl_residual_backward(float *da, float *db, const float *dout,
			   int64_t n, int nt);

/*
 * out[n] = x * Phi(x), the exact (erf) GELU of BERT's "gelu", not
 * GPT-2's tanh approximation, as 0.5 x + |x| h(|x|) with h = Phi - 1/2
 * piecewise polynomial (vmath.h: within 8e-8 of max(|x|, 1)); the same
 * bits on every CPU.  out may alias inp.
 */
void mtl_gelu_forward(float *out, const float *inp, int64_t n, int nt);
/* dinp += dout * (Phi(x) + x phi(x)), x = inp (the forward input). */
void mtl_gelu_backward(float *dinp, const float *inp, const float *dout,
		       int64_t n, int nt);

/* out = tanh(inp) (head activation); out may alias inp. */
void mtl_tanh_forward(float *out, const float *inp, int64_t n);
/* dinp += dout * (1 - out^2), out = the forward output. */
void mtl_tanh_backward(float *dinp, const float *out, const float *dout,
		       int64_t n);

/* out = max(inp, 0); out may alias inp. */
void mtl_relu_forward(float *out, const float *inp, int64_t n);
/* dinp += dout where out > 0 (PyTorch's relu gradient is 0 at 0). */
void mtl_relu_backward(float *dinp, const float *out, const float *dout,
		       int64_t n);

/*
 * Draws keep[n]: 1 with probability 1 - p, 0 with probability p (from
 * r, element by element, so one seed gives one mask).  p = 0 keeps all
 * without drawing.
 */
void mtl_dropout_mask(uint8_t *keep, int64_t n, float p, struct mtl_rng *r);
/*
 * keep[n] for elements ctr .. ctr+n-1 of the counter-based stream seed:
 * element e is kept iff u >= p, u = b * 2^-24 with b the top 24 bits
 * (e even) or the next 24 (e odd) of mtl_rng_at(seed, e / 2), the split
 * of mtl_dropout_mask().  An element's bit depends on (seed, e) only, so
 * any slice of the stream can be drawn again, on any thread.  p = 0 keeps
 * all.
 */
void mtl_dropout_mask_at(uint8_t *keep, int64_t n, float p, uint64_t seed,
			 uint64_t ctr);
/* out[n] = inp[n] * keep[n] / (1 - p); out may alias inp. */
void mtl_dropout_forward(float *out, const float *inp, const uint8_t *keep,
			 float p, int64_t n);
/* dinp[n] += dout[n] * keep[n] / (1 - p). */
void mtl_dropout_backward(float *dinp, const float *dout, const uint8_t *keep,
			  float p, int64_t n);

/*
 * How the token vectors of a text become one sentence vector.
 * MTL_POOL_DEFAULT chooses none (a task spec's "as the model pools"); the
 * kernels below take the other three.
 */
enum mtl_pool { MTL_POOL_DEFAULT, MTL_POOL_CLS, MTL_POOL_MEAN, MTL_POOL_MAX };

/*
 * out[B,H] = pool over the real tokens of inp[B,T,H] (mask [B,T], 1 for a
 * real token, NULL for all real), as sentence-transformers pools:
 *   CLS   out[b] = inp[b,0]
 *   MEAN  out[b] = sum_t mask[b,t] inp[b,t] / max(sum_t mask[b,t], 1e-9)
 *   MAX   out[b,j] = max_t inp[b,t,j], a padded position counting -1e9
 * out must not alias inp.
 */
void mtl_pool_forward(float *out, const float *inp, const int32_t *mask,
		      int B, int T, int H, enum mtl_pool mode);
/*
 * dinp[B,T,H] += gradient of the CLS or MEAN pooling above from
 * dout[B,H]: CLS adds dout[b] into token 0, MEAN adds dout[b] / count into
 * every real token (padding gets none).  MAX has no backward (no trainer
 * pools by max: heads and the contrastive term refuse it).
 */
void mtl_pool_backward(float *dinp, const float *dout, const int32_t *mask,
		       int B, int T, int H, enum mtl_pool mode);

/*
 * out[B,H] = x / max(||x||_2, 1e-12) per row x of inp (PyTorch's
 * F.normalize); norm[B] = ||x||_2 kept for the backward (norm may be
 * NULL).  The sum of squares is taken in double.  out may alias inp.
 */
void mtl_l2norm_forward(float *out, float *norm, const float *inp, int B,
			int H);
/*
 * With y = out (the forward's output) and n = max(norm, 1e-12) per row:
 *   dinp += (dout - y * (y . dout)) / n
 * in double, rounded once.  dinp must not alias dout or out.
 */
void mtl_l2norm_backward(float *dinp, const float *dout, const float *out,
			 const float *norm, int B, int H);

/*
 * probs[R,C] = softmax(scores[R,C] + mask_add[C]) per row (mask_add may be
 * NULL).  probs may alias scores.  Max-subtracted, so a row whose every
 * entry carries the float32-min mask comes out uniform, as in PyTorch.
 */
void mtl_softmax_forward(float *probs, const float *scores,
			 const float *mask_add, int R, int C);
/*
 * dscores[R,C] += probs * (dprobs - sum_c(dprobs * probs)) per row.  A
 * masked score has probability 0 and so gets no gradient.
 */
void mtl_softmax_backward(float *dscores, const float *probs,
			  const float *dprobs, int R, int C);

/*
 * Multi-head self-attention core, padding-masked (not causal as in GPT-2):
 *   qkv [B,T,3H]  rows are [q | k | v], head h at columns h*D..h*D+D-1
 *   mask_add [B,T] 0 for a real key, -FLT_MAX for padding (HF's
 *                  (1 - mask) * finfo(float32).min)
 *   att  keep ? [B,NH,T,T] softmax probabilities kept for backward
 *              : [nt, mtl_attention_scratch(T, H, NH)] per-thread scratch
 *   ctx  [B,T,H]  softmax(q k^T / sqrt(D) + mask) v, heads side by side
 * With keep, the scores go through memory (two sgemm calls and a softmax
 * per head); without, mtl_attention_forward_ex runs mtl_attn_default().
 */
void mtl_attention_forward(float *ctx, float *att, const float *qkv,
			   const float *mask_add, int B, int T, int H, int NH,
			   int keep, int nt);

/*
 * How the attention forward without kept probabilities is computed:
 * MTL_ATTN_UNFUSED writes each head's [T,T] scores (the keep form's
 * arithmetic, bit for bit); the others are fused (ops_attn.c): keys in
 * blocks, no [T,T] matrix, in plain C (an online softmax) or with
 * AVX2+FMA or AVX-512F vectors (query rows along the lanes, any D; a
 * tile's scores in a [T][QW] strip).
 * The fused forms agree
 * with the unfused one to float rounding (sums in another order), and
 * each gives the same bits for a row whatever padding follows its keys.
 */
enum mtl_attn_kernel {
	MTL_ATTN_UNFUSED, /* "unfused" */
	MTL_ATTN_C,       /* "c" */
	MTL_ATTN_AVX2,    /* "avx2": 16 queries by 6 keys a block */
	MTL_ATTN_AVX512,  /* "avx512": 32 queries by 12 keys a block */
};

/* 1 if kernel k can run on this CPU. */
int mtl_attn_supported(enum mtl_attn_kernel k);
/* "unfused", "c", "avx2", "avx512". */
const char *mtl_attn_name(enum mtl_attn_kernel k);
/*
 * The kernel mtl_attention_forward uses without keep, the same for the
 * whole process: MTL_ATTN from the environment (a name above) if the CPU
 * supports it, otherwise the widest fused one the CPU supports.
 */
enum mtl_attn_kernel mtl_attn_default(void);
/* Floats of scratch per thread for the forward without keep (any kernel). */
size_t mtl_attention_scratch(int T, int H, int NH);
/*
 * mtl_attention_forward without keep for the first nq query rows of each
 * sequence only (1 <= nq <= T; every key is read): ctx rows b*T + i,
 * i < nq, get the bits the whole forward gives them (a query row's lane
 * does the same arithmetic whichever rows share its tile); the fused
 * kernels leave the other rows untouched, the unfused one computes them
 * too.  Sentence embeddings with CLS pooling need only row 0 of the last
 * layer.  scratch: as mtl_attention_forward's att.
 *
 * With off and len (not NULL), the sequences are ragged, without
 * padding: sequence b is rows off[b] .. off[b] + len[b] - 1 of qkv, ctx
 * and mask_add (1 <= len[b] <= T), and its rows get the bits they get
 * with padding after them.  Not with the unfused kernel (MTL_ATTN).
 */
void mtl_attention_forward_rows(float *ctx, float *scratch, const float *qkv,
				const float *mask_add, const int32_t *off,
				const int32_t *len, int B, int T, int nq,
				int H, int NH, int nt);
/*
 * ctx[B,T,H] as mtl_attention_forward without keep, with kernel kind
 * (supported: asserted); scratch [nt, mtl_attention_scratch(T, H, NH)].
 */
void mtl_attention_forward_ex(enum mtl_attn_kernel kind, float *ctx,
			      float *scratch, const float *qkv,
			      const float *mask_add, int B, int T, int H,
			      int NH, int nt);
/*
 * att[B,NH,T,T] = the probabilities softmax(q k^T / sqrt(D) + mask) of
 * every head: the keep form's and the training forward's arithmetic, bit
 * for bit, which is what the training backward recomputes.
 */
void mtl_attention_probs(float *att, const float *qkv, const float *mask_add,
			 int B, int T, int H, int NH, int nt);
/* Floats of scratch per thread for the training forward and backward:
 * 3 [T,T] matrices and a [T,T] byte mask, a multiple of 16. */
size_t mtl_attention_train_scratch(int T);
/*
 * The training form of the above, with memory linear in T: the
 * probabilities are not kept (each head's go through per-thread scratch,
 * [nt, mtl_attention_train_scratch(T)] floats), and with p > 0 dropout on
 * them (BERT's attention_probs_dropout_prob): ctx = (P * keep / (1 - p)) v
 * with keep the elements ctr + ((b*NH + h)*T + i)*T + j of the stream
 * seed (mtl_dropout_mask_at()).  seed and ctr are unused when p = 0.
 */
void mtl_attention_forward_train(float *ctx, float *scratch, const float *qkv,
				 const float *mask_add, float p, uint64_t seed,
				 uint64_t ctr, int B, int T, int H, int NH,
				 int nt);
/*
 * dqkv[B,T,3H] += gradient of ctx through the attention above, from
 * dctx [B,T,H], the forward's qkv and mask_add, and its p, seed and ctr.
 * Per (b, h) it recomputes the probabilities P (mtl_attention_probs'
 * bits) and the keep mask, then with P' = dropout(P):
 *   dV += P'^T dC;  dP' = dC V^T;  dP = dropout'(dP');
 *   dS = P * (dP - rowsum(dP * P));  dQ += dS K / sqrt(D);  dK += dS^T Q / sqrt(D)
 * scratch: [nt, mtl_attention_train_scratch(T)] floats.
 */
void mtl_attention_backward(float *dqkv, float *scratch, const float *dctx,
			    const float *qkv, const float *mask_add, float p,
			    uint64_t seed, uint64_t ctr, int B, int T, int H,
			    int NH, int nt);

/* x[n] = 0 on nt threads: the per-step zeroing of gradient buffers. */
void mtl_zero(float *x, int64_t n, int nt);

/* y[n] += a x[n] on nt threads. */
void mtl_axpy(float *y, float a, const float *x, int64_t n, int nt);

/*
 * The sum of a[k] b[k] over n in double (the gradient norm, task
 * balancing's Gram matrices), on nt threads.  From 65536 elements it is
 * cut into nt contiguous blocks as OpenMP's static schedule cuts a loop,
 * each summed in order, and the blocks' sums are added in order, so a
 * thread count gives one result whichever thread sums which block.
 */
double mtl_dot(const float *a, const float *b, int64_t n, int nt);

/* exp(x) for float, relative error < 2e-7, 0 below -87.3 (vectorisable). */
float mtl_expf(float x);

#endif
