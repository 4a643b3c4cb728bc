/*
 * bert.c - the BERT encoder; see bert.h.
 *
 * Where BERT differs from GPT-2 (llm.c's model), the code says so: the
 * LayerNorm comes after each residual sum (post-LN), attention masks
 * padded keys instead of future positions, GELU is the exact erf form,
 * and the embeddings add a token-type row.
 */
#include "bert.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <blis.h>
#include <jansson.h>
#include <omp.h>

#include "fs.h"
#include "ops.h"
#include "st.h"

/*
 * Configuration files as Hugging Face writes them: keys sorted, and reals
 * to 15 digits, so 0.1 is written "0.1" rather than jansson's default
 * 17-digit "0.10000000000000001".
 */
#define CONFIG_JSON (JSON_SORT_KEYS | JSON_REAL_PRECISION(15))

#define PATH_LEN 4096

/* ---- small helpers ---- */

static int join(char *buf, const char *dir, const char *name,
		struct mtl_err *err)
{
	int n = snprintf(buf, PATH_LEN, "%s/%s", dir, name);

	if (n < 0 || n >= PATH_LEN)
		return mtl_err_set(err, MTL_ERR_ARG, "path too long: '%s/%s'",
				   dir, name);
	return 0;
}

static int file_exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Parses the JSON file at path; NULL with err set (and *rc the code). */
static json_t *load_json(const char *path, int *rc, struct mtl_err *err)
{
	json_error_t je;
	struct stat sb;
	json_t *j;

	if (stat(path, &sb) < 0) {
		*rc = mtl_err_set(err, MTL_ERR_IO, "cannot open '%s': %s", path,
				  strerror(errno));
		return NULL;
	}
	j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		*rc = mtl_err_set(err, MTL_ERR_FORMAT, "'%s': %s (line %d)",
				  path, je.text, je.line);
	return j;
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
	int rc = 0;
	json_t *root = load_json(path, &rc, err);

	if (!root)
		return rc;
	rc = config_parse(cfg, root, path, err);
	json_decref(root);
	return rc;
}

/* ---- parameters ---- */

size_t mtl_bert_param_sizes(size_t *s, const struct mtl_bert_config *c)
{
	size_t V = (size_t)c->vocab, H = (size_t)c->hidden, L = (size_t)c->layers;
	size_t I = (size_t)c->intermediate, P = (size_t)c->max_pos;
	size_t TV = (size_t)c->type_vocab, sum = 0;

	s[0] = V * H;          /* wte */
	s[1] = P * H;          /* wpe */
	s[2] = TV * H;         /* wtt */
	s[3] = H;              /* emb_lnw */
	s[4] = H;              /* emb_lnb */
	s[5] = L * 3 * H * H;  /* qkvw */
	s[6] = L * 3 * H;      /* qkvb */
	s[7] = L * H * H;      /* attprojw */
	s[8] = L * H;          /* attprojb */
	s[9] = L * H;          /* ln1w */
	s[10] = L * H;         /* ln1b */
	s[11] = L * I * H;     /* fcw */
	s[12] = L * I;         /* fcb */
	s[13] = L * H * I;     /* fcprojw */
	s[14] = L * H;         /* fcprojb */
	s[15] = L * H;         /* ln2w */
	s[16] = L * H;         /* ln2b */
	s[17] = H * H;         /* poolw */
	s[18] = H;             /* poolb */
	for (int i = 0; i < MTL_BERT_NUM_PARAMS; i++)
		sum += s[i];
	return sum;
}

void mtl_bert_params_carve(struct mtl_bert_params *p, float *block,
			   const struct mtl_bert_config *cfg)
{
	size_t s[MTL_BERT_NUM_PARAMS];
	float **ptrs[MTL_BERT_NUM_PARAMS] = {
		&p->wte, &p->wpe, &p->wtt, &p->emb_lnw, &p->emb_lnb,
		&p->qkvw, &p->qkvb, &p->attprojw, &p->attprojb, &p->ln1w,
		&p->ln1b, &p->fcw, &p->fcb, &p->fcprojw, &p->fcprojb,
		&p->ln2w, &p->ln2b, &p->poolw, &p->poolb,
	};

	mtl_bert_param_sizes(s, cfg);
	for (int i = 0; i < MTL_BERT_NUM_PARAMS; i++) {
		*ptrs[i] = block;
		block += s[i];
	}
}

/* Appends one table entry; offset is relative to the block. */
static void add_tensor(struct mtl_bert *m, const float *at, int ndim,
		       int64_t r, int64_t c, const char *fmt, int layer)
{
	struct mtl_bert_tensor *t = &m->tensors[m->n_tensors++];

	snprintf(t->name, sizeof(t->name), fmt, layer);
	t->ndim = ndim;
	t->shape[0] = r;
	t->shape[1] = ndim == 2 ? c : 0;
	t->numel = (size_t)r * (size_t)(ndim == 2 ? c : 1);
	t->offset = (size_t)(at - m->params);
}

/* The HF name table, in block order (field by field, layer by layer). */
static void build_tensors(struct mtl_bert *m)
{
	const struct mtl_bert_params *p = &m->p;
	int64_t H = m->cfg.hidden, I = m->cfg.intermediate;
	int L = m->cfg.layers;

	m->n_tensors = 0;
	add_tensor(m, p->wte, 2, m->cfg.vocab, H, "embeddings.word_embeddings.weight", 0);
	add_tensor(m, p->wpe, 2, m->cfg.max_pos, H, "embeddings.position_embeddings.weight", 0);
	add_tensor(m, p->wtt, 2, m->cfg.type_vocab, H, "embeddings.token_type_embeddings.weight", 0);
	add_tensor(m, p->emb_lnw, 1, H, 0, "embeddings.LayerNorm.weight", 0);
	add_tensor(m, p->emb_lnb, 1, H, 0, "embeddings.LayerNorm.bias", 0);
	for (int l = 0; l < L; l++) {
		const float *w = p->qkvw + l * 3 * H * H;

		add_tensor(m, w, 2, H, H, "encoder.layer.%d.attention.self.query.weight", l);
		add_tensor(m, w + H * H, 2, H, H, "encoder.layer.%d.attention.self.key.weight", l);
		add_tensor(m, w + 2 * H * H, 2, H, H, "encoder.layer.%d.attention.self.value.weight", l);
	}
	for (int l = 0; l < L; l++) {
		const float *b = p->qkvb + l * 3 * H;

		add_tensor(m, b, 1, H, 0, "encoder.layer.%d.attention.self.query.bias", l);
		add_tensor(m, b + H, 1, H, 0, "encoder.layer.%d.attention.self.key.bias", l);
		add_tensor(m, b + 2 * H, 1, H, 0, "encoder.layer.%d.attention.self.value.bias", l);
	}
	for (int l = 0; l < L; l++)
		add_tensor(m, p->attprojw + l * H * H, 2, H, H, "encoder.layer.%d.attention.output.dense.weight", l);
	for (int l = 0; l < L; l++)
		add_tensor(m, p->attprojb + l * H, 1, H, 0, "encoder.layer.%d.attention.output.dense.bias", l);
	for (int l = 0; l < L; l++)
		add_tensor(m, p->ln1w + l * H, 1, H, 0, "encoder.layer.%d.attention.output.LayerNorm.weight", l);
	for (int l = 0; l < L; l++)
		add_tensor(m, p->ln1b + l * H, 1, H, 0, "encoder.layer.%d.attention.output.LayerNorm.bias", l);
	for (int l = 0; l < L; l++)
		add_tensor(m, p->fcw + l * I * H, 2, I, H, "encoder.layer.%d.intermediate.dense.weight", l);
	for (int l = 0; l < L; l++)
		add_tensor(m, p->fcb + l * I, 1, I, 0, "encoder.layer.%d.intermediate.dense.bias", l);
	for (int l = 0; l < L; l++)
		add_tensor(m, p->fcprojw + l * H * I, 2, H, I, "encoder.layer.%d.output.dense.weight", l);
	for (int l = 0; l < L; l++)
		add_tensor(m, p->fcprojb + l * H, 1, H, 0, "encoder.layer.%d.output.dense.bias", l);
	for (int l = 0; l < L; l++)
		add_tensor(m, p->ln2w + l * H, 1, H, 0, "encoder.layer.%d.output.LayerNorm.weight", l);
	for (int l = 0; l < L; l++)
		add_tensor(m, p->ln2b + l * H, 1, H, 0, "encoder.layer.%d.output.LayerNorm.bias", l);
	add_tensor(m, p->poolw, 2, H, H, "pooler.dense.weight", 0);
	add_tensor(m, p->poolb, 1, H, 0, "pooler.dense.bias", 0);
}

static size_t n_tensors_for(const struct mtl_bert_config *c)
{
	return 5 + 16 * (size_t)c->layers + 2;
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
	m->tensors = calloc(n_tensors_for(cfg), sizeof(*m->tensors));
	if (!m->params || !m->tensors) {
		size_t n = m->n_params;

		mtl_bert_free(m);
		return mtl_err_set(err, MTL_ERR_NOMEM,
				   "out of memory for %zu parameters", n);
	}
	mtl_bert_params_carve(&m->p, m->params, cfg);
	build_tensors(m);
	MTL_ASSERT(m->n_tensors == n_tensors_for(cfg));
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
	free(m->tarena);
	json_decref(m->config_json);
	free(m);
}

/* splitmix64: a small, well-mixed generator; state is the caller's. */
static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Fills x[n] with N(0, std^2) by Box-Muller. */
static void fill_normal(float *x, size_t n, double std, uint64_t *s)
{
	for (size_t i = 0; i < n; i += 2) {
		double u1 = ((splitmix(s) >> 11) + 1.0) * 0x1p-53; /* (0,1] */
		double u2 = (splitmix(s) >> 11) * 0x1p-53;
		double r = sqrt(-2.0 * log(u1)) * std;

		x[i] = (float)(r * cos(2 * M_PI * u2));
		if (i + 1 < n)
			x[i + 1] = (float)(r * sin(2 * M_PI * u2));
	}
}

void mtl_bert_init_random(struct mtl_bert *m, uint64_t seed)
{
	const struct mtl_bert_params *p = &m->p;
	size_t s[MTL_BERT_NUM_PARAMS];
	float *fields[MTL_BERT_NUM_PARAMS] = {
		p->wte, p->wpe, p->wtt, p->emb_lnw, p->emb_lnb, p->qkvw,
		p->qkvb, p->attprojw, p->attprojb, p->ln1w, p->ln1b, p->fcw,
		p->fcb, p->fcprojw, p->fcprojb, p->ln2w, p->ln2b, p->poolw,
		p->poolb,
	};
	/* 2: normal weights, 1: LayerNorm weight (ones), 0: zeros */
	static const char kind[MTL_BERT_NUM_PARAMS] = {
		2, 2, 2, 1, 0, 2, 0, 2, 0, 1, 0, 2, 0, 2, 0, 1, 0, 2, 0,
	};
	uint64_t st = seed;

	mtl_bert_param_sizes(s, &m->cfg);
	for (int i = 0; i < MTL_BERT_NUM_PARAMS; i++) {
		if (kind[i] == 2)
			fill_normal(fields[i], s[i], 0.02, &st);
		for (size_t j = 0; kind[i] != 2 && j < s[i]; j++)
			fields[i][j] = kind[i] == 1 ? 1.0f : 0.0f;
	}
	if (m->cfg.pad_id >= 0 && m->cfg.pad_id < m->cfg.vocab)
		memset(p->wte + (size_t)m->cfg.pad_id * m->cfg.hidden, 0,
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
	if (!strncmp(name, "bert.", 5))
		name += 5;
	for (size_t i = 0; i < m->n_tensors; i++)
		if (!strcmp(m->tensors[i].name, name))
			return &m->tensors[i];
	return NULL;
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
	}
	mtl_st_close(st);
	return rc;
}

/* The shard files named by an index's weight_map, each once. */
static int load_sharded(struct load_state *ls, const char *dir,
			const char *index, struct mtl_err *err)
{
	int rc = 0;
	json_t *root = load_json(index, &rc, err), *map, *v;
	const char **files = NULL;
	size_t nf = 0;
	const char *key;
	char path[PATH_LEN];

	if (!root)
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
		rc = join(path, dir, files[j], err);
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
	char path[PATH_LEN];
	json_t *cj;
	int rc;

	memset(&ls, 0, sizeof(ls));
	if ((rc = join(path, dir, "config.json", err)))
		return rc;
	cj = load_json(path, &rc, err);
	if (!cj)
		return rc;
	rc = config_parse(&cfg, cj, path, err);
	if (!rc)
		rc = mtl_bert_new(&m, &cfg, err);
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
	if ((rc = join(path, dir, "model.safetensors", err)))
		goto fail;
	if (file_exists(path)) {
		rc = load_file(&ls, path, err);
	} else {
		if ((rc = join(path, dir, "model.safetensors.index.json", err)))
			goto fail;
		if (file_exists(path)) {
			rc = load_sharded(&ls, dir, path, err);
		} else {
			join(path, dir, "pytorch_model.bin", err);
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

int mtl_bert_save(const struct mtl_bert *m, const char *dir,
		  struct mtl_err *err)
{
	const struct mtl_bert_config *c = &m->cfg;
	static const char *const meta[] = { "format", "pt" };
	struct mtl_st_out *outs;
	char path[PATH_LEN];
	json_t *j;
	int rc;

	if ((rc = mtl_fs_mkdirs(dir, err)))
		return rc;
	j = m->config_json ? json_deep_copy(m->config_json) : json_object();
	if (!j)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
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
	rc = join(path, dir, "config.json", err);
	if (!rc)
		rc = mtl_fs_write_json(path, j, CONFIG_JSON, err);
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
	rc = join(path, dir, "model.safetensors", err);
	if (!rc)
		rc = mtl_st_write(path, outs, m->n_tensors, meta, 1, err);
	free(outs);
	return rc;
}

/* ---- threads ---- */

void mtl_bert_set_threads(struct mtl_bert *m, int n)
{
	m->threads = n > 0 ? n : omp_get_num_procs();
	if (m->threads < 1)
		m->threads = 1;
}

void mtl_bert_set_gemm_split(struct mtl_bert *m, int on)
{
	m->gemm_split = !!on;
}

/* ---- forward ---- */

/* Floats rounded up to a 64-byte multiple so every slot is aligned. */
static size_t al(size_t n)
{
	return (n + 15) & ~(size_t)15;
}

/*
 * Carves the arena for (B,T,train,nt) into m->acts; with base NULL only
 * returns the floats needed.  Inference shares one layer's slots and
 * aliases the slots whose lives do not overlap (see bert.h).
 */
static size_t plan(struct mtl_bert *m, float *base, int B, int T, int train,
		   int nt)
{
	struct mtl_bert_acts *a = &m->acts;
	size_t BT = (size_t)B * T, H = (size_t)m->cfg.hidden;
	size_t I = (size_t)m->cfg.intermediate, L = (size_t)m->cfg.layers;
	size_t NH = (size_t)m->cfg.heads, Lt = train ? L : 1, off = 0;
	float *p = base;

#define SLOT(field, n)                                   \
	do {                                             \
		a->field = base ? p + off : NULL;        \
		off += al(n);                            \
	} while (0)

	SLOT(mask_add, BT);
	SLOT(emb_mean, BT);
	SLOT(emb_rstd, BT);
	SLOT(hidden, (train ? L + 1 : 1) * BT * H);
	SLOT(qkv, Lt * BT * 3 * H);
	SLOT(att, train ? L * B * NH * T * T : (size_t)nt * T * T);
	SLOT(ctx, Lt * BT * H);
	SLOT(ln1_in, Lt * BT * H);
	SLOT(ln1_mean, Lt * BT);
	SLOT(ln1_rstd, Lt * BT);
	SLOT(ln1_out, Lt * BT * H);
	SLOT(fc, Lt * BT * I);
	SLOT(ln2_mean, Lt * BT);
	SLOT(ln2_rstd, Lt * BT);
	if (train) {
		SLOT(emb_in, BT * H);
		SLOT(fc_gelu, L * BT * I);
		SLOT(ln2_in, L * BT * H);
	} else {
		/* embeddings are summed before ln1_in is first used; GELU
		 * runs in place; ln2_in is written after ln1_in's last read */
		a->emb_in = a->ln1_in;
		a->fc_gelu = a->fc;
		a->ln2_in = a->ln1_in;
	}
#undef SLOT
	a->B = B;
	a->T = T;
	a->train = train;
	a->nt = nt;
	return off;
}

static int check_inputs(const struct mtl_bert *m, const int32_t *ids,
			const int32_t *types, int B, int T, struct mtl_err *err)
{
	if (B < 1 || T < 1 || T > m->cfg.max_pos ||
	    (size_t)B * (size_t)T > (size_t)1 << 24)
		return mtl_err_set(err, MTL_ERR_ARG,
				   "batch shape [%d,%d] out of range (at most %d tokens)",
				   B, T, m->cfg.max_pos);
	for (size_t i = 0; i < (size_t)B * T; i++) {
		if (ids[i] < 0 || ids[i] >= m->cfg.vocab)
			return mtl_err_set(err, MTL_ERR_ARG,
					   "token id %d at [%zu,%zu] out of range [0,%d)",
					   ids[i], i / T, i % T, m->cfg.vocab);
		if (types && (types[i] < 0 || types[i] >= m->cfg.type_vocab))
			return mtl_err_set(err, MTL_ERR_ARG,
					   "token type %d at [%zu,%zu] out of range [0,%d)",
					   types[i], i / T, i % T,
					   m->cfg.type_vocab);
	}
	return 0;
}

/*
 * Carves the training extras of a (B, T) train-mode forward from
 * m->tarena: input copies, the four keep-masks (when drop is set) and the
 * backward scratch.  Grows the allocation only.
 */
static int plan_train(struct mtl_bert *m, int B, int T, int drop,
		      struct mtl_err *err)
{
	struct mtl_bert_acts *a = &m->acts;
	size_t BT = (size_t)B * T, H = (size_t)m->cfg.hidden;
	size_t I = (size_t)m->cfg.intermediate, L = (size_t)m->cfg.layers;
	size_t att = BT * (size_t)m->cfg.heads * T, nt = (size_t)m->threads;
	size_t nf = al(BT * H) * 3 + al(BT * I) * 2 + al(BT * 3 * H) +
		    al(nt * 2 * (size_t)T * T);
	size_t nb = 2 * al(BT) * sizeof(int32_t) +
		    (drop ? al(BT * H) + al(L * att) + 2 * al(L * BT * H) : 0);
	size_t need = nf * sizeof(float) + nb;
	float *f;
	unsigned char *u;

	if (need > m->tarena_len) {
		void *n = aligned_alloc(64, (need + 63) / 64 * 64);

		if (!n)
			return mtl_err_set(err, MTL_ERR_NOMEM,
					   "out of memory for %zu bytes of training state",
					   need);
		free(m->tarena);
		m->tarena = n;
		m->tarena_len = need;
	}
	f = m->tarena;
	a->d_res = f; f += al(BT * H);
	a->d_a = f; f += al(BT * H);
	a->d_b = f; f += al(BT * H);
	a->d_fc = f; f += al(BT * I);
	a->d_fcg = f; f += al(BT * I);
	a->d_qkv = f; f += al(BT * 3 * H);
	a->scratch = f; f += al(nt * 2 * (size_t)T * T);
	u = (unsigned char *)f;
	a->ids = (int32_t *)(void *)u; u += al(BT) * sizeof(int32_t);
	a->types = (int32_t *)(void *)u; u += al(BT) * sizeof(int32_t);
	a->emb_drop = drop ? u : NULL; u += drop ? al(BT * H) : 0;
	a->att_drop = drop ? u : NULL; u += drop ? al(L * att) : 0;
	a->proj_drop = drop ? u : NULL; u += drop ? al(L * BT * H) : 0;
	a->ffn_drop = drop ? u : NULL;
	return 0;
}

/* The forward pass; with train, dropout p_hidden / p_attn (may be 0). */
static int forward(struct mtl_bert *m, const int32_t *ids,
		   const int32_t *types, const int32_t *mask, int B, int T,
		   int train, float p_hidden, float p_attn,
		   struct mtl_rng *rng, struct mtl_err *err)
{
	const struct mtl_bert_params *p = &m->p;
	struct mtl_bert_acts *a = &m->acts;
	int H = m->cfg.hidden, I = m->cfg.intermediate, NH = m->cfg.heads;
	int L = m->cfg.layers, nt = m->threads, BT;
	float eps = m->cfg.ln_eps;
	void (*linear)(float *, const float *, const float *, const float *,
		       int, int, int, int) =
		m->gemm_split ? mtl_linear_forward_split : mtl_linear_forward;
	size_t need;
	int rc, drop;

	if ((rc = check_inputs(m, ids, types, B, T, err)))
		return rc;
	train = !!train;
	BT = B * T;
	need = plan(m, NULL, B, T, train, nt);
	if (need > m->arena_len) {
		float *n = aligned_alloc(64, need * sizeof(float));

		if (!n)
			return mtl_err_set(err, MTL_ERR_NOMEM,
					   "out of memory for %zu activations", need);
		free(m->arena);
		m->arena = n;
		m->arena_len = need;
	}
	plan(m, m->arena, B, T, train, nt);
	a->p_hidden = a->p_attn = 0;
	a->ids = a->types = NULL;
	a->emb_drop = a->att_drop = a->proj_drop = a->ffn_drop = NULL;
	drop = train && (p_hidden > 0 || p_attn > 0);
	if (train) {
		if ((rc = plan_train(m, B, T, drop, err)))
			return rc;
		a->p_hidden = p_hidden;
		a->p_attn = p_attn;
		for (int i = 0; i < BT; i++) {
			a->ids[i] = ids[i];
			a->types[i] = types ? types[i] : 0;
		}
	}
	if (drop) {
		/* every mask drawn up front, in a fixed order */
		int64_t BTH = (int64_t)BT * H, att = (int64_t)BT * NH * T;

		mtl_dropout_mask(a->emb_drop, BTH, p_hidden, rng);
		mtl_dropout_mask(a->att_drop, L * att, p_attn, rng);
		mtl_dropout_mask(a->proj_drop, L * BTH, p_hidden, rng);
		mtl_dropout_mask(a->ffn_drop, L * BTH, p_hidden, rng);
	}

	for (int i = 0; i < BT; i++)
		a->mask_add[i] = mask && !mask[i] ? -FLT_MAX : 0.0f;
	mtl_embed_forward(a->emb_in, ids, types, p->wte, p->wpe, p->wtt, B, T, H);
	mtl_layernorm_forward(a->hidden, a->emb_mean, a->emb_rstd, a->emb_in,
			      p->emb_lnw, p->emb_lnb, BT, H, eps, nt);
	if (drop)
		mtl_dropout_forward(a->hidden, a->hidden, a->emb_drop, p_hidden,
				    (int64_t)BT * H);

	for (int l = 0; l < L; l++) {
		/* slot index: layer l in train mode, the shared slot otherwise */
		size_t s = train ? (size_t)l : 0;
		size_t sH = s * BT * H, sI = s * BT * I, sN = s * BT;
		float *x = a->hidden + (train ? (size_t)l : 0) * BT * H;
		float *y = a->hidden + (train ? (size_t)l + 1 : 0) * BT * H;
		float *qkv = a->qkv + s * BT * 3 * H;
		float *att = train ? a->att + (size_t)l * B * NH * T * T : a->att;
		float *ctx = a->ctx + sH, *ln1_in = a->ln1_in + sH;
		float *ln1_out = a->ln1_out + sH, *fc = a->fc + sI;
		float *fc_gelu = a->fc_gelu + sI, *ln2_in = a->ln2_in + sH;

		/* qkv [BT,3H]: one gemm for query, key and value */
		linear(qkv, x, p->qkvw + (size_t)l * 3 * H * H,
				   p->qkvb + (size_t)l * 3 * H, BT, H, 3 * H, nt);
		if (drop)
			mtl_attention_forward_train(ctx, att, a->scratch, qkv,
						    a->mask_add,
						    a->att_drop + (size_t)l * B * NH * T * T,
						    p_attn, B, T, H, NH, nt);
		else
			mtl_attention_forward(ctx, att, qkv, a->mask_add, B, T,
					      H, NH, train, nt);
		linear(ln1_in, ctx, p->attprojw + (size_t)l * H * H,
				   p->attprojb + (size_t)l * H, BT, H, H, nt);
		if (drop)
			mtl_dropout_forward(ln1_in, ln1_in,
					    a->proj_drop + (size_t)l * BT * H,
					    p_hidden, (int64_t)BT * H);
		/* post-LN (BERT), where GPT-2 normalises before the block */
		mtl_residual_forward(ln1_in, ln1_in, x, (int64_t)BT * H, nt);
		mtl_layernorm_forward(ln1_out, a->ln1_mean + sN, a->ln1_rstd + sN,
				      ln1_in, p->ln1w + (size_t)l * H,
				      p->ln1b + (size_t)l * H, BT, H, eps, nt);
		linear(fc, ln1_out, p->fcw + (size_t)l * I * H,
				   p->fcb + (size_t)l * I, BT, H, I, nt);
		mtl_gelu_forward(fc_gelu, fc, (int64_t)BT * I, nt);
		linear(ln2_in, fc_gelu, p->fcprojw + (size_t)l * H * I,
				   p->fcprojb + (size_t)l * H, BT, I, H, nt);
		if (drop)
			mtl_dropout_forward(ln2_in, ln2_in,
					    a->ffn_drop + (size_t)l * BT * H,
					    p_hidden, (int64_t)BT * H);
		mtl_residual_forward(ln2_in, ln2_in, ln1_out, (int64_t)BT * H, nt);
		mtl_layernorm_forward(y, a->ln2_mean + sN, a->ln2_rstd + sN,
				      ln2_in, p->ln2w + (size_t)l * H,
				      p->ln2b + (size_t)l * H, BT, H, eps, nt);
	}
	return 0;
}

int mtl_bert_forward(struct mtl_bert *m, const int32_t *ids,
		     const int32_t *types, const int32_t *mask, int B, int T,
		     int train, struct mtl_err *err)
{
	return forward(m, ids, types, mask, B, T, train, 0, 0, NULL, err);
}

int mtl_bert_forward_train(struct mtl_bert *m, const int32_t *ids,
			   const int32_t *types, const int32_t *mask, int B,
			   int T, float p_hidden, float p_attn,
			   struct mtl_rng *rng, struct mtl_err *err)
{
	return forward(m, ids, types, mask, B, T, 1, p_hidden, p_attn, rng,
		       err);
}

/* ---- backward ---- */

/*
 * Backward of BERT's post-LN residual block, out = LN(dropout(y) + x):
 * from d_res = d out, leaves d_res = d x (the residual's share) and
 * d_y = d y (through the recorded dropout mask keep, or a copy when keep
 * is NULL); adds the LayerNorm's parameter gradients into dw, db.  d_a is
 * scratch [N,C] (it ends holding d of the LN input).
 */
static void ln_residual_backward(float *d_res, float *d_y, float *d_a,
				 float *dw, float *db, const float *ln_in,
				 const float *w, const float *mean,
				 const float *rstd, const uint8_t *keep, float p,
				 int N, int C, int nt)
{
	int64_t n = (int64_t)N * C;

	mtl_zero(d_a, n, nt);
	mtl_layernorm_backward(d_a, dw, db, d_res, ln_in, w, mean, rstd, N, C, nt);
	memcpy(d_res, d_a, sizeof(float) * (size_t)n);
	if (keep) {
		mtl_zero(d_y, n, nt);
		mtl_dropout_backward(d_y, d_a, keep, p, n);
	} else {
		memcpy(d_y, d_a, sizeof(float) * (size_t)n);
	}
}

void mtl_bert_backward(struct mtl_bert *m, float *grad, const float *dlast)
{
	mtl_bert_backward_to(m, grad, dlast, 0, 1);
}

int mtl_bert_backward_to(struct mtl_bert *m, float *grad, const float *dlast,
			 int lo, int embeddings)
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
	/* the projections' threading, as the forward chose it */
	void (*linear_backward)(float *, float *, float *, const float *,
				const float *, const float *, int, int, int, int) =
		m->gemm_split ? mtl_linear_backward_split : mtl_linear_backward;

	MTL_ASSERT(a->train);
	MTL_ASSERT(lo >= 0 && lo <= c->layers && (!embeddings || lo == 0));
	if (lo == c->layers && !embeddings)
		return 0;
	mtl_bert_params_carve(&g, grad, c);
	memcpy(d_res, dlast, sizeof(float) * (size_t)BTH);
	for (int l = c->layers - 1; l >= lo; l--) {
		const float *x = a->hidden + l * BTH;
		const float *qkv = a->qkv + l * BTH * 3, *att_l = a->att + l * att;
		const float *ctx = a->ctx + l * BTH, *ln1_in = a->ln1_in + l * BTH;
		const float *ln1_out = a->ln1_out + l * BTH;
		const float *ln2_in = a->ln2_in + l * BTH;
		const float *fc = a->fc + l * BT * I, *fcg = a->fc_gelu + l * BT * I;

		/* out = LN2(dropout(fcproj) + ln1_out): d_b = d fcproj, d_res
		 * becomes d ln1_out (its residual share) */
		ln_residual_backward(d_res, d_b, d_a, g.ln2w + l * H, g.ln2b + l * H,
				     ln2_in, p->ln2w + l * H, a->ln2_mean + l * BT,
				     a->ln2_rstd + l * BT,
				     drop ? a->ffn_drop + l * BTH : NULL, ph,
				     (int)BT, H, nt);
		/* fcproj = fcg W2^T + b2 */
		mtl_zero(a->d_fcg, BT * I, nt);
		linear_backward(a->d_fcg, g.fcprojw + (int64_t)l * H * I,
				    g.fcprojb + l * H, d_b, fcg,
				    p->fcprojw + (int64_t)l * H * I, (int)BT, I,
				    H, nt);
		mtl_zero(a->d_fc, BT * I, nt);
		mtl_gelu_backward(a->d_fc, fc, a->d_fcg, BT * I, nt);
		/* fc = ln1_out W1^T + b1: adds into d ln1_out */
		linear_backward(d_res, g.fcw + (int64_t)l * I * H,
				    g.fcb + (int64_t)l * I, a->d_fc, ln1_out,
				    p->fcw + (int64_t)l * I * H, (int)BT, H, I,
				    nt);
		/* ln1_out = LN1(dropout(attproj) + x): d_b = d attproj,
		 * d_res becomes d x */
		ln_residual_backward(d_res, d_b, d_a, g.ln1w + l * H, g.ln1b + l * H,
				     ln1_in, p->ln1w + l * H, a->ln1_mean + l * BT,
				     a->ln1_rstd + l * BT,
				     drop ? a->proj_drop + l * BTH : NULL, ph,
				     (int)BT, H, nt);
		/* attproj = ctx Wo^T + bo: d_a = d ctx */
		mtl_zero(d_a, BTH, nt);
		linear_backward(d_a, g.attprojw + (int64_t)l * H * H,
				    g.attprojb + l * H, d_b, ctx,
				    p->attprojw + (int64_t)l * H * H, (int)BT, H,
				    H, nt);
		mtl_zero(a->d_qkv, BTH * 3, nt);
		mtl_attention_backward(a->d_qkv, a->scratch, d_a, qkv, att_l,
				       drop ? a->att_drop + l * att : NULL, pa,
				       B, T, H, NH, nt);
		/* qkv = x Wqkv^T + bqkv: adds into d x */
		linear_backward(d_res, g.qkvw + (int64_t)l * 3 * H * H,
				    g.qkvb + l * 3 * H, a->d_qkv, x,
				    p->qkvw + (int64_t)l * 3 * H * H, (int)BT, H,
				    3 * H, nt);
		if (m->grad_ready)
			m->grad_ready(m->grad_ready_arg, l);
	}
	if (!embeddings)
		return c->layers - lo;
	/* hidden0 = dropout(LN_emb(emb_in)) */
	if (drop) {
		mtl_zero(d_b, BTH, nt);
		mtl_dropout_backward(d_b, d_res, a->emb_drop, ph, BTH);
		memcpy(d_res, d_b, sizeof(float) * (size_t)BTH);
	}
	mtl_zero(d_a, BTH, nt);
	mtl_layernorm_backward(d_a, g.emb_lnw, g.emb_lnb, d_res, a->emb_in,
			       p->emb_lnw, a->emb_mean, a->emb_rstd, (int)BT, H,
			       nt);
	mtl_embed_backward(g.wte, g.wpe, g.wtt, d_a, a->ids, a->types,
			   c->pad_id, B, T, H);
	if (m->grad_ready)
		m->grad_ready(m->grad_ready_arg, -1);
	return c->layers;
}

const float *mtl_bert_last_hidden(const struct mtl_bert *m)
{
	return mtl_bert_hidden(m, m->cfg.layers);
}

const float *mtl_bert_hidden(const struct mtl_bert *m, int l)
{
	const struct mtl_bert_acts *a = &m->acts;

	if (!a->hidden || l < 0 || l > m->cfg.layers)
		return NULL;
	if (!a->train)
		return l == m->cfg.layers ? a->hidden : NULL;
	return a->hidden + (size_t)l * a->B * a->T * m->cfg.hidden;
}

const float *mtl_bert_attn_probs(const struct mtl_bert *m, int l)
{
	const struct mtl_bert_acts *a = &m->acts;

	if (!a->att || !a->train || l < 0 || l >= m->cfg.layers)
		return NULL;
	return a->att + (size_t)l * a->B * m->cfg.heads * a->T * a->T;
}

const float *mtl_bert_ffn_gelu(const struct mtl_bert *m, int l)
{
	const struct mtl_bert_acts *a = &m->acts;

	if (!a->fc_gelu || !a->train || l < 0 || l >= m->cfg.layers)
		return NULL;
	return a->fc_gelu + (size_t)l * a->B * a->T * m->cfg.intermediate;
}

void mtl_bert_pooler(const struct mtl_bert *m, float *out)
{
	const struct mtl_bert_acts *a = &m->acts;
	const float *h = mtl_bert_last_hidden(m);
	int H = m->cfg.hidden;
	float one = 1.0f, zero = 0.0f;
	rntm_t rntm;

	MTL_ASSERT(h);
	bli_rntm_init(&rntm);
	bli_rntm_set_num_threads(m->threads, &rntm);
	/* out[B,H] = h[:,0,:] @ poolw^T: CLS rows are T*H apart */
	bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, a->B, H, H, &one,
		     (float *)h, (inc_t)a->T * H, 1, m->p.poolw, H, 1, &zero,
		     out, H, 1, NULL, &rntm);
	for (int b = 0; b < a->B; b++)
		for (int j = 0; j < H; j++)
			out[(size_t)b * H + j] = tanhf(out[(size_t)b * H + j] + m->p.poolb[j]);
}

double mtl_bert_forward_flops(const struct mtl_bert_config *c, int B, int T)
{
	double BT = (double)B * T, H = c->hidden, I = c->intermediate;
	double per_layer = 2 * BT * H * 3 * H   /* qkv */
			   + 2 * 2 * BT * T * H /* q k^T and p v over all heads */
			   + 2 * BT * H * H     /* attention output */
			   + 2 * 2 * BT * H * I; /* FFN up and down */

	return per_layer * c->layers;
}

/* ---- sentence embeddings ---- */

void mtl_bert_pool_forward(float *out, const float *hidden,
			   const int32_t *mask, int B, int T, int H,
			   enum mtl_bert_pool mode)
{
	for (int b = 0; b < B; b++) {
		float *o = out + (size_t)b * H;
		const float *hb = hidden + (size_t)b * T * H;
		const int32_t *mb = mask ? mask + (size_t)b * T : NULL;

		switch (mode) {
		case MTL_BERT_POOL_CLS:
			memcpy(o, hb, sizeof(float) * (size_t)H);
			break;
		case MTL_BERT_POOL_MEAN: {
			float cnt = 0;

			for (int j = 0; j < H; j++)
				o[j] = 0;
			for (int t = 0; t < T; t++) {
				if (mb && !mb[t])
					continue;
				cnt += 1;
				for (int j = 0; j < H; j++)
					o[j] += hb[(size_t)t * H + j];
			}
			cnt = cnt < 1e-9f ? 1e-9f : cnt;
			for (int j = 0; j < H; j++)
				o[j] /= cnt;
			break;
		}
		case MTL_BERT_POOL_MAX:
			for (int j = 0; j < H; j++)
				o[j] = -INFINITY;
			for (int t = 0; t < T; t++)
				for (int j = 0; j < H; j++) {
					float v = mb && !mb[t] ? -1e9f : hb[(size_t)t * H + j];

					o[j] = v > o[j] ? v : o[j];
				}
			break;
		}
	}
}

void mtl_bert_normalize_forward(float *out, float *norm, const float *inp,
				int B, int H)
{
	for (int b = 0; b < B; b++) {
		const float *x = inp + (size_t)b * H;
		float *o = out + (size_t)b * H;
		double ss = 0;
		float n, inv;

		for (int j = 0; j < H; j++)
			ss += (double)x[j] * x[j];
		n = (float)sqrt(ss);
		inv = 1.0f / (n > 1e-12f ? n : 1e-12f);
		for (int j = 0; j < H; j++)
			o[j] = x[j] * inv;
		if (norm)
			norm[b] = n;
	}
}

int mtl_bert_embed(struct mtl_bert *m, const struct mtl_bert_pooling *pool,
		   float *out, const int32_t *ids, const int32_t *types,
		   const int32_t *mask, int B, int T, struct mtl_err *err)
{
	int rc = mtl_bert_forward(m, ids, types, mask, B, T, 0, err);

	if (rc)
		return rc;
	mtl_bert_pool_forward(out, mtl_bert_last_hidden(m), mask, B, T,
			      m->cfg.hidden, pool->mode);
	if (pool->normalize)
		mtl_bert_normalize_forward(out, NULL, out, B, m->cfg.hidden);
	return 0;
}

/* ---- sentence-transformers files ---- */

static int read_pooling_config(struct mtl_bert_pooling *pool, const char *path,
			       const struct mtl_bert_config *cfg,
			       struct mtl_err *err)
{
	static const char *const other[] = {
		"pooling_mode_mean_sqrt_len_tokens",
		"pooling_mode_weightedmean_tokens",
		"pooling_mode_lasttoken",
	};
	int cls, mean, max, rc = 0;
	json_t *j = load_json(path, &rc, err), *dim;

	if (!j)
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
	pool->mode = cls ? MTL_BERT_POOL_CLS : mean ? MTL_BERT_POOL_MEAN
						      : MTL_BERT_POOL_MAX;
out:
	json_decref(j);
	return rc;
}

int mtl_bert_pooling_load(struct mtl_bert_pooling *out, const char *dir,
			  const struct mtl_bert_config *cfg,
			  struct mtl_err *err)
{
	struct mtl_bert_pooling pool = { MTL_BERT_POOL_CLS, 1, cfg->max_pos };
	char path[PATH_LEN], sub[PATH_LEN], cfgpath[PATH_LEN];
	json_t *mods = NULL, *v, *sbc;
	size_t i;
	int rc, have_pool = 0;

	if ((rc = join(path, dir, "modules.json", err)))
		return rc;
	if (file_exists(path)) {
		mods = load_json(path, &rc, err);
		if (!mods)
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
				if ((rc = join(sub, dir, mpath, err)) ||
				    (rc = join(cfgpath, sub, "config.json", err)) ||
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
	if ((rc = join(path, dir, "sentence_bert_config.json", err)))
		goto out;
	if (file_exists(path)) {
		json_t *msl;

		sbc = load_json(path, &rc, err);
		if (!sbc)
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

int mtl_bert_pooling_save(const struct mtl_bert_pooling *pool, int hidden,
			  const char *dir, struct mtl_err *err)
{
	char path[PATH_LEN], sub[PATH_LEN];
	json_t *mods, *pc, *sbc;
	int rc;

	mods = json_pack("[{s:i,s:s,s:s,s:s}{s:i,s:s,s:s,s:s}]",
			 "idx", 0, "name", "0", "path", "",
			 "type", "sentence_transformers.models.Transformer",
			 "idx", 1, "name", "1", "path", "1_Pooling",
			 "type", "sentence_transformers.models.Pooling");
	pc = json_pack("{s:i,s:b,s:b,s:b,s:b,s:b,s:b,s:b}",
		       "word_embedding_dimension", hidden,
		       "pooling_mode_cls_token", pool->mode == MTL_BERT_POOL_CLS,
		       "pooling_mode_mean_tokens", pool->mode == MTL_BERT_POOL_MEAN,
		       "pooling_mode_max_tokens", pool->mode == MTL_BERT_POOL_MAX,
		       "pooling_mode_mean_sqrt_len_tokens", 0,
		       "pooling_mode_weightedmean_tokens", 0,
		       "pooling_mode_lasttoken", 0, "include_prompt", 1);
	sbc = json_pack("{s:i,s:b}", "max_seq_length", pool->max_seq_length,
			"do_lower_case", 0);
	if (!mods || !pc || !sbc) {
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (pool->normalize)
		json_array_append_new(mods, json_pack("{s:i,s:s,s:s,s:s}", "idx", 2,
						      "name", "2", "path", "2_Normalize",
						      "type", "sentence_transformers.models.Normalize"));
	if ((rc = mtl_fs_mkdirs(dir, err)) ||
	    (rc = join(path, dir, "modules.json", err)) ||
	    (rc = mtl_fs_write_json(path, mods, CONFIG_JSON, err)) ||
	    (rc = join(sub, dir, "1_Pooling", err)) ||
	    (rc = mtl_fs_mkdirs(sub, err)) ||
	    (rc = join(path, sub, "config.json", err)) ||
	    (rc = mtl_fs_write_json(path, pc, CONFIG_JSON, err)) ||
	    (rc = join(path, dir, "sentence_bert_config.json", err)) ||
	    (rc = mtl_fs_write_json(path, sbc, CONFIG_JSON, err)))
		goto out;
	if (pool->normalize &&
	    ((rc = join(sub, dir, "2_Normalize", err)) || (rc = mtl_fs_mkdirs(sub, err))))
		goto out;
	rc = 0;
out:
	json_decref(mods);
	json_decref(pc);
	json_decref(sbc);
	return rc;
}
