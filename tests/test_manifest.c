/*
 * test_manifest.c - CRC32C against published check values, a manifest's
 * pending and complete states, a flipped bit named, and the atomic writer
 * of fs.h: the umask applies and a failed rename names its file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "manifest.h"
#include "t.h"

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");

	fputs(text, f);
	fclose(f);
}

int main(void)
{
	char dir[] = "/tmp/mtl-test-manifest-XXXXXX", p[512], q[512];
	unsigned char zeros[32] = { 0 }, ones[32], inc[32];
	const char *files[] = { "a.txt", "sub/b.bin" };
	struct mtl_err err = { 0 };
	struct stat sb;
	mode_t old;
	int rc;

	/* RFC 3720 B.4 and the usual "123456789" check value */
	memset(ones, 0xff, sizeof(ones));
	for (int i = 0; i < 32; i++)
		inc[i] = (unsigned char)i;
	T_OK(mtl_manifest_crc32c(0, "123456789", 9) == 0xe3069283u,
	     "crc32c of 123456789 is e3069283");
	T_OK(mtl_manifest_crc32c(0, zeros, 32) == 0x8a9136aau,
	     "crc32c of 32 zero bytes is 8a9136aa");
	T_OK(mtl_manifest_crc32c(0, ones, 32) == 0x62a8ab43u,
	     "crc32c of 32 0xff bytes is 62a8ab43");
	T_OK(mtl_manifest_crc32c(0, inc, 32) == 0x46dd794eu,
	     "crc32c of 0..31 is 46dd794e");
	T_OK(mtl_manifest_crc32c(mtl_manifest_crc32c(0, "1234", 4), "56789", 5) ==
	     0xe3069283u, "crc32c continues across pieces");

	if (!mkdtemp(dir))
		return 1;
	snprintf(p, sizeof(p), "%s/sub", dir);
	mkdir(p, 0777);
	snprintf(p, sizeof(p), "%s/a.txt", dir);
	put(p, "alpha\n");
	snprintf(p, sizeof(p), "%s/sub/b.bin", dir);
	put(p, "beta beta beta\n");
	T_OK(mtl_manifest_check(dir, "M", NULL, 0, &err) == 1,
	     "no manifest: nothing checked");
	T_OK(mtl_manifest_begin(dir, "M", &err) == 0, "begin");
	rc = mtl_manifest_check(dir, "M", NULL, 0, &err);
	T_OK(rc == MTL_ERR_FORMAT && strstr(err.msg, "half-written"),
	     "a pending manifest is refused: %s", err.msg);
	T_OK(mtl_manifest_commit(dir, "M", files, 2, &err) == 0, "commit");
	T_OK(mtl_manifest_check(dir, "M", NULL, 0, &err) == 0, "the files match");
	snprintf(p, sizeof(p), "%s/sub/b.bin", dir);
	put(p, "beta beta bet`\n"); /* one bit of 'a' flipped */
	rc = mtl_manifest_check(dir, "M", NULL, 0, &err);
	T_OK(rc == MTL_ERR_FORMAT && strstr(err.msg, "sub/b.bin': checksum mismatch"),
	     "a flipped bit is named: %s", err.msg);
	T_OK(mtl_manifest_check(dir, "M", files, 1, &err) == 0,
	     "a reader of a.txt alone is not concerned");
	unlink(p);
	rc = mtl_manifest_check(dir, "M", NULL, 0, &err);
	T_OK(rc == MTL_ERR_IO && strstr(err.msg, "sub/b.bin"),
	     "a missing file is named: %s", err.msg);
	T_OK(mtl_manifest_commit(dir, "M", files, 2, &err) == MTL_ERR_IO,
	     "commit refuses a missing file");
	snprintf(p, sizeof(p), "%s/M", dir);
	put(p, "step 4\n");
	T_OK(mtl_manifest_check(dir, "M", NULL, 0, &err) == 1,
	     "a marker from before manifests checks nothing");
	put(p, "mtl-manifest 1\ncrc32c zz 1 a.txt\n");
	rc = mtl_manifest_check(dir, "M", NULL, 0, &err);
	T_OK(rc == MTL_ERR_FORMAT && strstr(err.msg, "line 2: malformed"),
	     "a malformed line: %s", err.msg);

	/* fs.h: new files take 0666 less the umask */
	old = umask(027);
	snprintf(p, sizeof(p), "%s/mode", dir);
	rc = mtl_fs_write(p, "x", 1, &err) || stat(p, &sb);
	T_OK(!rc && (sb.st_mode & 0777) == 0640, "umask 027: mode %o",
	     sb.st_mode & 0777);
	umask(002);
	snprintf(p, sizeof(p), "%s/mode2", dir);
	rc = mtl_fs_write(p, "x", 1, &err) || stat(p, &sb);
	T_OK(!rc && (sb.st_mode & 0777) == 0664, "umask 002: mode %o",
	     sb.st_mode & 0777);
	snprintf(q, sizeof(q), "%s/newdir/deeper", dir);
	rc = mtl_fs_mkdirs(q, &err) || stat(q, &sb);
	T_OK(!rc && (sb.st_mode & 0777) == 0775, "umask 002: directory mode %o",
	     sb.st_mode & 0777);
	umask(old);

	/* a rename that fails (onto a non-empty directory) names the file */
	snprintf(p, sizeof(p), "%s/sub", dir);
	rc = mtl_fs_write(p, "x", 1, &err);
	snprintf(q, sizeof(q), "cannot write '%s/sub': ", dir);
	T_OK(rc == MTL_ERR_IO && !strncmp(err.msg, q, strlen(q)),
	     "a failed rename names its file: %s", err.msg);

	snprintf(p, sizeof(p), "rm -rf '%s'", dir);
	if (system(p))
		T_NOTE("cannot remove %s", dir);
	return t_done();
}
