/*
 * mp_write.c - msgpack streams: the writer (a file's or memory's), its
 * end record, and the packing helpers (strings, headers, float32 and int32
 * arrays, maps counted by code); see mp.h.
 */
#include "mp_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
struct mtl_mp_writer {
	FILE *f;        /* NULL: a memory writer */
	char *name;
	msgpack_sbuffer sbuf;
	msgpack_packer pk;
	char *kind;     /* from the header, for the end record */
	long records;   /* written, the header included */
	struct mp_tally tally;
	int finished;   /* the end record is written */
	size_t *ends;   /* memory writer: record i is sbuf[ends[i-1]..ends[i]) */
	size_t n_rec, cap_rec;
};

struct mtl_mp_writer *mtl_mp_writer_new(FILE *f, const char *name)
{
	struct mtl_mp_writer *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->f = f;
	w->name = strdup(name ? name : "<stdout>");
	if (!w->name) {
		free(w);
		return NULL;
	}
	msgpack_sbuffer_init(&w->sbuf);
	msgpack_packer_init(&w->pk, &w->sbuf, msgpack_sbuffer_write);
	return w;
}

void mtl_mp_writer_free(struct mtl_mp_writer *w)
{
	if (!w)
		return;
	msgpack_sbuffer_destroy(&w->sbuf);
	tally_release(&w->tally);
	free(w->kind);
	free(w->ends);
	free(w->name);
	free(w);
}

msgpack_packer *mtl_mp_pk(struct mtl_mp_writer *w)
{
	return &w->pk;
}

/* Writes and flushes the packed record.  0, or MTL_ERR_IO. */
static int flush_record(struct mtl_mp_writer *w, struct mtl_err *err)
{
	size_t n = w->sbuf.size;

	msgpack_sbuffer_clear(&w->sbuf);
	if (n && (fwrite(w->sbuf.data, 1, n, w->f) != n || fflush(w->f)))
		return mtl_err_set(err, MTL_ERR_IO, "write error on %s: %s",
				   w->name, strerror(errno));
	return 0;
}

/*
 * Keeps the packed record in a memory writer.  Not counted: its records
 * are counted once, by the writer they are copied to.  0, or MTL_ERR_NOMEM.
 */
static int keep_record(struct mtl_mp_writer *w, struct mtl_err *err)
{
	size_t n = w->sbuf.size;

	if (n == (w->n_rec ? w->ends[w->n_rec - 1] : 0))
		return 0;
	if (w->n_rec == w->cap_rec) {
		size_t cap = w->cap_rec ? 2 * w->cap_rec : 64;
		size_t *e = realloc(w->ends, cap * sizeof(*e));

		if (!e)
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		w->ends = e;
		w->cap_rec = cap;
	}
	w->ends[w->n_rec++] = n;
	return 0;
}

/* Tallies the packed record for the end record (the header: its kind). */
static int tally_written(struct mtl_mp_writer *w, struct mtl_err *err)
{
	const char *key = w->records ? "type" : "stream";
	const unsigned char *s;
	size_t len;

	if (map_str((const unsigned char *)w->sbuf.data, w->sbuf.size, key, &s, &len))
		return mtl_err_set(err, MTL_ERR_ARG, "%s: record %ld has no string \"%s\"",
				   w->name, w->records + 1, key);
	if (w->finished || (w->records && len == 3 && !memcmp(s, "end", 3)))
		return mtl_err_set(err, MTL_ERR_ARG,
				   "%s: a record after the end record, or a second one",
				   w->name);
	if (!w->records) {
		if (!(w->kind = strndup((const char *)s, len)))
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	} else {
		int rc = tally_add(&w->tally, (const char *)s, len, err);

		if (rc)
			return rc;
	}
	w->records++;
	return 0;
}

int mtl_mp_end(struct mtl_mp_writer *w, struct mtl_err *err)
{
	int rc;

	if (!w->f)
		return keep_record(w, err);
	rc = w->sbuf.size ? tally_written(w, err) : 0;
	if (rc) {
		msgpack_sbuffer_clear(&w->sbuf);
		return rc;
	}
	return flush_record(w, err);
}

int mtl_mp_finish(struct mtl_mp_writer *w, struct mtl_err *err)
{
	struct mtl_mp_map m;
	msgpack_packer *counts;

	if (!w->records || w->finished || w->sbuf.size)
		return mtl_err_set(err, MTL_ERR_ARG,
				   "%s: no header written, ended already, or a record half packed",
				   w->name);
	mtl_mp_map_begin(&m);
	mtl_mp_pack_str(mtl_mp_map_key(&m, "type"), "end");
	mtl_mp_pack_str(mtl_mp_map_key(&m, "stream"), w->kind);
	msgpack_pack_long(mtl_mp_map_key(&m, "records"), w->records);
	counts = mtl_mp_map_key(&m, "counts");
	msgpack_pack_map(counts, (size_t)w->tally.len);
	for (int i = 0; i < w->tally.len; i++) {
		msgpack_pack_str(counts, w->tally.c[i].len);
		msgpack_pack_str_body(counts, w->tally.c[i].type, w->tally.c[i].len);
		msgpack_pack_long(counts, w->tally.c[i].n);
	}
	mtl_mp_map_end(&m, &w->pk);
	w->finished = 1;
	return flush_record(w, err);
}

struct mtl_mp_writer *mtl_mp_writer_new_mem(void)
{
	return mtl_mp_writer_new(NULL, "memory");
}

size_t mtl_mp_writer_count(const struct mtl_mp_writer *w)
{
	return w->n_rec;
}

const char *mtl_mp_writer_record(const struct mtl_mp_writer *w, size_t i,
				 size_t *len)
{
	size_t start = i ? w->ends[i - 1] : 0;

	MTL_ASSERT(!w->f && i < w->n_rec);
	*len = w->ends[i] - start;
	return w->sbuf.data + start;
}

void mtl_mp_writer_clear(struct mtl_mp_writer *w)
{
	msgpack_sbuffer_clear(&w->sbuf);
	w->n_rec = 0;
}

void mtl_mp_pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

void mtl_mp_pack_header(msgpack_packer *pk, const char *kind,
			const char *program, int argc, char **argv,
			size_t n_extra)
{
	msgpack_pack_map(pk, 5 + n_extra);
	mtl_mp_pack_str(pk, "type");
	mtl_mp_pack_str(pk, "header");
	mtl_mp_pack_str(pk, "stream");
	mtl_mp_pack_str(pk, kind);
	mtl_mp_pack_str(pk, "version");
	msgpack_pack_array(pk, 2);
	msgpack_pack_int(pk, MTL_STREAM_MAJOR);
	msgpack_pack_int(pk, MTL_STREAM_MINOR);
	mtl_mp_pack_str(pk, "program");
	mtl_mp_pack_str(pk, program);
	mtl_mp_pack_str(pk, "args");
	msgpack_pack_array(pk, argc > 1 ? (size_t)argc - 1 : 0);
	for (int i = 1; i < argc; i++)
		mtl_mp_pack_str(pk, argv[i]);
}

void mtl_mp_pack_f32s(msgpack_packer *pk, const float *v, size_t n)
{
	unsigned char b[4 * 64];

	msgpack_pack_ext(pk, 4 * n, MTL_MP_EXT_F32);
	for (size_t i = 0; i < n; i += 64) {
		size_t m = n - i < 64 ? n - i : 64;
		for (size_t k = 0; k < m; k++) {
			uint32_t u;
			memcpy(&u, &v[i + k], 4);
			b[4 * k] = (unsigned char)u;
			b[4 * k + 1] = (unsigned char)(u >> 8);
			b[4 * k + 2] = (unsigned char)(u >> 16);
			b[4 * k + 3] = (unsigned char)(u >> 24);
		}
		msgpack_pack_ext_body(pk, b, 4 * m);
	}
}

void mtl_mp_pack_i32s(msgpack_packer *pk, const int32_t *v, size_t n)
{
	msgpack_pack_array(pk, n);
	for (size_t i = 0; i < n; i++)
		msgpack_pack_int32(pk, v[i]);
}

void mtl_mp_map_begin(struct mtl_mp_map *m)
{
	msgpack_sbuffer_init(&m->body);
	msgpack_packer_init(&m->pk, &m->body, msgpack_sbuffer_write);
	m->n = 0;
}

msgpack_packer *mtl_mp_map_key(struct mtl_mp_map *m, const char *k)
{
	m->n++;
	mtl_mp_pack_str(&m->pk, k);
	return &m->pk;
}

void mtl_mp_map_drop(struct mtl_mp_map *m)
{
	msgpack_sbuffer_destroy(&m->body);
	memset(m, 0, sizeof(*m));
}

void mtl_mp_map_end(struct mtl_mp_map *m, msgpack_packer *pk)
{
	msgpack_pack_map(pk, m->n);
	if (m->body.size)
		pk->callback(pk->data, m->body.data, m->body.size);
	mtl_mp_map_drop(m);
}

void mtl_mp_map_end_header(struct mtl_mp_map *m, msgpack_packer *pk,
			   const char *kind, const char *program, int argc,
			   char **argv)
{
	mtl_mp_pack_header(pk, kind, program, argc, argv, m->n);
	if (m->body.size)
		pk->callback(pk->data, m->body.data, m->body.size);
	mtl_mp_map_drop(m);
}
