/*
 * bert.c - the BERT encoder: config, parameter block, Hugging Face
 * loading and saving, and the forward and backward passes; see bert.h.
 */
#include "bert.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "ops.h"
#include "st.h"

/* ---- configuration ---- */

static int json_int(json_t *o, const char *key, int def, int *out,
		    const char *path, struct mtl_err *err)
{
	json_t *v = json_object_get(o, key);

	if (!v) {
		if (def < 0)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "'%s': missing '%s'", path, key);
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > (1 << 30))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "'%s': '%s' is not a valid size", path, key);
	*out = (int)json_integer_value(v);
	return 0;
}

static int json_float(json_t *o, const char *key, double def, float *out,
		      const char *path, struct mtl_err *err)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v)) {
		*out = (float)def;
		return 0;
	}
	if (!json_is_number(v))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "'%s': '%s' is not a number", path, key);
	*out = (float)json_number_value(v);
	return 0;
}

int mtl_bert_config_load(struct mtl_bert_config *cfg, const char *path,
			 struct mtl_err *err)
{
	struct mtl_bert_config c;
	json_error_t je;
	json_t *o = json_load_file(path, 0, &je), *v;
	int rc;

	if (!o)
		return mtl_err_set(err, MTL_ERR_FORMAT, "cannot read '%s': %s",
				   path, je.text);
	if (!json_is_object(o)) {
		json_decref(o);
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "'%s': not a JSON object", path);
	}
	v = json_object_get(o, "hidden_act");
	if (v && (!json_is_string(v) || strcmp(json_string_value(v), "gelu"))) {
		json_decref(o);
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "'%s': hidden_act must be \"gelu\"", path);
	}
	v = json_object_get(o, "position_embedding_type");
	if (v && (!json_is_string(v) ||
		  strcmp(json_string_value(v), "absolute"))) {
		json_decref(o);
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "'%s': position_embedding_type must be \"absolute\"",
				   path);
	}
	if ((rc = json_int(o, "vocab_size", -1, &c.vocab, path, err)) ||
	    (rc = json_int(o, "hidden_size", -1, &c.hidden, path, err)) ||
	    (rc = json_int(o, "num_hidden_layers", -1, &c.layers, path, err)) ||
	    (rc = json_int(o, "num_attention_heads", -1, &c.heads, path, err)) ||
	    (rc = json_int(o, "intermediate_size", -1, &c.intermediate, path, err)) ||
	    (rc = json_int(o, "max_position_embeddings", 512, &c.max_pos, path, err)) ||
	    (rc = json_int(o, "type_vocab_size", 2, &c.type_vocab, path, err)) ||
	    (rc = json_int(o, "pad_token_id", 0, &c.pad_id, path, err)) ||
	    (rc = json_float(o, "layer_norm_eps", 1e-12, &c.ln_eps, path, err)) ||
	    (rc = json_float(o, "hidden_dropout_prob", 0.1, &c.hidden_dropout, path, err)) ||
	    (rc = json_float(o, "attention_probs_dropout_prob", 0.1, &c.attn_dropout, path, err))) {
		json_decref(o);
		return rc;
	}
	json_decref(o);
	if ((rc = mtl_bert_config_check(&c, err)))
		return mtl_err_prefix(err, rc, "'%s'", path);
	*cfg = c;
	return 0;
}

int mtl_bert_config_check(const struct mtl_bert_config *c,
			  struct mtl_err *err)
{
	if (c->vocab < 1 || c->hidden < 1 || c->layers < 1 || c->heads < 1 ||
	    c->intermediate < 1 || c->max_pos < 1 || c->type_vocab < 1)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "every size must be positive");
	if (c->hidden % c->heads)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "hidden_size %d not divisible by num_attention_heads %d",
				   c->hidden, c->heads);
	if (c->pad_id < 0 || c->pad_id >= c->vocab)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "pad_token_id %d outside the vocabulary",
				   c->pad_id);
	if (!(c->ln_eps > 0))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "layer_norm_eps must be positive");
	if (!(c->hidden_dropout >= 0 && c->hidden_dropout < 1) ||
	    !(c->attn_dropout >= 0 && c->attn_dropout < 1))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "dropout probabilities must lie in [0, 1)");
	return 0;
}

/* ---- parameter block ---- */

size_t mtl_bert_param_sizes(size_t *s, const struct mtl_bert_config *c)
{
	size_t V = c->vocab, H = c->hidden, L = c->layers, I = c->intermediate;
	size_t total = 0;

	s[0] = V * H;
	s[1] = (size_t)c->max_pos * H;
	s[2] = (size_t)c->type_vocab * H;
	s[3] = H;
	s[4] = H;
	s[5] = L * 3 * H * H;
	s[6] = L * 3 * H;
	s[7] = L * H * H;
	s[8] = L * H;
	s[9] = L * H;
	s[10] = L * H;
	s[11] = L * I * H;
	s[12] = L * I;
	s[13] = L * H * I;
	s[14] = L * H;
	s[15] = L * H;
	s[16] = L * H;
	s[17] = H * H;
	s[18] = H;
	for (int i = 0; i < MTL_BERT_NUM_PARAMS; i++)
		total += s[i];
	return total;
}

void mtl_bert_params_carve(struct mtl_bert_params *p, float *block,
			   const struct mtl_bert_config *cfg)
{
	size_t s[MTL_BERT_NUM_PARAMS];
	float **ptr[MTL_BERT_NUM_PARAMS] = {
		&p->wte, &p->wpe, &p->wtt, &p->emb_lnw, &p->emb_lnb,
		&p->qkvw, &p->qkvb, &p->attprojw, &p->attprojb, &p->ln1w,
		&p->ln1b, &p->fcw, &p->fcb, &p->fcprojw, &p->fcprojb,
		&p->ln2w, &p->ln2b, &p->poolw, &p->poolb,
	};

	mtl_bert_param_sizes(s, cfg);
	for (int i = 0; i < MTL_BERT_NUM_PARAMS; i++) {
		*ptr[i] = block;
		block += s[i];
	}
}

static void add_tensor(struct mtl_bert *m, size_t *n, const char *name,
		       int layer, int64_t r, int64_t c, const float *at)
{
	struct mtl_bert_tensor *t = &m->tensors[(*n)++];

	if (layer >= 0)
		snprintf(t->name, sizeof(t->name), "encoder.layer.%d.%s",
			 layer, name);
	else
		snprintf(t->name, sizeof(t->name), "%s", name);
	t->ndim = c ? 2 : 1;
	t->shape[0] = r;
	t->shape[1] = c;
	t->numel = (size_t)r * (size_t)(c ? c : 1);
	t->offset = (size_t)(at - m->params);
	t->layer = layer;
}

/* The HF tensor table: 5 embedding tensors, 16 per layer, 2 pooler. */
static void build_tensors(struct mtl_bert *m)
{
	const struct mtl_bert_params *p = &m->p;
	int64_t H = m->cfg.hidden, I = m->cfg.intermediate;
	size_t n = 0;

	add_tensor(m, &n, "embeddings.word_embeddings.weight", -1,
		   m->cfg.vocab, H, p->wte);
	add_tensor(m, &n, "embeddings.position_embeddings.weight", -1,
		   m->cfg.max_pos, H, p->wpe);
	add_tensor(m, &n, "embeddings.token_type_embeddings.weight", -1,
		   m->cfg.type_vocab, H, p->wtt);
	add_tensor(m, &n, "embeddings.LayerNorm.weight", -1, H, 0, p->emb_lnw);
	add_tensor(m, &n, "embeddings.LayerNorm.bias", -1, H, 0, p->emb_lnb);
	for (int l = 0; l < m->cfg.layers; l++) {
		const float *qw = p->qkvw + l * 3 * H * H;
		const float *qb = p->qkvb + l * 3 * H;

		add_tensor(m, &n, "attention.self.query.weight", l, H, H, qw);
		add_tensor(m, &n, "attention.self.query.bias", l, H, 0, qb);
		add_tensor(m, &n, "attention.self.key.weight", l, H, H, qw + H * H);
		add_tensor(m, &n, "attention.self.key.bias", l, H, 0, qb + H);
		add_tensor(m, &n, "attention.self.value.weight", l, H, H,
			   qw + 2 * H * H);
		add_tensor(m, &n, "attention.self.value.bias", l, H, 0, qb + 2 * H);
		add_tensor(m, &n, "attention.output.dense.weight", l, H, H,
			   p->attprojw + l * H * H);
		add_tensor(m, &n, "attention.output.dense.bias", l, H, 0,
			   p->attprojb + l * H);
		add_tensor(m, &n, "attention.output.LayerNorm.weight", l, H, 0,
			   p->ln1w + l * H);
		add_tensor(m, &n, "attention.output.LayerNorm.bias", l, H, 0,
			   p->ln1b + l * H);
		add_tensor(m, &n, "intermediate.dense.weight", l, I, H,
			   p->fcw + l * I * H);
		add_tensor(m, &n, "intermediate.dense.bias", l, I, 0,
			   p->fcb + l * I);
		add_tensor(m, &n, "output.dense.weight", l, H, I,
			   p->fcprojw + l * H * I);
		add_tensor(m, &n, "output.dense.bias", l, H, 0, p->fcprojb + l * H);
		add_tensor(m, &n, "output.LayerNorm.weight", l, H, 0,
			   p->ln2w + l * H);
		add_tensor(m, &n, "output.LayerNorm.bias", l, H, 0, p->ln2b + l * H);
	}
	add_tensor(m, &n, "pooler.dense.weight", -1, H, H, p->poolw);
	add_tensor(m, &n, "pooler.dense.bias", -1, H, 0, p->poolb);
	m->n_tensors = n;
}

int mtl_bert_new(struct mtl_bert **out, const struct mtl_bert_config *cfg,
		 struct mtl_err *err)
{
	size_t s[MTL_BERT_NUM_PARAMS];
	struct mtl_bert *m;
	int rc;

	if ((rc = mtl_bert_config_check(cfg, err)))
		return rc;
	m = calloc(1, sizeof(*m));
	if (!m)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	m->cfg = *cfg;
	m->n_params = mtl_bert_param_sizes(s, cfg);
	m->params = calloc(m->n_params, sizeof(float));
	m->tensors = calloc(5 + 16 * (size_t)cfg->layers + 2,
			    sizeof(*m->tensors));
	if (!m->params || !m->tensors) {
		size_t n = m->n_params;

		mtl_bert_free(m);
		return mtl_err_set(err, MTL_ERR_NOMEM,
				   "cannot allocate %zu parameters", n);
	}
	mtl_bert_params_carve(&m->p, m->params, cfg);
	build_tensors(m);
	mtl_bert_set_threads(m, 0);
	*out = m;
	return 0;
}

void mtl_bert_free(struct mtl_bert *m)
{
	if (!m)
		return;
	free(m->params);
	free(m->tensors);
	free(m->arena);
	free(m->marena);
	free(m);
}

void mtl_bert_set_threads(struct mtl_bert *m, int n)
{
	if (n <= 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		n = c > 0 ? (int)c : 1;
	}
	m->threads = n;
}

void mtl_bert_init_random(struct mtl_bert *m, uint64_t seed)
{
	struct mtl_rng r;

	mtl_rng_init(&r, seed);
	for (size_t i = 0; i < m->n_tensors; i++) {
		const struct mtl_bert_tensor *t = &m->tensors[i];
		float *x = m->params + t->offset;
		int is_ln = strstr(t->name, "LayerNorm.weight") != NULL;

		for (size_t j = 0; j < t->numel; j++)
			x[j] = t->ndim == 2 ? (float)(0.02 * mtl_rng_normal(&r))
					    : (is_ln ? 1.0f : 0.0f);
	}
	memset(m->p.wte + (size_t)m->cfg.pad_id * m->cfg.hidden, 0,
	       sizeof(float) * (size_t)m->cfg.hidden);
}

const struct mtl_bert_tensor *mtl_bert_tensors(const struct mtl_bert *m,
					       size_t *n)
{
	*n = m->n_tensors;
	return m->tensors;
}

const struct mtl_bert_tensor *mtl_bert_tensor_find(const struct mtl_bert *m,
						   const char *name)
{
	if (strncmp(name, "bert.", 5) == 0)
		name += 5;
	for (size_t i = 0; i < m->n_tensors; i++)
		if (strcmp(m->tensors[i].name, name) == 0)
			return &m->tensors[i];
	return NULL;
}

/* ---- loading and saving ---- */

/* A checkpoint name in our spelling: no "bert.", gamma/beta -> weight/bias. */
static void canonical(char *dst, size_t n, const char *name)
{
	size_t len;

	if (strncmp(name, "bert.", 5) == 0)
		name += 5;
	snprintf(dst, n, "%s", name);
	len = strlen(dst);
	if (len >= 15 && strcmp(dst + len - 15, "LayerNorm.gamma") == 0)
		snprintf(dst + len - 5, n - (len - 5), "weight");
	else if (len >= 14 && strcmp(dst + len - 14, "LayerNorm.beta") == 0)
		snprintf(dst + len - 4, n - (len - 4), "bias");
}

int mtl_bert_load(struct mtl_bert **out, const char *dir, struct mtl_err *err)
{
	struct mtl_bert_config cfg;
	struct mtl_bert *m = NULL;
	struct mtl_st *st = NULL;
	char path[4096], name[160];
	unsigned char *seen = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/config.json", dir);
	if ((rc = mtl_bert_config_load(&cfg, path, err)))
		return rc;
	if ((rc = mtl_bert_new(&m, &cfg, err)))
		return rc;
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	if ((rc = mtl_st_open(&st, path, err)))
		goto fail;
	seen = calloc(m->n_tensors, 1);
	if (!seen) {
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < mtl_st_count(st); i++) {
		const struct mtl_st_tensor *t = mtl_st_at(st, i);
		const struct mtl_bert_tensor *bt;
		int64_t numel;

		canonical(name, sizeof(name), t->name);
		if (strncmp(name, "embeddings.", 11) && strncmp(name, "encoder.", 8) &&
		    strncmp(name, "pooler.", 7))
			continue;
		if (strcmp(name, "embeddings.position_ids") == 0)
			continue;
		bt = mtl_bert_tensor_find(m, name);
		if (!bt) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "'%s': unexpected tensor '%s'", path,
					 t->name);
			goto fail;
		}
		numel = bt->ndim == 2 ? bt->shape[0] * bt->shape[1] : bt->shape[0];
		if (t->ndim != bt->ndim || t->shape[0] != bt->shape[0] ||
		    (bt->ndim == 2 && t->shape[1] != bt->shape[1])) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "'%s': tensor '%s' has the wrong shape",
					 path, t->name);
			goto fail;
		}
		if (seen[bt - m->tensors]) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "'%s': tensor '%s' given twice", path,
					 name);
			goto fail;
		}
		seen[bt - m->tensors] = 1;
		if ((rc = mtl_st_read_f32(t, m->params + bt->offset, numel, err)))
			goto fail;
	}
	for (size_t i = 0; i < m->n_tensors; i++)
		if (!seen[i] && strncmp(m->tensors[i].name, "pooler.", 7)) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "'%s': missing tensor '%s'", path,
					 m->tensors[i].name);
			goto fail;
		}
	free(seen);
	mtl_st_close(st);
	*out = m;
	return 0;
fail:
	free(seen);
	mtl_st_close(st);
	mtl_bert_free(m);
	return rc;
}

int mtl_bert_save(const struct mtl_bert *m, const char *dir,
		  struct mtl_err *err)
{
	const struct mtl_bert_config *c = &m->cfg;
	struct mtl_st_out *t;
	const char *meta[] = { "format", "pt" };
	char path[4096];
	json_t *o;
	int rc;

	if (mkdir(dir, 0777) && errno != EEXIST)
		return mtl_err_set(err, MTL_ERR_IO, "cannot create '%s': %s",
				   dir, strerror(errno));
	o = json_pack("{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:i, "
		      "s:s, s:f, s:f, s:s, s:f}",
		      "architectures", "BertModel", "model_type", "bert",
		      "vocab_size", c->vocab, "hidden_size", c->hidden,
		      "num_hidden_layers", c->layers,
		      "num_attention_heads", c->heads,
		      "intermediate_size", c->intermediate,
		      "max_position_embeddings", c->max_pos,
		      "type_vocab_size", c->type_vocab,
		      "layer_norm_eps", (double)c->ln_eps,
		      "pad_token_id", c->pad_id, "hidden_act", "gelu",
		      "hidden_dropout_prob", (double)c->hidden_dropout,
		      "attention_probs_dropout_prob", (double)c->attn_dropout,
		      "position_embedding_type", "absolute",
		      "initializer_range", 0.02);
	if (!o)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	snprintf(path, sizeof(path), "%s/config.json", dir);
	rc = json_dump_file(o, path, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	if (rc)
		return mtl_err_set(err, MTL_ERR_IO, "cannot write '%s'", path);
	t = calloc(m->n_tensors, sizeof(*t));
	if (!t)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < m->n_tensors; i++) {
		t[i].name = m->tensors[i].name;
		t[i].ndim = m->tensors[i].ndim;
		t[i].shape[0] = m->tensors[i].shape[0];
		t[i].shape[1] = m->tensors[i].shape[1];
		t[i].data = m->params + m->tensors[i].offset;
	}
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	rc = mtl_st_write(path, t, m->n_tensors, meta, 1, err);
	free(t);
	return rc;
}

/* ---- activation arena ---- */

/* Plans the arena for (B, T) in train mode: parameters of the layout are
 * recomputed when the shape or the dropout changes, memory grown only. */
static int plan(struct mtl_bert *m, int B, int T, int drop,
		struct mtl_err *err)
{
	struct mtl_bert_acts *a = &m->acts;
	size_t BT = (size_t)B * T, H = m->cfg.hidden, L = m->cfg.layers;
	size_t I = m->cfg.intermediate, NH = m->cfg.heads, nt = m->threads;
	size_t att = BT * NH * T;
	size_t need = BT + BT * H + 2 * BT + (L + 1) * BT * H + L * BT * 3 * H +
		      L * att + L * BT * H * 4 + L * BT * 4 + L * BT * I * 2 +
		      BT * H * 3 + BT * I * 2 + BT * 3 * H + nt * 2 * (size_t)T * T;
	size_t mneed = (drop ? BT * H + L * att + 2 * L * BT * H : 0) +
		       2 * BT * sizeof(int32_t);
	float *f;
	uint8_t *u;

	if (need > m->arena_len) {
		free(m->arena);
		m->arena = malloc(need * sizeof(float));
		m->arena_len = m->arena ? need : 0;
		if (!m->arena)
			return mtl_err_set(err, MTL_ERR_NOMEM,
					   "cannot allocate activations for %dx%d",
					   B, T);
	}
	if (mneed > m->marena_len) {
		free(m->marena);
		m->marena = malloc(mneed);
		m->marena_len = m->marena ? mneed : 0;
		if (!m->marena)
			return mtl_err_set(err, MTL_ERR_NOMEM,
					   "cannot allocate dropout masks for %dx%d",
					   B, T);
	}
	f = m->arena;
	a->mask_add = f; f += BT;
	a->emb_in = f; f += BT * H;
	a->emb_mean = f; f += BT;
	a->emb_rstd = f; f += BT;
	a->hidden = f; f += (L + 1) * BT * H;
	a->qkv = f; f += L * BT * 3 * H;
	a->att = f; f += L * att;
	a->ctx = f; f += L * BT * H;
	a->ln1_in = f; f += L * BT * H;
	a->ln1_out = f; f += L * BT * H;
	a->ln2_in = f; f += L * BT * H;
	a->ln1_mean = f; f += L * BT;
	a->ln1_rstd = f; f += L * BT;
	a->ln2_mean = f; f += L * BT;
	a->ln2_rstd = f; f += L * BT;
	a->fc = f; f += L * BT * I;
	a->fc_gelu = f; f += L * BT * I;
	a->d_res = f; f += BT * H;
	a->d_a = f; f += BT * H;
	a->d_b = f; f += BT * H;
	a->d_fc = f; f += BT * I;
	a->d_fcg = f; f += BT * I;
	a->d_qkv = f; f += BT * 3 * H;
	a->scratch = f; f += nt * 2 * (size_t)T * T;
	MTL_ASSERT((size_t)(f - m->arena) == need);
	u = m->marena;
	a->ids = (int32_t *)(void *)u; u += BT * sizeof(int32_t);
	a->types = (int32_t *)(void *)u; u += BT * sizeof(int32_t);
	a->emb_drop = drop ? u : NULL; u += drop ? BT * H : 0;
	a->att_drop = drop ? u : NULL; u += drop ? L * att : 0;
	a->proj_drop = drop ? u : NULL; u += drop ? L * BT * H : 0;
	a->ffn_drop = drop ? u : NULL;
	a->B = B;
	a->T = T;
	a->train = 1;
	a->nt = (int)nt;
	return 0;
}

/* ---- forward ---- */

int mtl_bert_forward_train(struct mtl_bert *m, const int32_t *ids,
			   const int32_t *types, const int32_t *mask, int B,
			   int T, float p_hidden, float p_attn,
			   struct mtl_rng *rng, struct mtl_err *err)
{
	const struct mtl_bert_config *c = &m->cfg;
	struct mtl_bert_acts *a = &m->acts;
	const struct mtl_bert_params *p = &m->p;
	int H = c->hidden, I = c->intermediate, NH = c->heads, nt = m->threads;
	int drop = p_hidden > 0 || p_attn > 0, rc;
	int64_t BT = (int64_t)B * T, BTH = BT * H;
	int64_t att = BT * NH * T;

	if (B < 1 || T < 1 || T > c->max_pos)
		return mtl_err_set(err, MTL_ERR_ARG,
				   "batch shape %dx%d out of range (max length %d)",
				   B, T, c->max_pos);
	for (int64_t i = 0; i < BT; i++)
		if (ids[i] < 0 || ids[i] >= c->vocab ||
		    (types && (types[i] < 0 || types[i] >= c->type_vocab)))
			return mtl_err_set(err, MTL_ERR_ARG,
					   "token %lld: id %d or type outside the vocabulary",
					   (long long)i, ids[i]);
	if ((rc = plan(m, B, T, drop, err)))
		return rc;
	a->p_hidden = p_hidden;
	a->p_attn = p_attn;
	for (int64_t i = 0; i < BT; i++) {
		a->mask_add[i] = !mask || mask[i] ? 0.0f : -FLT_MAX;
		a->ids[i] = ids[i];
		a->types[i] = types ? types[i] : 0;
	}
	if (drop) {
		/* every mask drawn up front, in a fixed order */
		mtl_dropout_mask(a->emb_drop, BTH, p_hidden, rng);
		mtl_dropout_mask(a->att_drop, c->layers * att, p_attn, rng);
		mtl_dropout_mask(a->proj_drop, c->layers * BTH, p_hidden, rng);
		mtl_dropout_mask(a->ffn_drop, c->layers * BTH, p_hidden, rng);
	}

	mtl_embed_forward(a->emb_in, ids, types, p->wte, p->wpe, p->wtt, B, T, H);
	mtl_layernorm_forward(a->hidden, a->emb_mean, a->emb_rstd, a->emb_in,
			      p->emb_lnw, p->emb_lnb, (int)BT, H, c->ln_eps, nt);
	if (drop)
		mtl_dropout_forward(a->hidden, a->hidden, a->emb_drop, p_hidden, BTH);
	for (int l = 0; l < c->layers; l++) {
		/* this layer's slots */
		const float *x = a->hidden + l * BTH;
		float *qkv = a->qkv + l * BTH * 3, *att_l = a->att + l * att;
		float *ctx = a->ctx + l * BTH, *ln1_in = a->ln1_in + l * BTH;
		float *ln1_out = a->ln1_out + l * BTH, *ln2_in = a->ln2_in + l * BTH;
		float *fc = a->fc + l * BT * I, *fcg = a->fc_gelu + l * BT * I;
		float *out = a->hidden + (l + 1) * BTH;

		mtl_linear_forward(qkv, x, p->qkvw + (int64_t)l * 3 * H * H,
				   p->qkvb + l * 3 * H, (int)BT, H, 3 * H, nt);
		mtl_attention_forward_train(ctx, att_l, a->scratch, qkv,
					    a->mask_add,
					    drop ? a->att_drop + l * att : NULL,
					    p_attn, B, T, H, NH, nt);
		mtl_linear_forward(ln1_in, ctx, p->attprojw + (int64_t)l * H * H,
				   p->attprojb + l * H, (int)BT, H, H, nt);
		if (drop)
			mtl_dropout_forward(ln1_in, ln1_in,
					    a->proj_drop + l * BTH, p_hidden, BTH);
		/* post-LN (unlike GPT-2): the residual goes inside LayerNorm */
		mtl_residual_forward(ln1_in, ln1_in, x, BTH, nt);
		mtl_layernorm_forward(ln1_out, a->ln1_mean + l * BT,
				      a->ln1_rstd + l * BT, ln1_in,
				      p->ln1w + l * H, p->ln1b + l * H, (int)BT,
				      H, c->ln_eps, nt);
		mtl_linear_forward(fc, ln1_out, p->fcw + (int64_t)l * I * H,
				   p->fcb + (int64_t)l * I, (int)BT, H, I, nt);
		mtl_gelu_forward(fcg, fc, BT * I, nt);
		mtl_linear_forward(ln2_in, fcg, p->fcprojw + (int64_t)l * H * I,
				   p->fcprojb + l * H, (int)BT, I, H, nt);
		if (drop)
			mtl_dropout_forward(ln2_in, ln2_in,
					    a->ffn_drop + l * BTH, p_hidden, BTH);
		mtl_residual_forward(ln2_in, ln2_in, ln1_out, BTH, nt);
		mtl_layernorm_forward(out, a->ln2_mean + l * BT,
				      a->ln2_rstd + l * BT, ln2_in,
				      p->ln2w + l * H, p->ln2b + l * H, (int)BT,
				      H, c->ln_eps, nt);
	}
	return 0;
}

int mtl_bert_forward(struct mtl_bert *m, const int32_t *ids,
		     const int32_t *types, const int32_t *mask, int B, int T,
		     int train, struct mtl_err *err)
{
	(void)train; /* this build always keeps the activations */
	return mtl_bert_forward_train(m, ids, types, mask, B, T, 0, 0, NULL,
				      err);
}

const float *mtl_bert_last_hidden(const struct mtl_bert *m)
{
	const struct mtl_bert_acts *a = &m->acts;

	return a->hidden + (size_t)m->cfg.layers * a->B * a->T * m->cfg.hidden;
}

/* ---- backward ---- */

void mtl_bert_backward(struct mtl_bert *m, float *grad, const float *dlast)
{
	const struct mtl_bert_config *c = &m->cfg;
	struct mtl_bert_acts *a = &m->acts;
	const struct mtl_bert_params *p = &m->p;
	struct mtl_bert_params g;
	int B = a->B, T = a->T, H = c->hidden, I = c->intermediate;
	int NH = c->heads, nt = m->threads;
	int64_t BT = (int64_t)B * T, BTH = BT * H, att = BT * NH * T;
	int drop = a->emb_drop != NULL;
	float ph = a->p_hidden, pa = a->p_attn;
	/* d_res: gradient of the current layer's output, then of its input */
	float *d_res = a->d_res, *d_a = a->d_a, *d_b = a->d_b;

	MTL_ASSERT(a->train);
	mtl_bert_params_carve(&g, grad, c);
	memcpy(d_res, dlast, sizeof(float) * (size_t)BTH);
	for (int l = c->layers - 1; l >= 0; l--) {
		const float *x = a->hidden + l * BTH;
		const float *qkv = a->qkv + l * BTH * 3, *att_l = a->att + l * att;
		const float *ctx = a->ctx + l * BTH, *ln1_in = a->ln1_in + l * BTH;
		const float *ln1_out = a->ln1_out + l * BTH;
		const float *ln2_in = a->ln2_in + l * BTH;
		const float *fc = a->fc + l * BT * I, *fcg = a->fc_gelu + l * BT * I;

		/* out = LN2(ln2_in): d_a = d ln2_in */
		memset(d_a, 0, sizeof(float) * (size_t)BTH);
		mtl_layernorm_backward(d_a, g.ln2w + l * H, g.ln2b + l * H,
				       d_res, ln2_in, p->ln2w + l * H,
				       a->ln2_mean + l * BT, a->ln2_rstd + l * BT,
				       (int)BT, H, nt);
		/* ln2_in = dropout(fcproj) + ln1_out: d_b = d fcproj; d_res
		 * becomes d ln1_out (its residual share) */
		memcpy(d_res, d_a, sizeof(float) * (size_t)BTH);
		if (drop) {
			memset(d_b, 0, sizeof(float) * (size_t)BTH);
			mtl_dropout_backward(d_b, d_a, a->ffn_drop + l * BTH, ph, BTH);
		} else {
			memcpy(d_b, d_a, sizeof(float) * (size_t)BTH);
		}
		/* fcproj = fcg W2^T + b2 */
		memset(a->d_fcg, 0, sizeof(float) * (size_t)(BT * I));
		mtl_linear_backward(a->d_fcg, g.fcprojw + (int64_t)l * H * I,
				    g.fcprojb + l * H, d_b, fcg,
				    p->fcprojw + (int64_t)l * H * I, (int)BT, I,
				    H, nt);
		memset(a->d_fc, 0, sizeof(float) * (size_t)(BT * I));
		mtl_gelu_backward(a->d_fc, fc, a->d_fcg, BT * I, nt);
		/* fc = ln1_out W1^T + b1: adds into d ln1_out */
		mtl_linear_backward(d_res, g.fcw + (int64_t)l * I * H,
				    g.fcb + (int64_t)l * I, a->d_fc, ln1_out,
				    p->fcw + (int64_t)l * I * H, (int)BT, H, I,
				    nt);
		/* ln1_out = LN1(ln1_in) */
		memset(d_a, 0, sizeof(float) * (size_t)BTH);
		mtl_layernorm_backward(d_a, g.ln1w + l * H, g.ln1b + l * H,
				       d_res, ln1_in, p->ln1w + l * H,
				       a->ln1_mean + l * BT, a->ln1_rstd + l * BT,
				       (int)BT, H, nt);
		/* ln1_in = dropout(attproj) + x: d_res becomes d x */
		memcpy(d_res, d_a, sizeof(float) * (size_t)BTH);
		if (drop) {
			memset(d_b, 0, sizeof(float) * (size_t)BTH);
			mtl_dropout_backward(d_b, d_a, a->proj_drop + l * BTH, ph, BTH);
		} else {
			memcpy(d_b, d_a, sizeof(float) * (size_t)BTH);
		}
		/* attproj = ctx Wo^T + bo: d_a = d ctx */
		memset(d_a, 0, sizeof(float) * (size_t)BTH);
		mtl_linear_backward(d_a, g.attprojw + (int64_t)l * H * H,
				    g.attprojb + l * H, d_b, ctx,
				    p->attprojw + (int64_t)l * H * H, (int)BT, H,
				    H, nt);
		memset(a->d_qkv, 0, sizeof(float) * (size_t)(BTH * 3));
		mtl_attention_backward(a->d_qkv, a->scratch, d_a, qkv, att_l,
				       drop ? a->att_drop + l * att : NULL, pa,
				       B, T, H, NH, nt);
		/* qkv = x Wqkv^T + bqkv: adds into d x */
		mtl_linear_backward(d_res, g.qkvw + (int64_t)l * 3 * H * H,
				    g.qkvb + l * 3 * H, a->d_qkv, x,
				    p->qkvw + (int64_t)l * 3 * H * H, (int)BT, H,
				    3 * H, nt);
	}
	/* hidden0 = dropout(LN_emb(emb_in)) */
	if (drop) {
		memset(d_b, 0, sizeof(float) * (size_t)BTH);
		mtl_dropout_backward(d_b, d_res, a->emb_drop, ph, BTH);
		memcpy(d_res, d_b, sizeof(float) * (size_t)BTH);
	}
	memset(d_a, 0, sizeof(float) * (size_t)BTH);
	mtl_layernorm_backward(d_a, g.emb_lnw, g.emb_lnb, d_res, a->emb_in,
			       p->emb_lnw, a->emb_mean, a->emb_rstd, (int)BT, H,
			       nt);
	mtl_embed_backward(g.wte, g.wpe, g.wtt, d_a, a->ids, a->types,
			   B, T, H);
}

double mtl_bert_forward_flops(const struct mtl_bert_config *c, int B, int T)
{
	double BT = (double)B * T, H = c->hidden, I = c->intermediate;
	double per_layer = 2 * BT * H * 3 * H + 2 * BT * H * H +
			   2 * BT * H * I * 2 + 2 * 2 * (double)B * T * T * H;

	return per_layer * c->layers;
}
