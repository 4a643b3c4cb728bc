/*
 * test_mp.c - the stream library: writing and reading back, typed arrays,
 * header checks, and bad input of every kind (truncation at every byte,
 * random bytes, corrupt sizes) giving an error, never a crash.
 */
#define _GNU_SOURCE /* F_SETPIPE_SZ */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mp.h"
#include "t.h"

/*
 * Writes a small stream of n_records examples into a memory buffer and
 * returns its bytes; finish: with its end record.
 */
static char *make_stream_to(size_t *len, int n_records, int finish)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	struct mtl_mp_writer *w = mtl_mp_writer_new(f, "mem");
	char *argv[] = { "prog", "--x", "1" };
	float v[5] = { 0.1f, -2.5f, 1e-30f, 3.4e38f, 0 };
	int32_t ids[3] = { 101, -100, 102 };
	msgpack_packer *pk = mtl_mp_pk(w);

	mtl_mp_pack_header(pk, "examples", "prog", 3, argv, 1);
	mtl_mp_pack_str(pk, "vocab_size");
	msgpack_pack_int(pk, 30522);
	mtl_mp_end(w, NULL);
	for (int i = 0; i < n_records; i++) {
		msgpack_pack_map(pk, 4);
		mtl_mp_pack_str(pk, "type");
		mtl_mp_pack_str(pk, "example");
		mtl_mp_pack_str(pk, "i");
		msgpack_pack_int(pk, i);
		mtl_mp_pack_str(pk, "emb");
		mtl_mp_pack_f32s(pk, v, 5);
		mtl_mp_pack_str(pk, "ids");
		mtl_mp_pack_i32s(pk, ids, 3);
		mtl_mp_end(w, NULL);
	}
	if (finish)
		mtl_mp_finish(w, NULL);
	mtl_mp_writer_free(w);
	fclose(f);
	return buf;
}

static char *make_stream(size_t *len, int n_records)
{
	return make_stream_to(len, n_records, 1);
}

/* Reads all records; returns the count, or -1 with err set. */
static long read_all(const char *buf, size_t len, struct mtl_err *err)
{
	FILE *f = fmemopen((void *)buf, len ? len : 1, "rb");
	struct mtl_mp_reader *r;
	msgpack_object rec;
	long n = 0;
	int rc;

	if (!len) { /* fmemopen cannot open an empty buffer */
		fclose(f);
		f = fopen("/dev/null", "rb");
	}
	r = mtl_mp_reader_new(f, "mem");
	rc = mtl_mp_read_header(r, NULL, &rec, err);
	if (!rc) {
		n = 1;
		while ((rc = mtl_mp_read(r, &rec, err)) > 0)
			n++;
	}
	mtl_mp_reader_free(r);
	fclose(f);
	return rc < 0 ? -1 : n;
}

static void test_round_trip(void)
{
	size_t len;
	char *buf = make_stream(&len, 3);
	FILE *f = fmemopen(buf, len, "rb");
	struct mtl_mp_reader *r = mtl_mp_reader_new(f, "mem");
	msgpack_object rec;
	struct mtl_err err;
	float v[5];
	int32_t ids[3];
	int64_t i;
	int rc;

	rc = mtl_mp_read_header(r, "examples", &rec, &err);
	T_OK(rc == 0, "header of the right kind reads");
	T_OK(mtl_mp_as_int(mtl_mp_get(&rec, "vocab_size"), &i) == 0 && i == 30522,
	     "header metadata");
	T_OK(mtl_mp_get(&rec, "missing") == NULL, "absent key gives NULL");
	rc = mtl_mp_read(r, &rec, &err);
	T_OK(rc == 1 && mtl_mp_is_str(mtl_mp_get(&rec, "type"), "example"),
	     "record 2 reads");
	T_OK(mtl_mp_array_len(mtl_mp_get(&rec, "emb")) == 5 &&
	     mtl_mp_as_f32s(mtl_mp_get(&rec, "emb"), v, 5) == 0 &&
	     v[0] == 0.1f && v[1] == -2.5f && v[2] == 1e-30f && v[3] == 3.4e38f,
	     "f32 extension array round trip is exact");
	T_OK(mtl_mp_as_f32s(mtl_mp_get(&rec, "emb"), v, 4) == -1,
	     "f32 array of the wrong length is refused");
	T_OK(mtl_mp_as_i32s(mtl_mp_get(&rec, "ids"), ids, 3) == 0 && ids[1] == -100,
	     "i32 array round trip");
	T_OK(mtl_mp_as_f32s(mtl_mp_get(&rec, "ids"), v, 3) == 0 && v[2] == 102.0f,
	     "plain arrays of numbers read as floats");
	T_OK(mtl_mp_read(r, &rec, &err) == 1 && mtl_mp_read(r, &rec, &err) == 1,
	     "records 3 and 4 read");
	T_OK(mtl_mp_reader_record(r) == 4, "record counter");
	T_OK(!mtl_mp_reader_ended(r), "not ended before the end record");
	T_OK(mtl_mp_read(r, &rec, &err) == 1 && mtl_mp_is_str(mtl_mp_get(&rec, "type"), "end") &&
	     mtl_mp_reader_ended(r), "record 5 is the end record");
	T_OK(mtl_mp_as_int(mtl_mp_get(&rec, "records"), &i) == 0 && i == 4 &&
	     mtl_mp_is_str(mtl_mp_get(&rec, "stream"), "examples") &&
	     mtl_mp_as_int(mtl_mp_get(mtl_mp_get(&rec, "counts"), "example"), &i) == 0 && i == 3 &&
	     mtl_mp_get(&rec, "counts")->via.map.size == 1,
	     "it counts 4 records before it, 3 of them examples");
	T_OK(mtl_mp_read(r, &rec, &err) == 0, "clean end of input");
	mtl_mp_reader_free(r);
	fclose(f);

	f = fmemopen(buf, len, "rb");
	r = mtl_mp_reader_new(f, "x.mpk");
	rc = mtl_mp_read_header(r, "batches", &rec, &err);
	T_OK(rc == MTL_ERR_FORMAT && strstr(err.msg, "x.mpk: record 1") &&
	     strstr(err.msg, "kind 'examples', expected 'batches'"),
	     "a header of another kind is refused: %s", err.msg);
	mtl_mp_reader_free(r);
	fclose(f);
	free(buf);
}

static void test_truncation(void)
{
	size_t len;
	char *buf = make_stream(&len, 4);
	struct mtl_err err;
	int bad = 0;

	T_OK(read_all(buf, len, &err) == 6, "whole stream reads 6 records");
	for (size_t cut = 0; cut < len; cut++) {
		/* a cut at a record boundary, too: the end record is missing */
		if (read_all(buf, cut, &err) >= 0 ||
		    (!strstr(err.msg, "truncated") && !strstr(err.msg, "empty input")))
			bad++;
	}
	T_OK(bad == 0, "every truncation is an error saying 'truncated'");
	T_OK(read_all(buf, 30, &err) < 0 && strstr(err.msg, "record 1: truncated"),
	     "truncated header names record 1: %s", err.msg);
	free(buf);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void test_garbage(void)
{
	size_t len;
	char *buf = make_stream(&len, 4);
	char *junk = malloc(4096);
	struct mtl_err err;
	long errors = 0;

	/* random bytes, and the valid stream with random bytes flipped */
	for (int it = 0; it < 3000; it++) {
		size_t n = next() % 4096;
		for (size_t i = 0; i < n; i++)
			junk[i] = (char)next();
		if (read_all(junk, n, &err) < 0)
			errors++;
	}
	T_OK(errors == 3000, "random bytes are always refused (%ld of 3000)", errors);
	for (int it = 0; it < 3000; it++) {
		char *c = malloc(len);
		memcpy(c, buf, len);
		for (int k = 0; k < 3; k++)
			c[next() % len] = (char)next();
		read_all(c, len, &err); /* must not crash; either outcome is fine */
		free(c);
	}
	T_OK(1, "3000 corrupted streams read without a crash");
	free(junk);
	free(buf);
}

/* A hand-made header: {"type":"header","stream":"x","version":[1,0]}. */
static const unsigned char hdr[] = {
	0x83, 0xa4, 't', 'y', 'p', 'e', 0xa6, 'h', 'e', 'a', 'd', 'e', 'r',
	0xa6, 's', 't', 'r', 'e', 'a', 'm', 0xa1, 'x',
	0xa7, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x92, 0x01, 0x00 };

static void test_bad_records(void)
{
	/* hand-made msgpack: header then a bad record */
	static const unsigned char newer[] = {
		0x83, 0xa4, 't', 'y', 'p', 'e', 0xa6, 'h', 'e', 'a', 'd', 'e', 'r',
		0xa6, 's', 't', 'r', 'e', 'a', 'm', 0xa1, 'x',
		0xa7, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x92, 0x07, 0x00 };
	static const struct { const unsigned char b[16]; size_t n; const char *msg; } cases[] = {
		{ { 0x05 }, 1, "record 2: not a map" },
		{ { 0x81, 0xa1, 'a', 0x01 }, 4, "record 2: no string \"type\"" },
		{ { 0x81, 0xa4, 't', 'y', 'p', 'e', 0x07 }, 7, "no string \"type\"" },
		{ { 0x81, 0x01, 0x02 }, 3, "map key 0 is not a string" },
		{ { 0xc1 }, 1, "record 2: not msgpack" },
		{ { 0xdd, 0xff, 0xff, 0xff, 0xff }, 5, "declared size larger" },
		{ { 0xdb, 0x7f, 0xff, 0xff, 0xff }, 5, "declared size larger" },
		{ { 0xdf, 0x00, 0x00, 0x10, 0x00 }, 5, "truncated" },
	};
	char buf[128];
	struct mtl_err err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(buf, hdr, sizeof(hdr));
		memcpy(buf + sizeof(hdr), cases[i].b, cases[i].n);
		T_OK(read_all(buf, sizeof(hdr) + cases[i].n, &err) < 0 &&
		     strstr(err.msg, cases[i].msg),
		     "bad record %zu: '%s' in '%s'", i, cases[i].msg, err.msg);
	}
	memcpy(buf, hdr, sizeof(hdr));
	memcpy(buf + sizeof(hdr), hdr, sizeof(hdr));
	T_OK(read_all(buf, 2 * sizeof(hdr), &err) < 0 && strstr(err.msg, "second header"),
	     "a second header is refused: %s", err.msg);
	T_OK(read_all((const char *)newer, sizeof(newer), &err) < 0 &&
	     strstr(err.msg, "version 7 is newer"), "a newer major version is refused: %s",
	     err.msg);
	T_OK(read_all((const char *)hdr + 1, sizeof(hdr) - 1, &err) < 0 &&
	     strstr(err.msg, "record 1"), "a stream without header is refused: %s", err.msg);
	/* nesting deeper than msgpack-c's stack */
	memcpy(buf, hdr, sizeof(hdr));
	memset(buf + sizeof(hdr), 0x91, 80);
	buf[sizeof(hdr) + 80] = 0x01;
	T_OK(read_all(buf, sizeof(hdr) + 81, &err) < 0 && strstr(err.msg, "nested deeper"),
	     "deep nesting is an error: %s",
	     err.msg);
}

/*
 * Decoding is bounded by the record's bytes: every element decodes into a
 * 24-byte msgpack_object, so 4 M nils (4 MB) would take 96 MB.  A record
 * of one-byte elements within the bound is read.
 */
static void test_decoded_size(void)
{
	/* a stream header, then {"type":"x","a":[...]} with an array32 */
	static const unsigned char rec[] = {
		0x82, 0xa4, 't', 'y', 'p', 'e', 0xa1, 'x', 0xa1, 'a', 0xdd };
	/* {"type":"end","stream":"x","records":2,"counts":{"x":1}} */
	static const unsigned char end[] = {
		0x84, 0xa4, 't', 'y', 'p', 'e', 0xa3, 'e', 'n', 'd',
		0xa6, 's', 't', 'r', 'e', 'a', 'm', 0xa1, 'x',
		0xa7, 'r', 'e', 'c', 'o', 'r', 'd', 's', 0x02,
		0xa6, 'c', 'o', 'u', 'n', 't', 's', 0x81, 0xa1, 'x', 0x01 };
	size_t n_big = (size_t)4 << 20, n_ok = (size_t)1 << 20;
	char *buf = malloc(sizeof(hdr) + sizeof(rec) + 4 + n_big + sizeof(end)), *p;
	struct mtl_err err = { 0 };

	if (!buf)
		return;
	for (int big = 1; big >= 0; big--) {
		size_t n = big ? n_big : n_ok;

		err.msg[0] = 0;
		p = buf;
		memcpy(p, hdr, sizeof(hdr));
		p += sizeof(hdr);
		memcpy(p, rec, sizeof(rec));
		p += sizeof(rec);
		for (int k = 3; k >= 0; k--)
			*p++ = (char)(n >> (8 * k));
		memset(p, big ? 0xc0 : 0x00, n); /* nils, or zeros */
		p += n;
		memcpy(p, end, sizeof(end));
		p += sizeof(end);
		if (big)
			T_OK(read_all(buf, (size_t)(p - buf), &err) < 0 &&
			     strstr(err.msg, "record 2: 4194309 elements in 4194319 bytes would decode"),
			     "4 M nils refused before decoding: '%s'", err.msg);
		else
			T_OK(read_all(buf, (size_t)(p - buf), &err) == 3,
			     "1 M small integers are read: '%s'", err.msg);
	}
	free(buf);
}

static void test_json(void)
{
	static const char *lines[] = {
		"{\"type\":\"header\",\"stream\":\"x\",\"version\":[1,0]}",
		"{\"a\":0.1,\"b\":1.0,\"c\":-0.0,\"d\":1e-07,\"e\":123456789012,\"f\":\"\\u0001\\u2028\\\"\"}",
		"{\"z\":[],\"y\":{},\"x\":[null,true,false],\"w\":3.4028234663852886e+38}",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_unpacked u;
		char *out = NULL;
		size_t n = 0;
		FILE *f = open_memstream(&out, &n);
		json_t *j = json_loads(lines[i], JSON_REJECT_DUPLICATES, NULL);

		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_unpacked_init(&u);
		mtl_mp_from_json(&pk, j);
		msgpack_unpack_next(&u, sb.data, sb.size, NULL);
		mtl_mp_to_json(f, &u.data, NULL);
		fclose(f);
		T_OK(!strcmp(out, lines[i]), "JSON round trip %zu: %s", i, out);
		free(out);
		json_decref(j);
		msgpack_unpacked_destroy(&u);
		msgpack_sbuffer_destroy(&sb);
	}
}

/* Appends the record of a JSON text to buf[0..*len) (a new buffer). */
static char *append_json(const char *buf, size_t *len, const char *json)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	json_t *j = json_loads(json, 0, NULL);
	char *out;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	mtl_mp_from_json(&pk, j);
	out = malloc(*len + sb.size);
	memcpy(out, buf, *len);
	memcpy(out + *len, sb.data, sb.size);
	*len += sb.size;
	msgpack_sbuffer_destroy(&sb);
	json_decref(j);
	return out;
}

/* Packs JSON lines one by one (no end record added); a new buffer. */
static char *pack_json(const char *const *lines, int n, size_t *len)
{
	char *buf = NULL, *next;

	*len = 0;
	for (int i = 0; i < n; i++) {
		next = append_json(buf ? buf : "", len, lines[i]);
		free(buf);
		buf = next;
	}
	return buf;
}

static long read_json(const char *const *lines, int n, struct mtl_err *err)
{
	size_t len;
	char *buf = pack_json(lines, n, &len);
	long rc = read_all(buf, len, err);

	free(buf);
	return rc;
}

/* Reads the JSON lines as mtl-dump does (accept_old); 1: ended, 0: not, <0. */
static int read_json_old(const char *const *lines, int n, struct mtl_err *err)
{
	size_t len;
	char *buf = pack_json(lines, n, &len);
	FILE *f = fmemopen(buf, len, "rb");
	struct mtl_mp_reader *r = mtl_mp_reader_new(f, "mem");
	msgpack_object rec;
	int rc;

	mtl_mp_reader_accept_old(r);
	while ((rc = mtl_mp_read(r, &rec, err)) > 0)
		;
	if (rc == 0)
		rc = mtl_mp_reader_ended(r);
	mtl_mp_reader_free(r);
	fclose(f);
	free(buf);
	return rc;
}

static void test_end_record(void)
{
	static const struct { const char *end, *msg; } bad[] = {
		{ "{\"type\":\"end\",\"stream\":\"examples\",\"records\":5,\"counts\":{\"example\":3}}",
		  "mem: record 5: the end record counts 5 records before it, 4 were read" },
		{ "{\"type\":\"end\",\"stream\":\"examples\",\"records\":4,\"counts\":{\"example\":2}}",
		  "mem: record 5: the end record counts 2 'example' records, 3 were read" },
		{ "{\"type\":\"end\",\"stream\":\"examples\",\"records\":4,\"counts\":{}}",
		  "mem: record 5: 3 'example' records were read, the end record counts none" },
		{ "{\"type\":\"end\",\"stream\":\"examples\",\"records\":4,\"counts\":{\"example\":3,\"stats\":1}}",
		  "mem: record 5: the end record counts 1 'stats' records, 0 were read" },
		{ "{\"type\":\"end\",\"stream\":\"batches\",\"records\":4,\"counts\":{\"example\":3}}",
		  "mem: record 5: the end record is not of a 'examples' stream" },
		{ "{\"type\":\"end\",\"stream\":\"examples\",\"records\":4}",
		  "mem: record 5: the end record has no \"records\" number or no \"counts\" map" },
	};
	size_t len, len0, n;
	char *whole = make_stream(&len, 3);
	char *cut = make_stream_to(&len0, 3, 0);
	char *b;
	struct mtl_err err;

	T_OK(len0 < len && !memcmp(whole, cut, len0), "the end record comes last");
	T_OK(read_all(cut, len0, &err) < 0 &&
	     !strcmp(err.msg, "mem: truncated stream (no end record after 4 records)"),
	     "a stream cut after a whole record is an error: %s", err.msg);
	free(cut);
	cut = make_stream_to(&len0, 0, 0);
	T_OK(read_all(cut, len0, &err) < 0 &&
	     !strcmp(err.msg, "mem: truncated stream (no end record after 1 record)"),
	     "a header alone is an error: %s", err.msg);
	free(cut);
	cut = make_stream_to(&len0, 0, 1);
	T_OK(read_all(cut, len0, &err) == 2, "a header and its end record are an empty stream");
	free(cut);

	n = len;
	b = append_json(whole, &n, "{\"type\":\"example\"}");
	T_OK(read_all(b, n, &err) < 0 &&
	     !strcmp(err.msg, "mem: record 6: data after the end record"),
	     "a record after the end record is an error: %s", err.msg);
	free(b);
	n = len;
	b = append_json(whole, &n, "{\"type\":\"end\",\"stream\":\"examples\",\"records\":5,\"counts\":{\"example\":3}}");
	T_OK(read_all(b, n, &err) < 0 && strstr(err.msg, "record 6: data after the end record"),
	     "a second end record is an error: %s", err.msg);
	free(b);

	cut = make_stream_to(&len0, 3, 0);
	n = len0;
	b = append_json(cut, &n, "{\"type\":\"end\",\"stream\":\"examples\",\"records\":4,\"counts\":{\"example\":3}}");
	T_OK(n == len && !memcmp(b, whole, len), "the writer's end record is the documented one");
	free(b);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = len0;
		b = append_json(cut, &n, bad[i].end);
		T_OK(read_all(b, n, &err) < 0 && !strcmp(err.msg, bad[i].msg),
		     "end record %zu refused: %s", i, err.msg);
		free(b);
	}
	free(cut);
	free(whole);
}

static void test_old_format(void)
{
	static const char *const old[] = {
		"{\"type\":\"header\",\"stream\":\"x\",\"version\":[1,0]}",
		"{\"type\":\"y\"}",
	};
	static const char *const old_ended[] = {
		"{\"type\":\"header\",\"stream\":\"x\",\"version\":[1,0]}",
		"{\"type\":\"y\"}",
		"{\"type\":\"end\",\"stream\":\"x\",\"records\":2,\"counts\":{\"y\":1}}",
	};
	static const char *const new[] = {
		"{\"type\":\"header\",\"stream\":\"x\",\"version\":[1,1]}",
		"{\"type\":\"y\"}",
	};
	struct mtl_err err;

	T_OK(read_json(old, 2, &err) < 0 &&
	     !strcmp(err.msg, "mem: truncated stream (no end record after 2 records); "
		     "format 1.0 streams have none: mtl-dump OLD | mtl-dump --pack adds it"),
	     "a 1.0 stream without an end record is refused: %s", err.msg);
	T_OK(read_json(old_ended, 3, &err) == 3, "a 1.0 stream with one reads");
	T_OK(read_json_old(old, 2, &err) == 0,
	     "accept_old: a 1.0 stream ends without one, and the reader says so");
	T_OK(read_json_old(old_ended, 3, &err) == 1, "accept_old: or with one");
	T_OK(read_json_old(new, 2, &err) < 0 && strstr(err.msg, "truncated stream"),
	     "accept_old still refuses a 1.1 stream without one: %s", err.msg);
}

/* Packs {"type": type} as the writer's next record; mtl_mp_end's status. */
static int write_typed(struct mtl_mp_writer *w, const char *type, struct mtl_err *err)
{
	msgpack_packer *pk = mtl_mp_pk(w);

	msgpack_pack_map(pk, 2);
	mtl_mp_pack_str(pk, "n");
	msgpack_pack_int(pk, 7);
	mtl_mp_pack_str(pk, "type");
	mtl_mp_pack_str(pk, type);
	return mtl_mp_end(w, err);
}

static void test_writer_counts(void)
{
	char *buf = NULL, *json = NULL, *b;
	size_t len = 0, jlen = 0;
	FILE *f = open_memstream(&buf, &len);
	struct mtl_mp_writer *w = mtl_mp_writer_new(f, "mem");
	struct mtl_mp_reader *r;
	msgpack_object rec;
	struct mtl_err err;
	char type[16];
	int rc = 0;

	T_OK(mtl_mp_finish(w, &err) == MTL_ERR_ARG, "no end record before a header: %s", err.msg);
	mtl_mp_pack_header(mtl_mp_pk(w), "x", "prog", 0, NULL, 0);
	mtl_mp_end(w, NULL);
	T_OK(write_typed(w, "b", &err) == 0 && write_typed(w, "a", &err) == 0 &&
	     write_typed(w, "b", &err) == 0, "records typed b, a, b (type not the first key)");
	T_OK(write_typed(w, "end", &err) == MTL_ERR_ARG,
	     "an end record through mtl_mp_end is refused: %s", err.msg);
	msgpack_pack_map(mtl_mp_pk(w), 0);
	T_OK(mtl_mp_end(w, &err) == MTL_ERR_ARG, "a record without a type is refused: %s", err.msg);
	T_OK(mtl_mp_finish(w, &err) == 0, "finish");
	T_OK(write_typed(w, "c", &err) == MTL_ERR_ARG && mtl_mp_finish(w, &err) == MTL_ERR_ARG,
	     "nothing after the end record: %s", err.msg);
	mtl_mp_writer_free(w);
	fclose(f);
	f = fmemopen(buf, len, "rb");
	r = mtl_mp_reader_new(f, "mem");
	while (mtl_mp_read(r, &rec, &err) == 1)
		;
	f = open_memstream(&json, &jlen);
	mtl_mp_to_json(f, &rec, NULL);
	fclose(f);
	T_OK(!strcmp(json, "{\"type\":\"end\",\"stream\":\"x\",\"records\":4,\"counts\":{\"b\":2,\"a\":1}}"),
	     "the end record counts by type, in order of appearance: %s", json);
	T_OK(mtl_mp_reader_ended(r) && mtl_mp_reader_record(r) == 5, "and reads back");
	mtl_mp_reader_free(r);
	free(json);
	free(buf);

	/* at most 256 types: the writer refuses the 257th */
	buf = NULL;
	f = open_memstream(&buf, &len);
	w = mtl_mp_writer_new(f, "mem");
	mtl_mp_pack_header(mtl_mp_pk(w), "x", "prog", 0, NULL, 0);
	mtl_mp_end(w, NULL);
	for (int i = 0; i < 257 && !rc; i++) {
		snprintf(type, sizeof(type), "t%d", i);
		rc = write_typed(w, type, &err);
	}
	T_OK(rc == MTL_ERR_FORMAT && strstr(err.msg, "more than 256 record types"),
	     "a 257th record type is refused: %s", err.msg);
	mtl_mp_writer_free(w);
	fclose(f);
	/* and so does a reader: the 256 types as written, then a 257th */
	b = append_json(buf, &len, "{\"type\":\"t256\"}");
	T_OK(read_all(b, len, &err) < 0 && strstr(err.msg, "record 258: more than 256 record types"),
	     "a reader refuses a 257th type: %s", err.msg);
	free(b);
	free(buf);
}

/* A pipe whose writer stays open: each record is returned as it comes. */
static void test_pipe(void)
{
	size_t len;
	char *buf = make_stream_to(&len, 1, 0);
	struct mtl_mp_reader *r;
	msgpack_object rec;
	struct mtl_err err;
	int fd[2];
	FILE *f;

	if (pipe(fd)) {
		T_OK(0, "pipe");
		return;
	}
	/* a reader that waits for more bytes than the pipe holds hangs:
	 * the alarm then ends the test as a failure */
	alarm(60);
	T_OK(write(fd[1], buf, len) == (ssize_t)len, "2 records into a pipe kept open");
	f = fdopen(fd[0], "rb");
	r = mtl_mp_reader_new(f, "pipe");
	T_OK(mtl_mp_read(r, &rec, &err) == 1 && mtl_mp_read(r, &rec, &err) == 1,
	     "both read before the writer closes");
	close(fd[1]);
	T_OK(mtl_mp_read(r, &rec, &err) < 0 &&
	     !strcmp(err.msg, "pipe: truncated stream (no end record after 2 records)"),
	     "then the writer goes without an end record: %s", err.msg);
	alarm(0);
	mtl_mp_reader_free(r);
	fclose(f);
	free(buf);
}

/*
 * A multi-megabyte record through a pipe arrives in reads of at most the
 * pipe's 64 KiB: the reader goes on scanning where the last read left it,
 * so it looks at each byte about once.  Scanning the record again from its
 * start after every read would look at over 30 times its size.
 */
static void test_pipe_big_record(void)
{
	enum { N = 1400000 }; /* 3-byte integers: a 4.2 MB record */
	size_t len, scanned;
	char *buf = NULL;
	FILE *f = open_memstream(&buf, &len);
	struct mtl_mp_writer *w = mtl_mp_writer_new(f, "mem");
	msgpack_packer *pk = mtl_mp_pk(w);
	struct mtl_mp_reader *r;
	msgpack_object rec;
	struct mtl_err err;
	int fd[2], rc, ok;
	pid_t pid;

	mtl_mp_pack_header(pk, "x", "prog", 0, NULL, 0);
	mtl_mp_end(w, NULL);
	msgpack_pack_map(pk, 2);
	mtl_mp_pack_str(pk, "type");
	mtl_mp_pack_str(pk, "big");
	mtl_mp_pack_str(pk, "v");
	msgpack_pack_array(pk, N);
	for (int i = 0; i < N; i++)
		msgpack_pack_int(pk, 1000 + i % 1000);
	mtl_mp_end(w, NULL);
	mtl_mp_finish(w, NULL);
	mtl_mp_writer_free(w);
	fclose(f);
	if (pipe(fd)) {
		T_OK(0, "pipe");
		free(buf);
		return;
	}
	/* 64 KiB on every page size (the default is 16 pages) */
	fcntl(fd[1], F_SETPIPE_SZ, 65536);
	pid = fork();
	if (pid == 0) {
		close(fd[0]);
		_exit(write(fd[1], buf, len) == (ssize_t)len ? 0 : 1);
	}
	close(fd[1]);
	f = fdopen(fd[0], "rb");
	r = mtl_mp_reader_new(f, "pipe");
	ok = mtl_mp_read(r, &rec, &err) == 1 && mtl_mp_read(r, &rec, &err) == 1;
	ok = ok && mtl_mp_get(&rec, "v") && mtl_mp_get(&rec, "v")->via.array.size == N &&
	     mtl_mp_get(&rec, "v")->via.array.ptr[N - 1].via.u64 == 1000 + (N - 1) % 1000;
	T_OK(ok, "a %zu-byte record is read whole from a pipe", len);
	while ((rc = mtl_mp_read(r, &rec, &err)) > 0)
		;
	T_OK(rc == 0, "then the end record and the end of input: %s", rc ? err.msg : "");
	scanned = mtl_mp_reader_scanned(r);
	T_OK(scanned >= len - 1 && scanned <= 2 * len,
	     "the reader scanned %zu bytes for a %zu-byte stream", scanned, len);
	waitpid(pid, &rc, 0);
	mtl_mp_reader_free(r);
	fclose(f);
	free(buf);
}

/*
 * A stream written into a pipe one byte at a time mostly arrives in reads
 * that end inside an element: the scan goes on from the last whole element
 * and finds the same records as in one piece.
 */
static void test_pipe_bytewise(void)
{
	size_t len;
	char *buf = make_stream(&len, 50);
	struct mtl_mp_reader *r;
	msgpack_object rec;
	struct mtl_err err;
	int fd[2], rc, st;
	long n = 0;
	pid_t pid;
	FILE *f;

	if (pipe(fd)) {
		T_OK(0, "pipe");
		free(buf);
		return;
	}
	pid = fork();
	if (pid == 0) {
		close(fd[0]);
		for (size_t i = 0; i < len; i++)
			if (write(fd[1], buf + i, 1) != 1)
				_exit(1);
		_exit(0);
	}
	close(fd[1]);
	f = fdopen(fd[0], "rb");
	r = mtl_mp_reader_new(f, "pipe");
	while ((rc = mtl_mp_read(r, &rec, &err)) > 0)
		n++;
	T_OK(rc == 0 && n == 52, "%ld records (52) from a pipe written bytewise: %s",
	     n, rc ? err.msg : "");
	T_OK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st),
	     "the writer wrote them all");
	mtl_mp_reader_free(r);
	fclose(f);
	free(buf);
}

int main(void)
{
	test_round_trip();
	test_truncation();
	test_garbage();
	test_bad_records();
	test_decoded_size();
	test_json();
	test_end_record();
	test_old_format();
	test_writer_counts();
	test_pipe();
	test_pipe_big_record();
	test_pipe_bytewise();
	return t_done();
}
