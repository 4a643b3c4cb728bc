/*
 * test_st.c - safetensors reader and writer: a writer round trip, every
 * dtype conversion, and one corrupt file per validation rule, each checked
 * for failure and for a message that names the tensor or the problem.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "st.h"
#include "t.h"

static char dir[] = "/tmp/test_st.XXXXXX";
static char path[512];

/* Writes an 8-byte length, the header text and data_len bytes of data. */
static void write_raw(const char *hdr, uint64_t claimed_len,
		      const void *data, size_t data_len)
{
	FILE *f = fopen(path, "wb");
	unsigned char len8[8];

	for (int i = 0; i < 8; i++)
		len8[i] = (unsigned char)(claimed_len >> (8 * i));
	fwrite(len8, 1, 8, f);
	fwrite(hdr, 1, strlen(hdr), f);
	if (data_len) {
		if (data)
			fwrite(data, 1, data_len, f);
		else
			for (size_t i = 0; i < data_len; i++)
				fputc(0, f);
	}
	fclose(f);
}

/* Opens path expecting failure whose message contains every needle. */
static void expect_fail(const char *what, const char *n1, const char *n2)
{
	struct mtl_st *st = NULL;
	struct mtl_err err = { "" };
	int rc = mtl_st_open(&st, path, &err);

	T_OK(rc == MTL_ERR_FORMAT && st == NULL, "%s: open fails with MTL_ERR_FORMAT (rc=%d)",
	     what, rc);
	T_OK(strstr(err.msg, n1) && (!n2 || strstr(err.msg, n2)) &&
		     strstr(err.msg, "test.safetensors"),
	     "%s: message names it: %s", what, err.msg);
	mtl_st_close(st);
}

static void corrupt_cases(void)
{
	const char *h;

	write_raw("", 0, NULL, 0);
	{ /* 5 bytes only */
		FILE *f = fopen(path, "wb");

		fwrite("\x10\0\0\0\0", 1, 5, f);
		fclose(f);
	}
	expect_fail("truncated file", "truncated", NULL);

	h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
	write_raw(h, strlen(h) + 100, NULL, 8);
	expect_fail("header length beyond file", "header length", "beyond");

	h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
	    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
	write_raw(h, strlen(h), NULL, 12);
	expect_fail("overlapping ranges", "overlaps", "'a'");

	h = "{\"big\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
	    "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
	    "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
	write_raw(h, strlen(h), NULL, 16);
	expect_fail("range covering two later ones", "overlaps", "'big'");

	h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}";
	write_raw(h, strlen(h), NULL, 8);
	expect_fail("shape disagreeing with byte range", "'w'", "12 bytes");

	h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
	    "\"data_offsets\":[0,0]}}";
	write_raw(h, strlen(h), NULL, 0);
	expect_fail("shape product overflow", "'w'", "overflow");

	h = "{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,2]}}";
	write_raw(h, strlen(h), NULL, 2);
	expect_fail("unknown dtype", "'w'", "unknown dtype 'Q4'");

	h = "[1,2,3]";
	write_raw(h, strlen(h), NULL, 0);
	expect_fail("non-object JSON", "not a JSON object", NULL);

	h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],";
	write_raw(h, strlen(h), NULL, 0);
	expect_fail("invalid JSON", "not valid JSON", NULL);

	h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}";
	write_raw(h, strlen(h), NULL, 8);
	expect_fail("offsets out of range", "'w'", "out of range");

	h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}";
	write_raw(h, strlen(h), NULL, 8);
	expect_fail("negative offsets", "'w'", "non-negative");

	h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
	    "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}";
	write_raw(h, strlen(h), NULL, 16);
	expect_fail("duplicate names", "duplicate name", "\"w\"");

	h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}";
	write_raw(h, strlen(h), NULL, 0);
	expect_fail("negative dimension", "'w'", "shape[0]");

	h = "{\"__metadata__\":{\"k\":3}}";
	write_raw(h, strlen(h), NULL, 0);
	expect_fail("non-string metadata", "__metadata__", "'k'");
}

static void round_trip(void)
{
	float a[6] = { 1, -2, 3.5f, 0, 1e-30f, -7 }, b[1] = { 42 };
	struct mtl_st_out out[3] = {
		{ .name = "z.last", .ndim = 2, .shape = { 2, 3 }, .data = a },
		{ .name = "a.first", .ndim = 1, .shape = { 1 }, .data = b },
		{ .name = "empty", .ndim = 2, .shape = { 0, 4 }, .data = NULL },
	};
	const char *meta[] = { "format", "pt", "note", "quote\" and \\" };
	struct mtl_st *st = NULL;
	struct mtl_err err = { "" };
	const struct mtl_st_tensor *t;
	float got[6];
	int rc;

	rc = mtl_st_write(path, out, 3, meta, 2, &err);
	T_OK(rc == 0, "write succeeds: %s", err.msg);
	rc = mtl_st_open(&st, path, &err);
	T_OK(rc == 0, "reopen succeeds: %s", err.msg);
	if (rc)
		return;
	T_OK(mtl_st_count(st) == 3, "three tensors");
	T_OK(!strcmp(mtl_st_at(st, 0)->name, "a.first") &&
		     !strcmp(mtl_st_at(st, 2)->name, "z.last"),
	     "written in name order");
	T_OK(mtl_st_meta(st, "format") && !strcmp(mtl_st_meta(st, "format"), "pt"),
	     "metadata format");
	T_OK(mtl_st_meta(st, "note") &&
		     !strcmp(mtl_st_meta(st, "note"), "quote\" and \\"),
	     "metadata with JSON escapes");
	T_OK(mtl_st_meta(st, "missing") == NULL, "absent metadata is NULL");
	t = mtl_st_find(st, "z.last");
	T_OK(t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 &&
		     t->dtype == MTL_ST_F32 && t->nbytes == 24,
	     "z.last header");
	T_OK(t && mtl_st_read_f32(t, got, 6, &err) == 0 && !memcmp(got, a, sizeof(a)),
	     "z.last data bit-exact");
	T_OK(t && mtl_st_read_f32(t, got, 5, &err) == MTL_ERR_FORMAT &&
		     strstr(err.msg, "'z.last'"),
	     "wrong count rejected: %s", err.msg);
	t = mtl_st_find(st, "empty");
	T_OK(t && t->numel == 0 && t->nbytes == 0, "empty tensor");
	T_OK(mtl_st_find(st, "nope") == NULL, "find of absent name is NULL");
	mtl_st_close(st);
	mtl_st_close(NULL);

	out[1].name = "z.last";
	rc = mtl_st_write(path, out, 2, NULL, 0, &err);
	T_OK(rc == MTL_ERR_ARG && strstr(err.msg, "duplicate tensor name 'z.last'"),
	     "writer rejects duplicate names: %s", err.msg);
	rc = mtl_st_write("/nonexistent-dir/x.safetensors", out, 1, NULL, 0, &err);
	T_OK(rc == MTL_ERR_IO && strstr(err.msg, "cannot create"),
	     "writer reports an unwritable directory: %s", err.msg);
}

static void conversions(void)
{
	/* F16: 1, -2, 65504, 2^-24 (smallest subnormal), inf, 0.5 */
	uint16_t f16[6] = { 0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x3800 };
	float f16_want[6] = { 1, -2, 65504, 0x1p-24f, INFINITY, 0.5f };
	/* BF16: 1, -3.5 */
	uint16_t bf16[2] = { 0x3f80, 0xc060 };
	double f64[2] = { 0.1, -1e10 };
	int64_t i64[3] = { 7, -8, 5000000000LL };
	int8_t i8[2] = { -5, 127 };
	unsigned char data[64];
	char h[512];
	struct mtl_st *st = NULL;
	struct mtl_err err = { "" };
	float f[6];
	int32_t iv[3];
	size_t off = 0;

	memcpy(data + off, f16, 12), off += 12;
	memcpy(data + off, bf16, 4), off += 4;
	memcpy(data + off, f64, 16), off += 16;
	memcpy(data + off, i64, 24), off += 24;
	memcpy(data + off, i8, 2), off += 2;
	snprintf(h, sizeof(h),
		 "{\"h\":{\"dtype\":\"F16\",\"shape\":[6],\"data_offsets\":[0,12]},"
		 "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[12,16]},"
		 "\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[16,32]},"
		 "\"l\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[32,56]},"
		 "\"c\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[56,58]}}");
	write_raw(h, strlen(h), data, off);
	T_OK(mtl_st_open(&st, path, &err) == 0, "mixed-dtype file opens: %s", err.msg);
	if (!st)
		return;
	T_OK(mtl_st_read_f32(mtl_st_find(st, "h"), f, 6, &err) == 0 &&
		     !memcmp(f, f16_want, sizeof(f16_want)),
	     "F16 to F32 exact, subnormal and inf included");
	T_OK(mtl_st_read_f32(mtl_st_find(st, "b"), f, 2, &err) == 0 && f[0] == 1 &&
		     f[1] == -3.5f,
	     "BF16 to F32");
	T_OK(mtl_st_read_f32(mtl_st_find(st, "d"), f, 2, &err) == 0 &&
		     f[0] == (float)0.1 && f[1] == -1e10f,
	     "F64 to F32");
	T_OK(mtl_st_read_i32(mtl_st_find(st, "l"), iv, 3, &err) == MTL_ERR_FORMAT &&
		     strstr(err.msg, "'l'") && strstr(err.msg, "32 bits"),
	     "I64 beyond int32 rejected: %s", err.msg);
	T_OK(mtl_st_read_i32(mtl_st_find(st, "c"), iv, 2, &err) == 0 && iv[0] == -5 &&
		     iv[1] == 127,
	     "I8 to I32");
	T_OK(mtl_st_read_f32(mtl_st_find(st, "c"), f, 2, &err) == MTL_ERR_FORMAT &&
		     strstr(err.msg, "not floating point"),
	     "integer tensor refused as float: %s", err.msg);
	T_OK(mtl_st_read_i32(mtl_st_find(st, "h"), iv, 6, &err) == MTL_ERR_FORMAT,
	     "float tensor refused as integer");
	T_OK(!strcmp(mtl_st_at(st, 0)->name, "h") && !strcmp(mtl_st_at(st, 4)->name, "c"),
	     "tensors listed in data-offset order");
	mtl_st_close(st);
}

/* A tensor of several pages read, released, and read again: the same
 * bytes (the release lets go of the mapping's pages, not of the file). */
static void release(void)
{
	enum { N = 5000 };
	static float a[N], got[N];
	struct mtl_st_out out = { .name = "big", .ndim = 1, .shape = { N }, .data = a };
	struct mtl_st *st = NULL;
	struct mtl_err err = { "" };
	const struct mtl_st_tensor *t;
	int ok;

	for (int i = 0; i < N; i++)
		a[i] = (float)i * 0.25f - 7.0f;
	ok = mtl_st_write(path, &out, 1, NULL, 0, &err) == 0 &&
	     mtl_st_open(&st, path, &err) == 0 && (t = mtl_st_find(st, "big")) &&
	     mtl_st_read_f32(t, got, N, &err) == 0 && !memcmp(got, a, sizeof(a));
	if (ok) {
		mtl_st_release(t);
		memset(got, 0, sizeof(got));
		ok = mtl_st_read_f32(t, got, N, &err) == 0 &&
		     !memcmp(got, a, sizeof(a));
	}
	T_OK(ok, "a released tensor reads the same again: %s", err.msg);
	mtl_st_close(st);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/test.safetensors", dir);
	round_trip();
	conversions();
	corrupt_cases();
	release();
	unlink(path);
	rmdir(dir);
	return t_done();
}
