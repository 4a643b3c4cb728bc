/*
 * bert_io.c - the encoder's files: config.json, and Hugging Face
 * safetensors directories (one file or an index of shards) read into and
 * written from the parameter block; see bert.h.  The mathematics is in
 * bert.c.
 */
#include "bert.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "fs.h"
#include "st.h"

static int file_exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/*
 * The double that prints as the shortest decimal reading back as f: a
 * float eps of 1e-12 is written "1e-12", as Hugging Face writes it, not
 * "9.999999960041972e-13".
 */
static double float_decimal(float f)
{
	char s[32];

	for (int p = 1; p <= 9; p++) {
		snprintf(s, sizeof(s), "%.*g", p, (double)f);
		if (strtof(s, NULL) == f)
			break;
	}
	return strtod(s, NULL);
}

/* ---- configuration ---- */

/* Reads a positive integer field; absent uses def (def < 0: required). */
static int cfg_int(int *out, json_t *root, const char *key, int def,
		   const char *path, struct mtl_err *err)
{
	json_t *v = json_object_get(root, key);

	if (!v || json_is_null(v)) {
		if (def < 0)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "'%s': missing \"%s\"", path, key);
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > INT32_MAX)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "'%s': \"%s\" is not a non-negative integer",
				   path, key);
	*out = (int)json_integer_value(v);
	return 0;
}

/* A probability in [0, 1); absent or null means 0.1 (Hugging Face's). */
static int cfg_prob(float *out, json_t *root, const char *key,
		    const char *path, struct mtl_err *err)
{
	json_t *v = json_object_get(root, key);

	if (!v || json_is_null(v)) {
		*out = 0.1f;
		return 0;
	}
	if (!json_is_number(v) || !(json_number_value(v) >= 0) ||
	    !(json_number_value(v) < 1))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "'%s': \"%s\" is not a probability in [0, 1)",
				   path, key);
	*out = (float)json_number_value(v);
	return 0;
}

static int cfg_str_is(json_t *root, const char *key, const char *want,
		      const char *path, const char *why, struct mtl_err *err)
{
	json_t *v = json_object_get(root, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || strcmp(json_string_value(v), want))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "'%s': unsupported %s '%s' (%s)", path, key,
				   json_is_string(v) ? json_string_value(v) : "?",
				   why);
	return 0;
}

static int config_parse(struct mtl_bert_config *out, json_t *root,
			const char *path, struct mtl_err *err)
{
	struct mtl_bert_config c;
	json_t *eps;
	int rc;

	if (!json_is_object(root))
		return mtl_err_set(err, MTL_ERR_FORMAT, "'%s': not a JSON object",
				   path);
	if ((rc = cfg_str_is(root, "model_type", "bert", path,
			     "only \"bert\" is supported", err)) ||
	    (rc = cfg_str_is(root, "hidden_act", "gelu", path,
			     "only \"gelu\", the exact erf form, is supported",
			     err)) ||
	    (rc = cfg_str_is(root, "position_embedding_type", "absolute", path,
			     "only \"absolute\" is supported", err)))
		return rc;
	if ((rc = cfg_int(&c.vocab, root, "vocab_size", -1, path, err)) ||
	    (rc = cfg_int(&c.hidden, root, "hidden_size", -1, path, err)) ||
	    (rc = cfg_int(&c.layers, root, "num_hidden_layers", -1, path, err)) ||
	    (rc = cfg_int(&c.heads, root, "num_attention_heads", -1, path, err)) ||
	    (rc = cfg_int(&c.intermediate, root, "intermediate_size", -1, path, err)) ||
	    (rc = cfg_int(&c.max_pos, root, "max_position_embeddings", 512, path, err)) ||
	    (rc = cfg_int(&c.type_vocab, root, "type_vocab_size", 2, path, err)) ||
	    (rc = cfg_int(&c.pad_id, root, "pad_token_id", 0, path, err)))
		return rc;
	eps = json_object_get(root, "layer_norm_eps");
	if (eps && !json_is_number(eps))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "'%s': \"layer_norm_eps\" is not a number", path);
	c.ln_eps = eps ? (float)json_number_value(eps) : 1e-12f;
	if ((rc = cfg_prob(&c.hidden_dropout, root, "hidden_dropout_prob", path, err)) ||
	    (rc = cfg_prob(&c.attn_dropout, root, "attention_probs_dropout_prob", path, err)))
		return rc;
	if ((rc = mtl_bert_config_check(&c, err)))
		return mtl_err_prefix(err, rc, "'%s'", path);
	*out = c;
	return 0;
}

int mtl_bert_config_check(const struct mtl_bert_config *c, struct mtl_err *err)
{
	if (c->vocab < 1 || c->vocab > (1 << 24) || c->hidden < 1 ||
	    c->hidden > (1 << 16) || c->layers < 1 || c->layers > 1024 ||
	    c->heads < 1 || c->intermediate < 1 || c->intermediate > (1 << 18) ||
	    c->max_pos < 1 || c->max_pos > (1 << 20) || c->type_vocab < 1 ||
	    c->type_vocab > (1 << 16))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "sizes out of range (vocab %d, hidden %d, layers %d, heads %d, intermediate %d, positions %d, types %d)",
				   c->vocab, c->hidden, c->layers, c->heads,
				   c->intermediate, c->max_pos, c->type_vocab);
	if (c->hidden % c->heads)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "hidden size %d is not a multiple of %d heads",
				   c->hidden, c->heads);
	if (!(c->ln_eps > 0) || !isfinite(c->ln_eps))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "layer_norm_eps %g is not positive", c->ln_eps);
	return 0;
}

int mtl_bert_config_load(struct mtl_bert_config *cfg, const char *path,
			 struct mtl_err *err)
{
	json_t *root;
	int rc = mtl_fs_read_json(&root, path, err);

	if (rc)
		return rc;
	rc = config_parse(cfg, root, path, err);
	json_decref(root);
	return rc;
}

/* ---- loading ---- */

/* A growing text buffer for the one-message problem list. */
struct sbuf {
	char *s;
	size_t len, cap;
	int oom;
};

static void sb_add(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void sb_add(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL,
			      b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if (b->s && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = (b->cap + (size_t)n + 64) * 2;
			char *s = realloc(b->s, cap);

			if (!s) {
				b->oom = 1;
				return;
			}
			b->s = s;
			b->cap = cap;
		}
	}
}

struct load_state {
	struct mtl_bert *m;
	unsigned char *seen; /* per table entry */
	struct sbuf missing, unexpected, shape, dup;
	int n_missing, n_unexpected, n_shape, n_dup;
};

static int ignorable(const char *name)
{
	return !strcmp(name, "embeddings.position_ids") ||
	       !strncmp(name, "cls.", 4);
}

static void shape_str(char *buf, size_t len, int ndim, const int64_t *shape)
{
	size_t o = 0;

	o += (size_t)snprintf(buf + o, len - o, "[");
	for (int d = 0; d < ndim && o < len; d++)
		o += (size_t)snprintf(buf + o, len - o, "%s%lld", d ? "," : "",
				      (long long)shape[d]);
	if (o < len)
		snprintf(buf + o, len - o, "]");
}

/* Reads every tensor of one safetensors file into the block. */
static int load_file(struct load_state *ls, const char *path,
		     struct mtl_err *err)
{
	struct mtl_st *st;
	int rc = mtl_st_open(&st, path, err);

	if (rc)
		return rc;
	for (size_t i = 0; i < mtl_st_count(st); i++) {
		const struct mtl_st_tensor *t = mtl_st_at(st, i);
		const char *name = t->name;
		const struct mtl_bert_tensor *bt;
		size_t k;
		int ok;

		if (!strncmp(name, "bert.", 5))
			name += 5;
		bt = mtl_bert_tensor_find(ls->m, name);
		if (!bt) {
			if (!ignorable(name)) {
				sb_add(&ls->unexpected, "%s'%s'",
				       ls->n_unexpected ? ", " : "", t->name);
				ls->n_unexpected++;
			}
			continue;
		}
		k = (size_t)(bt - ls->m->tensors);
		if (ls->seen[k]) {
			sb_add(&ls->dup, "%s'%s'", ls->n_dup ? ", " : "", t->name);
			ls->n_dup++;
			continue;
		}
		ls->seen[k] = 1;
		ok = t->ndim == bt->ndim && t->shape[0] == bt->shape[0] &&
		     (bt->ndim == 1 || t->shape[1] == bt->shape[1]);
		if (!ok) {
			char got[128], want[64];

			shape_str(got, sizeof(got), t->ndim, t->shape);
			shape_str(want, sizeof(want), bt->ndim, bt->shape);
			sb_add(&ls->shape, "%s'%s' %s, expected %s",
			       ls->n_shape ? ", " : "", t->name, got, want);
			ls->n_shape++;
			continue;
		}
		rc = mtl_st_read_f32(t, ls->m->params + bt->offset,
				     (int64_t)bt->numel, err);
		if (rc) {
			mtl_err_prefix(err, rc, "'%s'", path);
			break;
		}
		/* copied: the file's pages and the copy are not both held */
		mtl_st_release(t);
	}
	mtl_st_close(st);
	return rc;
}

/* The shard files named by an index's weight_map, each once. */
static int load_sharded(struct load_state *ls, const char *dir,
			const char *index, struct mtl_err *err)
{
	json_t *root, *map, *v;
	const char **files = NULL;
	size_t nf = 0;
	const char *key;
	char path[MTL_FS_PATH_LEN];

	int rc = mtl_fs_read_json(&root, index, err);

	if (rc)
		return rc;
	map = json_object_get(root, "weight_map");
	if (!json_is_object(map)) {
		rc = mtl_err_set(err, MTL_ERR_FORMAT,
				 "'%s': no \"weight_map\" object", index);
		goto out;
	}
	files = calloc(json_object_size(map) + 1, sizeof(*files));
	if (!files) {
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		goto out;
	}
	json_object_foreach(map, key, v) {
		const char *f = json_string_value(v);
		size_t j;

		if (!f || !*f || strchr(f, '/') || f[0] == '.') {
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "'%s': tensor '%s': bad shard file name",
					 index, key);
			goto out;
		}
		for (j = 0; j < nf && strcmp(files[j], f); j++)
			;
		if (j == nf)
			files[nf++] = f;
	}
	for (size_t j = 0; j < nf && !rc; j++) {
		rc = mtl_fs_join(path, dir, files[j], err);
		if (!rc)
			rc = load_file(ls, path, err);
	}
out:
	free(files);
	json_decref(root);
	return rc;
}

int mtl_bert_load(struct mtl_bert **out, const char *dir, struct mtl_err *err)
{
	struct load_state ls;
	struct mtl_bert_config cfg;
	struct mtl_bert *m = NULL;
	char path[MTL_FS_PATH_LEN];
	json_t *cj;
	int rc;

	memset(&ls, 0, sizeof(ls));
	if ((rc = mtl_fs_join(path, dir, "config.json", err)))
		return rc;
	if ((rc = mtl_fs_read_json(&cj, path, err)))
		return rc;
	rc = config_parse(&cfg, cj, path, err);
	if (!rc)
		rc = mtl_bert_new_unset(&m, &cfg, err);
	if (rc) {
		json_decref(cj);
		return rc;
	}
	m->config_json = cj;
	ls.m = m;
	ls.seen = calloc(m->n_tensors, 1);
	if (!ls.seen) {
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		goto fail;
	}
	if ((rc = mtl_fs_join(path, dir, "model.safetensors", err)))
		goto fail;
	if (file_exists(path)) {
		rc = load_file(&ls, path, err);
	} else {
		if ((rc = mtl_fs_join(path, dir, "model.safetensors.index.json", err)))
			goto fail;
		if (file_exists(path)) {
			rc = load_sharded(&ls, dir, path, err);
		} else {
			mtl_fs_join(path, dir, "pytorch_model.bin", err);
			rc = mtl_err_set(err, MTL_ERR_IO,
					 "cannot load '%s': no model.safetensors or model.safetensors.index.json%s",
					 dir, file_exists(path) ?
					 " (pytorch_model.bin is not supported; convert it to safetensors)" : "");
		}
	}
	if (rc)
		goto fail;
	for (size_t i = 0; i < m->n_tensors; i++)
		if (!ls.seen[i]) {
			sb_add(&ls.missing, "%s'%s'", ls.n_missing ? ", " : "",
			       m->tensors[i].name);
			ls.n_missing++;
		}
	if (ls.n_missing || ls.n_unexpected || ls.n_shape || ls.n_dup) {
		struct sbuf all = { 0 };

		sb_add(&all, "cannot load '%s': %d missing, %d unexpected, %d wrong shape, %d duplicate",
		       dir, ls.n_missing, ls.n_unexpected, ls.n_shape, ls.n_dup);
		if (ls.n_missing)
			sb_add(&all, "; missing %s", ls.missing.s);
		if (ls.n_unexpected)
			sb_add(&all, "; unexpected %s", ls.unexpected.s);
		if (ls.n_shape)
			sb_add(&all, "; wrong shape %s", ls.shape.s);
		if (ls.n_dup)
			sb_add(&all, "; duplicate %s", ls.dup.s);
		if (all.oom)
			rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		else
			rc = mtl_err_set(err, MTL_ERR_FORMAT, "%s", all.s);
		/* a long list is cut at the message size: say so */
		if (err && !all.oom && all.len >= sizeof(err->msg))
			memcpy(err->msg + sizeof(err->msg) - 4, "...", 4);
		free(all.s);
		goto fail;
	}
	rc = 0;
	*out = m;
	m = NULL;
fail:
	free(ls.seen);
	free(ls.missing.s);
	free(ls.unexpected.s);
	free(ls.shape.s);
	free(ls.dup.s);
	mtl_bert_free(m);
	return rc;
}

/* ---- saving ---- */

void *mtl_bert_config_json(const struct mtl_bert *m)
{
	const struct mtl_bert_config *c = &m->cfg;
	json_t *j = m->config_json ? json_deep_copy(m->config_json) : json_object();

	if (!j)
		return NULL;
	if (!m->config_json) {
		json_object_set_new(j, "architectures", json_pack("[s]", "BertModel"));
		json_object_set_new(j, "attention_probs_dropout_prob", json_real(0.1));
		json_object_set_new(j, "hidden_dropout_prob", json_real(0.1));
		json_object_set_new(j, "initializer_range", json_real(0.02));
	}
	json_object_set_new(j, "model_type", json_string("bert"));
	json_object_set_new(j, "hidden_act", json_string("gelu"));
	json_object_set_new(j, "position_embedding_type", json_string("absolute"));
	json_object_set_new(j, "vocab_size", json_integer(c->vocab));
	json_object_set_new(j, "hidden_size", json_integer(c->hidden));
	json_object_set_new(j, "num_hidden_layers", json_integer(c->layers));
	json_object_set_new(j, "num_attention_heads", json_integer(c->heads));
	json_object_set_new(j, "intermediate_size", json_integer(c->intermediate));
	json_object_set_new(j, "max_position_embeddings", json_integer(c->max_pos));
	json_object_set_new(j, "type_vocab_size", json_integer(c->type_vocab));
	json_object_set_new(j, "layer_norm_eps", json_real(float_decimal(c->ln_eps)));
	json_object_set_new(j, "pad_token_id", json_integer(c->pad_id));
	json_object_set_new(j, "torch_dtype", json_string("float32"));
	return j;
}

int mtl_bert_save(const struct mtl_bert *m, const char *dir,
		  struct mtl_err *err)
{
	static const char *const meta[] = { "format", "pt" };
	struct mtl_st_out *outs;
	char path[MTL_FS_PATH_LEN];
	json_t *j;
	int rc;

	if (m->packed_here)
		return mtl_err_set(err, MTL_ERR_ARG,
				   "the weights are packed for inference: "
				   "mtl_bert_set_packed(m, 0) before saving");
	if ((rc = mtl_fs_mkdirs(dir, err)))
		return rc;
	if (!(j = mtl_bert_config_json(m)))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	rc = mtl_fs_join(path, dir, "config.json", err);
	if (!rc)
		rc = mtl_fs_write_json(path, j, MTL_FS_JSON_HF, err);
	json_decref(j);
	if (rc)
		return rc;
	outs = calloc(m->n_tensors, sizeof(*outs));
	if (!outs)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < m->n_tensors; i++) {
		const struct mtl_bert_tensor *t = &m->tensors[i];

		outs[i].name = t->name;
		outs[i].ndim = t->ndim;
		outs[i].shape[0] = t->shape[0];
		outs[i].shape[1] = t->shape[1];
		outs[i].data = m->params + t->offset;
	}
	rc = mtl_fs_join(path, dir, "model.safetensors", err);
	if (!rc)
		rc = mtl_st_write(path, outs, m->n_tensors, meta, 1, err);
	free(outs);
	return rc;
}
