/*
 * test_mp.c - the stream library: writing and reading back, typed arrays,
 * header checks, and bad input of every kind (truncation at every byte,
 * random bytes, corrupt sizes) giving an error, never a crash.
 */
#include <stdlib.h>
#include <string.h>

#include "mp.h"
#include "t.h"

/* Writes a small stream into a memory buffer; returns its bytes. */
static char *make_stream(size_t *len, int n_records)
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
	mtl_mp_writer_free(w);
	fclose(f);
	return buf;
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

	T_OK(read_all(buf, len, &err) == 5, "whole stream reads 5 records");
	for (size_t cut = 0; cut < len; cut++) {
		long n = read_all(buf, cut, &err);
		/* a cut at a record boundary is a shorter valid stream */
		if (n < 0 && !strstr(err.msg, "truncated") && !strstr(err.msg, "empty input"))
			bad++;
		if (n >= 0 && cut != 0 && n > 5)
			bad++;
	}
	T_OK(bad == 0, "every truncation is an error saying 'truncated' or a shorter stream");
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
	size_t n_big = (size_t)4 << 20, n_ok = (size_t)1 << 20;
	char *buf = malloc(64 + n_big), *p;
	struct mtl_err err;

	if (!buf)
		return;
	for (int big = 1; big >= 0; big--) {
		size_t n = big ? n_big : n_ok;

		p = buf;
		memcpy(p, hdr, sizeof(hdr));
		p += sizeof(hdr);
		memcpy(p, rec, sizeof(rec));
		p += sizeof(rec);
		for (int k = 3; k >= 0; k--)
			*p++ = (char)(n >> (8 * k));
		memset(p, big ? 0xc0 : 0x00, n); /* nils, or zeros */
		p += n;
		if (big)
			T_OK(read_all(buf, (size_t)(p - buf), &err) < 0 &&
			     strstr(err.msg, "record 2: 4194309 elements in 4194319 bytes would decode"),
			     "4 M nils refused before decoding: '%s'", err.msg);
		else
			T_OK(read_all(buf, (size_t)(p - buf), &err) == 2,
			     "1 M small integers are read");
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

int main(void)
{
	test_round_trip();
	test_truncation();
	test_garbage();
	test_bad_records();
	test_decoded_size();
	test_json();
	return t_done();
}
