/*
 * manifest.h - a directory's files published as one set.
 *
 * A directory written file by file (a model directory, a checkpoint) is
 * half old, half new while it is being written.  Its manifest, a text file
 * beside the files, says which state a reader finds:
 *
 *	mtl-manifest 1
 *	pending                            (a write is under way or was killed)
 *
 *	mtl-manifest 1
 *	crc32c 8a9136aa 1234 config.json   (one line per file: CRC32C, size,
 *	crc32c 3e7b2f10 5678 model.safetensors        name relative to the dir)
 *
 * A writer first makes the manifest "pending" (mtl_manifest_begin), then
 * writes its files (each atomically, fs.h), then replaces the manifest by
 * the list of its files with their checksums (mtl_manifest_commit), each
 * step an atomic rename.  A reader (mtl_manifest_check) accepts the
 * directory only when every listed file has the listed size and CRC32C:
 * a kill at any moment leaves either a pending manifest or a complete
 * one, and a file changed afterwards (a flipped bit, a copy from another
 * run) is a named error.  Files the manifest does not list are not its
 * business.  A directory without a manifest (a Hugging Face download) is
 * not checked.
 *
 * CRC32C (Castagnoli, the checksum of iSCSI, ext4 and Btrfs) catches every
 * error burst up to 32 bits and any odd number of flipped bits; it guards
 * against accidents, not against someone forging a file.
 *
 * Failure: 0 or a negative enum mtl_status with err naming the file:
 * MTL_ERR_FORMAT for a pending manifest or a file that does not match,
 * MTL_ERR_IO when a file cannot be read or written.
 */
#ifndef MTL_MANIFEST_H
#define MTL_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* The manifest of a model directory (the one every reader checks). */
#define MTL_MANIFEST "MANIFEST"

/* CRC32C of len bytes of data, continuing from crc (0 to start). */
uint32_t mtl_manifest_crc32c(uint32_t crc, const void *data, size_t len);

/* Writes dir/name as a pending manifest. */
int mtl_manifest_begin(const char *dir, const char *name, struct mtl_err *err);

/*
 * Writes dir/name listing the files[0..n) of dir (paths relative to dir)
 * with their sizes and checksums, read back from the disk.  A missing
 * file is an error (MTL_ERR_IO) and leaves the manifest as it was.
 */
int mtl_manifest_commit(const char *dir, const char *name,
			const char *const *files, int n, struct mtl_err *err);

/*
 * Checks dir against dir/name.  With only (n_only names) just those of
 * the listed files are checked (a reader that opens a few of them); with
 * only NULL every listed file.  Returns 1 when there is no manifest, or
 * a file of that name from before manifests (not starting with
 * "mtl-manifest "): nothing checked; 0 when everything matches; <0 else
 * (see above).
 */
int mtl_manifest_check(const char *dir, const char *name,
		       const char *const *only, int n_only,
		       struct mtl_err *err);

#endif
