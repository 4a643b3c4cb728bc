/* mp.c - msgpack streams: framing, validation, writing, JSON; see mp.h. */
#include "mp.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Most record types one stream may hold (the end record counts each). */
#define MP_MAX_TYPES 256

/*
 * Records of each type (the header and the end record aside): what a
 * writer wrote, to put in its end record, and what a reader read, to
 * check against it.
 */
struct mp_tally {
	struct mp_count {
		char *type;
		size_t len;
		long n;
	} *c;
	int len, cap;
};

struct mtl_mp_reader {
	FILE *f;
	char *name;
	char *buf;      /* bytes read, not yet consumed: buf[pos..len) */
	size_t pos, len, cap;
	int eof;
	long record;    /* number of the last record returned */
	msgpack_unpacked unp;
	char *kind;     /* the header's stream kind */
	int old_format; /* version 1.0: written before end records */
	struct mp_tally tally;
	int ended;      /* the end record was read (and checked) */
	int accept_old; /* a format 1.0 stream may end without one */
};

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

/* The value of key[0..n) in map m, or NULL. */
static const msgpack_object *map_get(const msgpack_object *m, const char *key,
				     size_t n)
{
	if (!m || m->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
		    !memcmp(k->via.str.ptr, key, n))
			return &m->via.map.ptr[i].val;
	}
	return NULL;
}

static void tally_release(struct mp_tally *t)
{
	for (int i = 0; i < t->len; i++)
		free(t->c[i].type);
	free(t->c);
}

/* The count of type s[0..len), or NULL when none was counted. */
static struct mp_count *tally_find(const struct mp_tally *t, const char *s,
				   size_t len)
{
	for (int i = 0; i < t->len; i++)
		if (t->c[i].len == len && !memcmp(t->c[i].type, s, len))
			return &t->c[i];
	return NULL;
}

/*
 * Counts one record of type s[0..len).  0, MTL_ERR_FORMAT (a new type
 * beyond MP_MAX_TYPES) or MTL_ERR_NOMEM, with the reason in err.
 */
static int tally_add(struct mp_tally *t, const char *s, size_t len,
		     struct mtl_err *err)
{
	struct mp_count *c = tally_find(t, s, len);

	if (c) {
		c->n++;
		return 0;
	}
	if (t->len == MP_MAX_TYPES)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "more than %d record types in one stream",
				   MP_MAX_TYPES);
	if (t->len == t->cap) {
		int cap = t->cap ? 2 * t->cap : 8;

		if (!(c = realloc(t->c, (size_t)cap * sizeof(*c))))
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		t->c = c;
		t->cap = cap;
	}
	c = &t->c[t->len];
	if (!(c->type = malloc(len + 1)))
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	memcpy(c->type, s, len);
	c->type[len] = 0;
	c->len = len;
	c->n = 1;
	t->len++;
	return 0;
}

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
	tally_release(&r->tally);
	free(r->kind);
	free(r->buf);
	free(r->name);
	free(r);
}

void mtl_mp_reader_accept_old(struct mtl_mp_reader *r)
{
	r->accept_old = 1;
}

int mtl_mp_reader_ended(const struct mtl_mp_reader *r)
{
	return r->ended;
}

long mtl_mp_reader_record(const struct mtl_mp_reader *r)
{
	return r->record;
}

long mtl_mp_reader_offset(const struct mtl_mp_reader *r)
{
	/* fill() reads the descriptor, not through stdio (where it has one) */
	int fd = fileno(r->f);
	long at = fd >= 0 ? (long)lseek(fd, 0, SEEK_CUR) : ftell(r->f);

	return at < 0 ? -1 : at - (long)(r->len - r->pos);
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

/* Big-endian unsigned integer of n bytes at p. */
static uint64_t be(const unsigned char *p, size_t n)
{
	uint64_t v = 0;

	while (n--)
		v = (v << 8) | *p++;
	return v;
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
			add = be(p + i, hdr);
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

/* The msgpack string at p[0..n): 0 and its bytes s[0..*len), or -1. */
static int str_at(const unsigned char *p, size_t n, const unsigned char **s,
		  size_t *len)
{
	size_t h;

	if (n >= 1 && p[0] >= 0xa0 && p[0] <= 0xbf)
		h = 1, *len = p[0] & 0x1f;
	else if (n >= 2 && p[0] == 0xd9)
		h = 2, *len = p[1];
	else if (n >= 3 && p[0] == 0xda)
		h = 3, *len = (size_t)be(p + 1, 2);
	else if (n >= 5 && p[0] == 0xdb)
		h = 5, *len = (size_t)be(p + 1, 4);
	else
		return -1;
	if (n - h < *len)
		return -1;
	*s = p + h;
	return 0;
}

/*
 * The string value of key in the msgpack map p[0..n), found without
 * decoding the map (a writer's record, to tally it by type): 0 and the
 * value's bytes, or -1 (not a map, no such key, not a string).
 */
static int map_str(const unsigned char *p, size_t n, const char *key,
		   const unsigned char **val, size_t *vlen)
{
	size_t klen = strlen(key), i, len, elems = 0; /* elems: not needed */
	uint64_t pairs;

	if (n >= 1 && p[0] >= 0x80 && p[0] <= 0x8f)
		pairs = p[0] & 0x0f, i = 1;
	else if (n >= 3 && p[0] == 0xde)
		pairs = be(p + 1, 2), i = 3;
	else if (n >= 5 && p[0] == 0xdf)
		pairs = be(p + 1, 4), i = 5;
	else
		return -1;
	for (; pairs > 0; pairs--) {
		const unsigned char *k;
		size_t kl;
		int match = !str_at(p + i, n - i, &k, &kl) && kl == klen &&
			    !memcmp(k, key, klen);

		if (mp_scan(p + i, n - i, &len, &elems) != 1)
			return -1;
		i += len;
		if (match)
			return str_at(p + i, n - i, val, vlen);
		if (mp_scan(p + i, n - i, &len, &elems) != 1)
			return -1;
		i += len;
	}
	return -1;
}

/* Reads more input into the buffer.  Returns bytes read, 0 at EOF, <0. */
static long fill(struct mtl_mp_reader *r, struct mtl_err *err)
{
	size_t got;
	int fd, bad;

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
	/* read(2) returns what a pipe holds, so that `tail -f | mtl-dump`
	 * sees each record as it comes; fread would wait for a full buffer.
	 * A FILE without a descriptor (fmemopen) is read with fread. */
	fd = fileno(r->f);
	if (fd >= 0) {
		ssize_t n = read(fd, r->buf + r->len, r->cap - r->len);

		got = n > 0 ? (size_t)n : 0;
		bad = n < 0;
	} else {
		got = fread(r->buf + r->len, 1, r->cap - r->len, r->f);
		bad = !got && ferror(r->f);
	}
	if (bad)
		return mtl_err_set(err, MTL_ERR_IO, "%s: read error: %s",
				   r->name, strerror(errno));
	r->len += got;
	if (got == 0)
		r->eof = 1;
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

/*
 * At the end of input: 0 after the checked end record (and for an empty
 * input, which mtl_mp_read_header reports), else a truncated stream.
 */
static int at_end(const struct mtl_mp_reader *r, struct mtl_err *err)
{
	if (r->ended || r->record == 0 || (r->accept_old && r->old_format))
		return 0;
	return mtl_err_set(err, MTL_ERR_FORMAT,
			   "%s: truncated stream (no end record after %ld record%s)%s",
			   r->name, r->record, r->record == 1 ? "" : "s",
			   r->old_format ? "; format 1.0 streams have none: mtl-dump OLD | mtl-dump --pack adds it" : "");
}

/* Record 1: keeps the kind and whether the format predates end records. */
static int begin(struct mtl_mp_reader *r, const msgpack_object *hdr,
		 struct mtl_err *err)
{
	const msgpack_object *kind = mtl_mp_get(hdr, "stream");
	const msgpack_object *v = mtl_mp_get(hdr, "version");
	int64_t major = 0, minor = 0;

	mtl_mp_as_int(&v->via.array.ptr[0], &major);
	if (v->via.array.size >= 2)
		mtl_mp_as_int(&v->via.array.ptr[1], &minor);
	r->old_format = major < 1 || (major == 1 && minor < 1);
	r->kind = strndup(kind->via.str.ptr, kind->via.str.size);
	if (!r->kind)
		return mtl_mp_reader_fail(r, err, MTL_ERR_NOMEM, "out of memory");
	return 1;
}

/* The end record: its counts must be what was read.  1, or <0. */
static int check_end(struct mtl_mp_reader *r, const msgpack_object *rec,
		     struct mtl_err *err)
{
	const msgpack_object *counts = mtl_mp_get(rec, "counts");
	int64_t n;

	if (!mtl_mp_is_str(mtl_mp_get(rec, "stream"), r->kind))
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "the end record is not of a '%s' stream", r->kind);
	if (mtl_mp_as_int(mtl_mp_get(rec, "records"), &n) ||
	    !counts || counts->type != MSGPACK_OBJECT_MAP)
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "the end record has no \"records\" number or no \"counts\" map");
	if (n != r->record - 1)
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "the end record counts %lld records before it, %ld were read",
					  (long long)n, r->record - 1);
	for (uint32_t i = 0; i < counts->via.map.size; i++) {
		const msgpack_object_str *k = &counts->via.map.ptr[i].key.via.str;
		const struct mp_count *c = tally_find(&r->tally, k->ptr, k->size);
		long have = c ? c->n : 0;

		if (mtl_mp_as_int(&counts->via.map.ptr[i].val, &n) || n != have)
			return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
						  "the end record counts %lld '%.*s' records, %ld were read",
						  (long long)n, (int)(k->size > 40 ? 40 : k->size),
						  k->ptr, have);
	}
	for (int i = 0; i < r->tally.len; i++)
		if (!map_get(counts, r->tally.c[i].type, r->tally.c[i].len))
			return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
						  "%ld '%.40s' records were read, the end record counts none",
						  r->tally.c[i].n, r->tally.c[i].type);
	r->ended = 1;
	return 1;
}

/* Tallies a checked record (record 1, the header, starts the tally). */
static int note_record(struct mtl_mp_reader *r, const msgpack_object *rec,
		       struct mtl_err *err)
{
	const msgpack_object *type = mtl_mp_get(rec, "type");
	struct mtl_err e;
	int rc;

	if (r->record == 1)
		return begin(r, rec, err);
	if (mtl_mp_is_str(type, "end"))
		return check_end(r, rec, err);
	rc = tally_add(&r->tally, type->via.str.ptr, type->via.str.size, &e);
	return rc ? mtl_mp_reader_fail(r, err, rc, "%s", e.msg) : 1;
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
				return at_end(r, err);
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
	if (r->ended)
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "data after the end record");
	/* '{' and '[' are msgpack integers: a header never starts with them */
	if (r->record == 1 && (r->buf[r->pos] == '{' || r->buf[r->pos] == '['))
		return mtl_mp_reader_fail(r, err, MTL_ERR_FORMAT,
					  "JSON text, not an mtl stream (mtl-tokenize makes examples from text; "
					  "mtl-dump --pack turns mtl-dump's JSON lines back into a stream)");
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
	return note_record(r, rec, err);
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
	return map_get(m, key, strlen(key));
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
	if (!*out)
		return -1;
	/* the buffer starts at 8 KiB: a program that keeps many copies
	 * (mtl-batch's example ids) must not keep that much each */
	char *fit = realloc(*out, *len ? *len : 1);
	if (fit)
		*out = fit;
	return 0;
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

const char *const mtl_mp_record_types[] = {
	"header", "example", "stats", "batch", "step", "eval", "skip",
	"prediction", "embedding", "metrics", "features", "hit", "end", NULL
};
