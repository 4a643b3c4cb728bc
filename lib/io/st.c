/*
 * st.c - safetensors reading and writing; see st.h.
 *
 * Reading maps the whole file read-only and parses the JSON header with
 * jansson.  Every tensor entry is checked before the handle is returned, so
 * later calls never need to re-check an offset: a tensor's data pointer and
 * byte count always lie inside the mapping.  Tensor names and metadata
 * strings are borrowed from the parsed JSON, which lives as long as the
 * handle.
 *
 * The format is little-endian; so is every host we build for (x86-64,
 * aarch64), which the static assertion below makes explicit.
 */
#include "st.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "fs.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "safetensors data is little-endian; a big-endian host needs byte swapping");

/* Largest header accepted, as the Python library does (100 MB). */
#define ST_MAX_HEADER ((uint64_t)100 << 20)

struct st_entry {
	struct mtl_st_tensor t;
	uint64_t begin, end; /* relative to the data block */
};

struct mtl_st {
	void *map;
	size_t map_len;
	json_t *root;
	struct st_entry *ent;       /* in data-offset order */
	const struct st_entry **by_name; /* sorted by name, for mtl_st_find */
	size_t n;
	json_t *meta; /* borrowed from root, or NULL */
};

static const struct {
	const char *name;
	size_t size;
} dtypes[] = {
	[MTL_ST_F32] = { "F32", 4 },  [MTL_ST_F16] = { "F16", 2 },
	[MTL_ST_BF16] = { "BF16", 2 }, [MTL_ST_F64] = { "F64", 8 },
	[MTL_ST_I64] = { "I64", 8 },  [MTL_ST_I32] = { "I32", 4 },
	[MTL_ST_I16] = { "I16", 2 },  [MTL_ST_I8] = { "I8", 1 },
	[MTL_ST_U8] = { "U8", 1 },    [MTL_ST_BOOL] = { "BOOL", 1 },
};
#define N_DTYPES (sizeof(dtypes) / sizeof(dtypes[0]))

const char *mtl_st_dtype_name(enum mtl_st_dtype dt)
{
	if ((unsigned)dt >= N_DTYPES)
		return "?";
	return dtypes[dt].name;
}

static int cmp_begin(const void *a, const void *b)
{
	const struct st_entry *x = a, *y = b;

	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	const struct st_entry *const *x = a, *const *y = b;

	return strcmp((*x)->t.name, (*y)->t.name);
}

/* A JSON integer in [0, INT64_MAX], or -1. */
static int64_t json_nonneg(const json_t *v)
{
	json_int_t i;

	if (!json_is_integer(v))
		return -1;
	i = json_integer_value(v);
	return i < 0 ? -1 : (int64_t)i;
}

/*
 * Checks one header entry and fills e (data pointer not yet set).  data_len
 * is the size of the data block.  On error the message names the tensor;
 * the caller prefixes the file name.
 */
static int parse_entry(struct st_entry *e, const char *name, json_t *v,
		       uint64_t data_len, struct mtl_err *err)
{
	json_t *dt, *shape, *offs, *x;
	const char *dts;
	uint64_t numel = 1, nbytes;
	size_t i;
	int d;

	if (!json_is_object(v))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "tensor '%s': entry is not a JSON object", name);
	dt = json_object_get(v, "dtype");
	shape = json_object_get(v, "shape");
	offs = json_object_get(v, "data_offsets");
	if (!json_is_string(dt))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "tensor '%s': missing or non-string dtype", name);
	dts = json_string_value(dt);
	for (d = 0; d < (int)N_DTYPES; d++)
		if (!strcmp(dts, dtypes[d].name))
			break;
	if (d == (int)N_DTYPES)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "tensor '%s': unknown dtype '%.32s'", name, dts);
	if (!json_is_array(shape))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "tensor '%s': missing or non-array shape", name);
	if (json_array_size(shape) > MTL_ST_MAX_DIMS)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "tensor '%s': %zu dimensions, at most %d supported",
				   name, json_array_size(shape), MTL_ST_MAX_DIMS);
	memset(e, 0, sizeof(*e));
	e->t.name = name;
	e->t.dtype = (enum mtl_st_dtype)d;
	e->t.ndim = (int)json_array_size(shape);
	json_array_foreach(shape, i, x) {
		int64_t s = json_nonneg(x);

		if (s < 0)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "tensor '%s': shape[%zu] is not a non-negative integer",
					   name, i);
		e->t.shape[i] = s;
		if (s && numel > UINT64_MAX / (uint64_t)s)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "tensor '%s': shape product overflows", name);
		numel *= (uint64_t)s;
	}
	if (numel > UINT64_MAX / dtypes[d].size || numel > INT64_MAX)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "tensor '%s': byte size overflows", name);
	nbytes = numel * dtypes[d].size;
	if (!json_is_array(offs) || json_array_size(offs) != 2)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "tensor '%s': data_offsets is not a pair", name);
	{
		int64_t b = json_nonneg(json_array_get(offs, 0));
		int64_t en = json_nonneg(json_array_get(offs, 1));

		if (b < 0 || en < 0)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "tensor '%s': data_offsets are not non-negative integers",
					   name);
		if (b > en)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "tensor '%s': data_offsets [%lld, %lld] end before they begin",
					   name, (long long)b, (long long)en);
		if ((uint64_t)en > data_len)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "tensor '%s': data_offsets [%lld, %lld] out of range (data block is %llu bytes)",
					   name, (long long)b, (long long)en,
					   (unsigned long long)data_len);
		e->begin = (uint64_t)b;
		e->end = (uint64_t)en;
	}
	if (e->end - e->begin != nbytes)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "tensor '%s': shape needs %llu bytes but data_offsets span %llu",
				   name, (unsigned long long)nbytes,
				   (unsigned long long)(e->end - e->begin));
	e->t.numel = (int64_t)numel;
	e->t.nbytes = (size_t)nbytes;
	return 0;
}

/* Validates the header held in st->map; fills st->root, ent, by_name, meta. */
static int parse_header(struct mtl_st *st, const char *hdr, size_t hlen,
			uint64_t data_len, struct mtl_err *err)
{
	json_error_t je;
	const char *key;
	json_t *v;
	size_t n = 0, i;
	const unsigned char *data = (const unsigned char *)hdr + hlen;
	int rc;

	st->root = json_loadb(hdr, hlen, JSON_REJECT_DUPLICATES, &je);
	if (!st->root) {
		if (json_error_code(&je) == json_error_duplicate_key)
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "duplicate name in header (%s)", je.text);
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "header is not valid JSON: %s at byte %d", je.text,
				   je.position);
	}
	if (!json_is_object(st->root))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "header is not a JSON object");
	st->meta = json_object_get(st->root, "__metadata__");
	if (st->meta) {
		if (!json_is_object(st->meta))
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "__metadata__ is not a JSON object");
		json_object_foreach(st->meta, key, v)
			if (!json_is_string(v))
				return mtl_err_set(err, MTL_ERR_FORMAT,
						   "__metadata__ value '%s' is not a string",
						   key);
	}
	n = json_object_size(st->root) - (st->meta ? 1 : 0);
	st->ent = calloc(n ? n : 1, sizeof(*st->ent));
	st->by_name = calloc(n ? n : 1, sizeof(*st->by_name));
	if (!st->ent || !st->by_name)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	i = 0;
	json_object_foreach(st->root, key, v) {
		if (!strcmp(key, "__metadata__"))
			continue;
		rc = parse_entry(&st->ent[i], key, v, data_len, err);
		if (rc)
			return rc;
		i++;
	}
	st->n = n;
	qsort(st->ent, n, sizeof(*st->ent), cmp_begin);
	/* Sorted by begin, so carrying the furthest end seen so far catches a
	 * long range covering several later ones.  Empty ranges overlap
	 * nothing. */
	{
		uint64_t far = 0;
		size_t far_i = 0;

		for (i = 0; i < n; i++) {
			struct st_entry *e = &st->ent[i];

			if (e->begin < far && e->end > e->begin)
				return mtl_err_set(err, MTL_ERR_FORMAT,
						   "tensor '%s': data range [%llu, %llu) overlaps tensor '%s' [%llu, %llu)",
						   e->t.name, (unsigned long long)e->begin,
						   (unsigned long long)e->end,
						   st->ent[far_i].t.name,
						   (unsigned long long)st->ent[far_i].begin,
						   (unsigned long long)st->ent[far_i].end);
			if (e->end > far) {
				far = e->end;
				far_i = i;
			}
			e->t.data = data + e->begin;
			st->by_name[i] = e;
		}
	}
	qsort(st->by_name, n, sizeof(*st->by_name), cmp_name);
	return 0;
}

int mtl_st_open(struct mtl_st **out, const char *path, struct mtl_err *err)
{
	struct mtl_st *st;
	struct stat sb;
	uint64_t hlen = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mtl_err_set(err, MTL_ERR_IO, "cannot open '%s': %s", path,
				   strerror(errno));
	if (fstat(fd, &sb) < 0) {
		rc = mtl_err_set(err, MTL_ERR_IO, "cannot stat '%s': %s", path,
				 strerror(errno));
		close(fd);
		return rc;
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		return mtl_err_set(err, MTL_ERR_IO, "'%s': not a regular file", path);
	}
	if (sb.st_size < 8) {
		close(fd);
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "'%s': truncated file (%lld bytes, need at least 8)",
				   path, (long long)sb.st_size);
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		close(fd);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	st->map_len = (size_t)sb.st_size;
	st->map = mmap(NULL, st->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (st->map == MAP_FAILED) {
		st->map = NULL;
		rc = mtl_err_set(err, MTL_ERR_IO, "cannot map '%s': %s", path,
				 strerror(errno));
		goto fail;
	}
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | ((const unsigned char *)st->map)[i];
	if (hlen > st->map_len - 8) {
		rc = mtl_err_set(err, MTL_ERR_FORMAT,
				 "'%s': header length %llu beyond the end of the file (%zu bytes)",
				 path, (unsigned long long)hlen, st->map_len);
		goto fail;
	}
	if (hlen > ST_MAX_HEADER) {
		rc = mtl_err_set(err, MTL_ERR_FORMAT,
				 "'%s': header length %llu too large", path,
				 (unsigned long long)hlen);
		goto fail;
	}
	rc = parse_header(st, (const char *)st->map + 8, (size_t)hlen,
			  st->map_len - 8 - hlen, err);
	if (rc) {
		mtl_err_prefix(err, rc, "'%s'", path);
		goto fail;
	}
	*out = st;
	return 0;
fail:
	mtl_st_close(st);
	return rc;
}

void mtl_st_close(struct mtl_st *st)
{
	if (!st)
		return;
	if (st->map)
		munmap(st->map, st->map_len);
	json_decref(st->root);
	free(st->ent);
	free(st->by_name);
	free(st);
}

size_t mtl_st_count(const struct mtl_st *st)
{
	return st->n;
}

const struct mtl_st_tensor *mtl_st_at(const struct mtl_st *st, size_t i)
{
	return i < st->n ? &st->ent[i].t : NULL;
}

const struct mtl_st_tensor *mtl_st_find(const struct mtl_st *st,
					const char *name)
{
	size_t lo = 0, hi = st->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, st->by_name[mid]->t.name);

		if (!c)
			return &st->by_name[mid]->t;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const char *mtl_st_meta(const struct mtl_st *st, const char *key)
{
	if (!st->meta)
		return NULL;
	return json_string_value(json_object_get(st->meta, key));
}

/* IEEE binary16 to binary32, exact (every half is a float). */
static float half_to_float(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
	float f;

	if (exp == 0x1f) {
		bits = sign | 0x7f800000u | man << 13; /* inf or nan */
	} else if (exp) {
		bits = sign | (exp + 112) << 23 | man << 13;
	} else if (man) {
		/* Subnormal: man * 2^-24, exact in float. */
		f = (float)man * 0x1p-24f;
		memcpy(&bits, &f, 4);
		bits |= sign;
	} else {
		bits = sign;
	}
	memcpy(&f, &bits, 4);
	return f;
}

/* The error of a tensor read into n elements that has another count. */
static int wrong_numel(const struct mtl_st_tensor *t, int64_t n,
		       struct mtl_err *err)
{
	return mtl_err_set(err, MTL_ERR_FORMAT,
			   "tensor '%s': has %lld elements, expected %lld",
			   t->name, (long long)t->numel, (long long)n);
}

void mtl_st_release(const struct mtl_st_tensor *t)
{
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = ((uintptr_t)t->data + pg - 1) & ~(pg - 1);
	uintptr_t hi = ((uintptr_t)t->data + t->nbytes) & ~(pg - 1);

	if (hi > lo)
		madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

int mtl_st_read_f32(const struct mtl_st_tensor *t, float *dst, int64_t n,
		    struct mtl_err *err)
{
	const unsigned char *p = t->data;

	if (t->numel != n)
		return wrong_numel(t, n, err);
	switch (t->dtype) {
	case MTL_ST_F32:
		memcpy(dst, p, (size_t)n * 4);
		break;
	case MTL_ST_F16:
		for (int64_t i = 0; i < n; i++) {
			uint16_t h;

			memcpy(&h, p + 2 * i, 2);
			dst[i] = half_to_float(h);
		}
		break;
	case MTL_ST_BF16:
		for (int64_t i = 0; i < n; i++) {
			uint16_t h;
			uint32_t b;

			memcpy(&h, p + 2 * i, 2);
			b = (uint32_t)h << 16;
			memcpy(&dst[i], &b, 4);
		}
		break;
	case MTL_ST_F64:
		for (int64_t i = 0; i < n; i++) {
			double d;

			memcpy(&d, p + 8 * i, 8);
			dst[i] = (float)d;
		}
		break;
	default:
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "tensor '%s': dtype %s is not floating point",
				   t->name, mtl_st_dtype_name(t->dtype));
	}
	return 0;
}

int mtl_st_read_i32(const struct mtl_st_tensor *t, int32_t *dst, int64_t n,
		    struct mtl_err *err)
{
	const unsigned char *p = t->data;

	if (t->numel != n)
		return wrong_numel(t, n, err);
	for (int64_t i = 0; i < n; i++) {
		switch (t->dtype) {
		case MTL_ST_I64: {
			int64_t v;

			memcpy(&v, p + 8 * i, 8);
			if (v < INT32_MIN || v > INT32_MAX)
				return mtl_err_set(err, MTL_ERR_FORMAT,
						   "tensor '%s': element %lld (%lld) does not fit in 32 bits",
						   t->name, (long long)i, (long long)v);
			dst[i] = (int32_t)v;
			break;
		}
		case MTL_ST_I32:
			memcpy(&dst[i], p + 4 * i, 4);
			break;
		case MTL_ST_I16: {
			int16_t v;

			memcpy(&v, p + 2 * i, 2);
			dst[i] = v;
			break;
		}
		case MTL_ST_I8:
			dst[i] = (int8_t)p[i];
			break;
		case MTL_ST_U8:
			dst[i] = p[i];
			break;
		case MTL_ST_BOOL:
			dst[i] = p[i] != 0;
			break;
		default:
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "tensor '%s': dtype %s is not an integer type",
					   t->name, mtl_st_dtype_name(t->dtype));
		}
	}
	return 0;
}

/* ---- writing ---- */

static int cmp_out(const void *a, const void *b)
{
	const struct mtl_st_out *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* The JSON header for the sorted tensors, padded with spaces to a multiple
 * of 8 bytes so the data block stays aligned.  NULL on failure. */
static char *build_header(const struct mtl_st_out **s, size_t n,
			  const char *const *meta, size_t n_meta,
			  const uint64_t *numel, size_t *len, int *rc,
			  struct mtl_err *err)
{
	json_t *root = json_object(), *m;
	uint64_t off = 0;
	char *text = NULL, *padded;
	size_t tl;

	if (!root)
		goto nomem;
	if (n_meta) {
		m = json_object();
		if (!m || json_object_set_new(root, "__metadata__", m))
			goto nomem;
		for (size_t i = 0; i < n_meta; i++) {
			if (!meta[2 * i] || !meta[2 * i + 1]) {
				json_decref(root);
				*rc = mtl_err_set(err, MTL_ERR_ARG,
						  "metadata pair %zu is NULL", i);
				return NULL;
			}
			if (json_object_set_new(m, meta[2 * i],
						json_string(meta[2 * i + 1])))
				goto nomem;
		}
	}
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_object(), *shape = json_array(), *offs;

		if (!e || !shape) {
			json_decref(e);
			json_decref(shape);
			goto nomem;
		}
		for (int d = 0; d < s[i]->ndim; d++)
			json_array_append_new(shape, json_integer(s[i]->shape[d]));
		offs = json_pack("[II]", (json_int_t)off,
				 (json_int_t)(off + 4 * numel[i]));
		off += 4 * numel[i];
		json_object_set_new(e, "dtype", json_string("F32"));
		json_object_set_new(e, "shape", shape);
		json_object_set_new(e, "data_offsets", offs);
		if (!offs || json_object_set_new(root, s[i]->name, e))
			goto nomem;
	}
	text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	root = NULL;
	if (!text)
		goto nomem;
	tl = strlen(text);
	padded = malloc(tl + 8);
	if (!padded)
		goto nomem;
	memcpy(padded, text, tl);
	while (tl % 8)
		padded[tl++] = ' ';
	free(text);
	*len = tl;
	return padded;
nomem:
	json_decref(root);
	free(text);
	*rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	return NULL;
}

int mtl_st_write(const char *path, const struct mtl_st_out *t, size_t n,
		 const char *const *meta, size_t n_meta, struct mtl_err *err)
{
	const struct mtl_st_out **s = NULL;
	uint64_t *numel = NULL;
	struct mtl_fs_atomic af;
	char *hdr = NULL;
	unsigned char len8[8];
	size_t hlen = 0;
	int rc;

	s = malloc((n ? n : 1) * sizeof(*s));
	numel = malloc((n ? n : 1) * sizeof(*numel));
	if (!s || !numel) {
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t ne = 1;

		if (!t[i].name || !strcmp(t[i].name, "__metadata__") ||
		    t[i].ndim < 0 || t[i].ndim > MTL_ST_MAX_DIMS) {
			rc = mtl_err_set(err, MTL_ERR_ARG,
					 "cannot write '%s': tensor %zu has a bad name or rank",
					 path, i);
			goto out;
		}
		for (int d = 0; d < t[i].ndim; d++) {
			if (t[i].shape[d] < 0 ||
			    (t[i].shape[d] && ne > (UINT64_MAX / 8) / (uint64_t)t[i].shape[d])) {
				rc = mtl_err_set(err, MTL_ERR_ARG,
						 "cannot write '%s': tensor '%s': bad shape",
						 path, t[i].name);
				goto out;
			}
			ne *= (uint64_t)t[i].shape[d];
		}
		if (ne && !t[i].data) {
			rc = mtl_err_set(err, MTL_ERR_ARG,
					 "cannot write '%s': tensor '%s': no data",
					 path, t[i].name);
			goto out;
		}
		s[i] = &t[i];
	}
	qsort(s, n, sizeof(*s), cmp_out);
	for (size_t i = 0; i < n; i++) {
		if (i && !strcmp(s[i]->name, s[i - 1]->name)) {
			rc = mtl_err_set(err, MTL_ERR_ARG,
					 "cannot write '%s': duplicate tensor name '%s'",
					 path, s[i]->name);
			goto out;
		}
		numel[i] = 1;
		for (int d = 0; d < s[i]->ndim; d++)
			numel[i] *= (uint64_t)s[i]->shape[d];
	}
	hdr = build_header(s, n, meta, n_meta, numel, &hlen, &rc, err);
	if (!hdr) {
		mtl_err_prefix(err, rc, "cannot write '%s'", path);
		goto out;
	}
	if ((rc = mtl_fs_atomic_open(&af, path, err)))
		goto out;
	for (int i = 0; i < 8; i++)
		len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
	rc = mtl_fs_atomic_write(&af, len8, 8, err);
	if (!rc)
		rc = mtl_fs_atomic_write(&af, hdr, hlen, err);
	for (size_t i = 0; i < n && !rc; i++)
		if (numel[i])
			rc = mtl_fs_atomic_write(&af, s[i]->data, 4 * numel[i], err);
	if (rc)
		mtl_fs_atomic_abort(&af);
	else
		rc = mtl_fs_atomic_commit(&af, err);
out:
	free(s);
	free(numel);
	free(hdr);
	return rc;
}
