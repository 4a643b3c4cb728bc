/*
 * feat.h - cached encoder outputs ("features" streams) for training the
 * heads without running a frozen encoder: a table from example id to the
 * example's last hidden states, and the padded [B,T,H] input of a batch.
 *
 * A features stream (docs/streams.md) is written by mtl-score --features:
 * header {"stream": "features", "dim": H, "encoder": HASH, "vocab_hash":
 * ..., ...}, then per example {"type": "features", "id": ID, "len": n,
 * "hidden": F32[n * H]}: the last hidden state of each real token, from
 * the inference forward (no dropout).  mtl-step --features reads it
 * beside the batches stream and looks the batches' example ids up here.
 *
 * Writing: mtl_feat_write_header(), then mtl_feat_write() per example;
 * each writes one whole record (mtl_mp_end) and returns 0 or MTL_ERR_IO.
 *
 * Ownership: mtl_feat_load() returns a table the caller frees with
 * mtl_feat_free() (NULL accepted).  The reader, writer and model are
 * borrowed.
 *
 * Failure: MTL_ERR_FORMAT for a malformed stream, a stream of another
 * encoder (hash) or width, a duplicate id, or a batch example whose id is
 * missing or whose length differs; the message names the record or id.
 */
#ifndef MTL_FEAT_H
#define MTL_FEAT_H

#include <stdint.h>

#include "bert.h"
#include "data.h"
#include "err.h"
#include "model.h"
#include "mp.h"

struct mtl_feat;

/*
 * A hash of every encoder parameter (their float bits, FNV-1a over 64-bit
 * words), as 16 hex digits into hex[17]: features of one encoder are
 * refused by another.
 */
void mtl_feat_encoder_hash(const struct mtl_bert *m, char hex[17]);

/* Reads a whole features stream from r (header included) for encoder m. */
int mtl_feat_load(struct mtl_feat **out, struct mtl_mp_reader *r,
		  const struct mtl_bert *m, struct mtl_err *err);
void mtl_feat_free(struct mtl_feat *f);

/*
 * Fills last[b->B, b->T, H] with the cached states of the batch's
 * examples (by b->example_ids), padding rows zero.
 */
int mtl_feat_batch(const struct mtl_feat *f, float *last,
		   const struct mtl_batch *b, struct mtl_err *err);

/*
 * The cached states of the n batches b[0..n) of a step: *last gets n
 * buffers [b[i].B, b[i].T, H] (mtl_feat_batch), owned by f and valid
 * until the next call on f.  0, or <0 as mtl_feat_batch (MTL_ERR_NOMEM).
 */
int mtl_feat_step(struct mtl_feat *f, const float *const **last,
		  const struct mtl_batch *b, int n, struct mtl_err *err);

/*
 * Writes the header of a features stream of model m, loaded from
 * model_dir: argv[1..argc) as its "args", the encoder's width and hash,
 * and the vocabulary's hash when the model has one.
 */
int mtl_feat_write_header(struct mtl_mp_writer *w, int argc, char **argv,
			  const struct mtl_model *m, const char *model_dir,
			  struct mtl_err *err);

/*
 * Writes the features record of ex: its id (nil when it has none), its
 * length and hidden[ex->len, H], the last hidden states of its tokens.
 */
int mtl_feat_write(struct mtl_mp_writer *w, const struct mtl_example *ex,
		   const float *hidden, int H, struct mtl_err *err);

#endif
