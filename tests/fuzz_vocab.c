/*
 * fuzz_vocab.c - libFuzzer harness for the tokenizer loader (mtl_tok_load):
 * the first byte picks the file of a model directory that the rest of the
 * bytes become (vocab.txt, tokenizer.json, tokenizer_config.json or
 * config.json); the others are a small valid set.  Any bytes must load or
 * give a clean MTL_ERR_FORMAT, never a crash, an out-of-bounds read or a
 * leak, and a tokenizer that loads must encode.  Run with `make fuzz-vocab`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tok.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static const char *const files[] = { "vocab.txt", "tokenizer.json",
				     "tokenizer_config.json", "config.json" };
static const char vocab[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\n##b\nab\n";

static char dir[64];

static void put(const char *name, const void *b, size_t n)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "wb")) || fwrite(b, 1, n, f) != n || fclose(f))
		abort();
}

static void drop(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
}

static void cleanup(void)
{
	for (int i = 0; i < 4; i++)
		drop(files[i]);
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct mtl_tok *t = NULL;
	struct mtl_tok_enc e;
	struct mtl_err err;
	int which, rc;

	if (!dir[0]) {
		/* in memory where there is a tmpfs: the files change each run */
		snprintf(dir, sizeof(dir), "%s/mtl-fuzz-vocab-XXXXXX",
			 access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
		if (!mkdtemp(dir))
			abort();
		atexit(cleanup);
	}
	if (size == 0)
		return 0;
	which = data[0] & 3;
	for (int i = 0; i < 4; i++)
		drop(files[i]);
	/* tokenizer.json alone must carry the vocabulary */
	if (which != 1)
		put("vocab.txt", vocab, sizeof(vocab) - 1);
	put(files[which], data + 1, size - 1);
	rc = mtl_tok_load(&t, dir, &err);
	if (rc < 0) {
		if (rc != MTL_ERR_FORMAT && rc != MTL_ERR_NOMEM)
			abort();
		return 0;
	}
	mtl_tok_enc_init(&e);
	if (mtl_tok_encode(t, "ab abb [SEP] x", 14, 0, 0, &e, &err) == 0 &&
	    (e.n < 2 || e.ids[0] != mtl_tok_id(t, "[CLS]")))
		abort();
	mtl_tok_enc_release(&e);
	mtl_tok_free(t);
	return 0;
}
