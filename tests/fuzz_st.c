/*
 * fuzz_st.c - libFuzzer harness for the safetensors reader (make fuzz-st).
 *
 * Each input is written to a scratch file and opened; when it validates,
 * every tensor is read back through both conversion paths so that any
 * offset the validator let through is actually dereferenced under ASan.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "st.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	struct mtl_st *st = NULL;
	struct mtl_err err;
	FILE *f;

	if (!path[0])
		snprintf(path, sizeof(path), "/tmp/fuzz_st.%d.safetensors",
			 (int)getpid());
	f = fopen(path, "wb");
	if (!f)
		return 0;
	if (size)
		fwrite(data, 1, size, f);
	fclose(f);
	if (mtl_st_open(&st, path, &err) == 0) {
		for (size_t i = 0; i < mtl_st_count(st); i++) {
			const struct mtl_st_tensor *t = mtl_st_at(st, i);
			size_t n = (size_t)t->numel;
			void *buf;

			if (mtl_st_find(st, t->name) != t)
				abort();
			if (n > ((size_t)1 << 24))
				continue;
			buf = malloc(n ? n * 4 : 4);
			if (!buf)
				continue;
			mtl_st_read_f32(t, buf, t->numel, &err);
			mtl_st_read_i32(t, buf, t->numel, &err);
			free(buf);
		}
		mtl_st_meta(st, "format");
		mtl_st_close(st);
	}
	return 0;
}
