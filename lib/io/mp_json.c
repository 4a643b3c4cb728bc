/* mp_json.c - msgpack values to and from JSON; see mp.h. */
#include "mp_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
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
