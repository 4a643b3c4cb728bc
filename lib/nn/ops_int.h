/*
 * ops_int.h - what ops.c and ops_attn.c share beyond ops.h: the unfused
 * inference attention (ops.c), which mtl_attention_forward_ex runs for
 * MTL_ATTN_REF.  Not a module of its own.
 */
#ifndef MTL_OPS_INT_H
#define MTL_OPS_INT_H

/*
 * ctx[B,T,H] from qkv[B,T,3H] and mask_add[B,T] as mtl_attention_forward
 * describes, through the [T,T] score matrix of each (b, h): two sgemm
 * calls and a softmax per row.  scratch: [nt,T,T] floats.
 */
void mtl_ops_attention_unfused(float *ctx, float *scratch, const float *qkv,
			       const float *mask_add, int B, int T, int H,
			       int NH, int nt);

#endif
