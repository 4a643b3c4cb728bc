/*
 * fuzz_input.c - libFuzzer harness for the input readers (JSONL, CoNLL,
 * TSV, CSV, plain text; lib/data/input.c) and the encoding of what they read:
 * the first byte picks the format and options, the rest is the file.  Any bytes must give
 * records or clean line-numbered errors, never a crash, an out-of-bounds
 * access or a leak.  Run with `make fuzz-input`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "input.h"
#include "task.h"
#include "tok.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static const char spec[] =
	"{\"tasks\": [{\"name\": \"topic\", \"kind\": \"sequence\", \"labels\": [\"a\", \"b\"]},"
	" {\"name\": \"ner\", \"kind\": \"token\", \"labels\": [\"O\", \"B-X\", \"I-X\"]}]}";
static const char *const vocab[] = {
	"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "##a", "b", "##b",
	"ab", "x", "##x", "!", "john", "paris",
};

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static struct mtl_tasks *ts;
	static struct mtl_tok *tok;
	struct mtl_input_opts o = { .text_field = "text" };
	struct mtl_input_item it;
	struct mtl_example ex;
	struct mtl_input *in;
	struct mtl_err err;
	FILE *f;
	int rc;

	if (!ts && (mtl_task_parse(&ts, spec, sizeof(spec) - 1, "spec", NULL) ||
		    mtl_tok_new(&tok, vocab, sizeof(vocab) / sizeof(vocab[0]), NULL, NULL)))
		abort();
	if (size < 2)
		return 0;
	o.format = data[0] % 3 == 0 ? MTL_INPUT_JSONL : data[0] % 3 == 1 ? MTL_INPUT_CONLL : MTL_INPUT_TSV;
	/* bit 5: CSV for TSV, plain text for JSONL */
	if ((data[0] >> 5) & 1 && o.format != MTL_INPUT_CONLL)
		o.format = o.format == MTL_INPUT_TSV ? MTL_INPUT_CSV : MTL_INPUT_TEXT;
	o.conll_task = o.format == MTL_INPUT_CONLL ? 1 : -1;
	o.strict = (data[0] >> 6) & 1;
	o.replace_invalid = (data[0] >> 2) & 1;
	o.skip_unknown = (data[0] >> 3) & 1;
	f = fmemopen((void *)(data + 1), size - 1, "rb");
	if (!f)
		return 0;
	if (mtl_input_open(&in, f, ts, &o, &err) == 0) {
		for (int n = 0; n < 1000 && (rc = mtl_input_read(in, &it, &err)) != 0; n++) {
			if (rc < 0) {
				if (rc != MTL_ERR_FORMAT || strncmp(err.msg, "line ", 5))
					abort();
				continue;
			}
			if (mtl_input_encode(in, &it, tok, (data[0] >> 4) + 2, &ex, NULL, &err) == 0)
				mtl_example_release(&ex);
		}
		mtl_input_free(in);
	}
	fclose(f);
	return 0;
}
