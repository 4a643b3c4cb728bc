/*
 * fuzz_mp.c - libFuzzer harness for the stream reader and the JSON
 * renderer: any bytes must give records or a clean error, never a crash,
 * an out-of-bounds read or a leak.  Run with `make fuzz-mp`.
 */
#include <stdio.h>
#include <stdlib.h>

#include "mp.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	FILE *in, *out;
	struct mtl_mp_reader *r;
	msgpack_object rec;
	struct mtl_err err;

	if (size == 0)
		return 0;
	in = fmemopen((void *)data, size, "rb");
	out = fopen("/dev/null", "wb");
	r = mtl_mp_reader_new(in, "fuzz");
	while (mtl_mp_read(r, &rec, &err) > 0)
		mtl_mp_to_json(out, &rec, &err);
	mtl_mp_reader_free(r);
	fclose(in);
	fclose(out);
	return 0;
}
