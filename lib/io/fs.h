/*
 * fs.h - files written so that nothing is ever half-written: a temporary
 * file beside the target, fsync, rename over the target, fsync of the
 * directory.  A crash or a full disk leaves the old file (or none), never
 * a truncated one.  Also small helpers: mkdir -p, copy, existence.
 *
 * Failure: functions return 0 or a negative enum mtl_status with the
 * reason (naming the path) in err.
 *
 * Test hook: when the environment variable MTL_FS_FAIL_WRITE is a number
 * N >= 1, the Nth call of mtl_fs_atomic_write() in the process (and every
 * later one) fails as if the disk were full (ENOSPC).  The tests use it to
 * check that a failed save leaves the previous files intact.  It is the
 * library's only process-wide state: a counter read nowhere else.
 */
#ifndef MTL_FS_H
#define MTL_FS_H

#include <stddef.h>

#include <jansson.h>

#include "err.h"

/* A file being written: write to fd, then commit or abort. */
struct mtl_fs_atomic {
	int fd;
	char *tmp;
	char *path;
};

/* Creates a temporary file beside path, PATH.tmp.XXXXXX (mode 0666 less
 * the umask, as for any new file). */
int mtl_fs_atomic_open(struct mtl_fs_atomic *a, const char *path,
		       struct mtl_err *err);
/* Writes all of data (retrying short writes). */
int mtl_fs_atomic_write(struct mtl_fs_atomic *a, const void *data,
			size_t len, struct mtl_err *err);
/* fsync, close, rename over the target, fsync the directory.  On failure
 * the temporary file is removed and the target left as it was. */
int mtl_fs_atomic_commit(struct mtl_fs_atomic *a, struct mtl_err *err);
/* Removes the temporary file; accepts a committed or zeroed a. */
void mtl_fs_atomic_abort(struct mtl_fs_atomic *a);

/* Writes len bytes to path atomically. */
int mtl_fs_write(const char *path, const void *data, size_t len,
		 struct mtl_err *err);
/*
 * Writes j as JSON indented by 2 and a final newline; flags are added to
 * json_dumps()'s (JSON_SORT_KEYS, JSON_REAL_PRECISION(n), ...).
 */
int mtl_fs_write_json(const char *path, const json_t *j, size_t flags,
		      struct mtl_err *err);
/* Room for a path built by mtl_fs_join. */
#define MTL_FS_PATH_LEN 4096
/* buf = "dir/name"; MTL_ERR_ARG when it needs more than MTL_FS_PATH_LEN. */
int mtl_fs_join(char buf[MTL_FS_PATH_LEN], const char *dir, const char *name,
		struct mtl_err *err);
/*
 * The flags of Hugging Face's configuration files, for mtl_fs_write_json:
 * keys sorted, and reals to 15 digits, so 0.1 is written "0.1" rather
 * than jansson's default 17-digit "0.10000000000000001".
 */
#define MTL_FS_JSON_HF (JSON_SORT_KEYS | JSON_REAL_PRECISION(15))
/*
 * Parses the JSON file at path (duplicate keys rejected) into *out, which
 * the caller frees with json_decref().  MTL_ERR_IO when path cannot be
 * opened, MTL_ERR_FORMAT with the line for bad JSON; *out untouched.
 */
int mtl_fs_read_json(json_t **out, const char *path, struct mtl_err *err);
/* Copies src to dst atomically. */
int mtl_fs_copy(const char *src, const char *dst, struct mtl_err *err);
/* Creates dir and its missing parents (mode 0777 less the umask). */
int mtl_fs_mkdirs(const char *dir, struct mtl_err *err);
/*
 * Makes sure that files can be written in dir before any work that would
 * be lost otherwise: creates dir (and its parents) if needed, then
 * creates and removes a temporary file in it.  MTL_ERR_IO naming the
 * path and the reason (MTL_ERR_ARG for a name too long).
 */
int mtl_fs_check_dir(const char *dir, struct mtl_err *err);
/* fsyncs a directory (after renames inside it); 0 or MTL_ERR_IO. */
int mtl_fs_sync_dir(const char *dir, struct mtl_err *err);
/* Removes the file path; one that does not exist is fine. */
int mtl_fs_remove(const char *path, struct mtl_err *err);
/* Whether dir/name exists. */
int mtl_fs_exists(const char *dir, const char *name);

#endif
