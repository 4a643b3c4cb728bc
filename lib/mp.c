/* mp.c - msgpack streams: framing, validation, writing, JSON; see mp.h. */
#include "mp.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct mtl_mp_reader {
	FILE *f;
	char *name;
	char *buf;      /* bytes read, not yet consumed: buf[pos..len) */
	size_t pos, len, cap;
	int eof;
	long record;    /* number of the last record returned */
	msgpack_unpacked unp;
};

struct mtl_mp_writer {
	FILE *f;        /* NULL: a memory writer */
	char *name;
	msgpack_sbuffer sbuf;
	msgpack_packer pk;
	size_t *ends;   /* memory writer: record i is sbuf[ends[i-1]..ends[i]) */
	size_t n_rec, cap_rec;
};

struct mtl_mp_reader *mtl_mp_reader_new(FILE *f, const char *name)
{
	struct mtl_mp_reader *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->f = f;
	r->name = strdup(name ? name : "<stdin>");
	if (!r->name) {
		free(r);
		return NULL;
	}
	msgpack_unpacked_init(&r->unp);
	return r;
}

void mtl_mp_reader_free(struct mtl_mp_reader *r)
{
	if (!r)
		return;
	msgpack_unpacked_destroy(&r->unp);
	free(r->buf);
	free(r->name);
	free(r);
}

long mtl_mp_reader_record(const struct mtl_mp_reader *r)
{
	return r->record;
}

const char *mtl_mp_reader_name(const struct mtl_mp_reader *r)
{
	return r->name;
}

int mtl_mp_reader_fail(const struct mtl_mp_reader *r, struct mtl_err *err,
		       int code, const char *fmt, ...)
{
	char msg[sizeof(err->msg)];
	va_list ap;

	if (!err)
		return code;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return mtl_err_set(err, code, "%s: record %ld: %s", r->name, r->record,
			   msg);
}

/* Deepest nesting a record may have (msgpack-c decodes up to 32 levels). */
#define MP_MAX_DEPTH 31
/*
 * Memory a record may decode into: MP_DECODE_FACTOR times its bytes plus
 * MP_DECODE_SLACK.  msgpack-c gives every element a msgpack_object (24
 * bytes), so a record of one-byte elements (nils, small integers) would
 * otherwise take 24 times its size.
 */
#define MP_DECODE_FACTOR 4
#define MP_DECODE_SLACK ((size_t)64 << 20)

/*
 * Finds the extent of the first complete msgpack object in p[0..n) without
 * decoding it.  Returns 1 and *len when complete, 0 when more bytes are
 * needed, -1 on a byte that starts no msgpack object (its offset in *len),
 * -2 when the declared sizes exceed MTL_MP_MAX_RECORD, -3 when containers
 * nest deeper than MP_MAX_DEPTH.  When complete, *elems is the number of
 * elements (every value, map keys included).  Every element takes at least
 * one byte, so a corrupt count can only make us wait for bytes, never
 * allocate.
 */
static int mp_scan(const unsigned char *p, size_t n, size_t *len,
		   size_t *elems)
{
	uint64_t left[MP_MAX_DEPTH + 1]; /* elements still due at each level */
	int depth = 0;
	size_t i = 0;

	left[0] = 1;
	while (depth > 0 || left[0] > 0) {
		uint64_t count = 0, add = 0;
		size_t skip = 0, hdr = 0;
		unsigned char c;

		if (left[depth] == 0) {
			depth--;
			continue;
		}
		if (i >= n)
			return 0;
		c = p[i++];
		left[depth]--;
		(*elems)++;
		if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
			continue;
		if (c == 0xc1) {
			*len = i - 1;
			return -1;
		}
		if (c <= 0x8f)
			count = 2u * (c & 0x0f);
		else if (c <= 0x9f)
			count = c & 0x0f;
		else if (c <= 0xbf)
			skip = c & 0x1f;
		else if (c == 0xcc || c == 0xd0)
			skip = 1;
		else if (c == 0xcd || c == 0xd1 || c == 0xd4)
			skip = 2; /* fixext: a type byte and the data */
		else if (c == 0xd5)
			skip = 3;
		else if (c == 0xca || c == 0xce || c == 0xd2)
			skip = 4;
		else if (c == 0xd6)
			skip = 5;
		else if (c == 0xcb || c == 0xcf || c == 0xd3)
			skip = 8;
		else if (c == 0xd7)
			skip = 9;
		else if (c == 0xd8)
			skip = 17;
		else if (c == 0xc4 || c == 0xd9 || c == 0xc7)
			hdr = 1;
		else if (c == 0xc5 || c == 0xda || c == 0xc8 || c == 0xdc || c == 0xde)
			hdr = 2;
		else
			hdr = 4; /* c6 db c9 dd df */
		if (hdr) {
			if (n - i < hdr)
				return 0;
			for (size_t k = 0; k < hdr; k++)
				add = (add << 8) | p[i + k];
			i += hdr;
			if (c == 0xdc || c == 0xdd)
				count = add;
			else if (c == 0xde || c == 0xdf)
				count = 2 * add;
			else
				skip = (size_t)add + (c >= 0xc7 && c <= 0xc9);
		}
		if (count > MTL_MP_MAX_RECORD || skip > MTL_MP_MAX_RECORD)
			return -2;
		if (skip) {
			if (n - i < skip)
				return 0;
			i += skip;
		}
		if (count) {
			if (depth == MP_MAX_DEPTH)
				return -3;
			left[++depth] = count;
		}
	}
	*len = i;
	return 1;
}

/* Reads more input into the buffer.  Returns bytes read, 0 at EOF, <0. */
static long fill(struct mtl_mp_reader *r, struct mtl_err *err)
{
	size_t got;

	if (r->pos > 0 && r->pos == r->len)
		r->pos = r->len = 0;
	if (r->pos > r->cap / 2) {
		memmove(r->buf, r->buf + r->pos, r->len - r->pos);
		r->len -= r->pos;
		r->pos = 0;
	}
	if (r->cap - r->len < 65536) {
		size_t cap = r->cap ? r->cap * 2 : 65536;
		char *b;

		if (cap > MTL_MP_MAX_RECORD + 65536 && r->len - r->pos >= MTL_MP_MAX_RECORD)
			return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
						  "record larger than %zu bytes",
						  MTL_MP_MAX_RECORD);
		b = realloc(r->buf, cap);
		if (!b)
			return mtl_err_set(err, MTL_ERR_NOMEM, "%s: out of memory",
					   r->name);
		r->buf = b;
		r->cap = cap;
	}
	got = fread(r->buf + r->len, 1, r->cap - r->len, r->f);
	r->len += got;
	if (got == 0) {
		if (ferror(r->f))
			return mtl_err_set(err, MTL_ERR_IO, "%s: read error: %s",
					   r->name, strerror(errno));
		r->eof = 1;
	}
	return (long)got;
}

static int check_version(const msgpack_object *v, struct mtl_err *err)
{
	int64_t major = -1;

	if (v && v->type == MSGPACK_OBJECT_ARRAY && v->via.array.size >= 1)
		mtl_mp_as_int(&v->via.array.ptr[0], &major);
	if (major < 0)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "header has no \"version\" [major, minor]");
	if (major > MTL_STREAM_MAJOR)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "stream format version %lld is newer than this mtl reads (%d); upgrade mtl",
				   (long long)major, MTL_STREAM_MAJOR);
	return 0;
}

int mtl_mp_check_record(const msgpack_object *rec, int is_first,
			struct mtl_err *err)
{
	const msgpack_object *type;

	if (rec->type != MSGPACK_OBJECT_MAP)
		return mtl_err_set(err, MTL_ERR_FORMAT, "not a map");
	for (uint32_t i = 0; i < rec->via.map.size; i++)
		if (rec->via.map.ptr[i].key.type != MSGPACK_OBJECT_STR)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "map key %u is not a string", i);
	type = mtl_mp_get(rec, "type");
	if (!type || type->type != MSGPACK_OBJECT_STR)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "no string \"type\" in the record");
	if (!is_first) {
		if (mtl_mp_is_str(type, "header"))
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "a second header (streams cannot be concatenated)");
		return 0;
	}
	if (!mtl_mp_is_str(type, "header"))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "the first record is not a header (type \"%.*s\")",
				   (int)(type->via.str.size > 40 ? 40 : type->via.str.size),
				   type->via.str.ptr);
	type = mtl_mp_get(rec, "stream");
	if (!type || type->type != MSGPACK_OBJECT_STR || !type->via.str.size)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "header has no string \"stream\" naming the kind");
	return check_version(mtl_mp_get(rec, "version"), err);
}

int mtl_mp_read(struct mtl_mp_reader *r, msgpack_object *rec,
		struct mtl_err *err)
{
	size_t len = 0, off = 0, elems = 0;
	int s;

	for (;;) {
		long got;

		/* nothing buffered yet: r->buf may be NULL, and NULL + 0 is UB */
		elems = 0;
		s = r->pos < r->len ? mp_scan((const unsigned char *)r->buf + r->pos,
					      r->len - r->pos, &len, &elems) : 0;
		if (s != 0)
			break;
		if (r->eof) {
			if (r->len == r->pos)
				return 0;
			r->record++;
			return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
						  "truncated (input ends inside the record)");
		}
		got = fill(r, err);
		if (got < 0) {
			r->record++;
			return (int)got;
		}
	}
	r->record++;
	if (s == -1)
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "not msgpack (byte 0xc1 at offset %zu of the record)",
					  len);
	if (s == -2)
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "declared size larger than %zu bytes (corrupt input?)",
					  MTL_MP_MAX_RECORD);
	if (s == -3)
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "nested deeper than %d levels", MP_MAX_DEPTH);
	if (elems > (MP_DECODE_FACTOR * len + MP_DECODE_SLACK) / sizeof(msgpack_object))
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "%zu elements in %zu bytes would decode into more than %d times that plus %zu MiB",
					  elems, len, MP_DECODE_FACTOR, MP_DECODE_SLACK >> 20);
	switch (msgpack_unpack_next(&r->unp, r->buf + r->pos, len, &off)) {
	case MSGPACK_UNPACK_SUCCESS:
	case MSGPACK_UNPACK_EXTRA_BYTES:
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		return mtl_mp_reader_fail(r, err, MTL_ERR_NOMEM, "out of memory");
	default:
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "corrupt msgpack (or nested too deeply)");
	}
	r->pos += len;
	*rec = r->unp.data;
	{
		struct mtl_err e;
		if (mtl_mp_check_record(rec, r->record == 1, &e))
			return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT, "%s", e.msg);
	}
	return 1;
}

int mtl_mp_read_header(struct mtl_mp_reader *r, const char *kind,
		       msgpack_object *hdr, struct mtl_err *err)
{
	const msgpack_object *s;
	int rc = mtl_mp_read(r, hdr, err);

	if (rc < 0)
		return rc;
	if (rc == 0)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "%s: empty input, expected a stream of kind '%s'",
				   r->name, kind ? kind : "any");
	s = mtl_mp_get(hdr, "stream");
	if (kind && !mtl_mp_is_str(s, kind))
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "a stream of kind '%.*s', expected '%s'",
					  (int)(s->via.str.size > 40 ? 40 : s->via.str.size),
					  s->via.str.ptr, kind);
	return 0;
}

const msgpack_object *mtl_mp_get(const msgpack_object *m, const char *key)
{
	size_t n;

	if (!m || m->type != MSGPACK_OBJECT_MAP)
		return NULL;
	n = strlen(key);
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
		    !memcmp(k->via.str.ptr, key, n))
			return &m->via.map.ptr[i].val;
	}
	return NULL;
}

int mtl_mp_is_str(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);

	return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	       !memcmp(o->via.str.ptr, s, n);
}

int mtl_mp_as_int(const msgpack_object *o, int64_t *v)
{
	if (!o)
		return -1;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (o->via.u64 > INT64_MAX)
			return -1;
		*v = (int64_t)o->via.u64;
		return 0;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*v = o->via.i64;
		return 0;
	}
	return -1;
}

int mtl_mp_as_num(const msgpack_object *o, double *v)
{
	int64_t i;

	if (o && (o->type == MSGPACK_OBJECT_FLOAT32 ||
		  o->type == MSGPACK_OBJECT_FLOAT64)) {
		*v = o->via.f64;
		return 0;
	}
	if (mtl_mp_as_int(o, &i))
		return -1;
	*v = (double)i;
	return 0;
}

static int is_f32_ext(const msgpack_object *o)
{
	return o && o->type == MSGPACK_OBJECT_EXT &&
	       o->via.ext.type == MTL_MP_EXT_F32 && o->via.ext.size % 4 == 0;
}

static float f32_at(const char *p, size_t i)
{
	const unsigned char *b = (const unsigned char *)p + 4 * i;
	uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 |
		     (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	float f;

	memcpy(&f, &u, 4);
	return f;
}

long mtl_mp_array_len(const msgpack_object *o)
{
	if (is_f32_ext(o))
		return (long)(o->via.ext.size / 4);
	if (!o || o->type != MSGPACK_OBJECT_ARRAY)
		return -1;
	return (long)o->via.array.size;
}

int mtl_mp_as_f32s(const msgpack_object *o, float *out, long n)
{
	if (mtl_mp_array_len(o) != n)
		return -1;
	if (is_f32_ext(o)) {
		for (long i = 0; i < n; i++)
			out[i] = f32_at(o->via.ext.ptr, (size_t)i);
		return 0;
	}
	for (long i = 0; i < n; i++) {
		double d;
		if (mtl_mp_as_num(&o->via.array.ptr[i], &d))
			return -1;
		out[i] = (float)d;
	}
	return 0;
}

int mtl_mp_as_i32s(const msgpack_object *o, int32_t *out, long n)
{
	if (!o || o->type != MSGPACK_OBJECT_ARRAY || (long)o->via.array.size != n)
		return -1;
	for (long i = 0; i < n; i++) {
		int64_t v;
		if (mtl_mp_as_int(&o->via.array.ptr[i], &v) || v < INT32_MIN ||
		    v > INT32_MAX)
			return -1;
		out[i] = (int32_t)v;
	}
	return 0;
}

int mtl_mp_copy(const msgpack_object *o, char **out, size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (msgpack_pack_object(&pk, *o)) {
		msgpack_sbuffer_destroy(&sb);
		return -1;
	}
	*len = sb.size; /* release zeroes it */
	*out = msgpack_sbuffer_release(&sb);
	return *out ? 0 : -1;
}

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
	free(w->ends);
	free(w->name);
	free(w);
}

msgpack_packer *mtl_mp_pk(struct mtl_mp_writer *w)
{
	return &w->pk;
}

int mtl_mp_end(struct mtl_mp_writer *w, struct mtl_err *err)
{
	size_t n = w->sbuf.size;

	if (!w->f) {
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
	msgpack_sbuffer_clear(&w->sbuf);
	if (n && (fwrite(w->sbuf.data, 1, n, w->f) != n || fflush(w->f)))
		return mtl_err_set(err, MTL_ERR_IO, "write error on %s: %s",
				   w->name, strerror(errno));
	return 0;
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

/* --- JSON --- */

/*
 * Shortest decimal that reads back as the same value (float32 when single),
 * always with a '.' or an exponent so that JSON readers keep it a float.
 */
static void put_float(FILE *f, double d, int single)
{
	char s[40];

	if (!isfinite(d)) {
		fputs("null", f);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(s, sizeof(s), "%.*g", prec, d);
		if (single ? strtof(s, NULL) == (float)d : strtod(s, NULL) == d)
			break;
	}
	fputs(s, f);
	if (!strpbrk(s, ".e"))
		fputs(".0", f);
}

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	uint32_t c;
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, c = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, c = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, c = p[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return len;
}

static int put_str(FILE *f, const char *s, size_t n, struct mtl_err *err)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	fputc('"', f);
	while (i < n) {
		size_t run = i, len;

		while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' &&
		       p[run] != '\\')
			run++;
		fwrite(p + i, 1, run - i, f);
		i = run;
		if (i >= n)
			break;
		switch (p[i]) {
		case '"': fputs("\\\"", f); i++; continue;
		case '\\': fputs("\\\\", f); i++; continue;
		case '\n': fputs("\\n", f); i++; continue;
		case '\t': fputs("\\t", f); i++; continue;
		case '\r': fputs("\\r", f); i++; continue;
		case '\b': fputs("\\b", f); i++; continue;
		case '\f': fputs("\\f", f); i++; continue;
		default: break;
		}
		if (p[i] < 0x20) {
			fprintf(f, "\\u%04x", p[i]);
			i++;
			continue;
		}
		len = utf8_len(p + i, n - i);
		if (!len)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "string is not valid UTF-8 (byte %zu)", i);
		/* U+2028 and U+2029 break lines in some readers: escape them */
		if (len == 3 && p[i] == 0xe2 && p[i + 1] == 0x80 &&
		    (p[i + 2] == 0xa8 || p[i + 2] == 0xa9))
			fprintf(f, "\\u%04x", 0x2028 + (p[i + 2] - 0xa8));
		else
			fwrite(p + i, 1, len, f);
		i += len;
	}
	fputc('"', f);
	return 0;
}

int mtl_mp_to_json(FILE *f, const msgpack_object *o, struct mtl_err *err)
{
	int rc;

	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		fputs("null", f);
		return 0;
	case MSGPACK_OBJECT_BOOLEAN:
		fputs(o->via.boolean ? "true" : "false", f);
		return 0;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		fprintf(f, "%llu", (unsigned long long)o->via.u64);
		return 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		fprintf(f, "%lld", (long long)o->via.i64);
		return 0;
	case MSGPACK_OBJECT_FLOAT32:
		put_float(f, o->via.f64, 1);
		return 0;
	case MSGPACK_OBJECT_FLOAT64:
		put_float(f, o->via.f64, 0);
		return 0;
	case MSGPACK_OBJECT_STR:
		return put_str(f, o->via.str.ptr, o->via.str.size, err);
	case MSGPACK_OBJECT_ARRAY:
		fputc('[', f);
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			if (i)
				fputc(',', f);
			if ((rc = mtl_mp_to_json(f, &o->via.array.ptr[i], err)))
				return rc;
		}
		fputc(']', f);
		return 0;
	case MSGPACK_OBJECT_MAP:
		fputc('{', f);
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			if (kv->key.type != MSGPACK_OBJECT_STR)
				return mtl_err_set(err, MTL_ERR_FORMAT,
						   "map key is not a string");
			if (i)
				fputc(',', f);
			if ((rc = put_str(f, kv->key.via.str.ptr, kv->key.via.str.size, err)))
				return rc;
			fputc(':', f);
			if ((rc = mtl_mp_to_json(f, &kv->val, err)))
				return rc;
		}
		fputc('}', f);
		return 0;
	case MSGPACK_OBJECT_EXT:
		if (is_f32_ext(o)) {
			fputc('[', f);
			for (size_t i = 0; i < o->via.ext.size / 4; i++) {
				if (i)
					fputc(',', f);
				put_float(f, f32_at(o->via.ext.ptr, i), 1);
			}
			fputc(']', f);
			return 0;
		}
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "unknown msgpack extension type %d",
				   o->via.ext.type);
	default:
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "binary data cannot be shown as JSON");
	}
}

void mtl_mp_from_json(msgpack_packer *pk, const json_t *j)
{
	const char *key;
	json_t *v;
	size_t i;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		msgpack_pack_map(pk, json_object_size(j));
		json_object_foreach((json_t *)j, key, v) {
			mtl_mp_pack_str(pk, key);
			mtl_mp_from_json(pk, v);
		}
		break;
	case JSON_ARRAY:
		msgpack_pack_array(pk, json_array_size(j));
		json_array_foreach(j, i, v)
			mtl_mp_from_json(pk, v);
		break;
	case JSON_STRING:
		msgpack_pack_str(pk, json_string_length(j));
		msgpack_pack_str_body(pk, json_string_value(j), json_string_length(j));
		break;
	case JSON_INTEGER:
		msgpack_pack_int64(pk, json_integer_value(j));
		break;
	case JSON_REAL:
		msgpack_pack_double(pk, json_real_value(j));
		break;
	case JSON_TRUE:
		msgpack_pack_true(pk);
		break;
	case JSON_FALSE:
		msgpack_pack_false(pk);
		break;
	default:
		msgpack_pack_nil(pk);
		break;
	}
}
