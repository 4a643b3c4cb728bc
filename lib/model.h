/*
 * model.h - an mtl model directory: a Hugging Face BERT directory
 * (config.json, model.safetensors, tokenizer files, sentence-transformers
 * pooling files) plus mtl's task spec (tasks.json) and task heads
 * (heads.safetensors).  A plain encoder directory (no tasks.json) is a
 * valid model for sentence embeddings.
 *
 * Ownership: mtl_model_load() returns a model the caller frees with
 * mtl_model_free() (NULL accepted); its parts are owned by it.
 */
#ifndef MTL_MODEL_H
#define MTL_MODEL_H

#include <stdint.h>

#include <msgpack.h>

#include "bert.h"
#include "err.h"
#include "task.h"

struct mtl_model {
	char *dir;
	struct mtl_bert *bert;
	struct mtl_bert_pooling pool;
	struct mtl_tasks *tasks;  /* NULL without tasks.json */
	uint64_t vocab_hash;      /* of the tokenizer's vocabulary */
	int has_vocab;
};

/*
 * Loads dir: the encoder and pooling always, tasks.json when present, and
 * the vocabulary's hash (vocab.txt or tokenizer.json) when present.
 */
int mtl_model_load(struct mtl_model **out, const char *dir,
		   struct mtl_err *err);
void mtl_model_free(struct mtl_model *m);

/*
 * Checks that a stream header (examples or batches) was tokenized with this
 * model's vocabulary: its "vocab_hash" must equal the model's when both
 * are known.  0, or MTL_ERR_FORMAT with the reason.
 */
int mtl_model_check_header(const struct mtl_model *m,
			   const msgpack_object *hdr, struct mtl_err *err);

/*
 * Copies the tokenizer files of src (vocab.txt, tokenizer.json,
 * tokenizer_config.json, special_tokens_map.json; those present) into dst,
 * each atomically.
 */
int mtl_model_copy_tokenizer(const char *src, const char *dst,
			     struct mtl_err *err);

#endif
