/*
 * err.h - status codes, error messages and invariant checks for libmtl.
 *
 * The library never prints, exits or aborts on bad input.  A function that
 * can fail returns int: 0 on success or a negative enum mtl_status.  It also
 * takes a struct mtl_err *, which may be NULL; on failure the message is
 * written there.  Messages follow git: lowercase, no full stop, failure
 * first, subject quoted ("cannot open 'x.mpk': No such file or directory").
 *
 * MTL_ASSERT is for broken invariants between our own functions only (a
 * wrong shape passed internally): it prints file:line and aborts.
 */
#ifndef MTL_ERR_H
#define MTL_ERR_H

#include <stdarg.h>

enum mtl_status {
	MTL_OK = 0,
	MTL_ERR_IO = -1,      /* reading or writing a file failed */
	MTL_ERR_FORMAT = -2,  /* the input is malformed */
	MTL_ERR_NOMEM = -3,   /* an allocation failed */
	MTL_ERR_ARG = -4,     /* a caller-supplied value is out of range */
	MTL_ERR_NUMERIC = -5, /* a non-finite value where a finite one is needed */
};

struct mtl_err {
	char msg[256];
};

/*
 * Formats into err->msg (truncating at 255 bytes) when err is not NULL.
 * Returns code, so that callers can write `return mtl_err_set(err,
 * MTL_ERR_FORMAT, "bad %s", x);`.
 */
int mtl_err_set(struct mtl_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Prepends "prefix: " to the message already in err (no-op for NULL err).
 * Returns code.
 */
int mtl_err_prefix(struct mtl_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void mtl_assert_fail(const char *file, int line, const char *cond)
	__attribute__((noreturn));

#define MTL_ASSERT(cond) \
	((cond) ? (void)0 : mtl_assert_fail(__FILE__, __LINE__, #cond))

#endif
