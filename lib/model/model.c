/*
 * model.c - mtl model directories: loading and saving the encoder, its
 * sentence-transformers pooling files, the task spec and the heads; see
 * model.h.
 */
#include "model.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "card.h"
#include "fs.h"
#include "manifest.h"
#include "mp.h"
#include "tok.h"

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

int mtl_model_load(struct mtl_model **out, const char *dir,
		   struct mtl_err *err)
{
	struct mtl_model *m = calloc(1, sizeof(*m));
	int rc;

	if (!m || !(m->dir = strdup(dir))) {
		free(m);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	/* manifest.h: refuse a half-written or changed directory */
	if ((rc = mtl_manifest_check(dir, MTL_MANIFEST, NULL, 0, err)) < 0 ||
	    (rc = mtl_bert_load(&m->bert, dir, err)) ||
	    (rc = mtl_model_pooling_load(&m->pool, dir, &m->bert->cfg, err)))
		goto fail;
	if (mtl_fs_exists(dir, "tasks.json")) {
		char *p = path_join(dir, "tasks.json");
		rc = p ? mtl_task_load(&m->tasks, p, err) : MTL_ERR_NOMEM;
		free(p);
		if (rc)
			goto fail;
	}
	if (mtl_fs_exists(dir, "vocab.txt") || mtl_fs_exists(dir, "tokenizer.json")) {
		struct mtl_tok *tok;
		if ((rc = mtl_tok_load(&tok, dir, err)))
			goto fail;
		m->vocab_hash = mtl_tok_vocab_hash(tok);
		m->has_vocab = 1;
		if (mtl_tok_vocab_size(tok) > m->bert->cfg.vocab) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "'%s': the vocabulary has %d entries, more than the model's vocab_size %d",
					 dir, (int)mtl_tok_vocab_size(tok), m->bert->cfg.vocab);
			mtl_tok_free(tok);
			goto fail;
		}
		mtl_tok_free(tok);
	}
	*out = m;
	return 0;
fail:
	mtl_model_free(m);
	return rc;
}

int mtl_model_heads(struct mtl_model *m, uint64_t seed, struct mtl_err *err)
{
	char *path;
	int rc;

	if (!m->tasks)
		return mtl_err_set(err, MTL_ERR_FORMAT, "'%s' has no tasks.json", m->dir);
	if (m->pool.mode == MTL_POOL_MAX)
		for (int t = 0; t < m->tasks->n; t++)
			if (m->tasks->task[t].kind != MTL_TASK_TOKEN &&
			    m->tasks->task[t].pooling == MTL_POOL_DEFAULT)
				return mtl_err_set(err, MTL_ERR_FORMAT,
						   "'%s': task '%s': the model pools by max, which sequence heads do not support; set the task's \"pooling\" to cls or mean",
						   m->dir ? m->dir : "new model",
						   m->tasks->task[t].name);
	mtl_heads_free(m->heads);
	m->heads = NULL;
	if ((rc = mtl_heads_new(&m->heads, m->tasks, m->bert->cfg.hidden,
				m->pool.mode, err)))
		return rc;
	if (!m->dir || !mtl_fs_exists(m->dir, "heads.safetensors")) {
		mtl_heads_init_random(m->heads, seed);
		return 0;
	}
	if (!(path = path_join(m->dir, "heads.safetensors")))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	rc = mtl_heads_load(m->heads, path, err);
	free(path);
	return rc;
}

/* The files a model directory can have, relative to it. */
static const char *const model_files[] = {
	"config.json", "model.safetensors", "modules.json",
	"sentence_bert_config.json", "1_Pooling/config.json", "vocab.txt",
	"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
	"config_sentence_transformers.json", "README.md",
	"tasks.json", "heads.safetensors", /* the task files last */
};
#define N_MODEL_FILES (int)(sizeof(model_files) / sizeof(model_files[0]))

int mtl_model_publish(const char *dir, const char *name,
		      const char *const *extra, int n_extra,
		      struct mtl_err *err)
{
	const char *files[N_MODEL_FILES + 8];
	int n = 0;

	MTL_ASSERT(n_extra <= 8);
	for (int i = 0; i < N_MODEL_FILES; i++)
		if (mtl_fs_exists(dir, model_files[i]))
			files[n++] = model_files[i];
	for (int i = 0; i < n_extra; i++)
		files[n++] = extra[i];
	return mtl_manifest_commit(dir, name, files, n, err);
}

/* Removes model_files[from..to) from dir. */
static int remove_files(const char *dir, int from, int to, struct mtl_err *err)
{
	for (int i = from; i < to; i++) {
		char *path = path_join(dir, model_files[i]);
		int rc = path ? mtl_fs_remove(path, err)
			      : mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");

		free(path);
		if (rc)
			return rc;
	}
	return 0;
}

int mtl_model_clear(const char *dir, struct mtl_err *err)
{
	return remove_files(dir, 0, N_MODEL_FILES, err);
}

int mtl_model_save(const struct mtl_model *m, const char *dir,
		   struct mtl_err *err)
{
	char *path = NULL;
	int rc;

	/* a reader refuses the directory from here until the new manifest */
	if ((rc = mtl_fs_mkdirs(dir, err)) ||
	    (rc = mtl_manifest_begin(dir, MTL_MANIFEST, err)) ||
	    (rc = mtl_bert_save(m->bert, dir, err)) ||
	    (rc = mtl_model_pooling_save(&m->pool, m->bert->cfg.hidden, dir, err)) ||
	    (m->dir && (rc = mtl_model_copy_tokenizer(m->dir, dir, err))) ||
	    (rc = mtl_card_write(m->card, &m->bert->cfg, &m->pool, m->tasks, dir, err)))
		return rc;
	/* no tasks: a previous model's task files (the last two) are not
	 * this one's */
	if (!m->tasks &&
	    (rc = remove_files(dir, N_MODEL_FILES - 2, N_MODEL_FILES, err)))
		return rc;
	if (m->tasks) {
		if (!(path = path_join(dir, "tasks.json")))
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		rc = mtl_task_save(m->tasks, path, err);
		free(path);
	}
	if (!rc && m->heads) {
		if (!(path = path_join(dir, "heads.safetensors")))
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		rc = mtl_heads_save(m->heads, path, err);
		free(path);
	}
	return rc ? rc : mtl_model_publish(dir, MTL_MANIFEST, NULL, 0, err);
}

void mtl_model_free(struct mtl_model *m)
{
	if (!m)
		return;
	mtl_heads_free(m->heads);
	mtl_card_free(m->card);
	mtl_bert_free(m->bert);
	mtl_task_free(m->tasks);
	free(m->dir);
	free(m);
}

int mtl_model_check_header(const struct mtl_model *m,
			   const msgpack_object *hdr, struct mtl_err *err)
{
	const msgpack_object *h = mtl_mp_get(hdr, "vocab_hash");
	char hex[17];

	if (!m->has_vocab || !h || h->type != MSGPACK_OBJECT_STR)
		return 0;
	snprintf(hex, sizeof(hex), "%016" PRIx64, m->vocab_hash);
	if (!mtl_mp_is_str(h, hex))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "tokenized with another vocabulary than the model '%s' (vocab_hash %.*s, model %s)",
				   m->dir, (int)(h->via.str.size > 16 ? 16 : h->via.str.size),
				   h->via.str.ptr, hex);
	return 0;
}

int mtl_model_copy_tokenizer(const char *src, const char *dst,
			     struct mtl_err *err)
{
	static const char *const files[] = { "vocab.txt", "tokenizer.json",
		"tokenizer_config.json", "special_tokens_map.json" };

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *s, *d;
		int rc = 0;

		s = path_join(src, files[i]);
		d = path_join(dst, files[i]);
		/* a file src lacks is a previous model's in dst: it goes */
		rc = !s || !d ? mtl_err_set(err, MTL_ERR_NOMEM, "out of memory")
		     : mtl_fs_exists(src, files[i]) ? mtl_fs_copy(s, d, err)
		     : mtl_fs_remove(d, err);
		free(s);
		free(d);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- sentence-transformers pooling files ---- */

static int read_pooling_config(struct mtl_bert_pooling *pool, const char *path,
			       const struct mtl_bert_config *cfg,
			       struct mtl_err *err)
{
	static const char *const other[] = {
		"pooling_mode_mean_sqrt_len_tokens",
		"pooling_mode_weightedmean_tokens",
		"pooling_mode_lasttoken",
	};
	json_t *j, *dim;
	int cls, mean, max, rc = mtl_fs_read_json(&j, path, err);

	if (rc)
		return rc;
	cls = json_is_true(json_object_get(j, "pooling_mode_cls_token"));
	mean = json_is_true(json_object_get(j, "pooling_mode_mean_tokens"));
	max = json_is_true(json_object_get(j, "pooling_mode_max_tokens"));
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		if (json_is_true(json_object_get(j, other[i]))) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "'%s': unsupported pooling mode '%s'",
					 path, other[i]);
			goto out;
		}
	if (cls + mean + max != 1) {
		rc = mtl_err_set(err, MTL_ERR_FORMAT,
				 "'%s': need exactly one of cls, mean, max pooling (found %d)",
				 path, cls + mean + max);
		goto out;
	}
	dim = json_object_get(j, "word_embedding_dimension");
	if (dim && json_integer_value(dim) != cfg->hidden) {
		rc = mtl_err_set(err, MTL_ERR_FORMAT,
				 "'%s': word_embedding_dimension %lld does not match hidden size %d",
				 path, (long long)json_integer_value(dim), cfg->hidden);
		goto out;
	}
	pool->mode = cls ? MTL_POOL_CLS : mean ? MTL_POOL_MEAN : MTL_POOL_MAX;
out:
	json_decref(j);
	return rc;
}

int mtl_model_pooling_load(struct mtl_bert_pooling *out, const char *dir,
			   const struct mtl_bert_config *cfg,
			   struct mtl_err *err)
{
	struct mtl_bert_pooling pool = { MTL_POOL_CLS, 1, cfg->max_pos };
	char path[MTL_FS_PATH_LEN], sub[MTL_FS_PATH_LEN], cfgpath[MTL_FS_PATH_LEN];
	json_t *mods = NULL, *v, *sbc;
	size_t i;
	int rc, have_pool = 0;

	if ((rc = mtl_fs_join(path, dir, "modules.json", err)))
		return rc;
	if (mtl_fs_exists(dir, "modules.json")) {
		if ((rc = mtl_fs_read_json(&mods, path, err)))
			return rc;
		if (!json_is_array(mods)) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "'%s': not a JSON array", path);
			goto out;
		}
		pool.normalize = 0;
		json_array_foreach(mods, i, v) {
			const char *type = json_string_value(json_object_get(v, "type"));
			const char *mpath = json_string_value(json_object_get(v, "path"));
			const char *base;

			if (!type) {
				rc = mtl_err_set(err, MTL_ERR_FORMAT,
						 "'%s': module %zu has no type", path, i);
				goto out;
			}
			base = strrchr(type, '.') ? strrchr(type, '.') + 1 : type;
			if (!strcmp(base, "Transformer")) {
				continue;
			} else if (!strcmp(base, "Normalize")) {
				pool.normalize = 1;
			} else if (!strcmp(base, "Pooling")) {
				if (!mpath || strstr(mpath, "..")) {
					rc = mtl_err_set(err, MTL_ERR_FORMAT,
							 "'%s': Pooling module has a bad path", path);
					goto out;
				}
				if ((rc = mtl_fs_join(sub, dir, mpath, err)) ||
				    (rc = mtl_fs_join(cfgpath, sub, "config.json", err)) ||
				    (rc = read_pooling_config(&pool, cfgpath, cfg, err)))
					goto out;
				have_pool = 1;
			} else {
				rc = mtl_err_set(err, MTL_ERR_FORMAT,
						 "'%s': unsupported module '%s'", path, type);
				goto out;
			}
		}
		if (!have_pool) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "'%s': no Pooling module", path);
			goto out;
		}
	}
	if ((rc = mtl_fs_join(path, dir, "sentence_bert_config.json", err)))
		goto out;
	if (mtl_fs_exists(dir, "sentence_bert_config.json")) {
		json_t *msl;

		if ((rc = mtl_fs_read_json(&sbc, path, err)))
			goto out;
		msl = json_object_get(sbc, "max_seq_length");
		if (msl && (!json_is_integer(msl) || json_integer_value(msl) < 1)) {
			json_decref(sbc);
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "'%s': max_seq_length is not a positive integer",
					 path);
			goto out;
		}
		if (msl && json_integer_value(msl) < cfg->max_pos)
			pool.max_seq_length = (int)json_integer_value(msl);
		json_decref(sbc);
	}
	*out = pool;
	rc = 0;
out:
	json_decref(mods);
	return rc;
}

int mtl_model_pooling_save(const struct mtl_bert_pooling *pool, int hidden,
			   const char *dir, struct mtl_err *err)
{
	char path[MTL_FS_PATH_LEN], sub[MTL_FS_PATH_LEN];
	json_t *mods, *pc, *sbc, *cst;
	int rc;

	mods = json_pack("[{s:i,s:s,s:s,s:s}{s:i,s:s,s:s,s:s}]",
			 "idx", 0, "name", "0", "path", "",
			 "type", "sentence_transformers.models.Transformer",
			 "idx", 1, "name", "1", "path", "1_Pooling",
			 "type", "sentence_transformers.models.Pooling");
	pc = json_pack("{s:i,s:b,s:b,s:b,s:b,s:b,s:b,s:b}",
		       "word_embedding_dimension", hidden,
		       "pooling_mode_cls_token", pool->mode == MTL_POOL_CLS,
		       "pooling_mode_mean_tokens", pool->mode == MTL_POOL_MEAN,
		       "pooling_mode_max_tokens", pool->mode == MTL_POOL_MAX,
		       "pooling_mode_mean_sqrt_len_tokens", 0,
		       "pooling_mode_weightedmean_tokens", 0,
		       "pooling_mode_lasttoken", 0, "include_prompt", 1);
	sbc = json_pack("{s:i,s:b}", "max_seq_length", pool->max_seq_length,
			"do_lower_case", 0);
	cst = json_pack("{s:{},s:n,s:s}", "prompts", "default_prompt_name",
			"similarity_fn_name", "cosine");
	if (!mods || !pc || !sbc || !cst) {
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (pool->normalize)
		json_array_append_new(mods, json_pack("{s:i,s:s,s:s,s:s}", "idx", 2,
						      "name", "2", "path", "2_Normalize",
						      "type", "sentence_transformers.models.Normalize"));
	if ((rc = mtl_fs_mkdirs(dir, err)) ||
	    (rc = mtl_fs_join(path, dir, "modules.json", err)) ||
	    (rc = mtl_fs_write_json(path, mods, MTL_FS_JSON_HF, err)) ||
	    (rc = mtl_fs_join(sub, dir, "1_Pooling", err)) ||
	    (rc = mtl_fs_mkdirs(sub, err)) ||
	    (rc = mtl_fs_join(path, sub, "config.json", err)) ||
	    (rc = mtl_fs_write_json(path, pc, MTL_FS_JSON_HF, err)) ||
	    (rc = mtl_fs_join(path, dir, "sentence_bert_config.json", err)) ||
	    (rc = mtl_fs_write_json(path, sbc, MTL_FS_JSON_HF, err)) ||
	    (rc = mtl_fs_join(path, dir, "config_sentence_transformers.json", err)) ||
	    (rc = mtl_fs_write_json(path, cst, MTL_FS_JSON_HF, err)))
		goto out;
	if (pool->normalize &&
	    ((rc = mtl_fs_join(sub, dir, "2_Normalize", err)) || (rc = mtl_fs_mkdirs(sub, err))))
		goto out;
	rc = 0;
out:
	json_decref(mods);
	json_decref(pc);
	json_decref(sbc);
	json_decref(cst);
	return rc;
}
