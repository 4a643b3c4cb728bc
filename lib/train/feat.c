/* feat.c - cached encoder outputs by example id; see feat.h. */
#include "feat.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	char *id;        /* msgpack encoding of the id */
	size_t id_len;
	int32_t len;
	float *hidden;   /* [len, H] */
};

struct mtl_feat {
	int H;
	struct entry *e; /* open addressing, cap a power of two */
	size_t n, cap;
	/* mtl_feat_step's buffers, grown */
	float **last;    /* [n_last] */
	size_t *last_cap;
	int n_last;
};

static uint64_t fnv(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ull;
	return h;
}

void mtl_feat_encoder_hash(const struct mtl_bert *m, char hex[17])
{
	const uint32_t *w = (const uint32_t *)m->params;
	uint64_t h = 0xcbf29ce484222325ull;

	MTL_ASSERT(!m->packed_here); /* the plain weights are hashed */
	for (size_t i = 0; i < m->n_params; i++)
		h = (h ^ w[i]) * 0x100000001b3ull;
	snprintf(hex, 17, "%016" PRIx64, h);
}

void mtl_feat_free(struct mtl_feat *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->cap; i++) {
		free(f->e[i].id);
		free(f->e[i].hidden);
	}
	free(f->e);
	for (int i = 0; i < f->n_last; i++)
		free(f->last[i]);
	free(f->last);
	free(f->last_cap);
	free(f);
}

static struct entry *slot(const struct mtl_feat *f, const char *id,
			  size_t len)
{
	size_t i = fnv(id, len) & (f->cap - 1);

	while (f->e[i].id && (f->e[i].id_len != len || memcmp(f->e[i].id, id, len)))
		i = (i + 1) & (f->cap - 1);
	return &f->e[i];
}

static int grow(struct mtl_feat *f)
{
	struct mtl_feat g = { .H = f->H, .cap = f->cap ? 2 * f->cap : 1024 };

	if (!(g.e = calloc(g.cap, sizeof(*g.e))))
		return -1;
	for (size_t i = 0; i < f->cap; i++)
		if (f->e[i].id)
			*slot(&g, f->e[i].id, f->e[i].id_len) = f->e[i];
	free(f->e);
	f->e = g.e;
	f->cap = g.cap;
	return 0;
}

static int add(struct mtl_feat *f, const msgpack_object *rec, long nrec,
	       const char *name, struct mtl_err *err)
{
	const msgpack_object *id = mtl_mp_get(rec, "id");
	const msgpack_object *hid = mtl_mp_get(rec, "hidden");
	struct entry *e, x = { 0 };
	int64_t len;

	if (!id || mtl_mp_as_int(mtl_mp_get(rec, "len"), &len) || len < 1 ||
	    len > (1 << 20) || mtl_mp_array_len(hid) != len * f->H)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "%s: record %ld: a features record needs an id, a len and len x %d hidden values",
				   name, nrec, f->H);
	if (2 * (f->n + 1) > f->cap && grow(f))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	x.len = (int32_t)len;
	if (mtl_mp_copy(id, &x.id, &x.id_len))
		x.id = NULL;
	x.hidden = malloc(sizeof(float) * (size_t)len * (size_t)f->H);
	if (!x.id || !x.hidden) {
		free(x.id);
		free(x.hidden);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	mtl_mp_as_f32s(hid, x.hidden, (long)len * f->H);
	e = slot(f, x.id, x.id_len);
	if (e->id) {
		free(x.id);
		free(x.hidden);
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "%s: record %ld: the id is there twice", name, nrec);
	}
	*e = x;
	f->n++;
	return 0;
}

int mtl_feat_load(struct mtl_feat **out, struct mtl_mp_reader *r,
		  const struct mtl_bert *m, struct mtl_err *err)
{
	const char *name = mtl_mp_reader_name(r);
	struct mtl_feat *f = calloc(1, sizeof(*f));
	const msgpack_object *enc;
	msgpack_object hdr, rec;
	char hex[17];
	int64_t dim;
	int rc;

	if (!f)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	f->H = m->cfg.hidden;
	if ((rc = mtl_mp_read_header(r, "features", &hdr, err)))
		goto fail;
	enc = mtl_mp_get(&hdr, "encoder");
	mtl_feat_encoder_hash(m, hex);
	if (mtl_mp_as_int(mtl_mp_get(&hdr, "dim"), &dim) || dim != f->H) {
		rc = mtl_err_set(err, MTL_ERR_FORMAT, "%s: features of width %" PRId64 ", the model's hidden size is %d",
				 name, dim, f->H);
		goto fail;
	}
	if (!enc || enc->type != MSGPACK_OBJECT_STR || enc->via.str.size != 16 ||
	    memcmp(enc->via.str.ptr, hex, 16)) {
		rc = mtl_err_set(err, MTL_ERR_FORMAT,
				 "%s: features of another encoder (its hash is not the model's %s)",
				 name, hex);
		goto fail;
	}
	while ((rc = mtl_mp_read(r, &rec, err)) > 0)
		if (mtl_mp_is_str(mtl_mp_get(&rec, "type"), "features") &&
		    (rc = add(f, &rec, mtl_mp_reader_record(r), name, err)))
			goto fail;
	if (rc < 0)
		goto fail;
	*out = f;
	return 0;
fail:
	mtl_feat_free(f);
	return rc;
}

int mtl_feat_batch(const struct mtl_feat *f, float *last,
		   const struct mtl_batch *b, struct mtl_err *err)
{
	size_t H = (size_t)f->H, T = (size_t)b->T;

	memset(last, 0, sizeof(float) * (size_t)b->B * T * H);
	for (int i = 0; i < b->B; i++) {
		const struct entry *e = NULL;

		if (b->example_ids && b->example_ids[i] && f->cap)
			e = slot(f, b->example_ids[i], b->example_id_len[i]);
		if (!e || !e->id)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "example %d of the batch has no features (an id the features stream lacks)",
					   i);
		if (e->len != b->lengths[i])
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "example %d of the batch has %d tokens, its features %d: another tokenization",
					   i, b->lengths[i], e->len);
		memcpy(last + (size_t)i * T * H, e->hidden,
		       sizeof(float) * (size_t)e->len * H);
	}
	return 0;
}

int mtl_feat_step(struct mtl_feat *f, const float *const **last,
		  const struct mtl_batch *b, int n, struct mtl_err *err)
{
	int rc;

	if (n > f->n_last) {
		float **l = realloc(f->last, (size_t)n * sizeof(*l));
		size_t *c;

		if (!l)
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		f->last = l;
		if (!(c = realloc(f->last_cap, (size_t)n * sizeof(*c))))
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		f->last_cap = c;
		for (; f->n_last < n; f->n_last++) {
			f->last[f->n_last] = NULL;
			f->last_cap[f->n_last] = 0;
		}
	}
	for (int i = 0; i < n; i++) {
		size_t need = (size_t)b[i].B * (size_t)b[i].T * (size_t)f->H;

		if (need > f->last_cap[i]) {
			free(f->last[i]);
			f->last_cap[i] = 0;
			if (!(f->last[i] = malloc(sizeof(float) * need)))
				return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
			f->last_cap[i] = need;
		}
		if ((rc = mtl_feat_batch(f, f->last[i], &b[i], err)))
			return rc;
	}
	*last = (const float *const *)f->last;
	return 0;
}

int mtl_feat_write_header(struct mtl_mp_writer *w, int argc, char **argv,
			  const struct mtl_model *m, const char *model_dir,
			  struct mtl_err *err)
{
	struct mtl_mp_map h;
	char hex[17];

	mtl_feat_encoder_hash(m->bert, hex);
	mtl_mp_map_begin(&h);
	mtl_mp_pack_str(mtl_mp_map_key(&h, "model"), model_dir);
	msgpack_pack_int(mtl_mp_map_key(&h, "dim"), m->bert->cfg.hidden);
	mtl_mp_pack_str(mtl_mp_map_key(&h, "encoder"), hex);
	if (m->has_vocab) {
		snprintf(hex, sizeof(hex), "%016" PRIx64, m->vocab_hash);
		mtl_mp_pack_str(mtl_mp_map_key(&h, "vocab_hash"), hex);
	}
	mtl_mp_map_end_header(&h, mtl_mp_pk(w), "features", "mtl-score", argc, argv);
	return mtl_mp_end(w, err);
}

int mtl_feat_write(struct mtl_mp_writer *w, const struct mtl_example *ex,
		   const float *hidden, int H, struct mtl_err *err)
{
	struct mtl_mp_map m;
	msgpack_packer *id;

	mtl_mp_map_begin(&m);
	mtl_mp_pack_str(mtl_mp_map_key(&m, "type"), "features");
	id = mtl_mp_map_key(&m, "id");
	if (ex->id)
		mtl_data_pack_raw(id, ex->id, ex->id_len);
	else
		msgpack_pack_nil(id);
	msgpack_pack_int(mtl_mp_map_key(&m, "len"), ex->len);
	mtl_mp_pack_f32s(mtl_mp_map_key(&m, "hidden"), hidden,
			 (size_t)ex->len * (size_t)H);
	mtl_mp_map_end(&m, mtl_mp_pk(w));
	return mtl_mp_end(w, err);
}
