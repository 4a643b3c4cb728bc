/* vecfile.c - embeddings as .npy or TSV; see vecfile.h. */
#include "vecfile.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mp.h"

/* Magic, version, header length and dict: a multiple of 64 bytes. */
#define NPY_HEADER 128

struct mtl_vecfile {
	enum mtl_vecfile_format fmt;
	FILE *out, *ids;
	long rows, dim;
	float *vec; /* [dim] */
};

static int write_failed(struct mtl_err *err)
{
	return mtl_err_set(err, MTL_ERR_IO, "write error: %s", strerror(errno));
}

/* The NPY v1.0 header of a rows x dim float32 matrix, NPY_HEADER bytes. */
static int npy_header(FILE *f, long rows, long dim)
{
	char h[NPY_HEADER];
	int n;

	memcpy(h, "\x93NUMPY\x01\x00", 8);
	h[8] = (char)((NPY_HEADER - 10) & 0xff);
	h[9] = (char)((NPY_HEADER - 10) >> 8);
	n = snprintf(h + 10, NPY_HEADER - 10,
		     "{'descr': '<f4', 'fortran_order': False, 'shape': (%ld, %ld), }",
		     rows, dim);
	/* spaces, then a newline ends the header */
	memset(h + 10 + n, ' ', (size_t)(NPY_HEADER - 10 - n));
	h[NPY_HEADER - 1] = '\n';
	return fwrite(h, 1, NPY_HEADER, f) == NPY_HEADER ? 0 : -1;
}

int mtl_vecfile_new(struct mtl_vecfile **x, enum mtl_vecfile_format fmt,
		   FILE *out, FILE *ids, struct mtl_err *err)
{
	struct mtl_vecfile *e = calloc(1, sizeof(*e));

	if (!e)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	e->fmt = fmt;
	e->out = out;
	e->ids = ids;
	if (fmt == MTL_VECFILE_NPY && fseek(out, 0, SEEK_SET)) {
		free(e);
		return mtl_err_set(err, MTL_ERR_IO, "the .npy output must be a file "
				   "(its shape is written last), not a pipe: %s",
				   strerror(errno));
	}
	if (fmt == MTL_VECFILE_NPY && npy_header(out, 0, 0)) {
		free(e);
		return write_failed(err);
	}
	*x = e;
	return 0;
}

/* Writes the id of rec and, for TSV, the tab after it. */
static int put_id(struct mtl_vecfile *x, const msgpack_object *id, FILE *f,
		  struct mtl_err *err)
{
	int64_t v;

	if (id && id->type == MSGPACK_OBJECT_STR) {
		const char *s = id->via.str.ptr;
		uint32_t n = id->via.str.size;

		for (uint32_t i = 0; i < n; i++)
			if (s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
				return mtl_err_set(err, MTL_ERR_FORMAT,
						   "the id holds a tab or line break: "
						   "it cannot be written one a line");
		if (fwrite(s, 1, n, f) != n)
			return write_failed(err);
	} else if (!mtl_mp_as_int(id, &v)) {
		if (fprintf(f, "%" PRId64, v) < 0)
			return write_failed(err);
	} else {
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "the id is neither a string nor an integer");
	}
	return putc(x->fmt == MTL_VECFILE_TSV ? '\t' : '\n', f) == EOF ? write_failed(err) : 0;
}

int mtl_vecfile_add(struct mtl_vecfile *x, const msgpack_object *rec,
		   struct mtl_err *err)
{
	const msgpack_object *type = mtl_mp_get(rec, "type");
	const msgpack_object *v = mtl_mp_get(rec, "embedding");
	long n = mtl_mp_array_len(v);
	int rc;

	if (!mtl_mp_is_str(type, "embedding") && !mtl_mp_is_str(type, "prediction"))
		return 0;
	if (n <= 0 || n > (1L << 24))
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "no \"embedding\" array of numbers%s",
				   mtl_mp_is_str(type, "prediction")
					   ? " (score with --embed or --with-embedding)" : "");
	if (x->dim && n != x->dim)
		return mtl_err_set(err, MTL_ERR_FORMAT,
				   "embedding has %ld values, the first had %ld", n, x->dim);
	if (!x->dim) {
		if (!(x->vec = malloc((size_t)n * sizeof(float))))
			return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		x->dim = n;
	}
	if (mtl_mp_as_f32s(v, x->vec, n))
		return mtl_err_set(err, MTL_ERR_FORMAT, "\"embedding\" is not an array of numbers");
	for (long i = 0; i < n; i++)
		if (!isfinite(x->vec[i]))
			return mtl_err_set(err, MTL_ERR_FORMAT,
					   "embedding value %ld is not finite", i);
	if ((rc = put_id(x, mtl_mp_get(rec, "id"), x->fmt == MTL_VECFILE_NPY ? x->ids : x->out, err)))
		return rc;
	for (long i = 0; i < n; i++) {
		if (x->fmt == MTL_VECFILE_TSV) {
			if (fprintf(x->out, i ? "\t%.9g" : "%.9g", (double)x->vec[i]) < 0)
				return write_failed(err);
			continue;
		}
		/* little-endian whatever the host */
		uint32_t u;
		unsigned char b[4];
		memcpy(&u, &x->vec[i], 4);
		for (int k = 0; k < 4; k++)
			b[k] = (unsigned char)(u >> (8 * k));
		if (fwrite(b, 1, 4, x->out) != 4)
			return write_failed(err);
	}
	if (x->fmt == MTL_VECFILE_TSV && putc('\n', x->out) == EOF)
		return write_failed(err);
	x->rows++;
	return 0;
}

int mtl_vecfile_finish(struct mtl_vecfile *x, struct mtl_err *err)
{
	if (x->fmt == MTL_VECFILE_NPY) {
		if (fflush(x->out) || fseek(x->out, 0, SEEK_SET))
			return write_failed(err);
		if (npy_header(x->out, x->rows, x->dim) || fflush(x->ids))
			return write_failed(err);
	}
	return fflush(x->out) ? write_failed(err) : 0;
}

long mtl_vecfile_rows(const struct mtl_vecfile *x)
{
	return x->rows;
}

void mtl_vecfile_free(struct mtl_vecfile *x)
{
	if (!x)
		return;
	free(x->vec);
	free(x);
}
