/*
 * bert.h - the BERT encoder: configuration, parameters, loading and saving
 * Hugging Face model directories (bert_io.c), the forward and backward
 * passes on BLIS, and sentence embeddings (bert.c).  The
 * sentence-transformers pooling files are model.h's.
 *
 * Example:
 *
 *	struct mtl_bert *m;
 *	struct mtl_bert_pooling pool;
 *	struct mtl_err err;
 *	float emb[2 * 1024];
 *
 *	if (mtl_bert_load(&m, "models/bge-large-en-v1.5", &err) ||
 *	    mtl_model_pooling_load(&pool, "models/bge-large-en-v1.5",
 *				   &m->cfg, &err))
 *		die("%s", err.msg);
 *	// ids, mask: [2,T] int32, right-padded, mask 1 for real tokens
 *	if (mtl_bert_embed(m, &pool, emb, ids, NULL, mask, 2, T, &err))
 *		die("%s", err.msg);
 *	mtl_bert_free(m);
 *
 * Layout (llm.c style).  All parameters live in one float block,
 * m->params, carved by a size table into the named pointers of struct
 * mtl_bert_params; a gradient or optimiser block of the same size is carved
 * the same way with mtl_bert_params_carve().  The Hugging Face tensors map
 * onto slices of that block: mtl_bert_tensors() lists every one with its
 * HF name, shape and offset (in floats), which is what the checkpoint
 * writer, the loader and an MPI allreduce iterate over.  Query, key and
 * value of a layer are adjacent ([3H,H]), so their projection is one gemm.
 *
 * Activations live in one arena planned per batch shape (B,T) and mode.
 * With train set, forward keeps what a backward pass needs in per-layer
 * slots (struct mtl_bert_acts), except two that backward recomputes from
 * what is kept, a layer at a time: the GELU output (I floats a token) and
 * the first LayerNorm's output (H); without train, the layer slots are
 * shared by every layer and the buffers are reused, so inference holds one
 * layer's worth of activations; so does training with
 * mtl_bert_set_recompute(), which keeps only each layer's input and runs
 * the layer's forward again in backward.  A training forward lays the
 * layers out one after another: slot l holds layer l's input and what
 * the layer keeps, so that with grad_slots set (below) backward can
 * write layer l's gradient over layer l + 1's slot, which it is done
 * with, and the gradients of a step take the memory its activations
 * leave.  Attention keeps nothing of size T*T:
 * backward recomputes each head's probabilities from the kept q and k
 * into per-thread scratch, so training memory grows linearly in T.
 * mtl_bert_forward_train() adds dropout (keep-masks kept beside the
 * activations, except the attention probabilities', which are drawn
 * again in backward from a counter-based stream) and mtl_bert_backward()
 * runs the forward in reverse, adding into a gradient block laid out like
 * the parameters, with one layer's worth of activation gradients as
 * scratch.  Nothing is allocated inside the layer loop.
 *
 * Ownership: mtl_bert_new()/mtl_bert_load() return a model the caller
 * frees with mtl_bert_free() (which accepts NULL).  Activation pointers are
 * borrowed: valid until the next forward on the same model.  A model is
 * not safe to use from two threads at once (each forward writes its arena).
 *
 * Failure: functions that can fail return 0 or a negative enum mtl_status
 * and fill err; a model directory that does not match its config fails
 * with one message listing every missing, unexpected and wrong-shaped
 * tensor.  Nothing here prints.
 */
#ifndef MTL_BERT_H
#define MTL_BERT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "ops.h"
#include "q8.h"
#include "rng.h"

/* A BERT configuration, as in a Hugging Face config.json. */
struct mtl_bert_config {
	int vocab;        /* vocab_size */
	int hidden;       /* hidden_size, H */
	int layers;       /* num_hidden_layers, L */
	int heads;        /* num_attention_heads, NH (H % NH == 0) */
	int intermediate; /* intermediate_size, I */
	int max_pos;      /* max_position_embeddings, P */
	int type_vocab;   /* type_vocab_size */
	float ln_eps;     /* layer_norm_eps */
	int pad_id;       /* pad_token_id */
	float hidden_dropout; /* hidden_dropout_prob (training only; default 0.1) */
	float attn_dropout;   /* attention_probs_dropout_prob (likewise) */
};

/*
 * Reads config.json at path.  Requires model_type "bert" (when present),
 * hidden_act "gelu" (the exact erf form) and position_embedding_type
 * "absolute" (when present); anything else fails with MTL_ERR_FORMAT
 * naming the field.  *cfg untouched on error.
 */
int mtl_bert_config_load(struct mtl_bert_config *cfg, const char *path,
			 struct mtl_err *err);
/* Checks ranges (positive sizes, H % NH == 0, sizes that fit in memory). */
int mtl_bert_config_check(const struct mtl_bert_config *cfg,
			  struct mtl_err *err);

/* Named pointers into a parameter (or gradient) block; shapes are [rows,cols]
 * in PyTorch nn.Linear layout (out_features first). */
struct mtl_bert_params {
	float *wte;      /* [V,H]    embeddings.word_embeddings.weight */
	float *wpe;      /* [P,H]    embeddings.position_embeddings.weight */
	float *wtt;      /* [TV,H]   embeddings.token_type_embeddings.weight */
	float *emb_lnw;  /* [H]      embeddings.LayerNorm.weight */
	float *emb_lnb;  /* [H]      embeddings.LayerNorm.bias */
	float *qkvw;     /* [L,3H,H] attention.self.{query,key,value}.weight */
	float *qkvb;     /* [L,3H]   attention.self.{query,key,value}.bias */
	float *attprojw; /* [L,H,H]  attention.output.dense.weight */
	float *attprojb; /* [L,H]    attention.output.dense.bias */
	float *ln1w;     /* [L,H]    attention.output.LayerNorm.weight */
	float *ln1b;     /* [L,H]    attention.output.LayerNorm.bias */
	float *fcw;      /* [L,I,H]  intermediate.dense.weight */
	float *fcb;      /* [L,I]    intermediate.dense.bias */
	float *fcprojw;  /* [L,H,I]  output.dense.weight */
	float *fcprojb;  /* [L,H]    output.dense.bias */
	float *ln2w;     /* [L,H]    output.LayerNorm.weight */
	float *ln2b;     /* [L,H]    output.LayerNorm.bias */
	float *poolw;    /* [H,H]    pooler.dense.weight */
	float *poolb;    /* [H]      pooler.dense.bias */
};
#define MTL_BERT_NUM_PARAMS 19

/* Fills sizes[MTL_BERT_NUM_PARAMS] (floats per field above, in order) and
 * returns their sum.  cfg must have passed mtl_bert_config_check(). */
size_t mtl_bert_param_sizes(size_t *sizes, const struct mtl_bert_config *cfg);
/* Points p's fields into block (mtl_bert_param_sizes() floats). */
void mtl_bert_params_carve(struct mtl_bert_params *p, float *block,
			   const struct mtl_bert_config *cfg);

/*
 * One encoder layer's fields of p (qkvw .. ln2b, each [1, ...]) carved
 * from block, the others NULL; returns the floats they take (block NULL:
 * only that).  mtl_bert_layer_offset: where a layer's tensor at offset
 * off of the whole block (struct mtl_bert_tensor) lies in such a block.
 */
size_t mtl_bert_layer_carve(struct mtl_bert_params *p, float *block,
			    const struct mtl_bert_config *cfg);
size_t mtl_bert_layer_offset(const struct mtl_bert_config *cfg, size_t off);

/* One Hugging Face tensor: a slice of the parameter block. */
struct mtl_bert_tensor {
	char name[80];    /* HF name without "bert.", e.g. "pooler.dense.bias" */
	int ndim;         /* 1 or 2 */
	int64_t shape[2];
	size_t offset;    /* in floats from the start of the block */
	size_t numel;
	int layer;        /* its encoder layer; -1: the embeddings or pooler */
};

/*
 * Activations of the last forward (see the header comment).  Per-layer
 * slots hold L layers in train mode and one shared layer otherwise:
 * layer l's starts l * ls floats after layer 0's (hidden: l * hs), in
 * train mode one after another, all of a layer together (outside
 * bert.c, read them through mtl_bert_hidden(), mtl_bert_attn_probs() and
 * mtl_bert_ffn_gelu() below).  Shapes:
 */
struct mtl_bert_acts {
	int B, T, train, nt;
	/* rows of the [B,T,...] slots in use: B*T, except in an embedding
	 * forward over a padded batch (mtl_bert_embed), which keeps the real
	 * tokens alone, sequence b at rows off[b] .. off[b] + len[b] - 1
	 * (off and len NULL otherwise) */
	int rows;
	const int32_t *off, *len;
	int recompute;    /* train with mtl_bert_set_recompute: the [L,...]
			   * slots below hold one layer (hidden keeps L+1) */
	size_t ls;        /* floats from layer l's [L,...] slots to layer
			   * l + 1's: 0 when they hold one layer */
	size_t hs;        /* the same for hidden: 0 in inference */
	int grad_slots;   /* the slots have room for a layer's gradient
			   * (struct mtl_bert, grad_slots) */
	float *mask_add;  /* [B,T]       0 or -FLT_MAX per key (HF's float32 min) */
	float *emb_in;    /* [B,T,H]     word + position + type (embedding LN input) */
	float *emb_mean;  /* [B,T] */
	float *emb_rstd;  /* [B,T] */
	float *hidden;    /* [L+1,B,T,H] train: 0 = embeddings, l+1 = layer l output
			   * [1,B,T,H]   inference: updated in place */
	float *qkv;       /* [L,B,T,3H]  q | k | v */
	float *att;       /* [nt,mtl_attention_scratch(T,H,NH)] per-thread
			   * scratch (inference; NULL in train mode: the
			   * probabilities are not kept) */
	float *ctx;       /* [L,B,T,H]   attention context (projection input) */
	float *ln1_in;    /* [L,B,T,H]   hidden + attention projection */
	float *ln1_mean;  /* [L,B,T] */
	float *ln1_rstd;  /* [L,B,T] */
	float *ln1_out;   /* [B,T,H]     one layer's (backward recomputes it
			   *             from ln1_in and its statistics) */
	int ld_fc;        /* floats between rows of fc: I, or in inference
			   * on packed weights gemm.h's mtl_gemm_ld_in_place(I) */
	float *fc;        /* [L,B,T,I]   GELU input (inference: its output,
			   *             the GELU runs in the product's epilogue) */
	float *fc_gelu;   /* [B,T,I]     one layer's GELU output (backward
			   *             recomputes it; inference: same as fc) */
	float *ln2_in;    /* [L,B,T,H]   ln1_out + FFN output (inference: shares ln1_in) */
	float *ln2_mean;  /* [L,B,T] */
	float *ln2_rstd;  /* [L,B,T] */
	/* mtl_bert_forward_train only (NULL otherwise): */
	float p_hidden, p_attn; /* the dropout of the last forward */
	uint64_t att_seed; /* its attention masks' stream: layer l's are
			    * elements l*B*NH*T*T.. (mtl_dropout_mask_at) */
	int32_t *ids;     /* [B,T]       copies of the inputs, for backward */
	int32_t *types;   /* [B,T] */
	uint8_t *emb_drop;  /* [B,T,H]   keep-masks (NULL when p is 0) */
	uint8_t *proj_drop; /* [L,B,T,H] after attention.output.dense */
	uint8_t *ffn_drop;  /* [L,B,T,H] after output.dense */
	float *d_res;     /* [B,T,H]     backward: gradient of the layer output */
	float *d_a;       /* [B,T,H] */
	float *d_b;       /* [B,T,H] */
	float *d_fc;      /* [B,T,I]     fc_gelu's memory */
	float *d_fcg;     /* [B,T,I] */
	float *d_qkv;     /* [B,T,3H]    d_fcg's memory */
	float *scratch;   /* [nt,mtl_attention_train_scratch(T)] attention,
			   * forward and backward */
};

/* The model.  Fields are read-only for callers, except that the trainer
 * may write parameter values through params / p. */
struct mtl_bert {
	struct mtl_bert_config cfg;
	float *params;    /* one block, n_params floats */
	size_t n_params;
	struct mtl_bert_params p;
	struct mtl_bert_tensor *tensors; /* n_tensors, in block order */
	size_t n_tensors;
	int threads;      /* threads per call: BLIS's, par.h's */
	int gemm_split;   /* see mtl_bert_set_gemm_split() */
	int recompute;    /* see mtl_bert_set_recompute() */
	/*
	 * Called by mtl_bert_backward(_to), when set, as soon as the
	 * gradients of layer l are complete (l from L-1 down to the lowest
	 * layer run, then -1 when the embeddings are): a data-parallel
	 * trainer starts summing them across processes while the layers
	 * below are still running (dist.h).
	 */
	void (*grad_ready)(void *arg, int l);
	void *grad_ready_arg;
	/*
	 * When set, mtl_bert_backward(_to) adds every layer's gradient into
	 * these fields of one layer (mtl_bert_layer_carve) instead of its
	 * place in grad (the embeddings' still go to grad): grad_ready must
	 * then take each layer's and leave the fields zero for the next.
	 * One layer's gradient held at a time (train.h, o.low_memory).
	 */
	const struct mtl_bert_params *layer_grad;
	/*
	 * When set before a training forward (without recompute), each
	 * layer's slot is made large enough for a layer's gradient, and
	 * backward writes layer l's (mtl_bert_layer_carve) over layer
	 * l + 1's activations, once it is done with them (the top layer's
	 * over the last hidden state), instead of into grad; the
	 * embeddings' still go to grad.  mtl_bert_grad_slot() finds them.
	 * The forward's activations are gone after such a backward: it is
	 * the last over that forward.
	 */
	int grad_slots;
	/*
	 * When set (the caller's [vocab] bytes), mtl_bert_backward(_to)
	 * sets wte_rows[id] to 1 for each word-embedding row whose
	 * gradient it adds to (every id of the batch but pad_id): a
	 * trainer clears and reads only those rows of that gradient.
	 */
	uint8_t *wte_rows;
	struct mtl_bert_acts acts;
	/* private */
	float *arena;
	size_t arena_len;
	void *tarena;      /* training extras (masks, input copies, scratch) */
	size_t tarena_len;
	void *config_json; /* the loaded config.json (json_t), kept for save */
	struct mtl_q8_linear **q8; /* [L*4] int8 copies, or NULL (set_int8) */
	struct mtl_q8_buf q8buf;   /* their quantised activations */
	float **packed;            /* [L*4] weights packed once, or NULL (set_packed) */
	float *packed_block;       /* their memory, or NULL: */
	int packed_here;           /* they are the weights themselves */
	int32_t *rag;              /* [2*rag_cap]: acts.off and acts.len */
	int rag_cap;
	const struct mtl_bert *base; /* a view's model (mtl_bert_view_new),
				      * whose weights it borrows; else NULL */
	struct mtl_bert **views;   /* [n_views] one-thread views of this
				    * model (mtl_bert_views) */
	int n_views;
	int parts;                 /* see mtl_bert_set_parts() */
	int parts_off;             /* calls left that share every product
				    * instead of running in parts */
	float *parts_hidden;       /* [parts_len] the last hidden state of
				    * mtl_bert_forward_real in parts */
	size_t parts_len;
};

/* A zero-filled model for cfg.  0 and *out, or <0 (err set). */
int mtl_bert_new(struct mtl_bert **out, const struct mtl_bert_config *cfg,
		 struct mtl_err *err);
/*
 * The same with its parameters not set, for a caller that writes every one
 * (mtl_bert_load): the zeros cost a pass over them, and the pages they
 * fault in stay beside the file's while it is read.
 */
int mtl_bert_new_unset(struct mtl_bert **out,
		       const struct mtl_bert_config *cfg, struct mtl_err *err);
void mtl_bert_free(struct mtl_bert *m);

/*
 * A view of m for inference in parallel: a model that borrows m's
 * weights, their packed or int8 copies and its tensors list (reading
 * them only) and has its own activations, on threads threads (as
 * mtl_bert_set_threads).  Several threads may each run inference
 * forwards (mtl_bert_forward without train, mtl_bert_forward_real,
 * mtl_bert_embed) on a view of their own at once, and get the bits m
 * gives.  m must outlive its views and keep its weights, packing and
 * int8 copies as they are while they live; a view refuses to train or
 * to change packing or int8 (MTL_ERR_ARG).  mtl_bert_free() frees a
 * view's own memory.  0 and *out, or MTL_ERR_NOMEM.
 */
int mtl_bert_view_new(struct mtl_bert **out, const struct mtl_bert *m,
		      int threads, struct mtl_err *err);
/*
 * m's own one-thread views, at least n of them (m->views[0..n)), made
 * as needed and freed with m: the ones its batches in parts run on
 * (mtl_bert_set_parts), which a caller may run whole batches on too
 * while m runs none, so that both share one set of activations.  Each
 * call points them at what m has now (packed or int8 weights may have
 * changed since).  m must not be a view.  0, or MTL_ERR_NOMEM.
 */
int mtl_bert_views(struct mtl_bert *m, int n, struct mtl_err *err);

/*
 * Random initialisation as Hugging Face does it: every weight matrix and
 * embedding ~ N(0, 0.02^2) (the word embedding row of pad_id zeroed),
 * LayerNorm weights 1, biases 0.  The same seed gives the same model.
 */
void mtl_bert_init_random(struct mtl_bert *m, uint64_t seed);

/*
 * Loads a Hugging Face model directory: config.json and either
 * model.safetensors or model.safetensors.index.json with its shards.
 * Tensors may be F32, F16, BF16 or F64, with or without a "bert." prefix.
 * Ignored: "embeddings.position_ids" and pre-training heads ("cls.*").
 * Every missing, unexpected or wrong-shaped tensor is listed in one
 * message; a tensor present twice (in two shards, or with and without the
 * prefix) fails too.  0 and *out, or <0 (err set, *out untouched).
 */
int mtl_bert_load(struct mtl_bert **out, const char *dir, struct mtl_err *err);

/*
 * The configuration as config.json holds it: a new json_t (void * here, so
 * that bert.h needs no jansson) the caller frees with json_decref(): the
 * fields of a loaded config.json we do not interpret, then ours.  NULL
 * when out of memory.
 */
void *mtl_bert_config_json(const struct mtl_bert *m);

/*
 * Writes dir/config.json and dir/model.safetensors (F32, HF names without
 * prefix, metadata format "pt"), creating dir if needed, each file
 * atomically.  The config keeps any fields of a loaded config.json that we
 * do not interpret.  Tokenizer and pooling files are not written here
 * (mtl_model_pooling_save in model.h writes the pooling ones).
 */
int mtl_bert_save(const struct mtl_bert *m, const char *dir,
		  struct mtl_err *err);

/* The HF tensors of m (m->n_tensors entries), data at m->params + offset. */
const struct mtl_bert_tensor *mtl_bert_tensors(const struct mtl_bert *m,
					       size_t *n);
/* The tensor called name (with or without "bert."), or NULL. */
const struct mtl_bert_tensor *mtl_bert_tensor_find(const struct mtl_bert *m,
						   const char *name);

/*
 * Threads for BLIS and the element-wise loops of every later call on m;
 * n <= 0 means every online core (the default of a new model).
 */
void mtl_bert_set_threads(struct mtl_bert *m, int n);

/*
 * How the projections use the threads: 1 (the default) gives each thread
 * a slice of the output columns and a single-threaded product
 * (mtl_linear_forward_split); 0 lets BLIS thread each product.  Results
 * are the same to rounding.  The split has no barrier inside a product,
 * so it holds up when another process takes a core, where BLIS's spinning
 * threads collapse; quiet, it is as fast or faster (docs/performance.md,
 * bench-encode -l).
 */
void mtl_bert_set_gemm_split(struct mtl_bert *m, int on);

/*
 * Training memory for time (Hugging Face's gradient checkpointing): with
 * on, later training forwards keep only each layer's input (hidden state
 * l) and keep-masks, and backward runs each layer's forward again, from
 * that input, just before its backward.  The recomputed activations are
 * the forward's bits, so the gradients are the same bits as without it;
 * a step costs about one forward more (a third), and the activations
 * kept fall from about 7H + I floats a token and layer to H.  While it
 * is on, mtl_bert_attn_probs() and mtl_bert_ffn_gelu() return -1.
 * Off by default.
 */
void mtl_bert_set_recompute(struct mtl_bert *m, int on);

/*
 * Inference batches in parts side by side (off by default): with on and
 * several threads, mtl_bert_embed and mtl_bert_forward_real may cut a
 * batch's sequences into parts of about equal work and run each as a
 * one-thread forward on a view of m (mtl_bert_view_new), so that the
 * threads do not wait for each other inside every product; the results
 * are the same bytes.  The views' activations (about one batch's in
 * all) come on top of m's, so a model that also trains leaves it off.
 */
void mtl_bert_set_parts(struct mtl_bert *m, int on);

/*
 * int8 inference, an option that trades accuracy for speed (q8.h;
 * docs/performance.md gives the measured bound).  With on, quantises the
 * weights of every layer's four linear maps (query/key/value, attention
 * output, intermediate, output) once, from the weights as they are now,
 * packed for path (MTL_Q8_AUTO: the fastest this CPU has); later
 * inference forwards (mtl_bert_forward without train, mtl_bert_embed)
 * run those maps in int8.  Training forwards stay fp32, and the copies do
 * not follow later changes to the weights: set it again after them.
 * With on 0, frees the copies.  Fails like mtl_q8_linear_new(), leaving
 * the model fp32.
 */
int mtl_bert_set_int8(struct mtl_bert *m, int on, enum mtl_q8_path path,
		      struct mtl_err *err);

/*
 * Inference with the weights packed once (gemm.h's mtl_gemm_pack_b).
 * With on, packs the weights of every layer's four linear maps, as they
 * are now, for mtl_gemm_default()'s kernel; later inference forwards read
 * them instead of packing each weight again for every product, and cut
 * each product by rows between the threads (ops.h's
 * mtl_linear_forward_packed), with the same bits.  Where every packed
 * copy has its weight's size (each map's outputs a multiple of the
 * kernel's 32 or 16 columns: every bge shape), the weights are packed
 * where they lie and cost no memory; until set_packed(m, 0) unpacks them
 * again, bit for bit, the plain weights are not there: a training forward
 * and mtl_bert_save() fail (MTL_ERR_ARG), mtl_bert_set_int8() unpacks
 * first, and nothing else may read or write those tensors.  Otherwise the
 * copies take as much memory again as the weights, and do not follow
 * later changes to them.  Training forwards and the int8 maps (which take
 * precedence) do not use them.  With on 0, or when the products run on
 * BLIS, nothing stays packed.  Fails with MTL_ERR_NOMEM (a buffer of one
 * weight, or the copies).
 */
int mtl_bert_set_packed(struct mtl_bert *m, int on, struct mtl_err *err);

/*
 * The forward pass over a right-padded batch:
 *   ids   [B,T] token ids in [0, vocab)
 *   types [B,T] token type ids in [0, type_vocab), or NULL for all 0
 *   mask  [B,T] 1 for a real token, 0 for padding, or NULL for all 1
 * T <= max_pos.  With train set, every layer's activations are kept.
 * Plans (allocates) the arena when (B,T,train,threads) outgrows it; the
 * layer loop itself never allocates.  Out-of-range ids fail with
 * MTL_ERR_ARG.  Results: mtl_bert_last_hidden() and m->acts.
 */
int mtl_bert_forward(struct mtl_bert *m, const int32_t *ids,
		     const int32_t *types, const int32_t *mask, int B, int T,
		     int train, struct mtl_err *err);
/*
 * The inference forward (mtl_bert_forward without train) over the real
 * tokens alone: the padding rows of a right-padded batch run through no
 * product, LayerNorm or GELU (the layout mtl_bert_embed uses).  The last
 * hidden state's real rows are the bytes mtl_bert_forward gives them;
 * its padding rows are zero.  For predictions, which read real rows only.
 * With mtl_bert_set_parts it may run in parts side by side, as
 * mtl_bert_embed does; its last hidden state is the same bytes.
 */
int mtl_bert_forward_real(struct mtl_bert *m, const int32_t *ids,
			  const int32_t *types, const int32_t *mask, int B,
			  int T, struct mtl_err *err);

/*
 * The training forward: mtl_bert_forward with train set, plus inverted
 * dropout (PyTorch's: kept values scaled by 1/(1-p)) with p_hidden after
 * the embedding LayerNorm and after both output projections of each
 * layer, and p_attn on the attention probabilities.  The keep-masks are
 * drawn from rng before the layer loop, in a fixed order: the
 * embeddings' mask, one 64-bit seed for the attention masks (when p_attn
 * > 0), then the masks after the projections (rng untouched when both
 * are 0).
 * Same failures as mtl_bert_forward.
 */
int mtl_bert_forward_train(struct mtl_bert *m, const int32_t *ids,
			   const int32_t *types, const int32_t *mask, int B,
			   int T, float p_hidden, float p_attn,
			   struct mtl_rng *rng, struct mtl_err *err);
/*
 * The backward pass of the last mtl_bert_forward_train: adds into grad (a
 * block of m->n_params floats, carved like m->params; the caller zeroes
 * it) the gradient of a loss whose gradient with respect to the last
 * hidden state is dlast[B,T,H].  The pooler gets none (heads do not read
 * it).  The forward run reversed.
 */
void mtl_bert_backward(struct mtl_bert *m, float *grad, const float *dlast);
/*
 * mtl_bert_backward that stops early, for frozen lower layers: it runs
 * layers L-1 down to lo (0 <= lo <= L) and the embeddings only when
 * embeddings is set (which needs lo == 0).  Nothing below is computed,
 * so the gradients of what it skips stay as the caller left them.
 * lo == L without embeddings does nothing.  Returns the number of
 * layers it ran (the embeddings not counted).
 */
int mtl_bert_backward_to(struct mtl_bert *m, float *grad, const float *dlast,
			 int lo, int embeddings);

/* With grad_slots: the block (mtl_bert_layer_carve) holding layer l's
 * gradient after a backward that reached it. */
float *mtl_bert_grad_slot(const struct mtl_bert *m, int l);

/* [B,T,H] output of the last layer of the last forward. */
const float *mtl_bert_last_hidden(const struct mtl_bert *m);
/* [B,T,H] hidden state l (0 = embeddings, L = last layer); NULL when the
 * last forward was not in train mode and l < L. */
const float *mtl_bert_hidden(const struct mtl_bert *m, int l);
/*
 * The [B,NH,T,T] attention probabilities of layer l of the last forward
 * (before dropout), computed into out from the kept q and k, the bits
 * the forward and backward use (the probabilities themselves are not
 * kept).  Returns 0, or -1 (out untouched) when that forward was not in
 * train mode or l is out of range.
 */
int mtl_bert_attn_probs(const struct mtl_bert *m, int l, float *out);
/*
 * The [B,T,I] GELU output of layer l of the last forward, computed into
 * out from the kept GELU input (the output itself is not kept).  Returns
 * 0, or -1 (out untouched) when that forward was not in train mode or l
 * is out of range.
 */
int mtl_bert_ffn_gelu(const struct mtl_bert *m, int l, float *out);

/*
 * BERT's pooler on the last forward: out[B,H] = tanh(poolw h_cls + poolb).
 * Not used by sentence embeddings; here for completeness and checks.
 */
void mtl_bert_pooler(const struct mtl_bert *m, float *out);

/* ---- sentence embeddings ---- */

/* How a model's sentence embeddings pool (its sentence-transformers
 * files: mtl_model_pooling_load in model.h). */
struct mtl_bert_pooling {
	enum mtl_pool mode; /* cls, mean or max (ops.h) */
	int normalize;      /* L2-normalise the pooled vector */
	int max_seq_length; /* from sentence_bert_config.json, else max_pos */
};

/*
 * Sentence embeddings: an inference forward, then pooling
 * (mtl_pool_forward) and, when pool->normalize, L2 normalisation
 * (mtl_l2norm_forward) into out[B,H].  Same arguments and
 * failures as mtl_bert_forward().  The forward runs on the real tokens
 * alone (as mtl_bert_forward_real), and with CLS pooling its last layer
 * on the CLS rows alone; out is the bytes the padded forward's pooling
 * gives.  With mtl_bert_set_parts and several threads, a batch whose
 * sequences split into parts of about equal work (one a thread, more
 * for a large batch) runs those parts side by side, each a one-thread
 * forward on a view of m, so that the threads never wait for each other
 * inside a part; after a call where a thread waited long for the others
 * (another process on its core), the next few share every product
 * instead.  out is the same bytes either way.  Afterwards the last
 * hidden state is undefined.
 */
int mtl_bert_embed(struct mtl_bert *m, const struct mtl_bert_pooling *pool,
		   float *out, const int32_t *ids, const int32_t *types,
		   const int32_t *mask, int B, int T, struct mtl_err *err);

/* Floating-point operations of one forward (2*m*n*k per gemm, attention
 * products included), for throughput figures. */
double mtl_bert_forward_flops(const struct mtl_bert_config *cfg, int B, int T);

#endif
