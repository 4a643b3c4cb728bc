/*
 * fuzz_mp.c - libFuzzer harness for the stream reader, the JSON renderer
 * and the record parsers behind it: any bytes must give records or a clean
 * error, never a crash, an out-of-bounds read or a leak.  The header's
 * tasks go through mtl_data_header_tasks and the BIO scheme of every token
 * task (as mtl-report and mtl-score build it); example and batch records
 * through their parsers against those tasks.  Run with `make fuzz-mp`.
 */
#include <stdio.h>
#include <stdlib.h>

#include "data.h"
#include "metrics.h"
#include "mp.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* What mtl-score and mtl-report do with a header's tasks. */
static void header(const msgpack_object *hdr, struct mtl_tasks **ts)
{
	struct mtl_err err;

	if (mtl_data_header_tasks(ts, hdr, &err))
		return;
	for (int t = 0; t < (*ts)->n; t++) {
		const struct mtl_task *task = &(*ts)->task[t];
		struct mtl_bio bio;

		if (task->kind == MTL_TASK_TOKEN &&
		    mtl_bio_init(&bio, (const char *const *)task->labels,
				 task->n_labels, t & 1, &err) == 0)
			mtl_bio_release(&bio);
	}
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	FILE *in, *out;
	struct mtl_mp_reader *r;
	struct mtl_tasks *ts = NULL;
	msgpack_object rec;
	struct mtl_err err;

	if (size == 0)
		return 0;
	in = fmemopen((void *)data, size, "rb");
	out = fopen("/dev/null", "wb");
	r = mtl_mp_reader_new(in, "fuzz");
	while (mtl_mp_read(r, &rec, &err) > 0) {
		mtl_mp_to_json(out, &rec, &err);
		if (mtl_mp_reader_record(r) == 1) {
			header(&rec, &ts);
		} else if (ts && mtl_mp_is_str(mtl_mp_get(&rec, "type"), "example")) {
			struct mtl_example ex;
			if (mtl_example_parse(&ex, &rec, ts, &err) == 0)
				mtl_example_release(&ex);
		} else if (ts && mtl_mp_is_str(mtl_mp_get(&rec, "type"), "batch")) {
			struct mtl_batch b;
			if (mtl_batch_parse(&b, &rec, ts, &err) == 0)
				mtl_batch_release(&b);
		}
	}
	mtl_task_free(ts);
	mtl_mp_reader_free(r);
	fclose(in);
	fclose(out);
	return 0;
}
