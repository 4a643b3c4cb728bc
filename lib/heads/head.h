/*
 * head.h - task heads on top of the encoder, one per task of a struct
 * mtl_tasks (task.h), with their forward and backward passes and their
 * checkpoint file heads.safetensors.
 *
 * A sequence head reads the pooled sentence vector (cls: the first
 * token's last hidden state; mean: the masked mean), before any L2
 * normalisation; a token head reads every token's last hidden state,
 * padding included (the loss ignores those positions).  With p the
 * task's dropout (docs/reference.md):
 *
 *	hidden > 0:  logits = out(dropout(act(dense(dropout(x)))))
 *	hidden = 0:  logits = out(dropout(x))
 *
 * act is gelu (exact erf form), tanh or relu.  Dropout applies only in
 * train mode; the caller may change hd->p[t] (e.g. to 0) before a forward.
 *
 * Layout: all head parameters in one block (hd->params, n_params floats),
 * task by task: dense.weight [hidden,H], dense.bias [hidden] (hidden > 0
 * only), out.weight [C,in], out.bias [C]; hd->tensors lists them with
 * their heads.safetensors names ("<task>.out.weight").  A gradient or
 * optimiser block has the same layout.
 *
 * Ownership: mtl_heads_new() returns heads the caller frees with
 * mtl_heads_free() (accepts NULL); it borrows ts, which must outlive it.
 * Activations are valid until the next forward.
 */
#ifndef MTL_HEAD_H
#define MTL_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "rng.h"
#include "task.h"

struct mtl_head_tensor {
	char name[96];
	int ndim;
	int64_t shape[2];
	size_t offset; /* floats from the start of the block */
	size_t numel;
	int task;
};

/* Per-task view of a block and the activations of the last forward. */
struct mtl_head {
	int N;            /* rows: B (sequence) or B*T (token) */
	int in, hid, C;   /* H, hidden units (0: none), labels */
	enum mtl_pool pool; /* sequence heads: cls or mean (ops.h) */
	size_t dw, db, ow, ob; /* offsets into the block (dw, db unused when hid = 0) */
	float *x;         /* [N,H]   head input after dropout */
	uint8_t *keep_x;  /* [N,H] */
	float *hpre;      /* [N,hid] dense output */
	float *hact;      /* [N,hid] act(hpre) */
	uint8_t *keep_h;  /* [N,hid] */
	float *hdrop;     /* [N,hid] dropout(hact): out's input */
	float *logits;    /* [N,C] */
	float *dlogits;   /* [N,C] set by the loss before backward */
	/* backward scratch */
	float *d_hdrop, *d_hpre; /* [N,hid] */
	float *d_x;       /* [N,H] */
	float *d_pool;    /* [B,H] */
};

struct mtl_heads {
	const struct mtl_tasks *ts;
	int H;
	float *params;
	size_t n_params;
	struct mtl_head_tensor *tensors;
	size_t n_tensors;
	struct mtl_head *h; /* [ts->n] */
	float *p;           /* [ts->n] dropout per task (from tasks.json) */
	int B, T, train, nt;
	const int32_t *mask; /* borrowed for backward (mean pooling) */
	/* private */
	float *arena;
	size_t arena_len;
	uint8_t *marena;
	size_t marena_len;
};

/*
 * Heads for ts on an encoder of hidden size H; sequence tasks without a
 * pooling of their own use pool (cls or mean, as the model pools).
 * Parameters zero.  0 and *out, or <0.
 */
int mtl_heads_new(struct mtl_heads **out, const struct mtl_tasks *ts, int H,
		  enum mtl_pool pool, struct mtl_err *err);
void mtl_heads_free(struct mtl_heads *hd);

/* Weights ~ N(0, 0.02^2), biases 0, from seed. */
void mtl_heads_init_random(struct mtl_heads *hd, uint64_t seed);

/*
 * Reads every parameter from a heads.safetensors at path.  A missing,
 * unexpected or wrong-shaped tensor fails with MTL_ERR_FORMAT naming it.
 */
int mtl_heads_load(struct mtl_heads *hd, const char *path,
		   struct mtl_err *err);
/* Writes heads.safetensors (F32) atomically. */
int mtl_heads_save(const struct mtl_heads *hd, const char *path,
		   struct mtl_err *err);

/*
 * Forward from the encoder's last hidden state last[B,T,H] and the
 * attention mask [B,T] (1 real, NULL all real; borrowed until backward):
 * fills hd->h[t].logits.  Dropout (hd->p[t]) only when train is set, the
 * masks drawn from rng task by task.  Fails (MTL_ERR_NOMEM) only when the
 * activations cannot be allocated.
 */
int mtl_heads_forward(struct mtl_heads *hd, const float *last,
		      const int32_t *mask, int B, int T, int train,
		      struct mtl_rng *rng, struct mtl_err *err);

/*
 * Backward of the last forward from every hd->h[t].dlogits: adds the
 * parameter gradients into grad (a block laid out like hd->params) and
 * the gradient of the last hidden state into dlast[B,T,H].  A task whose
 * skip[t] is set (no labels in the batch) is skipped; skip may be NULL.
 */
void mtl_heads_backward(struct mtl_heads *hd, float *grad, float *dlast,
			const uint8_t *skip);

#endif
