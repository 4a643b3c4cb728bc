/*
 * bert.c - the BERT encoder's mathematics: the parameter block and its
 * tensor table, the forward and backward passes, sentence embeddings;
 * see bert.h (its files are read and written in bert_io.c).
 *
 * Where BERT differs from GPT-2 (llm.c's model), the code says so: the
 * LayerNorm comes after each residual sum (post-LN), attention masks
 * padded keys instead of future positions, GELU is the exact erf form,
 * and the embeddings add a token-type row.
 */
#include "bert.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <blis.h>
#include <jansson.h>
#include <omp.h>

#include "gemm.h"
#include "ops.h"
#include "par.h"

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

/* ptrs[i]: where p keeps the i-th field of mtl_bert_param_sizes. */
static void field_ptrs(struct mtl_bert_params *p,
		       float **ptrs[MTL_BERT_NUM_PARAMS])
{
	float **const f[MTL_BERT_NUM_PARAMS] = {
		&p->wte, &p->wpe, &p->wtt, &p->emb_lnw, &p->emb_lnb,
		&p->qkvw, &p->qkvb, &p->attprojw, &p->attprojb, &p->ln1w,
		&p->ln1b, &p->fcw, &p->fcb, &p->fcprojw, &p->fcprojb,
		&p->ln2w, &p->ln2b, &p->poolw, &p->poolb,
	};

	memcpy(ptrs, f, sizeof(f));
}

void mtl_bert_params_carve(struct mtl_bert_params *p, float *block,
			   const struct mtl_bert_config *cfg)
{
	size_t s[MTL_BERT_NUM_PARAMS];
	float **ptrs[MTL_BERT_NUM_PARAMS];

	field_ptrs(p, ptrs);
	mtl_bert_param_sizes(s, cfg);
	for (int i = 0; i < MTL_BERT_NUM_PARAMS; i++) {
		*ptrs[i] = block;
		block += s[i];
	}
}

/* One layer's fields are qkvw .. ln2b: the 5th to the 16th of the table. */
enum { LAYER_FIRST = 5, LAYER_END = 17 };

size_t mtl_bert_layer_carve(struct mtl_bert_params *p, float *block,
			    const struct mtl_bert_config *cfg)
{
	struct mtl_bert_config one = *cfg;
	size_t s[MTL_BERT_NUM_PARAMS], n = 0;
	float **ptrs[MTL_BERT_NUM_PARAMS];

	one.layers = 1;
	mtl_bert_param_sizes(s, &one);
	memset(p, 0, sizeof(*p));
	field_ptrs(p, ptrs);
	for (int i = LAYER_FIRST; i < LAYER_END; i++) {
		*ptrs[i] = block ? block + n : NULL;
		n += s[i];
	}
	return n;
}

size_t mtl_bert_layer_offset(const struct mtl_bert_config *cfg, size_t off)
{
	struct mtl_bert_config one = *cfg;
	size_t s[MTL_BERT_NUM_PARAMS], s1[MTL_BERT_NUM_PARAMS], at = 0, in = 0;

	one.layers = 1;
	mtl_bert_param_sizes(s, cfg);
	mtl_bert_param_sizes(s1, &one);
	for (int i = 0; i < LAYER_END; at += s[i], i++) {
		if (i >= LAYER_FIRST && off >= at && off < at + s[i])
			return in + (off - at) % s1[i];
		in += i >= LAYER_FIRST ? s1[i] : 0;
	}
	MTL_ASSERT(0); /* not a layer's tensor */
	return 0;
}

/* Appends one table entry; offset is relative to the block; layer -1
 * for a tensor outside the encoder's layers (fmt then has no %d). */
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
	t->layer = layer;
}

/* The HF name table, in block order (field by field, layer by layer). */
static void build_tensors(struct mtl_bert *m)
{
	const struct mtl_bert_params *p = &m->p;
	int64_t H = m->cfg.hidden, I = m->cfg.intermediate;
	int L = m->cfg.layers;

	m->n_tensors = 0;
	add_tensor(m, p->wte, 2, m->cfg.vocab, H, "embeddings.word_embeddings.weight", -1);
	add_tensor(m, p->wpe, 2, m->cfg.max_pos, H, "embeddings.position_embeddings.weight", -1);
	add_tensor(m, p->wtt, 2, m->cfg.type_vocab, H, "embeddings.token_type_embeddings.weight", -1);
	add_tensor(m, p->emb_lnw, 1, H, 0, "embeddings.LayerNorm.weight", -1);
	add_tensor(m, p->emb_lnb, 1, H, 0, "embeddings.LayerNorm.bias", -1);
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
	/* the rest tensor by tensor, each for every layer (the block's order) */
	const struct {
		const float *at;
		int ndim;
		int64_t r, c;
		const char *fmt;
	} per_layer[] = {
		{ p->attprojw, 2, H, H, "encoder.layer.%d.attention.output.dense.weight" },
		{ p->attprojb, 1, H, 0, "encoder.layer.%d.attention.output.dense.bias" },
		{ p->ln1w, 1, H, 0, "encoder.layer.%d.attention.output.LayerNorm.weight" },
		{ p->ln1b, 1, H, 0, "encoder.layer.%d.attention.output.LayerNorm.bias" },
		{ p->fcw, 2, I, H, "encoder.layer.%d.intermediate.dense.weight" },
		{ p->fcb, 1, I, 0, "encoder.layer.%d.intermediate.dense.bias" },
		{ p->fcprojw, 2, H, I, "encoder.layer.%d.output.dense.weight" },
		{ p->fcprojb, 1, H, 0, "encoder.layer.%d.output.dense.bias" },
		{ p->ln2w, 1, H, 0, "encoder.layer.%d.output.LayerNorm.weight" },
		{ p->ln2b, 1, H, 0, "encoder.layer.%d.output.LayerNorm.bias" },
	};
	for (size_t t = 0; t < sizeof(per_layer) / sizeof(per_layer[0]); t++) {
		int64_t size = per_layer[t].r * (per_layer[t].c ? per_layer[t].c : 1);

		for (int l = 0; l < L; l++)
			add_tensor(m, per_layer[t].at + l * size, per_layer[t].ndim,
				   per_layer[t].r, per_layer[t].c, per_layer[t].fmt, l);
	}
	add_tensor(m, p->poolw, 2, H, H, "pooler.dense.weight", -1);
	add_tensor(m, p->poolb, 1, H, 0, "pooler.dense.bias", -1);
}

static size_t n_tensors_for(const struct mtl_bert_config *c)
{
	return 5 + 16 * (size_t)c->layers + 2;
}

/*
 * n bytes, 64-byte aligned, on ordinary 4 KB pages.
 * Not on transparent huge pages (madvise): with the weights packed once
 * for inference the products read them in order, and 2 MB pages changed
 * neither the encoder's nor training's time, while in a virtual machine
 * that hands idle memory back to its host (free page reporting reports
 * free 2 MB blocks) each fresh huge page is faulted in from the host:
 * mtl-score's start went from 0.11 s on 4 KB pages to 0.25-0.48 s
 * (docs/performance.md, "Start-up and memory").  free() releases it.
 */
static void *block_alloc(size_t n)
{
	return aligned_alloc(64, (n + 63) & ~(size_t)63);
}

int mtl_bert_new(struct mtl_bert **out, const struct mtl_bert_config *cfg,
		 struct mtl_err *err)
{
	int rc = mtl_bert_new_unset(out, cfg, err);

	if (!rc)
		memset((*out)->params, 0, (*out)->n_params * sizeof(float));
	return rc;
}

int mtl_bert_new_unset(struct mtl_bert **out, const struct mtl_bert_config *cfg,
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
	m->params = block_alloc(m->n_params * sizeof(float));
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
	mtl_bert_set_gemm_split(m, 1);
	*out = m;
	return 0;
}

/* What view v borrows of m that m may change: its packed and int8
 * copies (mtl_bert_set_packed, mtl_bert_set_int8), and how it threads
 * its products. */
static void view_borrow(struct mtl_bert *v, const struct mtl_bert *m)
{
	v->q8 = m->q8;
	v->packed = m->packed;
	v->packed_here = m->packed_here;
	v->gemm_split = m->gemm_split;
}

int mtl_bert_view_new(struct mtl_bert **out, const struct mtl_bert *m,
		      int threads, struct mtl_err *err)
{
	struct mtl_bert *v = calloc(1, sizeof(*v));

	if (!v)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	v->cfg = m->cfg;
	v->params = m->params;
	v->n_params = m->n_params;
	v->p = m->p;
	v->tensors = m->tensors;
	v->n_tensors = m->n_tensors;
	view_borrow(v, m);
	v->base = m;
	mtl_bert_set_threads(v, threads);
	*out = v;
	return 0;
}

/* Frees m's views (those of its batches in parts). */
static void free_views(struct mtl_bert *m)
{
	for (int i = 0; i < m->n_views; i++)
		mtl_bert_free(m->views[i]);
	free(m->views);
	m->views = NULL;
	m->n_views = 0;
}

void mtl_bert_free(struct mtl_bert *m)
{
	if (!m)
		return;
	if (m->base) { /* a view: its activations alone are its own */
		free(m->arena);
		free(m->tarena);
		free(m->rag);
		mtl_q8_buf_release(&m->q8buf);
		free(m);
		return;
	}
	free_views(m);
	free(m->parts_hidden);
	free(m->params);
	free(m->tensors);
	free(m->arena);
	free(m->tarena);
	free(m->rag);
	mtl_bert_set_int8(m, 0, MTL_Q8_AUTO, NULL);
	free(m->packed);
	free(m->packed_block);
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

/* ---- threads ---- */

void mtl_bert_set_threads(struct mtl_bert *m, int n)
{
	m->threads = n > 0 ? n : omp_get_num_procs();
	if (m->threads < 1)
		m->threads = 1;
}

void mtl_bert_set_recompute(struct mtl_bert *m, int on)
{
	m->recompute = !!on;
}

void mtl_bert_set_parts(struct mtl_bert *m, int on)
{
	m->parts = !!on;
}

void mtl_bert_set_gemm_split(struct mtl_bert *m, int on)
{
	m->gemm_split = !!on;
}

/* The four linear maps of every layer: [OC, C] weights, read transposed. */
struct lin_map {
	float *w;
	int oc, ic;
};

static void lin_maps(struct mtl_bert *m, struct lin_map maps[4])
{
	int H = m->cfg.hidden, I = m->cfg.intermediate;

	maps[0] = (struct lin_map){ m->p.qkvw, 3 * H, H };
	maps[1] = (struct lin_map){ m->p.attprojw, H, H };
	maps[2] = (struct lin_map){ m->p.fcw, I, H };
	maps[3] = (struct lin_map){ m->p.fcprojw, H, I };
}

int mtl_bert_set_int8(struct mtl_bert *m, int on, enum mtl_q8_path path,
		      struct mtl_err *err)
{
	const struct mtl_bert_config *c = &m->cfg;
	struct lin_map maps[4];
	struct mtl_q8_linear **q;
	int rc = 0;

	if (m->base)
		return mtl_err_set(err, MTL_ERR_ARG,
				   "a view cannot change its model's int8 copies");
	for (int i = 0; m->q8 && i < 4 * c->layers; i++)
		mtl_q8_linear_free(m->q8[i]);
	free(m->q8);
	m->q8 = NULL;
	mtl_q8_buf_release(&m->q8buf);
	if (!on)
		return 0;
	/* the int8 copies are made from the plain weights, and take
	 * precedence over packed ones */
	if (m->packed_here && (rc = mtl_bert_set_packed(m, 0, err)))
		return rc;
	q = calloc((size_t)c->layers * 4, sizeof(*q));
	if (!q)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	lin_maps(m, maps);
	for (int l = 0; l < c->layers && !rc; l++)
		for (int i = 0; i < 4 && !rc; i++)
			rc = mtl_q8_linear_new(&q[4 * l + i],
					       maps[i].w + (size_t)l * maps[i].oc * maps[i].ic,
					       maps[i].oc, maps[i].ic, path, err);
	m->q8 = q;
	if (rc)
		mtl_bert_set_int8(m, 0, path, NULL);
	return rc;
}

/*
 * Packs (or, with back set, unpacks) every weight of the four maps where
 * it lies, through a buffer of one weight.  0, or -1 when the buffer
 * cannot be allocated (nothing changed).
 */
static int pack_in_place(struct mtl_bert *m, int back)
{
	enum mtl_gemm_kernel k = mtl_gemm_default();
	struct lin_map maps[4];
	size_t most = 0;
	float *tmp;

	lin_maps(m, maps);
	for (int i = 0; i < 4; i++)
		if ((size_t)maps[i].oc * maps[i].ic > most)
			most = (size_t)maps[i].oc * maps[i].ic;
	if (!(tmp = aligned_alloc(64, (most * sizeof(float) + 63) & ~(size_t)63)))
		return -1;
	for (int l = 0; l < m->cfg.layers; l++)
		for (int i = 0; i < 4; i++) {
			size_t per = (size_t)maps[i].oc * maps[i].ic;
			float *w = maps[i].w + l * per;

			if (back)
				mtl_gemm_unpack_b(k, 1, maps[i].oc, maps[i].ic, w,
						  tmp, maps[i].ic);
			else
				mtl_gemm_pack_b(k, 1, maps[i].oc, maps[i].ic, w,
						maps[i].ic, tmp);
			memcpy(w, tmp, per * sizeof(float));
			if (!back)
				m->packed[4 * l + i] = w;
		}
	free(tmp);
	return 0;
}

int mtl_bert_set_packed(struct mtl_bert *m, int on, struct mtl_err *err)
{
	const struct mtl_bert_config *c = &m->cfg;
	enum mtl_gemm_kernel k = mtl_gemm_default();
	struct lin_map maps[4];
	size_t len[4], total = 0;
	int here = 1;
	float *at;

	if (m->base)
		return mtl_err_set(err, MTL_ERR_ARG,
				   "a view cannot change its model's packing");
	if (m->packed_here) {
		if (pack_in_place(m, 1))
			return mtl_err_set(err, MTL_ERR_NOMEM,
					   "out of memory unpacking the weights");
		m->packed_here = 0;
	}
	free(m->packed);
	free(m->packed_block);
	m->packed = NULL;
	m->packed_block = NULL;
	if (!on || k == MTL_GEMM_BLIS)
		return 0;
	lin_maps(m, maps);
	for (int i = 0; i < 4; i++) {
		size_t per = (size_t)maps[i].oc * maps[i].ic;

		/* whole 64-byte lines, so each copy starts aligned */
		len[i] = (mtl_gemm_packed_len(k, maps[i].oc, maps[i].ic) + 15) & ~(size_t)15;
		total += (size_t)c->layers * len[i];
		/* every weight's packed copy fits where the weight lies */
		here &= len[i] == per && (uintptr_t)maps[i].w % 64 == 0;
	}
	m->packed = calloc((size_t)c->layers * 4, sizeof(*m->packed));
	if (m->packed && here && pack_in_place(m, 0) == 0) {
		m->packed_here = 1;
		return 0;
	}
	m->packed_block = m->packed ? block_alloc(total * sizeof(float)) : NULL;
	if (!m->packed || !m->packed_block) {
		mtl_bert_set_packed(m, 0, NULL);
		return mtl_err_set(err, MTL_ERR_NOMEM,
				   "out of memory for %zu packed weights", total);
	}
	at = m->packed_block;
	for (int l = 0; l < c->layers; l++)
		for (int i = 0; i < 4; i++) {
			size_t per = (size_t)maps[i].oc * maps[i].ic;

			mtl_gemm_pack_b(k, 1, maps[i].oc, maps[i].ic,
					maps[i].w + l * per, maps[i].ic, at);
			m->packed[4 * l + i] = at;
			at += len[i];
		}
	return 0;
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
	size_t NH = (size_t)m->cfg.heads, off = 0;
	float *p = base;

#define SLOT(field, n)                                   \
	do {                                             \
		a->field = base ? p + off : NULL;        \
		off += al(n);                            \
	} while (0)

	SLOT(mask_add, BT);
	SLOT(emb_mean, BT);
	SLOT(emb_rstd, BT);
	if (train && !m->recompute) {
		struct mtl_bert_params lg;
		/* slot l: layer l's input, then all that layer l keeps; the
		 * last slot the output.  With grad_slots each holds a
		 * layer's gradient too (mtl_bert_grad_slot). */
		size_t g = m->grad_slots ? al(mtl_bert_layer_carve(&lg, NULL, &m->cfg)) : 0;
		size_t in = 0;

#define IN(field, n)                                          \
	do {                                                  \
		a->field = base ? p + off + in : NULL;        \
		in += al(n);                                  \
	} while (0)
		IN(hidden, BT * H);
		IN(qkv, BT * 3 * H);
		IN(ctx, BT * H);
		IN(ln1_in, BT * H);
		IN(ln1_mean, BT);
		IN(ln1_rstd, BT);
		IN(fc, BT * I);
		IN(ln2_in, BT * H);
		IN(ln2_mean, BT);
		IN(ln2_rstd, BT);
#undef IN
		a->ls = a->hs = in > g ? in : g;
		a->grad_slots = m->grad_slots;
		off += L * a->ls + (al(BT * H) > g ? al(BT * H) : g);
		a->ld_fc = (int)I;
		SLOT(ln1_out, BT * H);
		SLOT(emb_in, BT * H);
		SLOT(fc_gelu, BT * I);
	} else {
		/* one shared slot a layer (training with recompute: but
		 * for the inputs, hidden) */
		a->ls = 0;
		a->hs = train ? BT * H : 0;
		a->grad_slots = 0;
		SLOT(hidden, (train ? L + 1 : 1) * BT * H);
		SLOT(qkv, BT * 3 * H);
		/* training keeps no probabilities: its scratch is plan_train's */
		SLOT(att, train ? 0 : (size_t)nt * mtl_attention_scratch(T, (int)H, (int)NH));
		SLOT(ctx, BT * H);
		SLOT(ln1_in, BT * H);
		SLOT(ln1_mean, BT);
		SLOT(ln1_rstd, BT);
		SLOT(ln1_out, BT * H);
		/* inference on packed weights: rows FFN2 reads where they lie */
		a->ld_fc = (int)(!train && m->packed && !m->q8 ? mtl_gemm_ld_in_place((int64_t)I)
							      : (int64_t)I);
		SLOT(fc, BT * (size_t)a->ld_fc);
		SLOT(ln2_mean, BT);
		SLOT(ln2_rstd, BT);
		if (train) {
			SLOT(emb_in, BT * H);
			SLOT(fc_gelu, BT * I);
			SLOT(ln2_in, BT * H);
		} else {
			/* embeddings are summed before ln1_in is first used;
			 * GELU runs in place; ln2_in is written after
			 * ln1_in's last read */
			a->emb_in = a->ln1_in;
			a->fc_gelu = a->fc;
			a->ln2_in = a->ln1_in;
		}
	}
#undef SLOT
	if (train)
		a->att = NULL;
	a->B = B;
	a->T = T;
	a->rows = B * T;
	a->off = a->len = NULL;
	a->train = train;
	a->recompute = train && m->recompute;
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
 * m->tarena: input copies, the three stored keep-masks (when drop is set)
 * and the scratch of the backward and of attention.  Grows the
 * allocation only.
 */
static int plan_train(struct mtl_bert *m, int B, int T, int drop,
		      struct mtl_err *err)
{
	struct mtl_bert_acts *a = &m->acts;
	size_t BT = (size_t)B * T, H = (size_t)m->cfg.hidden;
	size_t I = (size_t)m->cfg.intermediate, L = (size_t)m->cfg.layers;
	size_t nt = (size_t)m->threads, I3 = I > 3 * H ? I : 3 * H;
	size_t nf = al(BT * H) * 3 + al(BT * I3) +
		    al(nt * mtl_attention_train_scratch(T));
	size_t nb = 2 * al(BT) * sizeof(int32_t) +
		    (drop ? al(BT * H) + 2 * al(L * BT * H) : 0);
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
	/* d_fcg's life ends before d_qkv's begins; d_fc is the one-layer
	 * GELU output's slot, which the product that writes d_fcg reads
	 * last */
	a->d_fcg = a->d_qkv = f; f += al(BT * I3);
	a->d_fc = a->fc_gelu;
	a->scratch = f; f += al(nt * mtl_attention_train_scratch(T));
	u = (unsigned char *)f;
	a->ids = (int32_t *)(void *)u; u += al(BT) * sizeof(int32_t);
	a->types = (int32_t *)(void *)u; u += al(BT) * sizeof(int32_t);
	a->emb_drop = drop ? u : NULL; u += drop ? al(BT * H) : 0;
	a->proj_drop = drop ? u : NULL; u += drop ? al(L * BT * H) : 0;
	a->ffn_drop = drop ? u : NULL;
	return 0;
}

/* ---- the post-LN residual block ---- */

/*
 * BERT's post-LN residual block, out = LN(dropout(y) + x), where GPT-2
 * normalises before the block: y [N,C] (a projection's output) is
 * turned in place into the LayerNorm's input ln_in (kept for the
 * backward), through the recorded dropout mask keep (NULL: none); mean
 * and rstd [N] are kept too.
 */
static void ln_residual_forward(float *out, float *mean, float *rstd,
				float *ln_in, const float *x, const float *w,
				const float *b, const uint8_t *keep, float p,
				int N, int C, float eps, int nt)
{
	int64_t n = (int64_t)N * C;

	if (keep)
		mtl_dropout_forward(ln_in, ln_in, keep, p, n);
	mtl_residual_forward(ln_in, ln_in, x, n, nt);
	mtl_layernorm_forward(out, mean, rstd, ln_in, w, b, N, C, eps, nt);
}

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

/* A linear map's forward with its epilogue (ops.h's mtl_linear_forward_ex
 * or _split_ex). */
typedef void linear_fn(float *out, const float *inp, const float *w,
		       const float *b, const float *res, int gelu, int N,
		       int C, int OC, int nt);

/* The projections' threading (mtl_bert_set_gemm_split). */
static linear_fn *linear_of(const struct mtl_bert *m)
{
	return m->gemm_split ? mtl_linear_forward_split_ex : mtl_linear_forward_ex;
}

/*
 * One linear map of a layer: out[N,OC] = act(inp[N,C] w^T + b + res)
 * (res NULL: none; act GELU when gelu is set), rows of out ldo floats
 * apart and of inp ldi (OC and C but for acts.ld_fc).  map is the map's
 * index in the model's [L*4] copies, or -1 for a training forward, which uses none:
 * through its int8 copy when there is one (the residual and GELU then as
 * passes), else its packed copy, else linear; these three do the
 * residual and GELU on each tile after the product.
 */
static void proj(struct mtl_bert *m, linear_fn *linear, int map, float *out,
		 int64_t ldo, const float *inp, int64_t ldi, const float *w,
		 const float *b, const float *res, int gelu, int N, int C,
		 int OC, int nt)
{
	const struct mtl_q8_linear *q = map >= 0 && m->q8 ? m->q8[map] : NULL;

	if (!q && map >= 0 && m->packed) {
		mtl_linear_forward_packed(out, ldo, inp, ldi, m->packed[map], b,
					  res, gelu, N, C, OC, nt);
		return;
	}
	MTL_ASSERT(ldo == OC && ldi == C); /* padded rows: packed weights only */
	if (!q) {
		linear(out, inp, w, b, res, gelu, N, C, OC, nt);
		return;
	}
	mtl_q8_linear_forward(out, inp, q, b, N, &m->q8buf, nt);
	if (res)
		mtl_residual_forward(out, out, res, (int64_t)N * OC, nt);
	if (gelu)
		mtl_gelu_forward(out, out, (int64_t)N * OC, nt);
}

/*
 * BERT's output sublayer (BertSelfOutput after attention, BertOutput after
 * the FFN): ln_in[N,H] = inp[N,C] w[H,C]^T + b, then out = LN(dropout(ln_in)
 * + x) with lnw, lnb (ln_residual_forward: mean, rstd and the sum kept).
 * Without dropout the residual x is added in the product's epilogue.
 */
static void output_forward(struct mtl_bert *m, linear_fn *linear, int map,
			   float *out, float *mean,
			   float *rstd, float *ln_in, const float *inp,
			   int64_t ldi, const float *x, const float *w, const float *b,
			   const float *lnw, const float *lnb,
			   const uint8_t *keep, float p, int N, int C)
{
	int H = m->cfg.hidden;

	if (keep) {
		proj(m, linear, map, ln_in, H, inp, ldi, w, b, NULL, 0, N, C, H,
		     m->threads);
		ln_residual_forward(out, mean, rstd, ln_in, x, lnw, lnb, keep, p,
				    N, H, m->cfg.ln_eps, m->threads);
		return;
	}
	/* ln_in = (inp w^T + b) + x, the sum ln_residual_forward makes */
	proj(m, linear, map, ln_in, H, inp, ldi, w, b, x, 0, N, C, H,
	     m->threads);
	mtl_layernorm_forward(out, mean, rstd, ln_in, lnw, lnb, N, H,
			      m->cfg.ln_eps, m->threads);
}

/*
 * Layer l of the forward, from its input (hidden state l; the shared
 * slot in inference) into y.  Its activations go to layer l's slots in a
 * training forward, and to the one shared slot in inference and in a
 * training forward with recompute set, whose backward runs this again
 * for each layer (y then scratch): the same calls on the same inputs and
 * keep-masks, so the same bits.
 */
static void layer_forward(struct mtl_bert *m, int l, float *y)
{
	const struct mtl_bert_params *p = &m->p;
	struct mtl_bert_acts *a = &m->acts;
	linear_fn *linear = linear_of(m);
	int train = a->train;
	int H = m->cfg.hidden, I = m->cfg.intermediate, NH = m->cfg.heads;
	int B = a->B, T = a->T, BT = a->rows, nt = m->threads;
	float p_hidden = a->p_hidden;
	/* layer l's slots in train mode, the shared ones otherwise */
	size_t s = (size_t)l * a->ls;
	const float *x = a->hidden + (size_t)l * a->hs;
	float *qkv = a->qkv + s;
	float *ctx = a->ctx + s, *ln1_in = a->ln1_in + s;
	float *fc = a->fc + s, *ln2_in = a->ln2_in + s;
	/* one layer's: backward recomputes them */
	float *ln1_out = a->ln1_out, *fc_gelu = a->fc_gelu;

	/* qkv [BT,3H]: one gemm for query, key and value */
	proj(m, linear, train ? -1 : 4 * l, qkv, 3 * H, x, H,
	     p->qkvw + (size_t)l * 3 * H * H, p->qkvb + (size_t)l * 3 * H,
	     NULL, 0, BT, H, 3 * H, nt);
	if (train)
		mtl_attention_forward_train(ctx, a->scratch, qkv, a->mask_add,
					    a->p_attn, a->att_seed,
					    (uint64_t)l * B * NH * T * T, B, T,
					    H, NH, nt);
	else /* every query row, padded or ragged */
		mtl_attention_forward_rows(ctx, a->att, qkv, a->mask_add, a->off,
					   a->len, B, T, T, H, NH, nt);
	/* ln1_out = LN1(dropout(ctx Wo^T + bo) + x), the sum in ln1_in */
	output_forward(m, linear, train ? -1 : 4 * l + 1, ln1_out,
		       a->ln1_mean + s, a->ln1_rstd + s, ln1_in, ctx, H, x,
		       p->attprojw + (size_t)l * H * H, p->attprojb + (size_t)l * H,
		       p->ln1w + (size_t)l * H, p->ln1b + (size_t)l * H,
		       a->proj_drop ? a->proj_drop + (size_t)l * BT * H : NULL,
		       p_hidden, BT, H);
	/* fc_gelu = GELU(ln1_out W1^T + b1): training keeps the GELU input
	 * fc; inference runs the GELU in the product's epilogue, in place
	 * (fc_gelu is fc) */
	proj(m, linear, train ? -1 : 4 * l + 2, fc, a->ld_fc, ln1_out, H,
	     p->fcw + (size_t)l * I * H, p->fcb + (size_t)l * I, NULL, !train,
	     BT, H, I, nt);
	if (train)
		mtl_gelu_forward(fc_gelu, fc, (int64_t)BT * I, nt);
	/* y = LN2(dropout(fc_gelu W2^T + b2) + ln1_out), the sum in ln2_in */
	output_forward(m, linear, train ? -1 : 4 * l + 3, y, a->ln2_mean + s,
		       a->ln2_rstd + s, ln2_in, fc_gelu, a->ld_fc, ln1_out,
		       p->fcprojw + (size_t)l * H * I, p->fcprojb + (size_t)l * H,
		       p->ln2w + (size_t)l * H, p->ln2b + (size_t)l * H,
		       a->ffn_drop ? a->ffn_drop + (size_t)l * BT * H : NULL,
		       p_hidden, BT, I);
}

/*
 * The last layer of an inference forward for CLS pooling: only row 0 of
 * each sequence, the one the pooling reads.  Every row's keys and values
 * are still needed, so the query/key/value product covers every row; the
 * attention runs for query row 0 alone, and the output projection, both
 * LayerNorms and the FFN for B rows instead of B*T (for bge-small's
 * batches of about 30 tokens, three quarters of the layer's work).  Each
 * of those rows gets the whole layer's bits: a product's row, a
 * LayerNorm's row and an attention query's lane do not depend on the
 * rows beside them.  Row b*T of the hidden state becomes the layer's
 * output; its other rows keep the layer's input.
 */
static void layer_forward_cls(struct mtl_bert *m, int l)
{
	const struct mtl_bert_params *p = &m->p;
	struct mtl_bert_acts *a = &m->acts;
	linear_fn *linear = linear_of(m);
	int H = m->cfg.hidden, I = m->cfg.intermediate, NH = m->cfg.heads;
	int B = a->B, T = a->T, nt = m->threads;
	size_t sz = sizeof(float) * (size_t)H;
	float *x = a->hidden, *qkv = a->qkv, *ctx = a->ctx;
	/* B-row buffers in slots free by then (qkv after the attention,
	 * ln1_in and ln2_in alias) */
	float *xc = a->qkv, *yc = a->qkv, *ln1_out = a->ln1_out;
#define ROW0(b) ((size_t)(a->off ? a->off[b] : (b) * T) * H)

	proj(m, linear, 4 * l, qkv, 3 * H, x, H, p->qkvw + (size_t)l * 3 * H * H,
	     p->qkvb + (size_t)l * 3 * H, NULL, 0, a->rows, H, 3 * H, nt);
	mtl_attention_forward_rows(ctx, a->att, qkv, a->mask_add, a->off,
				   a->len, B, T, 1, H, NH, nt);
	/* rows ROW0(b) to rows b, in place: ascending b reads row
	 * ROW0(b) >= b before a later b writes over it */
	for (int b = 1; b < B; b++)
		memcpy(ctx + (size_t)b * H, ctx + ROW0(b), sz);
	for (int b = 0; b < B; b++)
		memcpy(xc + (size_t)b * H, x + ROW0(b), sz);
	output_forward(m, linear, 4 * l + 1, ln1_out, a->ln1_mean, a->ln1_rstd,
		       a->ln1_in, ctx, H, xc, p->attprojw + (size_t)l * H * H,
		       p->attprojb + (size_t)l * H, p->ln1w + (size_t)l * H,
		       p->ln1b + (size_t)l * H, NULL, 0, B, H);
	proj(m, linear, 4 * l + 2, a->fc, a->ld_fc, ln1_out, H,
	     p->fcw + (size_t)l * I * H,
	     p->fcb + (size_t)l * I, NULL, 1, B, H, I, nt);
	output_forward(m, linear, 4 * l + 3, yc, a->ln2_mean, a->ln2_rstd,
		       a->ln2_in, a->fc, a->ld_fc, ln1_out,
		       p->fcprojw + (size_t)l * H * I,
		       p->fcprojb + (size_t)l * H, p->ln2w + (size_t)l * H,
		       p->ln2b + (size_t)l * H, NULL, 0, B, I);
	for (int b = 0; b < B; b++)
		memcpy(x + ROW0(b), yc + (size_t)b * H, sz);
#undef ROW0
}

/*
 * An embedding forward's ragged layout (acts.off, acts.len, acts.rows)
 * when mask pads the batch: every row real tokens first, then padding,
 * at least one real token.  Otherwise (no padding, a mask of another
 * shape, or the unfused attention, which needs the padded layout) the
 * padded layout stays.
 */
static int plan_ragged(struct mtl_bert *m, const int32_t *mask,
		       struct mtl_err *err)
{
	struct mtl_bert_acts *a = &m->acts;
	int B = a->B, T = a->T, n = 0;

	if (!mask || mtl_attn_default() == MTL_ATTN_UNFUSED)
		return 0;
	if (B > m->rag_cap) {
		int32_t *r = realloc(m->rag, sizeof(int32_t) * 2 * (size_t)B);

		if (!r)
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		m->rag = r;
		m->rag_cap = B;
	}
	for (int b = 0; b < B; b++) {
		const int32_t *mb = mask + (size_t)b * T;
		int len = 0;

		while (len < T && mb[len])
			len++;
		for (int t = len; t < T; t++)
			if (mb[t])
				return 0;
		if (len == 0)
			return 0;
		m->rag[b] = n;
		m->rag[B + b] = len;
		n += len;
	}
	if (n == B * T)
		return 0;
	a->off = m->rag;
	a->len = m->rag + B;
	a->rows = n;
	return 0;
}

/* The forward pass; with train, dropout p_hidden / p_attn (may be 0). */
static int forward(struct mtl_bert *m, const int32_t *ids,
		   const int32_t *types, const int32_t *mask, int B, int T,
		   int train, float p_hidden, float p_attn,
		   struct mtl_rng *rng, int cls_only, int ragged,
		   struct mtl_err *err)
{
	const struct mtl_bert_params *p = &m->p;
	struct mtl_bert_acts *a = &m->acts;
	int H = m->cfg.hidden, I = m->cfg.intermediate;
	int L = m->cfg.layers, nt = m->threads, BT;
	float eps = m->cfg.ln_eps;
	size_t need;
	int rc, drop;

	if ((rc = check_inputs(m, ids, types, B, T, err)))
		return rc;
	if (train && m->base)
		return mtl_err_set(err, MTL_ERR_ARG, "a view runs inference only");
	if (train && m->packed_here)
		return mtl_err_set(err, MTL_ERR_ARG,
				   "the weights are packed for inference: "
				   "training needs mtl_bert_set_packed(m, 0) first");
	train = !!train;
	BT = B * T;
	need = plan(m, NULL, B, T, train, nt);
	if (need > m->arena_len) {
		/*
		 * Half as large again at least: length-sorted batches grow a
		 * little at a time, and every new block's pages are faulted
		 * in (and zeroed) anew.  Pages past need stay untouched, so
		 * they cost address space, not memory.
		 */
		size_t more = m->arena_len + m->arena_len / 2;
		float *n = more > need ? block_alloc(more * sizeof(float)) : NULL;

		if (n)
			need = more;
		else
			n = block_alloc(need * sizeof(float));
		if (!n)
			return mtl_err_set(err, MTL_ERR_NOMEM,
					   "out of memory for %zu activations", need);
		free(m->arena);
		m->arena = n;
		m->arena_len = need;
	}
	plan(m, m->arena, B, T, train, nt);
	if (!train && m->q8 && (rc = mtl_q8_buf_reserve(&m->q8buf, BT, H > I ? H : I, err)))
		return rc;
	a->p_hidden = a->p_attn = 0;
	a->ids = a->types = NULL;
	a->emb_drop = a->proj_drop = a->ffn_drop = NULL;
	a->att_seed = 0;
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
		/* every mask drawn up front, in a fixed order; the attention
		 * masks (T*T a head) are drawn where they are used, from a
		 * counter-based stream, so backward can draw them again */
		int64_t BTH = (int64_t)BT * H;

		mtl_dropout_mask(a->emb_drop, BTH, p_hidden, rng);
		if (p_attn > 0)
			a->att_seed = mtl_rng_u64(rng);
		mtl_dropout_mask(a->proj_drop, L * BTH, p_hidden, rng);
		mtl_dropout_mask(a->ffn_drop, L * BTH, p_hidden, rng);
	}

	if (ragged && !train && (rc = plan_ragged(m, mask, err)))
		return rc;
	for (int i = 0; i < BT; i++)
		a->mask_add[i] = mask && !mask[i] && !a->off ? -FLT_MAX : 0.0f;
	mtl_embed_forward(a->emb_in, ids, types, p->wte, p->wpe, p->wtt, B, T, H);
	/* ragged: each sequence's real rows moved up to its offset, in
	 * order (a row moves down, never onto one not yet moved) */
	for (int b = 1; a->off && b < B; b++)
		memmove(a->emb_in + (size_t)a->off[b] * H,
			a->emb_in + (size_t)b * T * H,
			sizeof(float) * (size_t)a->len[b] * H);
	mtl_layernorm_forward(a->hidden, a->emb_mean, a->emb_rstd, a->emb_in,
			      p->emb_lnw, p->emb_lnb, a->rows, H, eps, nt);
	if (drop)
		mtl_dropout_forward(a->hidden, a->hidden, a->emb_drop, p_hidden,
				    (int64_t)BT * H);

	for (int l = 0; l < L; l++)
		if (cls_only && !train && T > 1 && l == L - 1)
			layer_forward_cls(m, l);
		else
			layer_forward(m, l, a->hidden + (size_t)(l + 1) * a->hs);
	return 0;
}

int mtl_bert_forward(struct mtl_bert *m, const int32_t *ids,
		     const int32_t *types, const int32_t *mask, int B, int T,
		     int train, struct mtl_err *err)
{
	return forward(m, ids, types, mask, B, T, train, 0, 0, NULL, 0, 0, err);
}

int mtl_bert_forward_train(struct mtl_bert *m, const int32_t *ids,
			   const int32_t *types, const int32_t *mask, int B,
			   int T, float p_hidden, float p_attn,
			   struct mtl_rng *rng, struct mtl_err *err)
{
	return forward(m, ids, types, mask, B, T, 1, p_hidden, p_attn, rng, 0,
		       0, err);
}

/* ---- backward ---- */

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
	struct mtl_bert_params g, gs;
	const struct mtl_bert_params *gl;
	size_t gn = mtl_bert_layer_carve(&gs, NULL, c);
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

	MTL_ASSERT(a->train && !m->packed_here);
	MTL_ASSERT(lo >= 0 && lo <= c->layers && (!embeddings || lo == 0));
	MTL_ASSERT(!(m->layer_grad && a->grad_slots));
	if (lo == c->layers && !embeddings)
		return 0;
	mtl_bert_params_carve(&g, grad, c);
	/* each layer's gradient into its own place in grad, or all into
	 * the one layer of m->layer_grad, or each over the slot above its
	 * own (gs, below) */
	gl = m->layer_grad ? m->layer_grad : a->grad_slots ? &gs : &g;
	memcpy(d_res, dlast, sizeof(float) * (size_t)BTH);
	for (int l = c->layers - 1; l >= lo; l--) {
		/* the layer's slots: its own, or the one recompute fills */
		size_t s = (size_t)l * a->ls;
		int64_t gi = m->layer_grad || a->grad_slots ? 0 : l;
		const float *x = a->hidden + (size_t)l * a->hs;
		const float *qkv = a->qkv + s;
		const float *ctx = a->ctx + s, *ln1_in = a->ln1_in + s;
		const float *ln2_in = a->ln2_in + s;
		const float *fc = a->fc + s;

		/* the slot above, done with: the layer's gradient from zero */
		if (a->grad_slots) {
			float *blk = mtl_bert_grad_slot(m, l);

			mtl_zero(blk, (int64_t)gn, nt);
			mtl_bert_layer_carve(&gs, blk, c);
		}

		/* the layer's activations again, its output into scratch (d_a:
		 * ln_residual_backward clears it); this leaves its GELU and
		 * first LayerNorm outputs too */
		if (a->recompute)
			layer_forward(m, l, d_a);

		/* out = LN2(dropout(fcproj) + ln1_out): d_b = d fcproj, d_res
		 * becomes d ln1_out (its residual share) */
		ln_residual_backward(d_res, d_b, d_a, gl->ln2w + gi * H, gl->ln2b + gi * H,
				     ln2_in, p->ln2w + l * H, a->ln2_mean + s,
				     a->ln2_rstd + s,
				     drop ? a->ffn_drop + l * BTH : NULL, ph,
				     (int)BT, H, nt);
		/* fcproj = gelu(fc) W2^T + b2; the GELU output was not kept */
		if (!a->recompute)
			mtl_gelu_forward(a->fc_gelu, fc, BT * I, nt);
		mtl_zero(a->d_fcg, BT * I, nt);
		linear_backward(a->d_fcg, gl->fcprojw + gi * H * I,
				    gl->fcprojb + gi * H, d_b, a->fc_gelu,
				    p->fcprojw + (int64_t)l * H * I, (int)BT, I,
				    H, nt);
		mtl_zero(a->d_fc, BT * I, nt);
		mtl_gelu_backward(a->d_fc, fc, a->d_fcg, BT * I, nt);
		/* fc = ln1_out W1^T + b1: adds into d ln1_out; ln1_out was not
		 * kept, its LayerNorm statistics were */
		if (!a->recompute)
			mtl_layernorm_apply(a->ln1_out, ln1_in, p->ln1w + l * H,
					    p->ln1b + l * H, a->ln1_mean + s,
					    a->ln1_rstd + s, (int)BT, H, nt);
		linear_backward(d_res, gl->fcw + gi * I * H,
				    gl->fcb + gi * I, a->d_fc, a->ln1_out,
				    p->fcw + (int64_t)l * I * H, (int)BT, H, I,
				    nt);
		/* ln1_out = LN1(dropout(attproj) + x): d_b = d attproj,
		 * d_res becomes d x */
		ln_residual_backward(d_res, d_b, d_a, gl->ln1w + gi * H, gl->ln1b + gi * H,
				     ln1_in, p->ln1w + l * H, a->ln1_mean + s,
				     a->ln1_rstd + s,
				     drop ? a->proj_drop + l * BTH : NULL, ph,
				     (int)BT, H, nt);
		/* attproj = ctx Wo^T + bo: d_a = d ctx */
		mtl_zero(d_a, BTH, nt);
		linear_backward(d_a, gl->attprojw + gi * H * H,
				    gl->attprojb + gi * H, d_b, ctx,
				    p->attprojw + (int64_t)l * H * H, (int)BT, H,
				    H, nt);
		mtl_zero(a->d_qkv, BTH * 3, nt);
		/* recomputes the probabilities and their masks */
		mtl_attention_backward(a->d_qkv, a->scratch, d_a, qkv,
				       a->mask_add, pa, a->att_seed,
				       (uint64_t)(l * att), B, T, H, NH, nt);
		/* qkv = x Wqkv^T + bqkv: adds into d x */
		linear_backward(d_res, gl->qkvw + gi * 3 * H * H,
				    gl->qkvb + gi * 3 * H, a->d_qkv, x,
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
	if (m->wte_rows)
		for (int64_t i = 0; i < BT; i++)
			if (a->ids[i] != c->pad_id)
				m->wte_rows[a->ids[i]] = 1;
	if (m->grad_ready)
		m->grad_ready(m->grad_ready_arg, -1);
	return c->layers;
}

float *mtl_bert_grad_slot(const struct mtl_bert *m, int l)
{
	const struct mtl_bert_acts *a = &m->acts;

	MTL_ASSERT(a->grad_slots && l >= 0 && l < m->cfg.layers);
	return a->hidden + (size_t)(l + 1) * a->hs;
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
	return a->hidden + (size_t)l * a->hs;
}

int mtl_bert_attn_probs(const struct mtl_bert *m, int l, float *out)
{
	const struct mtl_bert_acts *a = &m->acts;
	const struct mtl_bert_config *c = &m->cfg;

	if (!a->qkv || !a->train || a->recompute || l < 0 || l >= c->layers)
		return -1;
	mtl_attention_probs(out, a->qkv + (size_t)l * a->ls,
			    a->mask_add, a->B, a->T, c->hidden, c->heads,
			    m->threads);
	return 0;
}

int mtl_bert_ffn_gelu(const struct mtl_bert *m, int l, float *out)
{
	const struct mtl_bert_acts *a = &m->acts;
	int64_t n = (int64_t)a->B * a->T * m->cfg.intermediate;

	if (!a->fc || !a->train || a->recompute || l < 0 ||
	    l >= m->cfg.layers)
		return -1;
	mtl_gelu_forward(out, a->fc + (size_t)l * a->ls, n, m->threads);
	return 0;
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

/* The last hidden state of a ragged forward back in the padded layout,
 * padding rows zero: sequences from the last, each moving up to
 * b*T >= off[b] over rows already moved. */
static void unragged(struct mtl_bert *m)
{
	struct mtl_bert_acts *a = &m->acts;
	size_t H = (size_t)m->cfg.hidden, T = (size_t)a->T;

	for (int b = a->B - 1; a->off && b >= 0; b--) {
		float *dst = a->hidden + (size_t)b * T * H;

		memmove(dst, a->hidden + (size_t)a->off[b] * H,
			sizeof(float) * (size_t)a->len[b] * H);
		memset(dst + (size_t)a->len[b] * H, 0,
		       sizeof(float) * (T - (size_t)a->len[b]) * H);
	}
	a->rows = a->B * a->T;
	a->off = a->len = NULL;
}

/* mtl_bert_embed on m's own threads, sharing every product. */
static int embed_one(struct mtl_bert *m, const struct mtl_bert_pooling *pool,
		     float *out, const int32_t *ids, const int32_t *types,
		     const int32_t *mask, int B, int T, struct mtl_err *err)
{
	/* the real tokens alone (ragged), and with CLS pooling, which reads
	 * row 0 of each sequence, the last layer computes no other row
	 * (layer_forward_cls) */
	int rc = forward(m, ids, types, mask, B, T, 0, 0, 0, NULL,
			 pool->mode == MTL_POOL_CLS, 1, err);

	if (rc)
		return rc;
	unragged(m);
	mtl_pool_forward(out, mtl_bert_last_hidden(m), mask, B, T,
			 m->cfg.hidden, pool->mode);
	if (pool->normalize)
		mtl_l2norm_forward(out, NULL, out, B, m->cfg.hidden);
	return 0;
}

/* mtl_bert_forward_real on m's own threads, sharing every product. */
static int forward_real_one(struct mtl_bert *m, const int32_t *ids,
			    const int32_t *types, const int32_t *mask, int B,
			    int T, struct mtl_err *err)
{
	int rc = forward(m, ids, types, mask, B, T, 0, 0, 0, NULL, 0, 1, err);

	if (rc == 0)
		unragged(m);
	return rc;
}

/*
 * An inference batch in parts side by side (mtl_bert_embed, and
 * mtl_bert_forward_real for predictions): part p is sequences
 * cut[p] .. cut[p+1]-1, run by whichever thread takes it, on that
 * thread's view (mtl_par_for's slot).  One part a thread, more (up to
 * four) while each keeps PART_TOKENS: a thread that another process
 * keeps off its core then leaves more of them to the others,
 * but smaller parts read the weights once more each, for fewer rows
 * (bge-small at 32x32 in 8 parts: 3-7% slower than in 2).
 */
#define PART_TOKENS 512
/* Calls that share every product after parts ran uneven (see there). */
#define PARTS_OFF_CALLS 16

struct parts_job {
	struct mtl_bert *m;
	const struct mtl_bert_pooling *pool; /* NULL: the last hidden state */
	float *out;   /* [B,H] embeddings, or [B,T,H] last hidden state */
	const int32_t *ids, *types, *mask;
	int T, *cut, *order, *rc;
	struct mtl_err *err;
	double *end;  /* [nt] when each thread finished its last part */
};

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void run_parts(void *arg, int64_t lo, int64_t hi, int slot)
{
	const struct parts_job *j = arg;
	struct mtl_bert *v = j->m->views[slot];
	size_t T = (size_t)j->T, H = (size_t)j->m->cfg.hidden;

	for (int64_t i = lo; i < hi; i++) {
		int p = j->order[i], n = j->cut[p + 1] - j->cut[p];
		size_t b = (size_t)j->cut[p];
		const int32_t *ids = j->ids + b * T;
		const int32_t *types = j->types ? j->types + b * T : NULL;
		const int32_t *mask = j->mask ? j->mask + b * T : NULL;

		if (j->pool)
			j->rc[p] = embed_one(v, j->pool, j->out + b * H, ids,
					     types, mask, n, j->T, &j->err[p]);
		else if (!(j->rc[p] = forward_real_one(v, ids, types, mask, n,
							j->T, &j->err[p])))
			memcpy(j->out + b * T * H, mtl_bert_last_hidden(v),
			       sizeof(float) * n * T * H);
	}
	j->end[slot] = now();
}

/*
 * Cuts B sequences into np parts of about equal work, cut[0..np], and
 * orders the parts most work first, order[0..np): a sequence of n real
 * tokens costs about n (6H + n) (its products, 24 H^2 flops a token and
 * layer, and its attention, 4 n H); each cut goes where the work before
 * it comes closest to its share.  Returns whether nt threads, each
 * taking the next part in that order when it is free, would all finish
 * within a fifth of an equal share (else the threads had better share
 * every product).
 */
static int parts_cut(int *cut, int *order, const int32_t *mask, int B,
		     int T, int H, int np, int nt)
{
	double *cost = malloc(sizeof(double) * (size_t)(B + np + nt));
	double *part = cost + B, *load = part + np, total = 0, done = 0, most = 0;
	int b = 0;

	if (!cost)
		return 0;
	for (int s = 0; s < B; s++) {
		double n = 0;

		for (int t = 0; t < T; t++)
			n += !mask || mask[(size_t)s * T + t];
		cost[s] = n * (6.0 * H + n);
		total += cost[s];
	}
	cut[0] = 0;
	for (int p = 0; p < np; p++) {
		double start = done, goal = total * (p + 1) / np;

		/* one sequence at least, and one left for each part after */
		do
			done += cost[b++];
		while (b < B - (np - 1 - p) &&
		       (p == np - 1 || done + cost[b] / 2 <= goal));
		cut[p + 1] = b;
		part[p] = done - start;
		/* insertion: most work first, ties in batch order */
		order[p] = p;
		for (int q = p; q > 0 && part[order[q - 1]] < part[p]; q--)
			order[q] = order[q - 1], order[q - 1] = p;
	}
	for (int t = 0; t < nt; t++)
		load[t] = 0;
	for (int p = 0; p < np; p++) {
		int t = 0;

		for (int u = 1; u < nt; u++)
			t = load[u] < load[t] ? u : t;
		load[t] += part[order[p]];
		most = load[t] > most ? load[t] : most;
	}
	free(cost);
	return most <= 1.2 * total / nt;
}

int mtl_bert_views(struct mtl_bert *m, int n, struct mtl_err *err)
{
	MTL_ASSERT(!m->base);
	if (m->n_views < n) {
		struct mtl_bert **v = realloc(m->views, sizeof(*v) * (size_t)n);

		if (!v)
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		m->views = v;
		for (; m->n_views < n; m->n_views++)
			if (mtl_bert_view_new(&v[m->n_views], m, 1, err))
				return MTL_ERR_NOMEM;
	}
	/* what they borrow as it is now: packing or int8 may have changed
	 * since they were made */
	for (int i = 0; i < m->n_views; i++)
		view_borrow(m->views[i], m);
	return 0;
}

/*
 * Runs an inference batch in parts side by side when it may (see
 * above): with pool, its embeddings into out[B,H]; else its last hidden
 * state into m->parts_hidden [B,T,H].  Returns 1 when it did, or when
 * the batch is bad (*rc its status; the message counts the whole
 * batch's rows, not a part's), 0 when the caller must run it whole.
 */
static int in_parts(struct mtl_bert *m, const struct mtl_bert_pooling *pool,
		    float *out, const int32_t *ids, const int32_t *types,
		    const int32_t *mask, int B, int T, int *rc,
		    struct mtl_err *err)
{
	int nt = m->threads, np, ran = 0;
	long long tokens = 0;
	int *cut;
	struct mtl_err *errs;
	double *end;
	size_t n;

	/* not unless asked, nor on a view (one thread), on BLIS (which
	 * threads its own products), just after a thread was held up
	 * (parts_off), with fewer sequences than threads or when they do
	 * not split evenly (parts_cut) */
	if (m->parts_off > 0)
		m->parts_off--;
	if (!m->parts || m->base || nt <= 1 || B < nt ||
	    mtl_gemm_default() == MTL_GEMM_BLIS || m->parts_off)
		return 0;
	if ((*rc = check_inputs(m, ids, types, B, T, err)))
		return 1;
	/* the last hidden state is a buffer of its own, which the parts
	 * fill */
	n = (size_t)B * T * m->cfg.hidden;
	if (!pool && n > m->parts_len) {
		float *h = realloc(m->parts_hidden, sizeof(float) * n);

		if (!h)
			return 0;
		m->parts_hidden = h, m->parts_len = n;
	}
	if (!pool)
		out = m->parts_hidden;
	for (int i = 0; i < B * T; i++)
		tokens += !mask || mask[i];
	np = (int)(tokens / PART_TOKENS);
	np = np < nt ? nt : np > 4 * nt ? 4 * nt : np > B ? B : np;
	cut = malloc(sizeof(int) * (size_t)(3 * np + 1));
	errs = calloc((size_t)np, sizeof(*errs));
	end = malloc(sizeof(double) * (size_t)nt);
	if (cut && errs && end &&
	    parts_cut(cut, cut + np + 1, mask, B, T, m->cfg.hidden, np, nt) &&
	    !mtl_bert_views(m, nt, NULL)) {
		double t0 = now(), first, t1;
		struct parts_job j = { m, pool, out, ids, types, mask, T, cut,
				       cut + np + 1, cut + 2 * np + 1, errs, end };

		for (int t = 0; t < nt; t++)
			end[t] = t0;
		mtl_par_for(nt, np, 1, run_parts, &j);
		/* a thread that waited a quarter of the time for the others
		 * (or never ran) shares a core with another process: share
		 * every product for a while, where the others take the work
		 * it does not get to */
		first = end[0];
		for (int t = 1; t < nt; t++)
			first = end[t] < first ? end[t] : first;
		t1 = now();
		if (t1 - first > 0.25 * (t1 - t0))
			m->parts_off = PARTS_OFF_CALLS;
		*rc = 0;
		for (int p = 0; p < np && !*rc; p++)
			if ((*rc = j.rc[p]) && err)
				*err = errs[p];
		ran = 1;
	}
	free(cut), free(errs), free(end);
	return ran;
}

int mtl_bert_forward_real(struct mtl_bert *m, const int32_t *ids,
			  const int32_t *types, const int32_t *mask, int B,
			  int T, struct mtl_err *err)
{
	struct mtl_bert_acts *a = &m->acts;
	int rc;

	if (!in_parts(m, NULL, NULL, ids, types, mask, B, T, &rc, err))
		return forward_real_one(m, ids, types, mask, B, T, err);
	if (rc == 0) {
		a->hidden = m->parts_hidden;
		a->B = B, a->T = T, a->rows = B * T, a->train = 0;
		a->off = a->len = NULL;
	}
	return rc;
}

int mtl_bert_embed(struct mtl_bert *m, const struct mtl_bert_pooling *pool,
		   float *out, const int32_t *ids, const int32_t *types,
		   const int32_t *mask, int B, int T, struct mtl_err *err)
{
	int rc;

	if (in_parts(m, pool, out, ids, types, mask, B, T, &rc, err))
		return rc;
	return embed_one(m, pool, out, ids, types, mask, B, T, err);
}


