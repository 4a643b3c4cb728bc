/* fs.c - atomic file writes and small file helpers; see fs.h. */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int mtl_fs_sync_dir(const char *dir, struct mtl_err *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return mtl_err_set(err, MTL_ERR_IO, "cannot sync directory '%s': %s",
				   dir, strerror(e));
	}
	close(fd);
	return 0;
}

int mtl_fs_atomic_open(struct mtl_fs_atomic *a, const char *path,
		       struct mtl_err *err)
{
	size_t n = strlen(path);
	struct timespec ts;
	uint64_t x;
	int e = 0;

	a->fd = -1;
	a->path = strdup(path);
	a->tmp = malloc(n + 16);
	if (!a->path || !a->tmp) {
		mtl_fs_atomic_abort(a);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	/*
	 * mkstemp() would make the file 0600 and leave us to guess the umask;
	 * open(O_EXCL, 0666) lets the kernel apply it, as for any new file.
	 * The name's six letters come from the clock, the pid and the try.
	 */
	clock_gettime(CLOCK_REALTIME, &ts);
	x = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u ^ (uint64_t)getpid() << 20;
	for (int try = 0; try < 100 && a->fd < 0; try++) {
		uint64_t r = x + (uint64_t)try * 0xbf58476d1ce4e5b9u;

		memcpy(a->tmp, path, n);
		memcpy(a->tmp + n, ".tmp.", 5);
		for (int k = 0; k < 6; k++, r /= 36)
			a->tmp[n + 5 + k] = "0123456789abcdefghijklmnopqrstuvwxyz"[r % 36];
		a->tmp[n + 11] = 0;
		a->fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		e = errno;
		if (a->fd < 0 && e != EEXIST)
			break;
	}
	if (a->fd < 0) {
		free(a->tmp); /* nothing of ours to remove */
		a->tmp = NULL;
		mtl_fs_atomic_abort(a);
		return mtl_err_set(err, MTL_ERR_IO, "cannot create a file beside '%s': %s",
				   path, strerror(e));
	}
	return 0;
}

/* The MTL_FS_FAIL_WRITE test hook (fs.h): whether this write must fail. */
static int injected_failure(void)
{
	static long calls;
	const char *v = getenv("MTL_FS_FAIL_WRITE");
	long n = v ? strtol(v, NULL, 10) : 0;

	return n > 0 && ++calls >= n;
}

int mtl_fs_atomic_write(struct mtl_fs_atomic *a, const void *data,
			size_t len, struct mtl_err *err)
{
	const char *p = data;

	if (injected_failure())
		return mtl_err_set(err, MTL_ERR_IO, "cannot write '%s': %s",
				   a->path, strerror(ENOSPC));
	while (len) {
		ssize_t w = write(a->fd, p, len > (1u << 30) ? (1u << 30) : len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return mtl_err_set(err, MTL_ERR_IO, "cannot write '%s': %s",
					   a->path, strerror(errno));
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int mtl_fs_atomic_commit(struct mtl_fs_atomic *a, struct mtl_err *err)
{
	char *slash, dir[PATH_MAX];
	int e = 0;

	if (fsync(a->fd) < 0)
		e = errno;
	if (close(a->fd) < 0 && !e)
		e = errno;
	a->fd = -1;
	if (!e && rename(a->tmp, a->path) < 0)
		e = errno;
	if (e) {
		/* the message before the abort frees a->path */
		int rc = mtl_err_set(err, MTL_ERR_IO, "cannot write '%s': %s",
				     a->path, strerror(e));
		mtl_fs_atomic_abort(a);
		return rc;
	}
	snprintf(dir, sizeof(dir), "%s", a->path);
	slash = strrchr(dir, '/');
	if (slash)
		slash[slash == dir ? 1 : 0] = 0;
	else
		strcpy(dir, ".");
	free(a->tmp);
	a->tmp = NULL;
	mtl_fs_atomic_abort(a);
	return mtl_fs_sync_dir(dir, err);
}

void mtl_fs_atomic_abort(struct mtl_fs_atomic *a)
{
	if (a->fd >= 0)
		close(a->fd);
	if (a->tmp)
		unlink(a->tmp);
	free(a->tmp);
	free(a->path);
	a->fd = -1;
	a->tmp = a->path = NULL;
}

int mtl_fs_write(const char *path, const void *data, size_t len,
		 struct mtl_err *err)
{
	struct mtl_fs_atomic a;
	int rc;

	if ((rc = mtl_fs_atomic_open(&a, path, err)))
		return rc;
	if ((rc = mtl_fs_atomic_write(&a, data, len, err))) {
		mtl_fs_atomic_abort(&a);
		return rc;
	}
	return mtl_fs_atomic_commit(&a, err);
}

int mtl_fs_write_json(const char *path, const json_t *j, size_t flags,
		      struct mtl_err *err)
{
	char *text = json_dumps(j, JSON_INDENT(2) | flags);
	size_t len;
	int rc;

	if (!text)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	len = strlen(text);
	text = realloc(text, len + 2);
	if (!text)
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	text[len++] = '\n';
	rc = mtl_fs_write(path, text, len, err);
	free(text);
	return rc;
}

int mtl_fs_join(char buf[MTL_FS_PATH_LEN], const char *dir, const char *name,
		struct mtl_err *err)
{
	int n = snprintf(buf, MTL_FS_PATH_LEN, "%s/%s", dir, name);

	if (n < 0 || n >= MTL_FS_PATH_LEN)
		return mtl_err_set(err, MTL_ERR_ARG, "path too long: '%s/%s'",
				   dir, name);
	return 0;
}

int mtl_fs_read_json(json_t **out, const char *path, struct mtl_err *err)
{
	json_error_t je;
	struct stat sb;
	json_t *j;

	if (stat(path, &sb) < 0)
		return mtl_err_set(err, MTL_ERR_IO, "cannot open '%s': %s", path,
				   strerror(errno));
	j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return mtl_err_set(err, MTL_ERR_FORMAT, "'%s': %s (line %d)",
				   path, je.text, je.line);
	*out = j;
	return 0;
}

int mtl_fs_copy(const char *src, const char *dst, struct mtl_err *err)
{
	struct mtl_fs_atomic a;
	char buf[65536];
	FILE *in = fopen(src, "rb");
	size_t n;
	int rc;

	if (!in)
		return mtl_err_set(err, MTL_ERR_IO, "cannot open '%s': %s", src,
				   strerror(errno));
	if ((rc = mtl_fs_atomic_open(&a, dst, err))) {
		fclose(in);
		return rc;
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if ((rc = mtl_fs_atomic_write(&a, buf, n, err)))
			break;
	if (!rc && ferror(in))
		rc = mtl_err_set(err, MTL_ERR_IO, "cannot read '%s'", src);
	fclose(in);
	if (rc) {
		mtl_fs_atomic_abort(&a);
		return rc;
	}
	return mtl_fs_atomic_commit(&a, err);
}

int mtl_fs_mkdirs(const char *dir, struct mtl_err *err)
{
	char p[PATH_MAX];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(p))
		return mtl_err_set(err, MTL_ERR_ARG, "bad directory name '%s'", dir);
	memcpy(p, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != 0)
			continue;
		p[i] = 0;
		if (mkdir(p, 0777) < 0 && errno != EEXIST)
			return mtl_err_set(err, MTL_ERR_IO, "cannot create directory '%s': %s",
					   p, strerror(errno));
		p[i] = i < n ? '/' : 0;
	}
	return 0;
}

int mtl_fs_check_dir(const char *dir, struct mtl_err *err)
{
	char p[MTL_FS_PATH_LEN];
	struct mtl_fs_atomic a;
	int rc;

	if ((rc = mtl_fs_mkdirs(dir, err)) ||
	    (rc = mtl_fs_join(p, dir, ".write-check", err)) ||
	    (rc = mtl_fs_atomic_open(&a, p, err)))
		return rc;
	mtl_fs_atomic_abort(&a);
	return 0;
}

int mtl_fs_remove(const char *path, struct mtl_err *err)
{
	if (unlink(path) < 0 && errno != ENOENT)
		return mtl_err_set(err, MTL_ERR_IO, "cannot remove '%s': %s",
				   path, strerror(errno));
	return 0;
}

int mtl_fs_exists(const char *dir, const char *name)
{
	char p[PATH_MAX];
	struct stat st;

	if (snprintf(p, sizeof(p), "%s/%s", dir, name) >= (int)sizeof(p))
		return 0;
	return stat(p, &st) == 0;
}
