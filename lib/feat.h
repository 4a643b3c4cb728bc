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
 * Ownership: mtl_feat_load() returns a table the caller frees with
 * mtl_feat_free() (NULL accepted).  The reader and model are borrowed.
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

#endif
