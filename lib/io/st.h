/*
 * st.h - safetensors files: strict reading (memory-mapped) and atomic
 * writing.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 * {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [BEGIN, END]},
 *  ..., "__metadata__": {"k": "v", ...}}, then the data block; offsets are
 * relative to the data block.
 *
 * mtl_st_open() validates the whole header before anything is used: the
 * length fits the file, the JSON is an object, every tensor has a known
 * dtype, a shape of non-negative dimensions whose product times the dtype
 * size equals END - BEGIN without overflow, ranges inside the data block and
 * not overlapping.  A bad file fails with MTL_ERR_FORMAT and a message naming
 * the file and the tensor ("'m.safetensors': tensor 'x.weight': ...").
 *
 * Ownership: mtl_st_open() returns a handle the caller frees with
 * mtl_st_close(); tensor views and metadata strings borrowed from it are
 * valid until then.
 */
#ifndef MTL_ST_H
#define MTL_ST_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum mtl_st_dtype {
	MTL_ST_F32,
	MTL_ST_F16,
	MTL_ST_BF16,
	MTL_ST_F64,
	MTL_ST_I64,
	MTL_ST_I32,
	MTL_ST_I16,
	MTL_ST_I8,
	MTL_ST_U8,
	MTL_ST_BOOL,
};

#define MTL_ST_MAX_DIMS 8

struct mtl_st_tensor {
	const char *name;
	enum mtl_st_dtype dtype;
	int ndim;
	int64_t shape[MTL_ST_MAX_DIMS];
	int64_t numel;
	const void *data; /* inside the mapping; not aligned in general */
	size_t nbytes;
};

struct mtl_st;

/* Opens and validates path.  0 and *out, or <0 (err set, *out untouched). */
int mtl_st_open(struct mtl_st **out, const char *path, struct mtl_err *err);
void mtl_st_close(struct mtl_st *st);

size_t mtl_st_count(const struct mtl_st *st);
/* Tensors in file order (by data offset). */
const struct mtl_st_tensor *mtl_st_at(const struct mtl_st *st, size_t i);
/* The tensor called name, or NULL. */
const struct mtl_st_tensor *mtl_st_find(const struct mtl_st *st,
					const char *name);
/* A "__metadata__" value, or NULL. */
const char *mtl_st_meta(const struct mtl_st *st, const char *key);
const char *mtl_st_dtype_name(enum mtl_st_dtype dt);

/*
 * Converts a floating tensor (F32, F16, BF16, F64) of exactly n elements to
 * float32 in dst.  Fails (MTL_ERR_FORMAT) on another dtype or count.
 */
int mtl_st_read_f32(const struct mtl_st_tensor *t, float *dst, int64_t n,
		    struct mtl_err *err);
/*
 * Lets go of the file pages wholly inside t's data (madvise
 * MADV_DONTNEED on the read-only mapping): the process no longer holds
 * them, the file is unchanged, and reading t again reads them anew.  For
 * a loader that has copied t, so that a model's file and its copy are
 * not both resident at the end of loading.
 */
void mtl_st_release(const struct mtl_st_tensor *t);
/* Converts an integer tensor (I64, I32, I16, I8, U8, BOOL) of n elements. */
int mtl_st_read_i32(const struct mtl_st_tensor *t, int32_t *dst, int64_t n,
		    struct mtl_err *err);

/* One tensor to write: float32 data, row-major. */
struct mtl_st_out {
	const char *name;
	int ndim;
	int64_t shape[MTL_ST_MAX_DIMS];
	const float *data;
};

/*
 * Writes n tensors as F32 (names sorted, as the Python library writes
 * them) with optional metadata pairs (meta[2i] = key, meta[2i+1] = value,
 * n_meta pairs) to path, atomically: a temporary file beside it, fsync,
 * rename.  On failure path is untouched.
 */
int mtl_st_write(const char *path, const struct mtl_st_out *t, size_t n,
		 const char *const *meta, size_t n_meta, struct mtl_err *err);

#endif
