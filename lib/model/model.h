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
#include "head.h"
#include "task.h"

struct mtl_card; /* card.h */

struct mtl_model {
	char *dir;
	struct mtl_bert *bert;
	struct mtl_bert_pooling pool;
	struct mtl_tasks *tasks;  /* NULL without tasks.json */
	struct mtl_heads *heads;  /* NULL until mtl_model_heads() */
	uint64_t vocab_hash;      /* of the tokenizer's vocabulary */
	int has_vocab;
	struct mtl_card *card;    /* training facts for README.md (card.h); NULL */
};

/*
 * Loads dir: the encoder and pooling always, tasks.json when present, and
 * the vocabulary's hash (vocab.txt or tokenizer.json) when present.  A
 * directory with a MANIFEST is checked against it first (MTL_ERR_FORMAT
 * when a save was interrupted or a file changed since).
 */
int mtl_model_load(struct mtl_model **out, const char *dir,
		   struct mtl_err *err);
void mtl_model_free(struct mtl_model *m);

/*
 * Makes m->heads for m->tasks: loaded from heads.safetensors when the
 * directory has one, else (or when m->dir is NULL) drawn from seed (a new
 * multi-task model).
 * Sequence heads pool as the model does (cls or mean; a max-pooling
 * model needs each sequence task to name its pooling).  0, or <0 (err).
 */
int mtl_model_heads(struct mtl_model *m, uint64_t seed, struct mtl_err *err);

/*
 * Writes m as a complete model directory dir (created if needed): the
 * encoder (config.json, model.safetensors), the pooling files, the
 * tokenizer files of m's directory (none when m->dir is NULL), the model
 * card README.md (card.h), and, when m has tasks, tasks.json and
 * heads.safetensors (else it removes those of a previous model).  Each
 * file atomically, and the whole set published through dir/MANIFEST
 * (manifest.h): pending first, the list of files with their checksums
 * last, so that a reader (mtl_model_load) finds either the new set
 * complete or a pending manifest it refuses, never a mix of old and new
 * files that it takes for a model.
 */
int mtl_model_save(const struct mtl_model *m, const char *dir,
		   struct mtl_err *err);

/* Removes the files a model directory can have from dir (a writer that
 * replaces a model, after mtl_manifest_begin). */
int mtl_model_clear(const char *dir, struct mtl_err *err);

/*
 * Writes dir/name as the manifest of the model files dir holds (those of
 * a model directory's names that exist) and of extra[0..n_extra)
 * (n_extra <= 8), for a writer that began with mtl_manifest_begin().
 */
int mtl_model_publish(const char *dir, const char *name,
		      const char *const *extra, int n_extra,
		      struct mtl_err *err);

/*
 * Reads the sentence-transformers files of dir.  With modules.json: its
 * Pooling module's config.json gives the mode (exactly one of cls, mean,
 * max; other modes fail), normalize is set when a Normalize module is
 * listed, and any module other than Transformer, Pooling and Normalize
 * (a Dense layer, say) fails.  Without modules.json: CLS pooling and
 * normalize on, the BGE convention.  max_seq_length comes from
 * sentence_bert_config.json, else cfg->max_pos, and is capped at max_pos.
 * *pool untouched on error.
 */
int mtl_model_pooling_load(struct mtl_bert_pooling *pool, const char *dir,
			   const struct mtl_bert_config *cfg,
			   struct mtl_err *err);
/* Writes modules.json, 1_Pooling/config.json, sentence_bert_config.json,
 * config_sentence_transformers.json (cosine similarity, no prompts) and
 * 2_Normalize/ when normalize is set into dir. */
int mtl_model_pooling_save(const struct mtl_bert_pooling *pool, int hidden,
			   const char *dir, struct mtl_err *err);

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
 * each atomically, and removes from dst those src lacks (a previous
 * model's tokenizer.json would take precedence over the new vocab.txt).
 */
int mtl_model_copy_tokenizer(const char *src, const char *dst,
			     struct mtl_err *err);

#endif
