/*
 * vecfile.h - embeddings out of mtl: the vectors of an embeddings stream
 * (mtl-score --embed, or predictions with --with-embedding) as a NumPy
 * .npy matrix with the ids one per line beside it, or as TSV rows.
 *
 *   NPY  format version 1.0: the magic, a header dict {'descr': '<f4',
 *        'fortran_order': False, 'shape': (N, D)} padded to 128 bytes,
 *        then N rows of D little-endian float32 values.  The ids go to a
 *        second file, one a line, row i's id on line i.
 *   TSV  one line a vector: the id, then the D values ("%.9g", which reads
 *        back to the same float32), separated by tabs.
 *
 * Example:
 *
 *	struct mtl_vecfile *x;
 *	if (mtl_vecfile_new(&x, MTL_VECFILE_NPY, npy, ids, &err) < 0) ...;
 *	while ((rc = mtl_mp_read(r, &rec, &err)) > 0)
 *		if (mtl_vecfile_add(x, &rec, &err) < 0) ...add the record number...;
 *	rc = mtl_vecfile_finish(x, &err);
 *	mtl_vecfile_free(x);
 *
 * Ownership: the exporter borrows its FILEs and never closes them.
 *
 * Failure: a vector record without a numeric "embedding", with another
 * length than the first, or with a non-finite value, and an id that is
 * neither a string nor an integer or holds a tab or line break, give
 * MTL_ERR_FORMAT (the message names no record: the caller knows it).  A
 * failed write, or an NPY output that cannot be rewound (a pipe: checked
 * by mtl_vecfile_new), gives MTL_ERR_IO.
 */
#ifndef MTL_VECFILE_H
#define MTL_VECFILE_H

#include <stdio.h>

#include <msgpack.h>

#include "err.h"

enum mtl_vecfile_format { MTL_VECFILE_NPY, MTL_VECFILE_TSV };

struct mtl_vecfile;

/*
 * An exporter writing fmt: for NPY the matrix to out (a file that can be
 * rewound; a placeholder header is written now) and the ids to ids; for
 * TSV the rows to out (ids unused, may be NULL).  0, or <0 with *x
 * untouched.
 */
int mtl_vecfile_new(struct mtl_vecfile **x, enum mtl_vecfile_format fmt,
		   FILE *out, FILE *ids, struct mtl_err *err);

/*
 * Adds the vector of rec when rec is a vector record ("embedding", or a
 * "prediction" that must then carry an "embedding"); other records (stats,
 * metrics) are passed over.  0 or <0.
 */
int mtl_vecfile_add(struct mtl_vecfile *x, const msgpack_object *rec,
		   struct mtl_err *err);

/* Completes the output (NPY: the header's shape) and flushes.  0 or <0. */
int mtl_vecfile_finish(struct mtl_vecfile *x, struct mtl_err *err);

/* The rows written so far. */
long mtl_vecfile_rows(const struct mtl_vecfile *x);

void mtl_vecfile_free(struct mtl_vecfile *x);

#endif
