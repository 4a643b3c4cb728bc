/* manifest.c - a directory's files published as one set; see manifest.h. */
#include "manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

#define MAGIC "mtl-manifest 1\n"

/* Slicing-by-8 tables of the reflected Castagnoli polynomial: t[0] is the
 * byte-at-a-time table, t[k] advances a byte through k more zero bytes.
 * Built per use (8 KB, microseconds) so the library keeps no global state. */
struct crc_tab {
	uint32_t t[8][256];
};

static void crc_tab_init(struct crc_tab *c)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t r = i;

		for (int k = 0; k < 8; k++)
			r = r & 1 ? (r >> 1) ^ 0x82f63b78u : r >> 1;
		c->t[0][i] = r;
	}
	for (int k = 1; k < 8; k++)
		for (int i = 0; i < 256; i++)
			c->t[k][i] = (c->t[k - 1][i] >> 8) ^
				     c->t[0][c->t[k - 1][i] & 0xff];
}

/* crc is the running register (complemented CRC); bytes in little-endian
 * order, as the reflected algorithm consumes them */
static uint32_t crc_update(const struct crc_tab *c, uint32_t crc,
			   const unsigned char *p, size_t len)
{
	for (; len >= 8; len -= 8, p += 8) {
		uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
				     (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);

		crc = c->t[7][lo & 0xff] ^ c->t[6][(lo >> 8) & 0xff] ^
		      c->t[5][(lo >> 16) & 0xff] ^ c->t[4][lo >> 24] ^
		      c->t[3][p[4]] ^ c->t[2][p[5]] ^ c->t[1][p[6]] ^
		      c->t[0][p[7]];
	}
	while (len--)
		crc = (crc >> 8) ^ c->t[0][(crc ^ *p++) & 0xff];
	return crc;
}

uint32_t mtl_manifest_crc32c(uint32_t crc, const void *data, size_t len)
{
	struct crc_tab c;

	crc_tab_init(&c);
	return ~crc_update(&c, ~crc, data, len);
}

/* The size and CRC32C of dir/name. */
static int file_sum(const struct crc_tab *c, const char *dir,
		    const char *name, uint32_t *crc, uint64_t *size,
		    struct mtl_err *err)
{
	char p[PATH_MAX];
	static const size_t chunk = 1 << 20;
	unsigned char *buf;
	uint32_t r = ~0u;
	size_t n;
	FILE *f;

	int rc;

	if ((rc = mtl_fs_join(p, dir, name, err)))
		return rc;
	if (!(f = fopen(p, "rb")))
		return mtl_err_set(err, MTL_ERR_IO, "cannot open '%s': %s", p,
				   strerror(errno));
	if (!(buf = malloc(chunk))) {
		fclose(f);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	*size = 0;
	while ((n = fread(buf, 1, chunk, f)) > 0) {
		r = crc_update(c, r, buf, n);
		*size += n;
	}
	free(buf);
	if (ferror(f)) {
		fclose(f);
		return mtl_err_set(err, MTL_ERR_IO, "cannot read '%s'", p);
	}
	fclose(f);
	*crc = ~r;
	return 0;
}

int mtl_manifest_begin(const char *dir, const char *name, struct mtl_err *err)
{
	static const char text[] = MAGIC "pending\n";
	char p[PATH_MAX];
	int rc;

	if ((rc = mtl_fs_join(p, dir, name, err)))
		return rc;
	return mtl_fs_write(p, text, sizeof(text) - 1, err);
}

int mtl_manifest_commit(const char *dir, const char *name,
			const char *const *files, int n, struct mtl_err *err)
{
	struct crc_tab *c = malloc(sizeof(*c));
	size_t cap = sizeof(MAGIC), len;
	char p[PATH_MAX], *text;
	int rc = 0;

	for (int i = 0; i < n; i++)
		cap += strlen(files[i]) + 40;
	text = malloc(cap);
	if (!c || !text) {
		free(c);
		free(text);
		return mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
	}
	crc_tab_init(c);
	len = (size_t)snprintf(text, cap, MAGIC);
	for (int i = 0; i < n && !rc; i++) {
		uint32_t crc;
		uint64_t size;

		if (!(rc = file_sum(c, dir, files[i], &crc, &size, err)))
			len += (size_t)snprintf(text + len, cap - len,
						"crc32c %08" PRIx32 " %" PRIu64 " %s\n",
						crc, size, files[i]);
	}
	if (!rc && !(rc = mtl_fs_join(p, dir, name, err)))
		rc = mtl_fs_write(p, text, len, err);
	free(c);
	free(text);
	return rc;
}

/* Whether name is one of only[0..n) (every name when only is NULL). */
static int wanted(const char *name, const char *const *only, int n)
{
	if (!only)
		return 1;
	for (int i = 0; i < n; i++)
		if (!strcmp(only[i], name))
			return 1;
	return 0;
}

int mtl_manifest_check(const char *dir, const char *name,
		       const char *const *only, int n_only,
		       struct mtl_err *err)
{
	struct crc_tab *c = NULL;
	char p[PATH_MAX], *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long no = 1;
	int rc;
	FILE *f;

	if ((rc = mtl_fs_join(p, dir, name, err)))
		return rc;
	if (!(f = fopen(p, "rb")))
		return errno == ENOENT ? 1
		       : mtl_err_set(err, MTL_ERR_IO, "cannot open '%s': %s", p,
				     strerror(errno));
	len = getline(&line, &cap, f);
	if (len < 0 || strcmp(line, MAGIC)) {
		rc = len >= 0 && !strncmp(line, "mtl-manifest ", 13)
		     ? mtl_err_set(err, MTL_ERR_FORMAT,
				   "'%s': a manifest of an unknown version", p)
		     : 1;
		goto out;
	}
	if (!(c = malloc(sizeof(*c)))) {
		rc = mtl_err_set(err, MTL_ERR_NOMEM, "out of memory");
		goto out;
	}
	crc_tab_init(c);
	while (!rc && (len = getline(&line, &cap, f)) >= 0) {
		unsigned int want_crc;
		uint32_t crc;
		uint64_t want_size, size;
		int at = -1;

		no++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = 0;
		if (!strcmp(line, "pending")) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "'%s' is half-written: a save is under way or was interrupted ('%s' says pending)",
					 dir, name);
			break;
		}
		if (sscanf(line, "crc32c %8x %" SCNu64 " %n", &want_crc,
			   &want_size, &at) != 2 || at < 0 || !line[at]) {
			rc = mtl_err_set(err, MTL_ERR_FORMAT, "'%s': line %ld: malformed",
					 p, no);
			break;
		}
		if (!wanted(line + at, only, n_only))
			continue;
		if ((rc = file_sum(c, dir, line + at, &crc, &size, err)))
			break;
		if (size != want_size || crc != want_crc)
			rc = mtl_err_set(err, MTL_ERR_FORMAT,
					 "'%s/%s': checksum mismatch (%" PRIu64 " bytes, crc32c %08" PRIx32 "; '%s' lists %" PRIu64 " bytes, crc32c %08x): the file changed after it was written",
					 dir, line + at, size, crc, name, want_size,
					 want_crc);
	}
	if (!rc && ferror(f))
		rc = mtl_err_set(err, MTL_ERR_IO, "cannot read '%s'", p);
out:
	free(c);
	free(line);
	fclose(f);
	return rc;
}
