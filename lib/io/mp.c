/*
 * mp.c - msgpack streams: the reader (framing, validation, the end
 * record's check) and the accessors of decoded values; see mp.h.  The
 * writer is in mp_write.c, JSON in mp_json.c (mp_int.h).
 */
#include "mp_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Most record types one stream may hold (the end record counts each). */
#define MP_MAX_TYPES 256
/* Deepest nesting a record may have (msgpack-c decodes up to 32 levels). */
#define MP_MAX_DEPTH 31

/*
 * Where mp_scan got to in a record, so that it resumes there when more
 * bytes come instead of scanning the record again from its start.
 */
struct mp_frame {
	uint64_t left[MP_MAX_DEPTH + 1]; /* elements still due at each level */
	int depth;
	size_t at;    /* bytes of the record scanned: whole elements only */
	size_t elems; /* elements scanned (every value, map keys included) */
};

/* Starts the scan of a record. */
static void mp_frame_init(struct mp_frame *st)
{
	memset(st, 0, sizeof(*st));
	st->left[0] = 1;
}

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
	struct mp_frame frame; /* the record at buf[pos..) scanned so far */
	size_t scanned; /* bytes mp_scan has looked at (tests) */
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

void tally_release(struct mp_tally *t)
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
int tally_add(struct mp_tally *t, const char *s, size_t len,
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
	mp_frame_init(&r->frame);
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

size_t mtl_mp_reader_scanned(const struct mtl_mp_reader *r)
{
	return r->scanned;
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
uint64_t be(const unsigned char *p, size_t n)
{
	uint64_t v = 0;

	while (n--)
		v = (v << 8) | *p++;
	return v;
}

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
 * decoding it, going on from where st got to in an earlier call on a prefix
 * of the same bytes (st from mp_frame_init for a new object); st only ever
 * moves past whole elements, so each byte is looked at about once however
 * the bytes arrive.  Returns 1 and *len when complete, 0 when more bytes are
 * needed, -1 on a byte that starts no msgpack object (its offset in *len),
 * -2 when the declared sizes exceed MTL_MP_MAX_RECORD, -3 when containers
 * nest deeper than MP_MAX_DEPTH.  When complete, st->elems is the number
 * of elements (every value, map keys included).  Every element takes at
 * least one byte, so a corrupt count can only make us wait for bytes, never
 * allocate.
 */
static int mp_scan(const unsigned char *p, size_t n, struct mp_frame *st,
		   size_t *len)
{
	while (st->depth > 0 || st->left[0] > 0) {
		uint64_t count = 0, add = 0;
		size_t skip = 0, hdr = 0, i = st->at;
		unsigned char c;

		if (st->left[st->depth] == 0) {
			st->depth--;
			continue;
		}
		if (i >= n)
			return 0;
		c = p[i++];
		if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
			; /* the byte is the whole element */
		else if (c == 0xc1) {
			*len = i - 1;
			return -1;
		} else if (c <= 0x8f)
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
		if (count && st->depth == MP_MAX_DEPTH)
			return -3;
		/* the element is whole: move past it */
		st->left[st->depth]--;
		st->elems++;
		st->at = i;
		if (count)
			st->left[++st->depth] = count;
	}
	*len = st->at;
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
int map_str(const unsigned char *p, size_t n, const char *key,
	    const unsigned char **val, size_t *vlen)
{
	size_t klen = strlen(key), i, len;
	struct mp_frame st;
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

		mp_frame_init(&st);
		if (mp_scan(p + i, n - i, &st, &len) != 1)
			return -1;
		i += len;
		if (match)
			return str_at(p + i, n - i, val, vlen);
		mp_frame_init(&st);
		if (mp_scan(p + i, n - i, &st, &len) != 1)
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
	size_t len = 0, off = 0, elems;
	int s;

	for (;;) {
		long got;

		/* nothing buffered yet: r->buf may be NULL, and NULL + 0 is UB;
		 * the scan goes on from where the last fill() left it */
		s = 0;
		if (r->pos < r->len) {
			size_t at = r->frame.at;

			s = mp_scan((const unsigned char *)r->buf + r->pos,
				    r->len - r->pos, &r->frame, &len);
			r->scanned += (s == 1 ? len : r->len - r->pos) - at;
		}
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
	elems = r->frame.elems;
	mp_frame_init(&r->frame);
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

int is_f32_ext(const msgpack_object *o)
{
	return o && o->type == MSGPACK_OBJECT_EXT &&
	       o->via.ext.type == MTL_MP_EXT_F32 && o->via.ext.size % 4 == 0;
}

float f32_at(const char *p, size_t i)
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

